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

YUV_LAYOUTS = ("nv21", "nv12", "i420")
FRAME_LAYOUTS = ("rgb",) + YUV_LAYOUTS
FRAME_RULE = ("YUV 4:2:0 -> RGB by JFIF (BT.601, full range), each chroma sample over its 2 x 2 pixels; "
              "then the contract's resize and center crop (no decode, no EXIF: the app turns the frame upright)")


def yuv420_to_rgb(data, width: int, height: int, layout: str) -> np.ndarray:
    """One YUV 4:2:0 frame (``width * height * 3 / 2`` bytes, planes packed without row padding) -> HxWx3 RGB.

    NV21 (Android's default preview format): Y plane, then interleaved V, U. NV12 (iOS bi-planar): Y, then
    interleaved U, V. I420: Y, then the U plane, then the V plane."""
    if layout not in YUV_LAYOUTS:
        raise ImageDecodeError("<frame>", f"unknown frame layout {layout!r}; known: {', '.join(FRAME_LAYOUTS)}")
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ImageDecodeError("<frame>", f"a 4:2:0 frame needs even sides >= 2, got {width} x {height}")
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8) if not isinstance(data, np.ndarray) \
        else np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
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


class PreviewGate:
    """The accept / retake answer for a live preview, steadied over the last ``window`` frames.

    Why: a still scene's score moves by a few hundredths from frame to frame (sensor noise); a scene
    near a threshold would then flip between accept and retake several times a second. The answer is
    the rule applied to the median score and the median of each reason over the window, and it changes
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
        candidate = (False, "small") if small else self.rule.decide(score, reasons)
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
