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
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract import Contract, ContractError
from ..errors import ModelLoadError

MANIFEST_KEY = "diqa_edge_manifest"
MANIFEST_VERSION = 1


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
            "extra": self.extra,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "manifest") -> "ModelManifest":
        try:
            if data.get("manifest_version") != MANIFEST_VERSION:
                raise ModelLoadError(f"{source}: manifest_version {data.get('manifest_version')!r} "
                                     f"is not supported (expected {MANIFEST_VERSION})")
            return cls(
                contract=Contract.from_dict(data["contract"]),
                threshold=float(data["threshold"]),
                name=str(data.get("name", "unnamed")),
                format=str(data.get("format", "")),
                precision=str(data.get("precision", "")),
                threshold_rule=str(data.get("threshold_rule", "")),
                extra=dict(data.get("extra", {})),
                decision=dict(data.get("decision", {})),
                outputs=tuple(str(o) for o in data.get("outputs", ["score"])),
            )
        except KeyError as exc:
            raise ModelLoadError(f"{source}: manifest lacks the field {exc.args[0]!r}") from None
        except (ContractError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> "ModelManifest":
        try:
            return cls.from_dict(json.loads(text), source)
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{source}: manifest is not valid JSON ({exc})") from None


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``lite0_int8.tflite`` -> ``lite0_int8.manifest.json`` (only the last suffix goes)."""
    return Path(model_path).with_suffix(".manifest.json")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp's 0600 would make shipped files unreadable to others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_sidecar(model_path: str | os.PathLike, manifest: ModelManifest) -> Path:
    out = sidecar_path(model_path)
    atomic_write_text(out, manifest.to_json() + "\n")
    return out


def read_sidecar(model_path: str | os.PathLike) -> ModelManifest | None:
    path = sidecar_path(model_path)
    if not path.exists():
        return None
    return ModelManifest.from_json(path.read_text(encoding="utf-8"), source=str(path))
