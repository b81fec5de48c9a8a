"""The preprocessing contract: the one place where the numbers that turn a photo
into a model input live.

Accuracy on a phone is lost first in preprocessing, not in the model, so the
training transforms, the exporters (which write this object into every model
file) and the SDK all read it; nobody re-types 224 or 0.485.

The algorithm the fields describe is written out for re-implementers in
``docs/preprocessing.md``; ``diqa_edge.sdk.preprocess`` is its reference code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from .errors import DiqaError

CONTRACT_VERSION = 1

# ImageNet statistics, as timm's IMAGENET_DEFAULT_MEAN / STD: the pretrained
# backbones expect them, so a fine-tuned model keeps them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

RESIZE_RULES = ("shorter_side_then_center_crop",)
INTERPOLATIONS = ("bilinear",)
LAYOUTS = ("NCHW", "NHWC")
DECODE_RULES = ("full", "jpeg_draft")


class ContractError(DiqaError, ValueError):
    """A contract that cannot be trusted: unknown field, wrong type, bad value."""


@dataclass(frozen=True)
class Contract:
    """How a photo becomes the model's input tensor, and how its output becomes a score.

    Fields are plain JSON types so the object survives a trip through ONNX
    metadata, a TFLite manifest or Core ML user metadata unchanged.
    """

    input_size: int = 512       # the shipped model's; a backbone's own size comes from models.network.contract_for
    resize: str = "shorter_side_then_center_crop"
    # Pillow's BILINEAR filter: a triangle kernel whose support grows with the
    # downscale factor, i.e. antialiased when shrinking (not OpenCV/Android's
    # 2-tap bilinear, which aliases).
    interpolation: str = "bilinear"
    antialias: bool = True
    colour: str = "RGB8"
    exif_orientation: bool = True
    alpha_background: tuple[int, int, int] = (255, 255, 255)
    # How the file is decoded before the resize. "full" decodes every pixel;
    # "jpeg_draft" lets libjpeg scale JPEGs down in the DCT domain by 1/2, 1/4
    # or 1/8 while keeping both sides >= draft_factor * input_size.
    decode: str = "full"
    draft_factor: int = 2
    # The pixel budget, so one file cannot take the phone's memory or pass as a photo:
    # - max_pixels: decoded pixels (after JPEG draft scaling) above which a file is refused; 64 MP
    #   holds every phone sensor's full-size photo. Its RGB array is 192 MB, but Pillow's decode, an EXIF
    #   turn and the resize hold copies: `diqa-edge score` of an 8000 x 8000 JPEG peaks at 744 MiB resident
    #   (990 MiB when its EXIF asks for a turn; 146 MiB for a small photo), measured with /usr/bin/time -v
    #   on 2026-12-05. A phone app should decode with its platform's downsampling (decode="jpeg_draft").
    # - max_aspect: longer / shorter side above which a file is refused; the resize keeps the aspect,
    #   so this caps the resized longer side at max_aspect * input_size (a 1 x 100,000 strip would
    #   otherwise ask for a 512 x 51,200,000 buffer).
    # - min_side: a shorter side below which the photo cannot show skin detail: it is scored, but
    #   the answer is "retake: too small" (a thumbnail or a screenshot of one).
    max_pixels: int = 64_000_000
    max_aspect: float = 8.0
    min_side: int = 256
    # The side of the native-resolution centre tile the SDK measures for noise and softness at 1:1
    # (``diqa_edge.sdk.detail``: the model sees the whole photo shrunk, the dermatologist zooms in);
    # 0 turns the 1:1 look off. It changes no pixel of the model's input.
    detail_tile: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    layout: str = "NCHW"
    score_min: float = 1.0
    score_max: float = 10.0
    clamp: bool = True
    version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.input_size, int) or self.input_size < 8:
            problems.append(f"input_size must be an integer >= 8, got {self.input_size!r}")
        for name, allowed in (("resize", RESIZE_RULES), ("interpolation", INTERPOLATIONS),
                              ("layout", LAYOUTS), ("decode", DECODE_RULES)):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.colour != "RGB8":
            problems.append(f"colour must be 'RGB8', got {self.colour!r}")
        if not (isinstance(self.max_pixels, int) and self.max_pixels >= self.input_size ** 2):
            problems.append(f"max_pixels must be an integer >= input_size**2, got {self.max_pixels!r}")
        if not (isinstance(self.max_aspect, (int, float)) and 1.0 <= self.max_aspect < float("inf")):
            problems.append(f"max_aspect must be a finite number >= 1, got {self.max_aspect!r}")
        if not (isinstance(self.min_side, int) and 1 <= self.min_side):
            problems.append(f"min_side must be an integer >= 1, got {self.min_side!r}")
        if not (isinstance(self.detail_tile, int) and not isinstance(self.detail_tile, bool)
                and (self.detail_tile == 0 or 16 <= self.detail_tile <= 4096) and self.detail_tile % 4 == 0):
            problems.append(f"detail_tile must be 0 (off) or a multiple of 4 in 16-4096, got {self.detail_tile!r}")
        if self.draft_factor not in (1, 2, 4):
            problems.append(f"draft_factor must be 1, 2 or 4, got {self.draft_factor!r}")
        for name in ("mean", "std", "alpha_background"):
            if len(getattr(self, name)) != 3:
                problems.append(f"{name} needs 3 values (R, G, B), got {getattr(self, name)!r}")
        # a NaN or an infinite mean / std turns every input into NaN or 0, and int8 quantisation makes that
        # finite again: every photo would get the same confident wrong answer
        if not all(_finite_in(m, 0.0, 1.0) for m in self.mean):
            problems.append(f"mean must be 3 finite numbers in [0, 1] (of the 0-1 pixel range), got {self.mean!r}")
        if not all(_finite_in(s, 1e-3, 10.0) and s > 0 for s in self.std):
            problems.append(f"std must be 3 finite numbers in (0, 10], got {self.std!r}")
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in self.alpha_background):
            problems.append(f"alpha_background must be 3 integers in 0-255, got {self.alpha_background!r}")
        for name in ("antialias", "exif_orientation", "clamp"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not (_finite_in(self.score_min, -1e6, 1e6) and _finite_in(self.score_max, -1e6, 1e6)
                and self.score_min < self.score_max):
            problems.append(f"score_min must be finite and below a finite score_max, got {self.score_min}, "
                            f"{self.score_max}")
        if self.version != CONTRACT_VERSION:
            problems.append(f"contract version {self.version} is not supported (this is {CONTRACT_VERSION})")
        if problems:
            raise ContractError("invalid preprocessing contract: " + "; ".join(problems))

    # --- serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for name in ("mean", "std", "alpha_background"):
            d[name] = list(d[name])
        return d

    def to_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("sort_keys", True)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Contract":
        if not isinstance(data, dict):
            raise ContractError(f"a contract is a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ContractError(f"unknown contract field(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            try:
                kwargs[name] = _field_value(name, value)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ContractError(f"contract field {name!r}: {exc}") from None
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "Contract":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"contract is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def fingerprint(self) -> str:
        """Short hash of the fields that change pixels; keys caches of resized images (the pixel
        budget refuses files but changes no pixel of the ones it lets through)."""
        pixel_fields = {k: v for k, v in self.to_dict().items()
                        if k not in ("layout", "score_min", "score_max", "clamp",
                                     "max_pixels", "max_aspect", "min_side", "detail_tile")}
        blob = json.dumps(pixel_fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_layout(self, layout: str) -> "Contract":
        return dataclasses.replace(self, layout=layout)

    def replace(self, **changes: Any) -> "Contract":
        return dataclasses.replace(self, **changes)

    def clamp_score(self, raw: float) -> float:
        """Model output -> reported score (the model regresses MOS on [score_min, score_max])."""
        value = float(raw)
        if self.clamp:
            value = min(max(value, self.score_min), self.score_max)
        return value


def _finite_in(value: Any, low: float, high: float) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and low <= value <= high)


def _field_value(name: str, value: Any) -> Any:
    """One JSON value -> the field's Python type (JSON has no tuples and spells 2.0 as 2)."""
    if name in ("mean", "std"):
        return tuple(float(v) for v in value)
    if name == "alpha_background":
        if any(isinstance(v, bool) or int(v) != v for v in value):
            raise ContractError(f"{name} must be integers, got {value!r}")
        return tuple(int(v) for v in value)
    if name in ("score_min", "score_max", "max_aspect"):
        return float(value)
    if name in ("input_size", "version", "draft_factor", "max_pixels", "min_side", "detail_tile"):
        if isinstance(value, bool) or int(value) != value:
            raise ContractError(f"{name} must be an integer, got {value!r}")
        return int(value)
    return value


DEFAULT_CONTRACT = Contract()
