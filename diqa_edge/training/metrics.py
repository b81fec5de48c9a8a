"""Training's own validation measure: the reasons head's AUC per fault (the generic IQA metrics are
``diqa_edge.eval.metrics``)."""

from __future__ import annotations

import numpy as np

from ..eval.metrics import binary_auc


def reason_aucs(probs, distortions, reasons) -> dict[str, dict]:
    """Per-reason AUC of the reasons head on the images whose distortion is known (pristine included
    as negatives); {} when none is known. Each entry: auc, positives, negatives."""
    from ..data.distort import reason_target

    probs = np.asarray(probs, dtype=float).reshape(len(distortions), -1)
    rows = [(i, reason_target(d)) for i, d in enumerate(distortions)]
    rows = [(i, t) for i, t in rows if t is not None]
    if not rows:
        return {}
    index = np.array([i for i, _ in rows])
    truth = np.stack([t for _, t in rows]).astype(bool)
    out = {}
    for k, reason in enumerate(reasons):
        auc = binary_auc(probs[index, k], truth[:, k])
        out[reason] = {"auc": None if np.isnan(auc) else auc, "positives": int(truth[:, k].sum()),
                       "negatives": int((~truth[:, k]).sum())}
    return out
