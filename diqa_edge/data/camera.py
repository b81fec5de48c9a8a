"""The faults of a phone camera held over skin that KADID-10k does not have, at five graded levels.

Why: a patient's phone fails locally (a flash reflection on the lesion, the skin soft while the
background is sharp, a finger in the frame) and in combinations (low light brings sensor noise and
shake with it; zoom brings softness). KADID's 25 types are global and single. Each family here is
built from KADID's own operations where one exists (its tone curve, its noise, its motion kernel),
and labelled by a stated rule (``CameraFamily.label_rule``): where a KADID type matches the damage,
KADID-10k's human mean rating of that type at the same level; for a combination, the lowest rating
of its parts (a photo is as bad as its worst fault). None of these is a rating of that photo.

Levels 4-5 are what a dermatologist sends back (the gate's targets, as for the KADID families),
level 1 is a fault most people would not notice. Spatial sizes are fractions of the shorter side,
or KADID pixel sizes scaled from its 384-px short side, so a level means the same on any photo size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..sdk.detail import LUMA
from .filters import _filter, gaussian_kernel

LEVELS = (1, 2, 3, 4, 5)


def _f(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) / 255.0


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def _grid(shape) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape[:2]
    return np.mgrid[0:h, 0:w].astype(np.float64)


def _blend(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``a`` where the mask is 0, ``b`` where it is 1 (float images on [0, 1])."""
    return a * (1.0 - mask[..., None]) + b * mask[..., None]


def _near_centre(rng: np.random.Generator, shape, spread: float) -> tuple[float, float]:
    """A point within ``spread`` of the shorter side from the centre: where a patient frames the lesion."""
    h, w = shape[:2]
    s = min(h, w)
    return h / 2 + rng.uniform(-spread, spread) * s, w / 2 + rng.uniform(-spread, spread) * s


# Glare: a flash or specular reflection over the lesion: a clipped white core (the sensor saturates,
# nothing under it survives) with a soft halo, slightly elongated, at a random angle, near the centre,
# and a sprinkle of small specular points on the skin around it (oil and sweat catch the flash too).
GLARE_RADIUS = (0.02, 0.04, 0.07, 0.11, 0.16)     # the core's radius, share of the shorter side


