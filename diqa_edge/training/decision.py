"""The accept / retake threshold, chosen on validation data and stored with the model.

Rule: a photo is *unacceptable* when its MOS is below ``mos_cutoff`` (default
5.5 on the 1-10 scale, the middle of the ACR scale, "fair"). A retake is
asked for when the predicted score is below the threshold. We pick the
threshold that maximises Youden's J = sensitivity + specificity - 1 on the
validation images, where sensitivity is the share of unacceptable photos sent
back and specificity the share of acceptable ones let through; or, with
``min_sensitivity``, the highest specificity that still sends back at least
that share of unacceptable photos.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_MOS_CUTOFF = 5.5


@dataclass(frozen=True)
class Decision:
    threshold: float
    mos_cutoff: float
    sensitivity: float
    specificity: float
    n: int
    n_unacceptable: int
    rule: str

    def to_dict(self) -> dict:
        return asdict(self)


def sens_spec(pred, mos, threshold: float, mos_cutoff: float) -> tuple[float, float]:
    pred, mos = np.asarray(pred), np.asarray(mos)
    bad = mos < mos_cutoff
    retake = pred < threshold
    sens = float(retake[bad].mean()) if bad.any() else float("nan")
    spec = float((~retake[~bad]).mean()) if (~bad).any() else float("nan")
    return sens, spec


def choose_threshold(pred, mos, *, mos_cutoff: float = DEFAULT_MOS_CUTOFF,
                     min_sensitivity: float | None = None, labels: str = "MOS") -> Decision:
    pred, mos = np.asarray(pred, dtype=float), np.asarray(mos, dtype=float)
    bad = mos < mos_cutoff
    if bad.all() or not bad.any():
        raise ValueError(f"validation images are all on one side of the MOS cut-off {mos_cutoff}")
    candidates = np.unique(np.concatenate([pred, pred + 1e-6]))
    best = None
    for t in candidates:
        sens, spec = sens_spec(pred, mos, t, mos_cutoff)
        if min_sensitivity is not None:
            key = (sens >= min_sensitivity, spec if sens >= min_sensitivity else sens)
        else:
            key = (True, sens + spec - 1)
        if best is None or key > best[0]:
            best = (key, t, sens, spec)
    _, t, sens, spec = best
    goal = (f"highest specificity with sensitivity >= {min_sensitivity:.2f}" if min_sensitivity is not None
            else "maximum Youden J (sensitivity + specificity - 1)")
    rule = (f"unacceptable = {labels} < {mos_cutoff} (1-10 scale); retake when score < {t:.3f}, chosen on "
            f"{len(mos)} validation images for {goal}: sensitivity {sens:.3f}, specificity {spec:.3f}")
    return Decision(round(float(t), 4), mos_cutoff, sens, spec, int(len(mos)), int(bad.sum()), rule)
