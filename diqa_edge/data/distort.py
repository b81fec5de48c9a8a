"""Distortions that turn a pristine photo into graded bad ones: pure functions of (image, level, seed).

The paper rebuilt a dermatology IQA set from pristine skin photos with 18
views each: JPEG (3 levels), Gaussian blur (1), pixelation (2), sharpening
(3), brightness (4: two darker, two brighter), colour saturation (2) and
contrast (3). Levels follow KADID-10k's parameters for the same distortion
types, scaled for a 512-px image. The extended set adds the other KADID
families a phone photo suffers from (motion and lens blur, sensor noise,
colour shifts, quantisation), because more distortion types is the paper's
argument for cross-domain training.

Every family's level 1 is the mildest; PSNR to the pristine falls as the level
rises (``tests/data/test_distort.py`` holds each family to that).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps


def _pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a)


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _jpeg(a, quality, seed):
    buf = io.BytesIO()
    _pil(a).save(buf, format="JPEG", quality=int(quality))
    return _arr(Image.open(io.BytesIO(buf.getvalue())))


def _gaussian_blur(a, sigma, seed):
    return _arr(_pil(a).filter(ImageFilter.GaussianBlur(radius=sigma)))


def _pixelate(a, factor, seed):
    h, w = a.shape[:2]
    small = _pil(a).resize((max(1, round(w / factor)), max(1, round(h / factor))), Image.Resampling.BOX)
    return _arr(small.resize((w, h), Image.Resampling.NEAREST))


def _sharpen(a, percent, seed):
    return _arr(_pil(a).filter(ImageFilter.UnsharpMask(radius=2, percent=int(percent), threshold=0)))


def _brightness(a, factor, seed):
    return _arr(ImageEnhance.Brightness(_pil(a)).enhance(factor))


def _saturation(a, factor, seed):
    return _arr(ImageEnhance.Color(_pil(a)).enhance(factor))


def _contrast(a, factor, seed):
    return _arr(ImageEnhance.Contrast(_pil(a)).enhance(factor))


def _line_kernel(length: int, angle_deg: float) -> np.ndarray:
    canvas = Image.new("L", (length, length), 0)
    c = (length - 1) / 2
    dx, dy = np.cos(np.radians(angle_deg)) * c, np.sin(np.radians(angle_deg)) * c
    ImageDraw.Draw(canvas).line([(c - dx, c - dy), (c + dx, c + dy)], fill=255, width=1)
    k = np.asarray(canvas, dtype=np.float64)
    return k / k.sum()


def _convolve(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    from scipy.ndimage import convolve

    out = np.stack([convolve(a[..., c].astype(np.float64), kernel, mode="reflect") for c in range(3)], -1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _motion_blur(a, length, seed):
    angle = float(np.random.default_rng(seed).uniform(0, 180))
    return _convolve(a, _line_kernel(int(length), angle))


def _lens_blur(a, radius, seed):
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (xx ** 2 + yy ** 2 <= r * r + 0.5).astype(np.float64)
    return _convolve(a, disk / disk.sum())


def _white_noise(a, sigma, seed):
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=a.shape)
    return np.clip(np.rint(a + noise), 0, 255).astype(np.uint8)


def _impulse_noise(a, prob, seed):
    rng = np.random.default_rng(seed)
    out = a.copy()
    u = rng.random(a.shape[:2])
    out[u < prob / 2] = 0
    out[(u >= prob / 2) & (u < prob)] = 255
    return out


def _multiplicative_noise(a, sigma, seed):
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=a.shape)
    return np.clip(np.rint(a * (1.0 + noise)), 0, 255).astype(np.uint8)


def _color_shift(a, pixels, seed):
    """Misregistered colour planes (the green plane shifted), like KADID's colour shift."""
    out = a.copy()
    p = int(pixels)
    out[:, p:, 1] = a[:, :-p, 1]
    out[:, :p, 1] = a[:, :1, 1]
    return out


def _quantization(a, bits, seed):
    return _arr(ImageOps.posterize(_pil(a), int(bits)))


def _oversaturate(a, factor, seed):
    return _arr(ImageEnhance.Color(_pil(a)).enhance(factor))


