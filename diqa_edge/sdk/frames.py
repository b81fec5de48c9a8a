"""Camera preview frames, as Android and iOS hand them to an app: RGB, or YUV 4:2:0 (NV21, NV12, I420).

Why a path of its own: a live check runs on frames already in memory, several
times a second, so there is no file to decode and no EXIF (the app turns the
frame upright by the sensor's orientation before it calls us). A YUV frame
becomes RGB by the JFIF rule (BT.601 matrix, full range 0-255, what Android's
``YUV_420_888`` camera output and iOS's ``420f`` full-range formats use), each
chroma sample covering its 2 x 2 block of pixels; the contract's resize and
center crop then apply exactly as for a photo (steps 2-5 of
``docs/preprocessing.md``). Pillow's YCbCr -> RGB conversion is the reference
(integer arithmetic; within one level of the floating-point formula).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import ImageDecodeError
from .detail import DetailStats

YUV_LAYOUTS = ("nv21", "nv12", "i420")
FRAME_LAYOUTS = ("rgb",) + YUV_LAYOUTS + ("yuv_420_888",)   # the last: three strided planes
FRAME_RULE = ("YUV 4:2:0 -> RGB by JFIF (BT.601, full range), each chroma sample over its 2 x 2 pixels; "
              "then the contract's resize and center crop (no decode, no EXIF: the app turns the frame upright)")


def _bytes_of(data) -> np.ndarray:
    """A frame buffer (bytes, a buffer object or an array) as flat uint8, without a copy where it can."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def _check_sides(width: int, height: int) -> None:
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ImageDecodeError("<frame>", f"a 4:2:0 frame needs even sides >= 2, got {width} x {height}")


def yuv420_to_rgb(data, width: int, height: int, layout: str) -> np.ndarray:
    """One YUV 4:2:0 frame (``width * height * 3 / 2`` bytes, planes packed without row padding) -> HxWx3 RGB.

    NV21 (Android's default preview format): Y plane, then interleaved V, U. NV12 (iOS bi-planar): Y, then
    interleaved U, V. I420: Y, then the U plane, then the V plane."""
    if layout not in YUV_LAYOUTS:
        raise ImageDecodeError("<frame>", f"unknown frame layout {layout!r}; known: {', '.join(FRAME_LAYOUTS)}")
    _check_sides(width, height)
    buf = _bytes_of(data)
    n, cw, ch = width * height, width // 2, height // 2
    if buf.size != n * 3 // 2:
        raise ImageDecodeError("<frame>", f"a {width} x {height} 4:2:0 frame holds {n * 3 // 2} bytes, got {buf.size}")
    y = buf[:n].reshape(height, width)
    if layout == "i420":
        u = buf[n:n + cw * ch].reshape(ch, cw)
        v = buf[n + cw * ch:].reshape(ch, cw)
    else:
        pairs = buf[n:].reshape(ch, cw, 2)
        v, u = (pairs[..., 0], pairs[..., 1]) if layout == "nv21" else (pairs[..., 1], pairs[..., 0])
    planes = [Image.fromarray(y)] + [Image.fromarray(np.ascontiguousarray(c)).resize((width, height),
                                                                                    Image.Resampling.NEAREST)
                                     for c in (u, v)]
    return np.asarray(Image.merge("YCbCr", planes).convert("RGB"))


