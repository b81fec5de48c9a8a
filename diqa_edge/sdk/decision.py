"""The accept / retake rule a model's manifest carries, applied the same way by the SDK, ``score`` and
the evaluation that chose it.

Why more than a score threshold: on skin, one number ranks faults well but a
single cut that keeps good photos lets many faulty ones through (a blurred
lesion and a well-lit one differ less in score than two natural photos). The
reasons head sees each fault on its own, so the rule also sends a photo back
when one reason's probability passes that reason's own threshold, and that
reason is then the hint. Thresholds are chosen on skin validation photos
(``diqa_edge.eval.gate``) and stored in the manifest's ``rule``.

The model sees the photo shrunk; ``rule.detail`` (``diqa_edge.sdk.detail``) adds the look at 1:1:
a photo the model accepts is still sent back when its native-resolution centre tile is noisier or
softer than the thresholds chosen there (``diqa_edge.training.detail_gate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .detail import DetailRule, DetailStats


# the version of the rule's JSON form (``RetakeRule.to_dict``): a reader refuses a version it does not know
RULE_VERSION = 1

# the keys of the rule's JSON form (with ``version``); everything else a legacy ``decision`` held is evidence
RULE_KEYS = ("score_threshold", "reason_thresholds", "detail")
# the keys of its 1:1 part (``sdk.detail.DetailRule``): what a manifest may hold there, and what a legacy
# ``decision`` held of it
DETAIL_RULE_KEYS = ("noise_max", "sharpness_min", "tile", "sharpness_measure")


@dataclass(frozen=True)
class RetakeRule:
    """The whole accept / retake rule, one object from the rule search (``eval.gate.choose_rule``) through
    the run's card and the export to the manifest, ``QualityScorer`` and the page (``clients/web/rule.js``).
    Its JSON form (``to_dict``) is the only place each threshold is written; how it was chosen travels
    beside it as evidence (the card's and the manifest's ``rule_evidence``), never applied."""
    score_threshold: float
    reason_thresholds: dict[str, float] = field(default_factory=dict)
    detail: DetailRule | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "RetakeRule":
        """The JSON form (validated by the reader that owns the file: ``sdk.manifest`` for a manifest)."""
        return cls(float(d["score_threshold"]), {str(k): float(v) for k, v in (d.get("reason_thresholds") or {}).items()},
                   DetailRule.from_dict(d.get("detail")))

    def to_dict(self) -> dict:
        d = {"version": RULE_VERSION, "score_threshold": float(self.score_threshold),
             "reason_thresholds": {k: float(v) for k, v in self.reason_thresholds.items()}}
        if self.detail is not None:
            d["detail"] = self.detail.to_dict()
        return d

    def with_score_threshold(self, threshold: float) -> "RetakeRule":
        """The same rule with another score cut (``QualityScorer(threshold=...)``, ``score --threshold``)."""
        return replace(self, score_threshold=float(threshold))

    def describe(self) -> str:
        """The rule in one sentence, for a card, a command's header or the page: written from the numbers,
        so it cannot disagree with them."""
        text = f"retake when the score is below {self.score_threshold:.3f}"
        if self.reason_thresholds:
            text += " or a reason's probability is above its threshold"
        if self.detail is not None:
            text += f" or, at 1:1, {self.detail.describe()}"
        return text

    def decide(self, score: float, reasons: dict[str, float],
               detail: DetailStats | None = None) -> tuple[bool, str | None]:
        """(acceptable, the reason that sent it back or None): the reason furthest past its threshold
        wins; then the 1:1 tile's measures, when the rule has thresholds for them; a photo sent back only
        by its score has no reason from the rule."""
        over = {r: reasons[r] - t for r, t in self.reason_thresholds.items() if r in reasons and reasons[r] > t}
        if over:
            return False, max(over, key=over.get)
        if score < self.score_threshold:
            return False, None
        at_full_size = self.detail.trigger(detail) if self.detail else None
        return (at_full_size is None), at_full_size

    def retake_mask(self, outputs: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """Vectorised ``not decide(...)[0]`` over rows ``[score, p(names[0]), ...]``: the model's part of the
        rule only (the 1:1 look needs the photo's pixels, not the model's outputs)."""
        outputs = np.asarray(outputs, dtype=float).reshape(len(outputs), -1)
        retake = outputs[:, 0] < self.score_threshold
        for r, t in self.reason_thresholds.items():
            if r in names:
                retake |= outputs[:, 1 + names.index(r)] > t
        return retake


def split_legacy_decision(decision: dict, threshold) -> tuple[dict, dict]:
    """(the rule's JSON form, evidence) from the form before rule version 1: a manifest's ``threshold``
    (manifest_version 1) or a run card's ``decision["threshold"]`` beside a ``decision`` dict that mixed the
    rule's numbers with how they were chosen (and repeated the score threshold). Values are moved, not
    converted, so the reader validates them as it would a new file's. Kept so files exported and runs
    trained before then still load; nothing writes that form any more."""
    decision = dict(decision or {})
    legacy_detail = dict(decision.get("detail") or {})
    rule = {"version": RULE_VERSION, "score_threshold": threshold,
            "reason_thresholds": decision.get("reason_thresholds") or {}}
    if decision.get("detail") is not None:
        rule["detail"] = {k: v for k, v in legacy_detail.items() if k in DETAIL_RULE_KEYS}
    evidence = {k: v for k, v in decision.items() if k not in (*RULE_KEYS, "threshold", "rule")}   # "rule": a sentence, rewritten by describe()
    detail_evidence = {k: v for k, v in legacy_detail.items() if k not in DETAIL_RULE_KEYS}
    if detail_evidence:
        evidence["detail"] = detail_evidence
    return rule, evidence
