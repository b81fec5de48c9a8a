"""What travels with a model file: its contract, its accept / retake rule, where it came from.

Why a manifest and not just the contract: the rule is chosen on validation data
for one trained model, so it belongs to the model, not to the preprocessing. The manifest lives inside the file where the format allows
(ONNX ``metadata_props``, Core ML user metadata) and always beside it as
``<model stem>.manifest.json`` so a mobile build step can read it without a
model parser.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract import Contract, ContractError
from ..errors import ModelLoadError
from ..fileio import atomic_write_bytes, atomic_write_text  # noqa: F401 - kept importable from here too
from .decision import DETAIL_RULE_KEYS, RULE_KEYS, RULE_VERSION, RetakeRule, split_legacy_decision
from .detail import SHARPNESS_MEASURES
from .frames import FRAME_RULE

MANIFEST_KEY = "diqa_edge_manifest"
MANIFEST_VERSION = 2     # 2: the rule in its own typed form (``rule``); 1 is still read (``upgrade_v1``)


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


@dataclass(frozen=True)
class ModelManifest:
    contract: Contract
    # the accept / retake rule, applied by QualityScorer and the page: the only home of its thresholds
    rule: RetakeRule
    name: str = "unnamed"
    format: str = ""
    precision: str = ""
    # how the rule was chosen and what it reached there (target, calibration rates, ROC AUC, the operating
    # table an app can use to pick a stricter or looser score cut): for people and apps, never applied
    rule_evidence: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # the columns of the model's one output tensor: the score, then one probability per reason
    outputs: tuple[str, ...] = ("score",)
    # how a camera preview frame (RGB or YUV 4:2:0) maps onto the contract (``diqa_edge.sdk.frames``)
    frames: str = FRAME_RULE
    # what this manifest's model answers on a fixed synthetic input (``diqa_edge.sdk.check``): the SDK
    # runs it at load, so a manifest beside another model of the same shapes is refused, not obeyed
    check: dict[str, Any] = field(default_factory=dict)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(self.outputs[1:])

    @property
    def threshold(self) -> float:
        """The rule's score cut (a view of ``rule``, not a second copy)."""
        return self.rule.score_threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "name": self.name,
            "format": self.format,
            "precision": self.precision,
            "contract": self.contract.to_dict(),
            "rule": self.rule.to_dict(),
            "rule_evidence": self.rule_evidence,
            "outputs": list(self.outputs),
            "frames": self.frames,
            "extra": self.extra,
            **({"check": self.check} if self.check else {}),
        }

    def to_json(self) -> str:
        """Strict JSON (no NaN or Infinity): a browser's, Kotlin's or Swift's parser refuses those. A number
        that is not finite (an unused quantile in the evidence, read from an older run card) is written null."""
        return json.dumps(_finite_or_null(self.to_dict()), indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "manifest") -> "ModelManifest":
        """Validated field by field: a damaged or hand-edited manifest gives one error naming the field.
        A manifest_version 1 file (written before the rule had its own form) is read through
        ``upgrade_v1``."""
        if not isinstance(data, dict):
            raise ModelLoadError(f"{source}: a manifest is a JSON object, got {type(data).__name__}")
        if data.get("manifest_version") == 1:
            data = upgrade_v1(data, source)
        if data.get("manifest_version") != MANIFEST_VERSION:
            raise ModelLoadError(f"{source}: manifest_version {data.get('manifest_version')!r} "
                                 f"is not supported (expected {MANIFEST_VERSION}, or 1)")
        for name in ("contract", "rule"):
            if name not in data:
                raise ModelLoadError(f"{source}: manifest lacks the field {name!r}")
        try:
            contract = Contract.from_dict(data["contract"])
        except ContractError as exc:
            raise ModelLoadError(f"{source}: field 'contract': {exc}") from None
        outputs = _outputs(data.get("outputs", ["score"]), source)
        return cls(
            contract=contract,
            rule=_rule(data["rule"], source, outputs[1:], contract),
            name=_text(data.get("name", "unnamed"), "name", source),
            format=_text(data.get("format", ""), "format", source),
            precision=_text(data.get("precision", ""), "precision", source),
            rule_evidence=_object(data.get("rule_evidence", {}), "rule_evidence", source),
            extra=_object(data.get("extra", {}), "extra", source),
            outputs=outputs,
            frames=_text(data.get("frames", FRAME_RULE), "frames", source),
            check=_check(data.get("check", {}), source, len(outputs)),
        )

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "manifest") -> "ModelManifest":
        try:
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            return cls.from_dict(json.loads(text), source)
        except UnicodeDecodeError as exc:
            raise ModelLoadError(f"{source}: manifest is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{source}: manifest is not valid JSON ({exc})") from None