def _plane(data, rows: int, cols: int, row_stride: int, pixel_stride: int, name: str) -> np.ndarray:
    """A ``rows`` x ``cols`` plane out of a strided buffer: sample (r, c) at ``r * row_stride + c *
    pixel_stride``. The buffer may stop short after the last sample (Android leaves the last row's padding
    out)."""
    buf = _bytes_of(data)
    for what, value, least in (("row stride", row_stride, cols * pixel_stride - pixel_stride + 1),
                               ("pixel stride", pixel_stride, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ImageDecodeError("<frame>", f"{name} plane: {what} must be a whole number >= {least}, got {value!r}")
    need = (rows - 1) * row_stride + (cols - 1) * pixel_stride + 1
    if buf.size < need:
        raise ImageDecodeError("<frame>", f"{name} plane: {rows} x {cols} samples at row stride {row_stride} and "
                                          f"pixel stride {pixel_stride} need {need} bytes, got {buf.size}")
    padded = np.zeros(rows * row_stride, np.uint8)
    padded[:min(buf.size, padded.size)] = buf[:padded.size]
    return padded.reshape(rows, row_stride)[:, : cols * pixel_stride: pixel_stride]


def yuv420_planes_to_rgb(planes, width: int, height: int, row_strides, pixel_strides=(1, 1, 1)) -> np.ndarray:
    """An Android ``YUV_420_888`` image (``Image.getPlanes()``: three buffers with each plane's row stride and
    pixel stride, rows padded to the stride) or an iOS ``CVPixelBuffer``'s planes (Y, then the interleaved
    CbCr plane given twice: as U, and from its second byte as V, pixel stride 2, ``bytesPerRow`` as row
    stride) -> HxWx3 RGB, by the same rule as the tight-packed layouts."""
    _check_sides(width, height)
    if len(planes) != 3 or len(row_strides) != 3 or len(pixel_strides) != 3:
        raise ImageDecodeError("<frame>", "a YUV_420_888 frame has 3 planes (Y, U, V), each with a row stride "
                                          "and a pixel stride")
    y = _plane(planes[0], height, width, row_strides[0], pixel_strides[0], "Y")
    u, v = (_plane(planes[k], height // 2, width // 2, row_strides[k], pixel_strides[k], "UV"[k - 1]) for k in (1, 2))
    return yuv420_to_rgb(y.tobytes() + u.tobytes() + v.tobytes(), width, height, "i420")


def rgb_to_yuv420(rgb: np.ndarray, layout: str) -> bytes:
    """The inverse, for tests and benchmarks: an RGB image as the camera would deliver it (chroma averaged
    over each 2 x 2 block)."""
    ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr"), dtype=np.float32)
    h, w = rgb.shape[:2]
    y = ycc[..., 0].round().astype(np.uint8)
    sub = ycc[: h // 2 * 2, : w // 2 * 2, 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
    u, v = (np.clip(sub[..., k].round(), 0, 255).astype(np.uint8) for k in (0, 1))
    if layout == "i420":
        return y.tobytes() + u.tobytes() + v.tobytes()
    pairs = np.stack([v, u] if layout == "nv21" else [u, v], axis=-1)
    return y.tobytes() + pairs.tobytes()


def _median_detail(results):
    """The 1:1 measures' median over frames that have them (None when none does)."""
    measured = [r.detail for r in results if getattr(r, "detail", None)]
    if not measured:
        return None
    sharp = [d["sharpness"] for d in measured if d["sharpness"] is not None]
    return DetailStats(float(np.median([d["noise"] for d in measured])),
                       float(np.median(sharp)) if sharp else None)


class PreviewGate:
    """The accept / retake answer for a live preview, steadied over the last ``window`` frames.

    Why: a still scene's score moves by a few hundredths from frame to frame (sensor noise); a scene
    near a threshold would then flip between accept and retake several times a second. The answer is
    the rule applied to the median score and the median of each reason (and of the 1:1 measures, for frames
    scored with ``look_at_1to1``) over the window, and it changes
    only when the new answer has held for ``hold`` frames in a row (hysteresis)."""

    def __init__(self, rule, window: int = 5, hold: int = 3):
        self.rule, self.window, self.hold = rule, window, hold
        self._recent: list = []
        self._answer: tuple[bool, str | None] | None = None
        self._pending: tuple[tuple[bool, str | None], int] | None = None

    def update(self, result) -> tuple[bool, str | None]:
        """Add one frame's ``ScoreResult``; return the steadied (acceptable, reason that sent it back)."""
        self._recent = (self._recent + [result])[-self.window:]
        score = float(np.median([r.score for r in self._recent]))
        reasons = {k: float(np.median([r.reasons[k] for r in self._recent])) for k in result.reasons}
        small = any(r.top_reason == "small" for r in self._recent)
        candidate = (False, "small") if small else self.rule.decide(score, reasons, _median_detail(self._recent))
        if self._answer is None:
            self._answer = candidate
        elif candidate[0] != self._answer[0]:
            count = self._pending[1] + 1 if self._pending and self._pending[0][0] == candidate[0] else 1
            self._pending = (candidate, count)
            if count >= self.hold:
                self._answer, self._pending = candidate, None
        else:
            self._answer, self._pending = candidate, None
        return self._answer
