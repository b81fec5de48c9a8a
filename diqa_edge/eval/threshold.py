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

from ..sdk.decision import RetakeRule

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
    min_sensitivity: float | None = None
    auc: float = float("nan")
    table: tuple = ()          # rows of the operating table (see operating_table)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["table"] = list(self.table)
        return d

    def retake_rule(self) -> RetakeRule:
        """The rule a manifest carries: this score cut alone (no reasons head chose anything here)."""
        return RetakeRule(self.threshold)

    def evidence(self) -> dict:
        """How the cut was chosen and what it reached (the manifest's ``rule_evidence``): everything but
        the cut itself and its sentence, which the rule writes from the cut."""
        return {k: v for k, v in self.to_dict().items() if k not in ("threshold", "rule")}


def roc_auc(pred, mos, mos_cutoff: float = DEFAULT_MOS_CUTOFF) -> float:
    """Probability that an unacceptable photo scores below an acceptable one (ties count half)."""
    from .metrics import binary_auc

    return binary_auc(pred, np.asarray(mos, dtype=float) >= mos_cutoff)


def roc_points(pred, mos, mos_cutoff: float = DEFAULT_MOS_CUTOFF) -> tuple[np.ndarray, np.ndarray]:
    """(1 - specificity, sensitivity) for every threshold, from retaking nothing to retaking everything."""
    pred = np.asarray(pred, dtype=float)
    thresholds = np.concatenate([[-np.inf], np.unique(pred) + 1e-9])
    pts = np.array([sens_spec(pred, mos, t, mos_cutoff) for t in thresholds])
    return 1 - pts[:, 1], pts[:, 0]


OPERATING_TARGETS = (0.8, 0.85, 0.9, 0.95)


def operating_table(pred, mos, mos_cutoff: float = DEFAULT_MOS_CUTOFF,
                    targets=OPERATING_TARGETS) -> tuple[dict, ...]:
    """For each target sensitivity: the threshold an app would use and what it costs in specificity."""
    rows = []
    for target in targets:
        d = choose_threshold(pred, mos, mos_cutoff=mos_cutoff, min_sensitivity=target, with_table=False)
        rows.append({"target_sensitivity": target, "threshold": d.threshold,
                     "sensitivity": round(d.sensitivity, 4), "specificity": round(d.specificity, 4),
                     "retake_rate": round(float(np.mean(np.asarray(pred) < d.threshold)), 4)})
    return tuple(rows)


def roc_plot(pred, mos, decision: Decision, path, title: str = "accept / retake on validation images"):
    """ROC of 'retake when score < t' against 'MOS < cut-off', with the chosen operating point."""
    from .plots import pyplot, save_figure

    plt = pyplot()
    fpr, tpr = roc_points(pred, mos, decision.mos_cutoff)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, lw=1.5, label=f"ROC (AUC {decision.auc:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    ax.scatter([1 - decision.specificity], [decision.sensitivity], c="red", zorder=3,
               label=f"threshold {decision.threshold:.2f}: sens {decision.sensitivity:.2f}, "
                     f"spec {decision.specificity:.2f}")
    ax.set(xlabel="1 - specificity (acceptable photos sent back)",
           ylabel=f"sensitivity (photos with MOS < {decision.mos_cutoff} sent back)", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=7)
    ax.grid(alpha=0.3)
    out = save_figure(fig, path)
    plt.close(fig)
    return out


def sens_spec(pred, mos, threshold: float, mos_cutoff: float) -> tuple[float, float]:
    pred, mos = np.asarray(pred), np.asarray(mos)
    bad = mos < mos_cutoff
    retake = pred < threshold
    sens = float(retake[bad].mean()) if bad.any() else float("nan")
    spec = float((~retake[~bad]).mean()) if (~bad).any() else float("nan")
    return sens, spec


def choose_threshold(pred, mos, *, mos_cutoff: float = DEFAULT_MOS_CUTOFF,
                     min_sensitivity: float | None = None, labels: str = "MOS", with_table: bool = True) -> Decision:
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
    return Decision(round(float(t), 4), mos_cutoff, sens, spec, int(len(mos)), int(bad.sum()), rule,
                    min_sensitivity, roc_auc(pred, mos, mos_cutoff),
                    operating_table(pred, mos, mos_cutoff) if with_table else ())
