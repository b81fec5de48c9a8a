"""MOS alignment across datasets: one learnable affine map per training dataset, shared backbone.

Why: the paper maps every dataset's declared range linearly onto [1, 10] and
names that as its main weakness: a 6 on one set's scale is not a 6 on
another's (BIQ2021 raters use the middle of the range, a pseudo-MOS spans all
of it). Here the network predicts one latent score ``s``; dataset ``d``'s
MOS is modelled as ``exp(a_d) * s + b_d`` and the MSE is taken on that, so
datasets stop pulling the score towards each other's scales. The reference
dataset (the first human-rated one) keeps ``a = b = 0``: ``s`` is on its
rescaled MOS scale, and only ``s`` is exported (the affine maps are training
only; they are recorded in the model card).
"""

from __future__ import annotations

import math

import torch
from torch import nn

ALIGN_MODES = ("rescale", "affine")
LR_FACTOR = 100.0   # two scalars per dataset move far in few steps; the backbone's 2e-4 would freeze them


class DatasetAffine(nn.Module):
    def __init__(self, datasets: list[str], reference: str):
        super().__init__()
        if reference not in datasets:
            raise ValueError(f"reference dataset {reference!r} is not among {datasets}")
        self.datasets = tuple(datasets)
        self.reference = reference
        self.params = nn.Parameter(torch.zeros(len(datasets), 2))   # (log scale, shift) per dataset
        free = torch.ones(len(datasets), 1)
        free[self.datasets.index(reference)] = 0.0
        self.register_buffer("free", free)

    def index(self, names: list[str]) -> torch.Tensor:
        return torch.tensor([self.datasets.index(n) for n in names], dtype=torch.long)

    def forward(self, score: torch.Tensor, dataset_index: torch.Tensor) -> torch.Tensor:
        p = (self.params * self.free)[dataset_index]
        return score.view(-1) * torch.exp(p[:, 0]) + p[:, 1]

    def to_dict(self) -> dict:
        """{dataset: {"scale": a, "shift": b}}: the dataset's MOS ~ a * score + b."""
        p = (self.params * self.free).detach().cpu()
        return {name: {"scale": round(math.exp(float(p[i, 0])), 4), "shift": round(float(p[i, 1]), 4)}
                for i, name in enumerate(self.datasets)} | {"reference": self.reference}


def reference_dataset(datasets: list[str], pseudo: dict[str, bool]) -> str:
    """The first human-rated dataset, else the first one."""
    return next((d for d in datasets if not pseudo.get(d, False)), datasets[0])
