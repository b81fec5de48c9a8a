"""The IQA literature's agreement measures and the ranking metrics of the gate, via scipy.

Shared by training (validation), export (parity, the bundle's card), the benchmarks and the skin
gate's acceptance tables. PLCC is reported raw and after the standard monotonic logistic mapping
(VQEG: 4- or 5-parameter logistic fitted from predictions to MOS), because published IQA tables
use either; SROCC and KROCC are invariant to it.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize, stats


def binary_auc(scores, positive) -> float:
    """P(a positive outscores a negative), ties half (Mann-Whitney U); nan without both classes."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(stats.mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def _arrays(pred, mos):
    p, m = np.asarray(pred, dtype=np.float64).ravel(), np.asarray(mos, dtype=np.float64).ravel()
    if p.shape != m.shape or p.size < 3:
        raise ValueError(f"need two equal-length score lists of >= 3 items, got {p.size} and {m.size}")
    return p, m


def plcc(pred, mos) -> float:
    p, m = _arrays(pred, mos)
    return float(stats.pearsonr(p, m)[0])


def srocc(pred, mos) -> float:
    p, m = _arrays(pred, mos)
    return float(stats.spearmanr(p, m)[0])


def krocc(pred, mos) -> float:
    p, m = _arrays(pred, mos)
    return float(stats.kendalltau(p, m)[0])


def rmse(pred, mos) -> float:
    p, m = _arrays(pred, mos)
    return float(np.sqrt(np.mean((p - m) ** 2)))


def logistic_4(x, b1, b2, b3, b4):
    return (b1 - b2) / (1 + np.exp(-(x - b3) / np.abs(b4))) + b2


def logistic_5(x, b1, b2, b3, b4, b5):
    return b1 * (0.5 - 1 / (1 + np.exp(b2 * (x - b3)))) + b4 * x + b5


def fit_logistic(pred, mos, params: int = 5):
    """Fit the VQEG logistic from predictions to MOS; returns the fitted predictions."""
    p, m = _arrays(pred, mos)
    if params == 4:
        f, p0 = logistic_4, [m.max(), m.min(), float(np.mean(p)), float(np.std(p)) or 1.0]
    elif params == 5:
        f, p0 = logistic_5, [float(np.max(m)), 1.0, float(np.mean(p)), 0.0, float(np.mean(m))]
    else:
        raise ValueError("params must be 4 or 5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            popt, _ = optimize.curve_fit(f, p, m, p0=p0, maxfev=20000)
        except (RuntimeError, ValueError):
            return p  # no convergence (or constant predictions): fall back to the identity mapping
    return f(p, *popt)


def plcc_logistic(pred, mos, params: int = 5) -> float:
    p, m = _arrays(pred, mos)
    fitted = fit_logistic(p, m, params)
    return max(plcc(p, m), plcc(fitted, m))


def all_metrics(pred, mos, ci: bool = False) -> dict[str, float]:
    """PLCC, SROCC, KROCC, RMSE; with ``ci`` also 95 % bootstrap intervals of PLCC and SROCC."""
    out = {"plcc": plcc(pred, mos), "srocc": srocc(pred, mos), "krocc": krocc(pred, mos),
           "rmse": rmse(pred, mos), "plcc_logistic": plcc_logistic(pred, mos), "n": int(np.size(pred))}
    if ci:
        out["plcc_ci"] = bootstrap_ci(pred, mos, plcc)
        out["srocc_ci"] = bootstrap_ci(pred, mos, srocc)
    return out


def bootstrap_ci(pred, mos, metric, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> list[float]:
    """Percentile bootstrap interval of ``metric(pred, mos)`` over images (pairs resampled together):
    how far the figure could move on another draw of test images of the same kind."""
    from scipy.stats import bootstrap

    p, m = _arrays(pred, mos)
    if len(p) < 10:
        return [float("nan"), float("nan")]
    res = bootstrap((p, m), lambda a, b: metric(a, b), paired=True, vectorized=False, n_resamples=resamples,
                    confidence_level=level, method="percentile", random_state=np.random.default_rng(seed))
    return [round(float(res.confidence_interval.low), 4), round(float(res.confidence_interval.high), 4)]