@dataclass(frozen=True)
class Family:
    name: str
    fn: Callable[[np.ndarray, float, int], np.ndarray]
    params: tuple[float, ...]      # parameter for level 1, 2, ... (mildest first)
    param_name: str
    reason: str                    # the patient-facing family it belongs to

    @property
    def levels(self) -> int:
        return len(self.params)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    # the paper's families (levels after KADID-10k, for a 512-px long side)
    Family("jpeg", _jpeg, (40, 15, 6, 3), "JPEG quality", "jpeg"),
    Family("gaussian_blur", _gaussian_blur, (1.0, 2.0, 3.5, 5.0), "sigma (px)", "blur"),
    Family("pixelate", _pixelate, (3, 6, 10), "block size (px)", "jpeg"),
    Family("sharpen", _sharpen, (150, 300, 600), "unsharp-mask percent", "noise"),
    Family("darken", _brightness, (0.6, 0.35, 0.2), "brightness factor", "dark"),
    Family("brighten", _brightness, (1.4, 1.8, 2.4), "brightness factor", "bright"),
    Family("desaturate", _saturation, (0.45, 0.1), "saturation factor", "colour"),
    Family("low_contrast", _contrast, (0.7, 0.5, 0.3), "contrast factor", "contrast"),
    # extended set: the rest of KADID's families that a phone photo suffers from
    Family("motion_blur", _motion_blur, (5, 9, 15, 23), "kernel length (px)", "blur"),
    Family("lens_blur", _lens_blur, (2, 3, 5, 8), "disk radius (px)", "blur"),
    Family("white_noise", _white_noise, (6.0, 12.0, 22.0, 36.0), "sigma (0-255)", "noise"),
    Family("impulse_noise", _impulse_noise, (0.01, 0.03, 0.07, 0.12), "pixel fraction", "noise"),
    Family("multiplicative_noise", _multiplicative_noise, (0.05, 0.1, 0.2, 0.3), "relative sigma", "noise"),
    Family("color_shift", _color_shift, (2, 4, 8, 14), "green-plane shift (px)", "colour"),
    Family("quantization", _quantization, (5, 4, 3, 2), "bits per channel", "jpeg"),
    Family("oversaturate", _oversaturate, (1.6, 2.4, 3.5), "saturation factor", "colour"),
)}

# The paper's 18 views per pristine image.
PAPER_RECIPE: tuple[tuple[str, int], ...] = (
    ("jpeg", 1), ("jpeg", 2), ("jpeg", 3),
    ("gaussian_blur", 2),
    ("pixelate", 1), ("pixelate", 2),
    ("sharpen", 1), ("sharpen", 2), ("sharpen", 3),
    ("darken", 1), ("darken", 2), ("brighten", 1), ("brighten", 2),
    ("desaturate", 1), ("desaturate", 2),
    ("low_contrast", 1), ("low_contrast", 2), ("low_contrast", 3),
)
PAPER_FAMILIES = ("jpeg", "gaussian_blur", "pixelate", "sharpen", "darken", "brighten",
                  "desaturate", "low_contrast")
EXTENDED_RECIPE: tuple[tuple[str, int], ...] = PAPER_RECIPE + tuple(
    (name, level) for name, fam in FAMILIES.items() if name not in PAPER_FAMILIES
    for level in range(1, fam.levels + 1))
RECIPES = {"paper": PAPER_RECIPE, "extended": EXTENDED_RECIPE}


def distort(image: np.ndarray, family: str, level: int, seed: int = 0) -> np.ndarray:
    """Apply ``family`` at ``level`` (1 = mildest) to an HxWx3 uint8 RGB image; a new array."""
    if family not in FAMILIES:
        raise KeyError(f"unknown distortion {family!r}; known: {', '.join(FAMILIES)}")
    fam = FAMILIES[family]
    if not 1 <= level <= fam.levels:
        raise ValueError(f"{family} has levels 1..{fam.levels}, got {level}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8 RGB, got {image.dtype} {image.shape}")
    return fam.fn(image, fam.params[level - 1], seed)


# What the reasons head predicts, in its output order: the patient-facing families above
# (several distortions share one, since the patient's fix is the same), mildest meaning first.
REASONS: tuple[str, ...] = ("blur", "dark", "bright", "contrast", "noise", "jpeg", "colour", "glare", "obstruction")
assert {f.reason for f in FAMILIES.values()} <= set(REASONS)


def reason_target(distortion: str | None) -> np.ndarray | None:
    """Multi-label target over REASONS for a record's distortion: None when unknown (authentic photos),
    all zeros for a pristine image ("none")."""
    if distortion is None:
        return None
    target = np.zeros(len(REASONS), dtype=np.float32)
    if distortion != "none":
        if distortion not in FAMILIES:
            raise KeyError(f"unknown distortion {distortion!r}; known: {', '.join(FAMILIES)}")
        target[REASONS.index(FAMILIES[distortion].reason)] = 1.0
    return target
