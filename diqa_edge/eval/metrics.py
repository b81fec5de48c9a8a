"""Ranking metrics shared by training (validation, per-reason AUC) and the gate's acceptance tables."""

from __future__ import annotations

import numpy as np


def binary_auc(scores, positive) -> float:
    """P(a positive outscores a negative), ties half (Mann-Whitney U); nan without both classes."""
    from scipy.stats import mannwhitneyu

    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))
