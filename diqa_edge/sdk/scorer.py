"""``QualityScorer``: the phone's whole job on one photo, with the time each stage took."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DiqaError, ImageDecodeError, ModelLoadError, UsageError
from .decode import ImageSource, decode_image
from .check import check_differences, check_image
from .detail import DetailStats, centre_tile, measure_detail
from .frames import yuv420_planes_to_rgb, yuv420_to_rgb
from .hints import INPUT_HINTS, answer, top_reason
from .manifest import ModelManifest, read_sidecar, sidecar_path
from .preprocess import normalise, resize_and_crop, to_layout
from .runtimes import Runtime, load_runtime


@dataclass(frozen=True)
class ScoreResult:
    source: str
    score: float          # on the contract's score range (1-10), clamped as the contract says
    raw: float            # the model's unclamped output
    acceptable: bool      # the manifest's rule: score >= threshold and no reason past its own threshold
    threshold: float
    decode_ms: float
    preprocess_ms: float
    inference_ms: float
    reasons: dict = field(default_factory=dict)   # reason -> probability, when the model has a reasons head
    hint: str | None = None                      # the patient-facing sentence (diqa_edge.sdk.hints)
    top_reason: str | None = None
    # the native-resolution centre tile's noise and sharpness (``diqa_edge.sdk.detail``), when the
    # manifest's rule looks at 1:1 and the photo is large enough; part of ``preprocess_ms``
    detail: dict | None = None

    @property
    def total_ms(self) -> float:
        return self.decode_ms + self.preprocess_ms + self.inference_ms

    @property
    def decision(self) -> str:
        """"accept" or "retake": what the app shows (``acceptable`` as a word, as ``to_dict`` writes it)."""
        return "accept" if self.acceptable else "retake"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total_ms"] = self.total_ms
        d["decision"] = self.decision
        return d


BUNDLED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models"


def bundled_model() -> Path | None:
    """The default model shipped inside the package, if this build carries one."""
    for name in ("default.tflite", "default.onnx"):
        candidate = BUNDLED_MODEL_DIR / name
        if candidate.exists():
            return candidate
    return None


def answer_fields_that_differ(a: ModelManifest, b: ModelManifest) -> list[str]:
    """The fields that change an answer (the contract but its layout, which follows each file's input; the
    rule, the outputs, the frame rule) on which two manifests disagree."""
    def fields(m: ModelManifest) -> dict:
        d = json.loads(m.to_json())
        d["contract"].pop("layout", None)
        return {k: d.get(k) for k in ("contract", "rule", "outputs", "frames")}
    fa, fb = fields(a), fields(b)
    return sorted(k for k in fa if fa[k] != fb[k])


def load_manifest(model_path: Path, runtime: Runtime) -> ModelManifest:
    """Sidecar first (it is what the app ships), then what the file itself carries; when the file carries
    one too, the two must agree (a sidecar copied beside another model, or edited, would otherwise decide
    every answer without a word)."""
    sidecar, embedded = read_sidecar(model_path), runtime.embedded_manifest()
    if sidecar is not None and embedded is not None:
        differ = answer_fields_that_differ(sidecar, embedded)
        if differ:
            raise ModelLoadError(
                f"{sidecar_path(model_path)} disagrees with the manifest inside {model_path.name} (field(s) "
                f"{', '.join(differ)}): it belongs to another model or was edited; remove it to use the file's "
                "own, or re-export the model")
    manifest = sidecar or embedded
    if manifest is None:
        raise ModelLoadError(
            f"{model_path}: no manifest found (expected {model_path.with_suffix('.manifest.json').name} "
            "beside it or one embedded in the file); without it the preprocessing is unknown")
    if runtime.input_size and runtime.input_size != manifest.contract.input_size:
        raise ModelLoadError(
            f"{model_path}: model input is {runtime.input_size} px but its manifest says "
            f"{manifest.contract.input_size} px")
    return manifest


@dataclass(frozen=True)
class ScorerOptions:
    """How to build a ``QualityScorer`` as one value an app can keep in its configuration (MediaPipe Tasks'
    pattern: options object, ``create_from_options``). ``model_path`` None: the bundled model."""
    model_path: str | Path | None = None
    threads: int = 2
    threshold: float | None = None       # None: the manifest's


class QualityScorer:
    """Decode -> contract preprocessing -> runtime -> 1-10 score and accept / retake."""

    def __init__(self, model_path: str | Path, threads: int = 2, threshold: float | None = None,
                 decode: str | None = None):
        """``decode`` overrides the contract's decode rule ("full" / "jpeg_draft"): only for measuring
        what the rule costs (benchmarks); an app follows the manifest."""
        self.model_path = Path(model_path)
        self.runtime = load_runtime(self.model_path, threads)
        self.manifest = load_manifest(self.model_path, self.runtime)
        self.contract = self.manifest.contract
        if decode is not None:
            self.contract = self.contract.replace(decode=decode)
        if threshold is not None:
            low, high = self.contract.score_min, self.contract.score_max
            if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and low <= threshold <= high):
                raise UsageError(f"threshold {threshold!r} is outside the score range {low:g}-{high:g}; "
                                 "a threshold there accepts or sends back every photo")
        self.rule = self.manifest.rule if threshold is None else self.manifest.rule.with_score_threshold(threshold)
        self.threshold = self.rule.score_threshold
        width = self.runtime.output_width()
        if width is not None and width != len(self.manifest.outputs):
            raise ModelLoadError(f"{model_path}: the model has {width} output(s) but its manifest names "
                                 f"{len(self.manifest.outputs)} ({', '.join(self.manifest.outputs)})")
        self._check_model_against_manifest()

    def _check_model_against_manifest(self) -> None:
        """Run the manifest's check input (``diqa_edge.sdk.check``): a model that does not answer it as the
        manifest says is not the manifest's model."""
        check = self.manifest.check
        if not check:
            return
        rgb = check_image(self.contract.input_size, check["input"])
        try:
            out = np.ravel(self.runtime.outputs(self.model_input(rgb)))
        except DiqaError:
            raise
        except Exception as exc:    # a runtime's own error on the model's input: not this manifest's model
            raise ModelLoadError(f"{self.model_path}: the model cannot run its manifest's check input "
                                 f"({type(exc).__name__}: {exc})") from None
        differ = check_differences(check, out, self.manifest.outputs)
        if out.size != len(self.manifest.outputs) or differ:
            raise ModelLoadError(
                f"{self.model_path}: the model does not answer its manifest's check input as the manifest says "
                f"({'; '.join(differ) or f'{out.size} outputs'}; tolerance {check['tolerance']:g}): the "
                "manifest belongs to another model, or the file is damaged; re-export the pair")

    @classmethod
    def create_from_options(cls, options: ScorerOptions) -> "QualityScorer":
        if options.model_path is None:
            return cls.bundled(threads=options.threads, threshold=options.threshold)
        return cls(options.model_path, threads=options.threads, threshold=options.threshold)

    @classmethod
    def bundled(cls, threads: int = 2, threshold: float | None = None) -> "QualityScorer":
        """The model this package ships (``diqa_edge/models/default.tflite`` and its manifest): what
        ``diqa-edge score`` uses without ``--model``."""
        path = bundled_model()
        if path is None:
            raise ModelLoadError("this install bundles no model: pass the path of a .tflite / .onnx file")
        return cls(path, threads=threads, threshold=threshold)

    def model_input(self, rgb: np.ndarray):
        crop = resize_and_crop(rgb, self.contract)
        if self.runtime.layout == "image":  # Core ML: normalisation is baked into the model
            return Image.fromarray(crop)
        return to_layout(normalise(crop, self.contract), self.runtime.layout)

    def score(self, source: ImageSource) -> ScoreResult:
        """A photo: a path, its bytes (bytes, bytearray, memoryview), an open file or ``io.BytesIO``, a PIL
        image or an HxWx3 uint8 RGB array (decoded, EXIF applied)."""
        t0 = time.perf_counter()
        rgb = decode_image(source, self.contract)
        label = str(source) if isinstance(source, (str, Path)) else f"<{type(source).__name__}>"
        return self._score_rgb(rgb, label, t0)

    def score_frame(self, frame, layout: str = "rgb", width: int | None = None,
                    height: int | None = None, row_strides=None, pixel_strides=(1, 1, 1),
                    look_at_1to1: bool = False) -> ScoreResult:
        """A camera preview frame already in memory, upright: an HxWx3 uint8 RGB array (``layout="rgb"``),
        a YUV 4:2:0 buffer (``"nv21"``, ``"nv12"``, ``"i420"``, with ``width`` and ``height``), or three
        strided planes as Android's ``YUV_420_888`` and iOS's ``CVPixelBuffer`` give them
        (``"yuv_420_888"``, with ``row_strides`` and ``pixel_strides``: ``frames.yuv420_planes_to_rgb``).
        ``decode_ms`` is then the YUV -> RGB conversion (``diqa_edge.sdk.frames``). The look at 1:1 is off
        by default: a preview frame's pixels are the preview stream's (scaled, denoised, compressed), not the
        photo the dermatologist receives; ``look_at_1to1=True`` measures them anyway."""
        t0 = time.perf_counter()
        layout = layout.lower() if isinstance(layout, str) else layout    # "NV21" is what Android calls it
        if layout == "rgb":
            rgb = decode_image(np.asarray(frame), self.contract)
        else:
            if width is None or height is None:
                raise ImageDecodeError("<frame>", f"a {layout} frame needs its width and height")
            for name, value in (("width", width), ("height", height)):
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                    raise UsageError(f"score_frame: {name} must be a whole number of pixels >= 1, got {value!r}")
            if layout == "yuv_420_888":
                if row_strides is None:
                    raise UsageError("score_frame: a yuv_420_888 frame (three planes) needs row_strides "
                                     "(and pixel_strides, default 1, 1, 1) as its planes report them")
                rgb = yuv420_planes_to_rgb(frame, int(width), int(height), row_strides, pixel_strides)
            else:
                rgb = yuv420_to_rgb(frame, int(width), int(height), layout)
            rgb = decode_image(rgb, self.contract)
        return self._score_rgb(rgb, f"<{layout} frame>", t0, look_at_1to1)

    def _check_range(self, out: np.ndarray) -> None:
        """A score far outside its range, or a probability outside [0, 1], is a model that is not this
        manifest's (or is damaged): an error, never a clipped answer. The score may pass its range a little
        (a regression head extrapolates; the contract's clamp is for that), by half the range at most."""
        low, high = self.contract.score_min, self.contract.score_max
        margin = (high - low) / 2
        problems = []
        if not low - margin <= out[0] <= high + margin:
            problems.append(f"score {out[0]:.4g} (range {low:g}-{high:g})")
        problems += [f"{name} {p:.4g}" for name, p in zip(self.manifest.reasons, out[1:]) if not -1e-3 <= p <= 1 + 1e-3]
        if problems:
            raise ModelLoadError(f"{self.model_path}: the model returned values outside their range ("
                                 f"{'; '.join(problems)}; probabilities lie in 0-1): the file is damaged or not "
                                 "this manifest's model")

    def detail_stats(self, rgb: np.ndarray) -> DetailStats | None:
        """The 1:1 look (``diqa_edge.sdk.detail``), only when the rule uses it and ``rgb`` holds the photo's
        own pixels (a draft decode, asked for by a benchmark, has shrunk them)."""
        if self.rule.detail is None or self.contract.decode != "full":
            return None
        tile = centre_tile(rgb, self.contract.detail_tile)
        return None if tile is None else measure_detail(tile, self.rule.detail.sharpness_measure)

    def _score_rgb(self, rgb: np.ndarray, label: str, t0: float, look_at_1to1: bool = True) -> ScoreResult:
        t1 = time.perf_counter()
        x = self.model_input(rgb)
        detail = self.detail_stats(rgb) if look_at_1to1 else None
        t2 = time.perf_counter()
        out = self.runtime.outputs(x)
        t3 = time.perf_counter()
        if out.size != 1 + len(self.manifest.reasons) or not np.all(np.isfinite(out)):
            raise ModelLoadError(f"{self.model_path}: the model returned {out.size} value(s), not all finite "
                                 f"({np.array2string(out[:8], precision=3)}), where its manifest names "
                                 f"{1 + len(self.manifest.reasons)}: the file is damaged or not this manifest's model")
        self._check_range(out)
        raw = float(out[0])
        score = self.contract.clamp_score(raw)
        reasons = {name: round(float(np.clip(p, 0.0, 1.0)), 4)
                   for name, p in zip(self.manifest.reasons, out[1:])}
        acceptable, trigger, hint = answer(self.rule, score, reasons, detail)
        detail_dict = None
        if detail is not None:      # "sent_back": the reason when the 1:1 look, not the model, sent it back
            by_tile = not acceptable and self.rule.decide(score, reasons)[0]
            detail_dict = {**detail.to_dict(), "sent_back": trigger if by_tile else None}
        if min(rgb.shape[:2]) < self.contract.min_side:   # a thumbnail: too few pixels to show skin
            acceptable, trigger, hint = False, "small", INPUT_HINTS["small"]
            if detail_dict:
                detail_dict["sent_back"] = None
        return ScoreResult(
            source=label, score=score, raw=raw, acceptable=acceptable,
            threshold=self.threshold, decode_ms=(t1 - t0) * 1e3,
            preprocess_ms=(t2 - t1) * 1e3, inference_ms=(t3 - t2) * 1e3, reasons=reasons,
            hint=hint.hint if hint else None, top_reason=trigger or top_reason(reasons),
            detail=detail_dict)
