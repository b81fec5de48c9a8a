"""The paper's class-balanced MSE, plus an optional rank term.

Class weights: round each training MOS to a level l in 1..10, then
w_l = |D| / (10 * count(l)), so rare quality levels (very bad, excellent)
weigh as much in total as the crowded middle. Computed on the training split
only: weights from validation or test labels would leak them into training.
"""

from __future__ import annotations

import numpy as np
import torch

N_LEVELS = 10


def quality_levels(mos) -> np.ndarray:
    return np.clip(np.rint(np.asarray(mos, dtype=np.float64)), 1, N_LEVELS).astype(int)


def class_weights(train_mos) -> dict[int, float]:
    """{level: weight} for the levels present in the training MOS (1-10 scale)."""
    levels = quality_levels(train_mos)
    total = len(levels)
    counts = np.bincount(levels, minlength=N_LEVELS + 1)
    return {int(level): total / (N_LEVELS * int(counts[level])) for level in range(1, N_LEVELS + 1)
            if counts[level] > 0}


def sample_weights(mos, weights: dict[int, float]) -> np.ndarray:
    """Per-sample weight; a level absent from training gets the largest known weight."""
    fallback = max(weights.values())
    return np.array([weights.get(int(l), fallback) for l in quality_levels(mos)], dtype=np.float32)


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (weight * (pred.float() - target.float()) ** 2).mean()


def pairwise_rank_loss(pred: torch.Tensor, target: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Fidelity-style ranking term on all pairs of a batch (UNIQUE-like, scale free)."""
    p = pred.float().view(-1)
    t = target.float().view(-1)
    dp = p[:, None] - p[None, :]
    dt = t[:, None] - t[None, :]
    mask = dt.abs() > margin
    if not mask.any():
        return p.sum() * 0.0
    prob = torch.sigmoid(dp[mask])
    truth = (dt[mask] > 0).float()
    eps = 1e-6
    fidelity = 1 - torch.sqrt(prob * truth + eps) - torch.sqrt((1 - prob) * (1 - truth) + eps)
    return fidelity.mean()


def reason_loss(logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per reason, averaged over the images whose distortion is known
    (authentic photos have no labels and add nothing)."""
    known = known.float().view(-1)
    if not bool(known.any()):
        return logits.sum() * 0.0
    per_image = torch.nn.functional.binary_cross_entropy_with_logits(
        logits.float(), target.float(), reduction="none").mean(dim=1)
    return (per_image * known).sum() / known.sum()