def glare(rgb: np.ndarray, radius: float, scale: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    s = min(h, w)
    yy, xx = _grid(rgb.shape)
    cy, cx = _near_centre(rng, rgb.shape, 0.12)
    angle = rng.uniform(0, math.pi)
    elong = rng.uniform(1.0, 1.8)
    u = ((xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)) / elong
    v = -(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)
    r = np.hypot(u, v) / (radius * s)
    light = np.clip(1.6 - 0.9 * r, 0.0, 1.0) ** 1.5 + np.exp(-(r ** 2) / 2.5) * 0.35   # core 1, halo fading
    for _ in range(int(6 + 40 * radius)):          # specular points around the reflection
        py, px = _near_centre(rng, rgb.shape, 0.3)
        pr = max(1.0, rng.uniform(0.003, 0.008) * s)
        light += 0.9 * np.exp(-((yy - py) ** 2 + (xx - px) ** 2) / (2 * pr * pr))
    white = np.array([1.0, 1.0, 0.97])
    x = _f(rgb)
    return _u8(np.clip(x + np.clip(light, 0, None)[..., None] * (white - x * 0.3), 0.0, 1.0))


# Part of the frame covered: a finger, clothing or the phone case close to the lens: out of focus,
# dim, skin- or cloth-coloured, entering from one edge.
OCCLUSION_SHARE = (0.04, 0.08, 0.15, 0.25, 0.40)     # of the frame's area


def occlusion(rgb: np.ndarray, share: float, scale: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    yy, xx = _grid(rgb.shape)
    edge = int(rng.integers(4))
    # distance into the frame from the chosen edge, with a rounded (finger-tip) front placed so the
    # covered share is the level's
    depth = (yy, h - 1 - yy, xx, w - 1 - xx)[edge] / (h if edge < 2 else w)
    across = ((xx / w) if edge < 2 else (yy / h)) - rng.uniform(0.3, 0.7)
    reach = depth + rng.uniform(0.6, 1.2) * across ** 2
    front = float(np.quantile(reach, share))
    mask = 1.0 / (1.0 + np.exp(-(front - reach) / (0.01 + 0.015 * rng.random())))
    finger = rng.random() < 0.6
    tint = np.array([0.55, 0.36, 0.30]) if finger else rng.uniform(0.05, 0.5, 3)
    shade = tint * (0.4 + 0.6 * (1 - mask[..., None]) ** 0.5) + rng.normal(0, 0.01, (h, w, 1))
    return _u8(_blend(_f(rgb), shade, mask))


# Focus on the background: the centre of the frame (the skin the patient aimed at) soft, the edges sharp.
BACKGROUND_FOCUS_SIGMA = (0.5, 1.0, 2.0, 3.5, 6.0)   # px at KADID's 384-px short side (its Gaussian blur: 0.1-5)


def background_focus(rgb: np.ndarray, sigma: float, scale: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    yy, xx = _grid(rgb.shape)
    cy, cx = _near_centre(rng, rgb.shape, 0.08)
    a, b = rng.uniform(0.3, 0.42) * h, rng.uniform(0.3, 0.42) * w
    d = np.hypot((yy - cy) / a, (xx - cx) / b)
    mask = np.clip(1.5 - d, 0.0, 1.0)                    # 1 inside the ellipse, 0 past 1.5 x its axes
    soft = _filter(rgb, gaussian_kernel(sigma * scale))
    return _u8(_blend(_f(rgb), _f(soft), mask))


# Digital zoom or a small photo enlarged: the detail of a photo 1/f the size, spread over the frame.
ZOOM_FACTOR = (1.5, 2.0, 3.0, 4.0, 6.0)


def zoom(rgb: np.ndarray, factor: float, scale: float, seed: int) -> np.ndarray:
    from PIL import Image

    h, w = rgb.shape[:2]
    small = Image.fromarray(rgb).resize((max(1, round(w / factor)), max(1, round(h / factor))),
                                        Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.BICUBIC))


# A fogged or smeared lens: light scattered over the whole frame (a bright veil: contrast lost,
# blacks lifted) and the detail softened.
HAZE = ((0.10, 0.5), (0.20, 1.0), (0.35, 1.5), (0.50, 2.5), (0.65, 3.5))   # (veil share, blur px at 384)


def haze(rgb: np.ndarray, level_params: tuple[float, float], scale: float, seed: int) -> np.ndarray:
    veil_share, sigma = level_params
    x = _f(_filter(rgb, gaussian_kernel(sigma * scale)))
    veil = 0.85 * np.ones(3) + 0.15 * x.reshape(-1, 3).mean(0)
    return _u8((1 - veil_share) * x + veil_share * veil)


def combined(rgb: np.ndarray, level_parts: tuple[tuple[str, int], ...], scale: float, seed: int,
             kadid: Callable | None = None) -> np.ndarray:
    """KADID families applied in turn, each at its own KADID level (level 0: left out); ``kadid(rgb, family,
    level, scale, seed)`` applies one (the caller's: ``kadid.distort_kadid`` passes its own, so this module
    needs nothing from it)."""
    if kadid is None:
        raise ValueError("a combined fault needs the KADID families: build it through kadid.distort_kadid")
    out = rgb
    for i, (family, level) in enumerate(level_parts):
        if level:
            out = kadid(out, family, level, scale, seed + i)
    return out


# A colour cast: the white balance wrong for the light (tungsten or candle light uncorrected, shade, a
# fluorescent tube's green, a pink LED): gains on the channels, drawn per view among four directions,
# the mean luma kept (a cast is not a darkening: the recipe's darken teaches "too dark"). Each channel's
# gain is ``k`` to the power of its direction's entry: warm and cool move the red / blue ratio by k^2
# (level 5: x 2.4, an uncorrected tungsten bulb), green and magenta the green / (red, blue) ratio by k^1.5,
# so one level is a little milder in those two directions (they share its label).
CAST_GAIN = (1.06, 1.12, 1.22, 1.35, 1.55)
CAST_DIRECTIONS = ((1.0, 0.0, -1.0), (-1.0, 0.0, 1.0), (-0.5, 1.0, -0.5), (0.5, -1.0, 0.5))  # warm, cool, green, magenta


def colour_cast(rgb: np.ndarray, k: float, scale: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gains = k ** np.asarray(CAST_DIRECTIONS[int(rng.integers(len(CAST_DIRECTIONS)))])
    x = _f(rgb)
    mean, luma = x.reshape(-1, 3).mean(0), np.array(LUMA)
    gains = gains * (mean @ luma) / max(1e-6, (mean * gains) @ luma)
    return _u8(np.clip(x * gains, 0.0, 1.0))


# Low light: the photo under-exposed (KADID darken), then at levels 3-5 the sensor noise the camera's
# gain brings (KADID white noise) and the shake of a long exposure (KADID motion blur).
LOW_LIGHT = tuple((("darken", lv), ("noise", max(lv - 2, 0)), ("motion_blur", max(lv - 2, 0))) for lv in LEVELS)
# Hand shake with noise: KADID motion blur at the level, with white noise one level lower.
SHAKE_NOISE = tuple((("motion_blur", lv), ("noise", lv - 1)) for lv in LEVELS)


@dataclass(frozen=True)
class CameraFamily:
    name: str
    fn: Callable[[np.ndarray, object, float, int], np.ndarray]
    params: tuple                   # levels 1..5
    reason: str                     # the patient-facing reason (diqa_edge.data.distort.REASONS)
    label_rule: str                 # how a view's [1, 10] label is set, and why
    label_kadid: tuple[str, ...]    # the KADID families whose level-matched ratings the label takes (lowest)


CAMERA_FAMILIES: dict[str, CameraFamily] = {f.name: f for f in (
    CameraFamily("glare", glare, GLARE_RADIUS, "glare",
                 "KADID brighten at the same level: the nearest type (over-exposure; here local, over the lesion)",
                 ("brighten",)),
    CameraFamily("low_light", combined, LOW_LIGHT, "dark",
                 "the lowest KADID rating of its parts (darken at the level, noise and motion blur two levels "
                 "lower)", ("darken", "noise", "motion_blur")),
    CameraFamily("shake_noise", combined, SHAKE_NOISE, "blur",
                 "the lowest KADID rating of its parts (motion blur at the level, noise one level lower)",
                 ("motion_blur", "noise")),
    CameraFamily("zoom", zoom, ZOOM_FACTOR, "blur",
                 "KADID Gaussian blur at the same level: an enlargement is a low-pass filter; levels ordered, "
                 "not matched in sigma", ("gaussian_blur",)),
    CameraFamily("haze", haze, HAZE, "contrast",
                 "KADID Gaussian blur at the same level: what the dermatologist loses is the detail under the "
                 "veil (KADID's contrast loss alone is rated mild, 8.1 and 6.2 at levels 4-5)", ("gaussian_blur",)),
    CameraFamily("background_focus", background_focus, BACKGROUND_FOCUS_SIGMA, "blur",
                 "KADID Gaussian blur at the same level: the skin is what is judged, and it is that blurred",
                 ("gaussian_blur",)),
    CameraFamily("occlusion", occlusion, OCCLUSION_SHARE, "obstruction",
                 "10 - 20 x the covered share (9.2, 8.4, 7.0, 5.0, 2.0): no KADID type covers part of a frame; "
                 "with 40 % covered a lesion framed off-centre is hidden", ()),
    CameraFamily("colour_cast", colour_cast, CAST_GAIN, "colour",
                 "KADID's colour saturation 2 (type 8: the image's chroma changed in CIELAB) at the same level: "
                 "the nearest type (no KADID type shifts the white balance; both render every colour wrong, and "
                 "the lesion's colour is what a dermatologist reads); levels ordered, not matched in colour "
                 "difference", ("saturation_lab",)),
)}
# The pairs a photo's camera views are drawn from. The colour cast came later: its views are added beside
# the drawn ones (``CAST_RECIPE``), so the views drawn before keep their pixels and cached statistics.
DRAWN_FAMILIES = ("glare", "low_light", "shake_noise", "zoom", "haze", "background_focus", "occlusion")
CAMERA_RECIPE: tuple[tuple[str, int], ...] = tuple((name, level) for name in DRAWN_FAMILIES for level in LEVELS)
CAST_RECIPE: tuple[tuple[str, int], ...] = tuple(("colour_cast", level) for level in LEVELS)


def distort_camera(rgb: np.ndarray, family: str, level: int, scale: float, seed: int = 0,
                   kadid: Callable | None = None) -> np.ndarray:
    """``family`` at ``level``; ``kadid`` applies one KADID family (needed by the combined faults)."""
    fam = CAMERA_FAMILIES[family]
    if fam.fn is combined:
        return combined(rgb, fam.params[level - 1], scale, seed, kadid)
    return fam.fn(rgb, fam.params[level - 1], scale, seed)


def camera_label(family: str, level: int, kadid_score: Callable[[str, int], float]) -> float:
    """The view's [1, 10] label by its family's ``label_rule`` (``kadid_score(family, level)``: KADID's)."""
    fam = CAMERA_FAMILIES[family]
    if family == "occlusion":
        return max(1.0, 10.0 - 20.0 * OCCLUSION_SHARE[level - 1])
    if fam.fn is combined:
        return min(kadid_score(name, lv) for name, lv in fam.params[level - 1] if lv)
    return kadid_score(fam.label_kadid[0], level)