def upgrade_v1(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A manifest_version 1 document in today's form: its ``threshold`` and the rule's numbers out of its
    ``decision`` become ``rule``; the rest of ``decision`` (its ``rule`` sentence included) is evidence and
    ``threshold_rule`` (the same sentence) goes. The numbers then meet a version 2 file's validation."""
    if "threshold" not in data:
        raise ModelLoadError(f"{source}: manifest lacks the field 'threshold'")
    _finite(data["threshold"], "threshold", source)
    decision = _object(data.get("decision", {}), "decision", source)
    if decision.get("detail") is not None:
        detail = _object(decision["detail"], "decision.detail", source)
        unknown = sorted(set(detail) - set(DETAIL_BOUNDS) - {"tile", "chosen_on", "table"})
        if unknown:      # a misspelt threshold would switch its half of the 1:1 look off
            raise ModelLoadError(f"{source}: field 'decision.detail' has unknown key(s) "
                                 f"{', '.join(map(repr, unknown))} (known: {', '.join(DETAIL_BOUNDS)})")
    rule, evidence = split_legacy_decision(decision, data["threshold"])
    if not evidence and isinstance(data.get("threshold_rule"), str) and data["threshold_rule"]:
        evidence = {"chosen_on": data["threshold_rule"]}     # a given or default cut: its only record
    kept = {k: v for k, v in data.items() if k not in ("threshold", "threshold_rule", "decision")}
    return {**kept, "manifest_version": MANIFEST_VERSION, "rule": rule, "rule_evidence": evidence}


def _finite(value: Any, name: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelLoadError(f"{source}: field {name!r} must be a finite number, got {value!r}")
    return float(value)


def _text(value: Any, name: str, source: str) -> str:
    if not isinstance(value, str):
        raise ModelLoadError(f"{source}: field {name!r} must be a string, got {type(value).__name__}")
    return value


def _object(value: Any, name: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ModelLoadError(f"{source}: field {name!r} must be a JSON object, got {type(value).__name__}")
    return dict(value)


def _rule(value: Any, source: str, reasons: tuple[str, ...], contract: Contract) -> RetakeRule:
    """``rule`` is what the SDK applies: a score cut inside the score range; each reason threshold a
    probability in [0, 1] named by one of the model's reasons (a misspelt name would silently switch that
    reason off); the 1:1 part within what its measures can be."""
    rule = _object(value, "rule", source)
    if rule.get("version") != RULE_VERSION:
        raise ModelLoadError(f"{source}: field 'rule.version' is {rule.get('version')!r}; this SDK reads rule "
                             f"version {RULE_VERSION}: the manifest is from another diqa-edge")
    unknown = sorted(set(rule) - {"version", *RULE_KEYS})
    if unknown:
        raise ModelLoadError(f"{source}: field 'rule' has unknown key(s) {', '.join(map(repr, unknown))}")
    if "score_threshold" not in rule:
        raise ModelLoadError(f"{source}: manifest lacks the field 'rule.score_threshold'")
    threshold = _finite(rule["score_threshold"], "rule.score_threshold", source)
    if not contract.score_min <= threshold <= contract.score_max:
        raise ModelLoadError(f"{source}: field 'rule.score_threshold' must lie in the score range "
                             f"{contract.score_min:g}-{contract.score_max:g}, got {threshold!r}: it would accept "
                             "or send back every photo")
    thresholds = _object(rule.get("reason_thresholds") or {}, "rule.reason_thresholds", source)
    unknown = sorted(set(thresholds) - set(reasons))
    if unknown:
        raise ModelLoadError(f"{source}: field 'rule.reason_thresholds' names {', '.join(map(repr, unknown))}, "
                             f"which the model does not output (its reasons: {', '.join(reasons) or 'none'})")
    for reason, t in thresholds.items():
        if not 0.0 <= _finite(t, f"rule.reason_thresholds.{reason}", source) <= 1.0:
            raise ModelLoadError(f"{source}: field 'rule.reason_thresholds.{reason}' must be a "
                                 f"probability in [0, 1], got {t!r}")
    _detail_thresholds(rule.get("detail"), source, contract)
    return RetakeRule.from_dict(rule)


# what the 1:1 measures can be (``diqa_edge.sdk.detail``): a noise threshold outside it would send back
# every photo or none, as would a sharpness threshold outside the ratio's range
DETAIL_BOUNDS = {"noise_max": (0.5, 128.0), "sharpness_min": (0.05, 2.0)}


def _detail_thresholds(value: Any, source: str, contract: Contract) -> None:
    """``rule.detail``: at least one threshold, each within what its measure can be; chosen on the tile
    size the contract asks for; and a decode that keeps the photo's own pixels."""
    if value is None:
        return
    detail = _object(value, "rule.detail", source)
    if all(detail.get(k) is None for k in DETAIL_BOUNDS):
        raise ModelLoadError(f"{source}: field 'rule.detail' names no threshold ({', '.join(DETAIL_BOUNDS)})")
    if detail.get("tile") is not None and detail["tile"] != contract.detail_tile:
        raise ModelLoadError(f"{source}: field 'rule.detail.tile' is {detail['tile']!r} but the contract's "
                             f"detail_tile is {contract.detail_tile}: the thresholds were chosen on another tile")
    if contract.decode != "full" or not contract.detail_tile:
        raise ModelLoadError(f"{source}: field 'rule.detail' needs the photo's own pixels: a contract with "
                             f"decode {contract.decode!r} and detail_tile {contract.detail_tile} has none")
    unknown = sorted(set(detail) - set(DETAIL_RULE_KEYS))
    if unknown:
        raise ModelLoadError(f"{source}: field 'rule.detail' has unknown key(s) {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(DETAIL_RULE_KEYS)})")
    measure = detail.get("sharpness_measure")
    if measure is not None and measure not in SHARPNESS_MEASURES:
        raise ModelLoadError(f"{source}: field 'rule.detail.sharpness_measure' is {measure!r}, a measure this SDK "
                             f"does not know (it knows {', '.join(SHARPNESS_MEASURES)}): a newer SDK chose it")
    for key, (low, high) in DETAIL_BOUNDS.items():
        if detail.get(key) is not None and not low <= _finite(detail[key], f"rule.detail.{key}", source) <= high:
            raise ModelLoadError(f"{source}: field 'rule.detail.{key}' must lie in {low:g}-{high:g}, "
                                 f"got {detail[key]!r}")


def _check(value: Any, source: str, n_outputs: int) -> dict[str, Any]:
    """``check``: the model's outputs on a named synthetic input and how far a run may be from them."""
    from .check import CHECK_INPUTS

    check = _object(value, "check", source)
    if not check:
        return {}
    if check.get("input") not in CHECK_INPUTS:
        raise ModelLoadError(f"{source}: field 'check.input' names {check.get('input')!r}, not an input this SDK "
                             f"knows ({', '.join(CHECK_INPUTS)}): the manifest is from a newer diqa-edge")
    outputs = check.get("outputs")
    if not isinstance(outputs, list) or len(outputs) != n_outputs:
        raise ModelLoadError(f"{source}: field 'check.outputs' must list {n_outputs} numbers (one per output)")
    for i, v in enumerate(outputs):
        _finite(v, f"check.outputs[{i}]", source)
    if not 0 < _finite(check.get("tolerance"), "check.tolerance", source) <= 1:
        raise ModelLoadError(f"{source}: field 'check.tolerance' must lie in (0, 1], got {check['tolerance']!r}")
    return check


def _outputs(value: Any, source: str) -> tuple[str, ...]:
    if (not isinstance(value, list) or not value or value[0] != "score"
            or not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value)):
        raise ModelLoadError(f"{source}: field 'outputs' must be a list of distinct names starting with "
                             f"\"score\", got {value!r}")
    return tuple(value)


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``lite0_int8.tflite`` -> ``lite0_int8.manifest.json`` (only the last suffix goes)."""
    return Path(model_path).with_suffix(".manifest.json")


def write_sidecar(model_path: str | os.PathLike, manifest: ModelManifest) -> Path:
    out = sidecar_path(model_path)
    atomic_write_text(out, manifest.to_json() + "\n")
    return out


def read_sidecar(model_path: str | os.PathLike) -> ModelManifest | None:
    path = sidecar_path(model_path)
    if not path.exists():
        return None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from None
    return ModelManifest.from_json(raw, source=str(path))
