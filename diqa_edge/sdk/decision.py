"""The accept / retake rule a model's manifest carries, applied the same way by the SDK, ``score`` and
the evaluation that chose it.

Why more than a score threshold: on skin, one number ranks faults well but a
single cut that keeps good photos lets many faulty ones through (a blurred
lesion and a well-lit one differ less in score than two natural photos). The
reasons head sees each fault on its own, so the rule also sends a photo back
when one reason's probability passes that reason's own threshold, and that
reason is then the hint. Thresholds are chosen on skin validation photos
(``diqa_edge.eval.gate``) and stored in the manifest's ``decision``.

The model sees the photo shrunk; ``decision.detail`` (``diqa_edge.sdk.detail``) adds the look at 1:1:
a photo the model accepts is still sent back when its native-resolution centre tile is noisier or
softer than the thresholds chosen there (``diqa_edge.training.detail_gate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .detail import DetailRule, DetailStats


@dataclass(frozen=True)
class RetakeRule:
    score_threshold: float
    reason_thresholds: dict[str, float] = field(default_factory=dict)
    detail: DetailRule | None = None

    @classmethod
    def from_decision(cls, decision: dict, threshold: float) -> "RetakeRule":
        """A manifest's rule: its ``threshold`` plus ``decision['reason_thresholds']`` and
        ``decision['detail']`` when present."""
        raw = decision.get("reason_thresholds") or {}
        return cls(float(threshold), {str(k): float(v) for k, v in raw.items()},
                   DetailRule.from_dict(decision.get("detail")))

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

    def to_dict(self) -> dict:
        d = {"score_threshold": self.score_threshold, "reason_thresholds": dict(self.reason_thresholds)}
        if self.detail is not None:
            d["detail"] = self.detail.to_dict()
        return d
