"""What travels with a model file: its contract, its accept/retake threshold, where it came from.

Why a manifest and not just the contract: the decision threshold is chosen on
validation data for one trained model, so it belongs to the model, not to the
preprocessing. The manifest lives inside the file where the format allows
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
from .frames import FRAME_RULE

MANIFEST_KEY = "diqa_edge_manifest"
MANIFEST_VERSION = 1


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
    threshold: float
    name: str = "unnamed"
    format: str = ""
    precision: str = ""
    threshold_rule: str = "not chosen on data: a default"
    extra: dict[str, Any] = field(default_factory=dict)
    # how the threshold was chosen, measured on validation data: target, sensitivity / specificity,
    # ROC AUC and the operating table an app can use to pick a stricter or looser threshold
    decision: dict[str, Any] = field(default_factory=dict)
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "name": self.name,
            "format": self.format,
            "precision": self.precision,
            "contract": self.contract.to_dict(),
            "threshold": float(self.threshold),
            "threshold_rule": self.threshold_rule,
            "decision": self.decision,
            "outputs": list(self.outputs),
            "frames": self.frames,
            "extra": self.extra,
            **({"check": self.check} if self.check else {}),
        }

    def to_json(self) -> str:
        """Strict JSON (no NaN or Infinity): a browser's, Kotlin's or Swift's parser refuses those. A number
        that is not finite (a decision's unused quantile, read from an older run card) is written null."""
        return json.dumps(_finite_or_null(self.to_dict()), indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "manifest") -> "ModelManifest":
        """Validated field by field: a damaged or hand-edited manifest gives one error naming the field."""
        if not isinstance(data, dict):
            raise ModelLoadError(f"{source}: a manifest is a JSON object, got {type(data).__name__}")
        if data.get("manifest_version") != MANIFEST_VERSION:
            raise ModelLoadError(f"{source}: manifest_version {data.get('manifest_version')!r} "
                                 f"is not supported (expected {MANIFEST_VERSION})")
        for name in ("contract", "threshold"):
            if name not in data:
                raise ModelLoadError(f"{source}: manifest lacks the field {name!r}")
        try:
            contract = Contract.from_dict(data["contract"])
        except ContractError as exc:
            raise ModelLoadError(f"{source}: field 'contract': {exc}") from None
        threshold = _finite(data["threshold"], "threshold", source)
        if not contract.score_min <= threshold <= contract.score_max:
            raise ModelLoadError(f"{source}: field 'threshold' must lie in the score range {contract.score_min:g}-"
                                 f"{contract.score_max:g}, got {threshold!r}: it would accept or send back every photo")
        outputs = _outputs(data.get("outputs", ["score"]), source)
        return cls(
            contract=contract,
            threshold=threshold,
            name=_text(data.get("name", "unnamed"), "name", source),
            format=_text(data.get("format", ""), "format", source),
            precision=_text(data.get("precision", ""), "precision", source),
            threshold_rule=_text(data.get("threshold_rule", ""), "threshold_rule", source),
            extra=_object(data.get("extra", {}), "extra", source),
            decision=_decision(data.get("decision", {}), source, outputs[1:], contract),
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


def _decision(value: Any, source: str, reasons: tuple[str, ...], contract: Contract) -> dict[str, Any]:
    """``decision.reason_thresholds`` is what the SDK applies: each a probability in [0, 1], each named by
    one of the model's reasons (a misspelt name would silently switch that reason off)."""
    decision = _object(value, "decision", source)
    thresholds = _object(decision.get("reason_thresholds") or {}, "decision.reason_thresholds", source)
    unknown = sorted(set(thresholds) - set(reasons))
    if unknown:
        raise ModelLoadError(f"{source}: field 'decision.reason_thresholds' names {', '.join(map(repr, unknown))}, "
                             f"which the model does not output (its reasons: {', '.join(reasons) or 'none'})")
    for reason, t in thresholds.items():
        if not 0.0 <= _finite(t, f"decision.reason_thresholds.{reason}", source) <= 1.0:
            raise ModelLoadError(f"{source}: field 'decision.reason_thresholds.{reason}' must be a "
                                 f"probability in [0, 1], got {t!r}")
    _detail_thresholds(decision.get("detail"), source, contract)
    return decision


# what the 1:1 measures can be (``diqa_edge.sdk.detail``): a noise threshold outside it would send back
# every photo or none, as would a sharpness threshold outside the ratio's range
DETAIL_BOUNDS = {"noise_max": (0.5, 128.0), "sharpness_min": (0.05, 2.0)}


def _detail_thresholds(value: Any, source: str, contract: Contract) -> None:
    """``decision.detail``: at least one threshold, each within what its measure can be; chosen on the tile
    size the contract asks for; and a decode that keeps the photo's own pixels."""
    if value is None:
        return
    detail = _object(value, "decision.detail", source)
    if all(detail.get(k) is None for k in DETAIL_BOUNDS):
        raise ModelLoadError(f"{source}: field 'decision.detail' names no threshold ({', '.join(DETAIL_BOUNDS)})")
    if detail.get("tile") is not None and detail["tile"] != contract.detail_tile:
        raise ModelLoadError(f"{source}: field 'decision.detail.tile' is {detail['tile']!r} but the contract's "
                             f"detail_tile is {contract.detail_tile}: the thresholds were chosen on another tile")
    if contract.decode != "full" or not contract.detail_tile:
        raise ModelLoadError(f"{source}: field 'decision.detail' needs the photo's own pixels: a contract with "
                             f"decode {contract.decode!r} and detail_tile {contract.detail_tile} has none")
    unknown = sorted(set(detail) - set(DETAIL_BOUNDS) - {"chosen_on", "table", "tile"})
    if unknown:
        raise ModelLoadError(f"{source}: field 'decision.detail' has unknown key(s) {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(DETAIL_BOUNDS)})")
    for key, (low, high) in DETAIL_BOUNDS.items():
        if detail.get(key) is not None and not low <= _finite(detail[key], f"decision.detail.{key}", source) <= high:
            raise ModelLoadError(f"{source}: field 'decision.detail.{key}' must lie in {low:g}-{high:g}, "
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
