"""The frozen-backbone feature model: per-stage activation statistics of an ImageNet
EfficientNet, and one linear layer on them.

Why: image quality shows in the *statistics* of a network's activations (how
much high-frequency energy the early stages see, how spread the responses are)
more than in the class-oriented pooled vector of the last layer. The mean and
the standard deviation of every stage's activations, taken at the photo's
native resolution, with a ridge regression on top, beat the fine-tuned model on
held-out BIQ2021 photos (SROCC 0.80 against 0.65) at no training cost on a CPU
(the CONTRIQUE / Re-IQA pattern: a frozen encoder, cached features, a linear head).

The whole thing is one ``nn.Module`` (backbone -> pooled statistics -> linear
layer), so it exports through the same ONNX / TFLite / Core ML chain and parity
gates as the fine-tuned model, with the same one output tensor
``[score, p(reason_1), ...]``. The feature standardisation is folded into the
linear layer, so the phone runs no extra step.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from torch import nn

# Where statistics are taken: after each of EfficientNet's 7 stages and after the head conv
# (the stem is skipped: it sees little beyond the pixels themselves).
STAGES = ("block0", "block1", "block2", "block3", "block4", "block5", "block6", "head")
STATS_VERSION = 1   # bump when the feature definition changes: it keys the feature cache


def stage_names(spec: str | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"all"`` / None, a tuple, or a comma list such as ``"block3,block4,block5,block6,head"``."""
    if spec in (None, "all"):
        return STAGES
    names = tuple(s.strip() for s in spec.split(",")) if isinstance(spec, str) else tuple(spec)
    unknown = [n for n in names if n not in STAGES]
    if unknown or not names:
        raise ValueError(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    return tuple(n for n in STAGES if n in names)


def stage_columns(trunk: "PooledStats", keep) -> list[int]:
    """Where ``keep``'s statistics sit in the all-stage feature vector (per stage: C means, then C stds), so
    features cached once for all stages serve any stage subset (any trunk of the backbone will do)."""
    keep = stage_names(keep)
    cols, start = [], 0
    for name, width in zip(STAGES, trunk.widths):
        if name in keep:
            cols.extend(range(start, start + 2 * width))
        start += 2 * width
    return cols


def mean_and_std(x: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> N x 2C: spatial mean, then spatial standard deviation (centred form: it stays
    accurate in fp16, where E[x^2] - E[x]^2 cancels)."""
    mu = x.mean(dim=(2, 3), keepdim=True)
    sd = torch.sqrt(((x - mu) ** 2).mean(dim=(2, 3)) + 1e-6)
    return torch.cat([mu.flatten(1), sd], dim=1)


class PooledStats(nn.Module):
    """A timm EfficientNet(-Lite) trunk that returns the mean and std of the chosen stages' activations."""

    def __init__(self, net: nn.Module, stages: tuple[str, ...] = STAGES):
        super().__init__()
        self.conv_stem, self.bn1, self.blocks = net.conv_stem, net.bn1, net.blocks
        self.stages = stage_names(stages)
        # channels of every one of STAGES (whatever is kept): where each stage sits in all-stage features
        self.widths = [b[-1].conv_pwl.out_channels if hasattr(b[-1], "conv_pwl") else b[-1].conv_pw.out_channels
                       for b in net.blocks] + [net.num_features]
        last = max(STAGES.index(s) for s in self.stages)
        self.keep_head = last == STAGES.index("head")
        if self.keep_head:
            self.conv_head, self.bn2 = net.conv_head, net.bn2
        else:   # later blocks are never used: drop them so export and inference skip them
            self.blocks = self.blocks[:last + 1]
        self.num_features = 2 * sum(self.widths[STAGES.index(s)] for s in self.stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.conv_stem(x))
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if f"block{i}" in self.stages:
                out.append(mean_and_std(x))
        if self.keep_head:
            out.append(mean_and_std(self.bn2(self.conv_head(x))))
        return torch.cat(out, dim=1)


class KernelScore(nn.Module):
    """A support-vector regression of the score with an RBF kernel, as plain tensor arithmetic so it
    exports like any layer: ``b + sum_i a_i exp(-gamma |u - c_i|^2)`` with ``u = (f - mean) / scale``.

    Why: on the same features the ridge reaches SROCC 0.786 on held-out BIQ2021 photos and the kernel
    regression 0.81 (``benchmarks/RESULTS.md``); quality is not linear in the statistics. ``|u - c|^2`` is
    expanded as ``|u|^2 - 2 u.c + |c|^2`` (one matrix product); the features are standardised first so
    the centres stay near unit size and survive fp16 storage.

    With a ``basis`` (``reduced``) the centres are stored as their coordinates in the ``rank``
    leading right-singular vectors of the centre matrix, and only the cross term ``u.c`` is computed in
    that subspace (``|u|^2`` and ``|c|^2`` stay exact): the 3,522 x 1,568 matrix, 22 MB of the phone
    file, becomes (3,522 + 1,568) x rank numbers, on the int8 grid the file stores them on."""

    def __init__(self, n_centres: int, n_features: int, rank: int | None = None):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("inv_scale", torch.ones(n_features))
        self.register_buffer("centres", torch.zeros(n_centres, rank or n_features))
        self.register_buffer("centre_sq", torch.zeros(n_centres))
        self.register_buffer("dual", torch.zeros(n_centres, 1))
        self.register_buffer("intercept", torch.zeros(1))
        self.register_buffer("gamma", torch.ones(1))
        # None (the full centre matrix) is a registered buffer too, so ``self.basis`` reads the same either way
        self.register_buffer("basis", torch.zeros(n_features, rank) if rank else None)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        u = (f - self.mean) * self.inv_scale
        p = u if self.basis is None else u @ self.basis
        d2 = (u * u).sum(dim=1, keepdim=True) - 2 * p @ self.centres.T + self.centre_sq
        return torch.exp(-self.gamma * torch.clamp(d2, min=0.0)) @ self.dual + self.intercept

    def set_fit(self, mean, scale, centres, dual, intercept: float, gamma: float) -> None:
        """From a fitted ``sklearn.svm.SVR`` on ``(f - mean) / scale``: its support vectors and dual coefs."""
        # rounded to fp16 here, as the phone file stores them: the PyTorch reference, every export and the
        # run folder (saved in fp16, 11 MB instead of 22) then hold the very same centres
        c = torch.as_tensor(np.asarray(centres), dtype=torch.float16).float()
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
            self.inv_scale.copy_(1.0 / torch.as_tensor(np.asarray(scale), dtype=torch.float32))
            self.centres.copy_(c)
            self.centre_sq.copy_((c.double() ** 2).sum(dim=1).float())
            self.dual.copy_(torch.as_tensor(np.asarray(dual), dtype=torch.float32).reshape(-1, 1))
            self.intercept.fill_(float(intercept))
            self.gamma.fill_(float(gamma))

    def reduced(self, rank: int) -> "KernelScore":
        """This kernel with its centres in their ``rank`` leading singular directions (see the class
        docstring); ``|c|^2`` keeps the full centres' values, so only ``u.c`` is approximated."""
        if self.basis is not None:
            raise ValueError("the kernel is already reduced")
        basis, coords = low_rank_centres(self.centres.double().numpy(), rank)
        out = KernelScore(self.centres.shape[0], self.centres.shape[1], rank)
        state = {k: v.clone() for k, v in self.state_dict().items()}
        state.update(centres=torch.from_numpy(coords).float(), basis=torch.from_numpy(basis).float())
        out.load_state_dict(state)
        return out


def low_rank_centres(centres: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(basis: features x rank, coordinates: centres x rank) of the centre matrix's ``rank`` leading
    right-singular directions, each already on the int8 grid the phone file stores it on (one scale per
    output unit: per column of the basis, per centre of the coordinates; ``int8_per_row``), as float32.
    One function, so the trainer's predictions (``KernelFit``), the PyTorch reference and every export
    hold the very same numbers (storing them in int8 is then lossless)."""
    _, _, vt = np.linalg.svd(np.asarray(centres, np.float64), full_matrices=False)
    basis = on_int8_grid(vt[:rank].astype(np.float32)).T.copy()
    coords = on_int8_grid((np.asarray(centres, np.float64) @ basis.astype(np.float64)).astype(np.float32))
    return basis, coords


def int8_per_row(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float32 scale per row): symmetric, each row of a 2-D matrix on its own largest
    magnitude. The one rounding rule of the reduced score head, the phone file
    (``export.tflite_surgery``) and the fp16 ONNX file (``export.onnx_target.half_weights``)."""
    weights = np.asarray(weights, np.float32)
    scale = (np.abs(weights).max(axis=1).astype(np.float64) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    q = np.clip(np.round(weights / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def on_int8_grid(weights: np.ndarray) -> np.ndarray:
    """``weights`` rounded to the values ``int8_per_row`` stores, as float32."""
    q, scale = int8_per_row(weights)
    return (q.astype(np.float32) * scale[:, None]).astype(np.float32)


class PooledStatsIQA(nn.Module):
    """Pooled statistics -> one linear layer -> ``[score, p(reason_1), ...]`` (the exported tensor).

    The linear layer holds the ridge (score) and logistic (reasons) weights fitted on standardised
    features, with the standardisation folded in (``set_linear``). With a ``KernelScore`` attached
    (``attach_kernel``) the score column comes from it instead of the ridge row."""

    def __init__(self, trunk: PooledStats, reasons: tuple[str, ...] = ()):
        super().__init__()
        self.trunk = trunk
        self.reasons = tuple(reasons)
        self.head = nn.Linear(trunk.num_features, 1 + len(self.reasons))
        self.kernel: KernelScore | None = None

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("score",) + self.reasons

    def attach_kernel(self, n_centres: int, rank: int | None = None) -> KernelScore:
        self.kernel = KernelScore(n_centres, self.trunk.num_features, rank)
        return self.kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_features(self.trunk(x))

    def from_features(self, f: torch.Tensor) -> torch.Tensor:
        """The heads on the trunk's statistics: what cached features give without the backbone."""
        z = self.head(f)
        score = self.kernel(f) if self.kernel is not None else z[:, :1]
        if not self.reasons:
            return score
        return torch.cat([score, torch.sigmoid(z[:, 1:])], dim=1)

    def outputs_of_features(self, features: np.ndarray) -> np.ndarray:
        """``from_features`` on cached statistics (NumPy in, float64 NumPy out, no autograd): what
        evaluation and benchmarks compare heads with."""
        with torch.inference_mode():
            return self.from_features(torch.from_numpy(np.ascontiguousarray(features, np.float32))).double().numpy()

    def set_linear(self, weight, bias, mean, scale) -> None:
        """Fold ``(f - mean) / scale`` into the layer: ``w' = w / scale``, ``b' = b - w' . mean``.
        ``weight``: outputs x features (score row first), all NumPy arrays."""
        w = torch.as_tensor(weight, dtype=torch.float64) / torch.as_tensor(scale, dtype=torch.float64)
        b = torch.as_tensor(bias, dtype=torch.float64) - w @ torch.as_tensor(mean, dtype=torch.float64)
        with torch.no_grad():
            self.head.weight.copy_(w.float())
            self.head.bias.copy_(b.float())


def build_pooled_stats(backbone: str, stages=STAGES, reasons: tuple[str, ...] = (),
                       pretrained: bool = True, input_size: int | None = None):
    """A ``BuiltModel`` whose model is a PooledStatsIQA on the packaged ImageNet weights."""
    import warnings

    from .network import BuiltModel, build_model

    with warnings.catch_warnings():
        if not pretrained:
            warnings.simplefilter("ignore")
        built = build_model(backbone, pretrained=pretrained, input_size=input_size)
    net = built.model.backbone
    model = PooledStatsIQA(PooledStats(net, stage_names(stages)), reasons).eval()
    for p in model.trunk.parameters():
        p.requires_grad_(False)
    return BuiltModel(model, built.contract, built.weights)


def features_key(backbone: str, stages, contract, weights: str) -> str:
    """What produced a feature vector: a changed backbone, stage list, contract or weights is a new key."""
    blob = json.dumps({"backbone": backbone, "stages": list(stage_names(stages)), "weights": weights,
                       "contract": contract.fingerprint(), "version": STATS_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
