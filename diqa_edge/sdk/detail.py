"""The photo at the dermatologist's zoom: noise and softness measured on a native-resolution centre tile.

Why: the model sees the whole photo shrunk to the contract's input size (512 px). A 12 MP photo is shrunk
about six times, which averages sensor noise away and hides a slight defocus, while the dermatologist
who receives the photo zooms to 1:1, where both are plain. So the SDK also looks at the centre of the
photo (where the patient puts the lesion) at its own pixels, ``contract.detail_tile`` on a side, and
measures two numbers no model is needed for:

- ``noise``: the standard deviation of white noise that would explain the tile's finest detail
  (Immerkaer's estimator: the mean absolute response to a 3 x 3 kernel that cancels edges and ramps,
  times sqrt(pi / 2) / 6), in grey levels of 0-255.
- ``sharpness``: how much detail the tile keeps at its finest scale that it has at a coarser one,
  the weakest of four directions, **net of the tile's noise**: for each of horizontal, vertical and the
  two diagonals, the mean square second difference of the tile averaged 2 x 2, less what white noise of
  sigma ``noise`` puts there (1.5 sigma^2), over the same of the tile averaged 4 x 4 (less 0.375 sigma^2);
  the square root of that ratio. Net of noise, because a phone fails in combinations: low light brings
  noise and shake together, and the noise's fine grain would make a shaken tile look sharp (on the
  tests' sample photo, KADID's motion blur at level 4 under noise at level 3 read 1.32 by the ratio of
  raw mean absolute second differences used before, sharper than the photo as taken, 0.67; net of the
  noise it reads 0.43, the blur alone 0.44). A sharp photo of skin keeps 0.5-1.3 (the photos here); Gaussian
  blur of 2 px at 1:1 brings nearly every calibration tile below the shipped threshold, motion in one
  direction lowers that direction's ratio. ``None`` when the tile has no structure to judge net of its
  noise (a uniform patch, noisy or not): the model's own reasons and the noise threshold speak for those.

KADID-10k's ratings were given to 512 x 384 images seen at 1:1, so a KADID fault built on the tile with
its pixel parameters unscaled carries KADID's human rating: that is how the thresholds in a manifest's
``rule.detail`` are chosen (``diqa_edge.training.detail_gate``). The steps are spelled out for Kotlin /
Swift / JavaScript in ``docs/preprocessing.md`` (step 8); ``clients/web/detail.js`` is the page's copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LUMA = (0.299, 0.587, 0.114)                  # ITU-R BT.601, as a JPEG's Y
NOISE_KERNEL_SCALE = math.sqrt(math.pi / 2) / 6
MIN_STRUCTURE = 0.5                           # coarse second difference (grey levels; root mean square net
                                              # of noise, or the raw measure's mean absolute value) below
                                              # which a tile is uniform: its sharpness is not judged


@dataclass(frozen=True)
class DetailStats:
    noise: float
    sharpness: float | None

    def to_dict(self) -> dict:
        return {"noise": round(self.noise, 4),
                "sharpness": None if self.sharpness is None else round(self.sharpness, 4)}


def centre_box(height: int, width: int, side: int) -> tuple[int, int] | None:
    """(top, left) of the ``side`` x ``side`` centre: top = (H - side) // 2, left = (W - side) // 2; None when
    the photo is smaller than that (the size rule answers those)."""
    if side <= 0 or height < side or width < side:
        return None
    return (height - side) // 2, (width - side) // 2


def centre_tile(rgb: np.ndarray, side: int) -> np.ndarray | None:
    """The ``side`` x ``side`` centre of an upright decoded photo at its own pixels (``centre_box``)."""
    box = centre_box(*rgb.shape[:2], side)
    if box is None:
        return None
    top, left = box
    return rgb[top:top + side, left:left + side]


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ np.asarray(LUMA)


def noise_sigma(y: np.ndarray) -> float:
    """Immerkaer (1996): [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] over the interior, mean |response|."""
    c = y[1:-1, 1:-1]
    r = (4 * c - 2 * (y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:])
         + y[:-2, :-2] + y[:-2, 2:] + y[2:, :-2] + y[2:, 2:])
    return float(NOISE_KERNEL_SCALE * np.abs(r).mean())


def halve(y: np.ndarray) -> np.ndarray:
    """The mean of each 2 x 2 block (an odd last row / column is dropped)."""
    h, w = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
    y = y[:h, :w]
    return (y[0::2, 0::2] + y[0::2, 1::2] + y[1::2, 0::2] + y[1::2, 1::2]) / 4


# How sharpness is measured; a manifest's ``rule.detail.sharpness_measure`` names the one its threshold was
# chosen on. "net-of-noise": this module's (since 2026-12-05). "raw": the first shipped, the same ratio of mean
# absolute second differences with no noise taken off (what a manifest without the key was chosen on).
SHARPNESS_MEASURES = ("net-of-noise", "raw")
SHARPNESS_MEASURE = "net-of-noise"
LEGACY_SHARPNESS_MEASURE = "raw"

# White noise of sigma s in the tile: averaged 2 x 2 its variance is s^2 / 4, averaged 4 x 4 s^2 / 16, and a
# second difference (1, -2, 1) of independent samples has 6 times the variance of one.
FINE_NOISE_POWER = 6 / 4
COARSE_NOISE_POWER = 6 / 16


def second_difference_means(y: np.ndarray, of=np.square) -> np.ndarray:
    """Mean of(z(p - u) - 2 z(p) + z(p + u)) over the interior for u horizontal, vertical, and the two diagonals:
    ``of`` the square (the net-of-noise measure's power) or ``np.abs`` (the raw measure)."""
    c = y[1:-1, 1:-1]
    pairs = ((y[1:-1, :-2], y[1:-1, 2:]), (y[:-2, 1:-1], y[2:, 1:-1]),
             (y[:-2, :-2], y[2:, 2:]), (y[:-2, 2:], y[2:, :-2]))
    return np.array([of(a - 2 * c + b).mean() for a, b in pairs])


def _net_of_noise_sharpness(fine: np.ndarray, coarse: np.ndarray, noise: float) -> float | None:
    p_fine = second_difference_means(fine) - FINE_NOISE_POWER * noise ** 2
    p_coarse = second_difference_means(coarse) - COARSE_NOISE_POWER * noise ** 2
    if p_coarse.mean() < MIN_STRUCTURE ** 2:
        return None
    return float(np.sqrt(np.min(np.maximum(p_fine, 0.0) / np.maximum(p_coarse, 1e-9))))


def _raw_sharpness(fine: np.ndarray, coarse: np.ndarray) -> float | None:
    d_fine, d_coarse = second_difference_means(fine, np.abs), second_difference_means(coarse, np.abs)
    if d_coarse.mean() < MIN_STRUCTURE:
        return None
    return float(np.min(d_fine / np.maximum(d_coarse, 1e-9)))


def measure_detail(tile: np.ndarray, sharpness_measure: str = SHARPNESS_MEASURE) -> DetailStats:
    """Noise and sharpness of a native-resolution RGB uint8 tile (module docstring), sharpness by
    ``sharpness_measure``: the one the thresholds it is held to were chosen on (``DetailRule``)."""
    if sharpness_measure not in SHARPNESS_MEASURES:
        raise ValueError(f"unknown sharpness measure {sharpness_measure!r}; known: {', '.join(SHARPNESS_MEASURES)}")
    y = luma(tile)
    noise = noise_sigma(y)
    fine = halve(y)
    coarse = halve(fine)
    sharpness = (_net_of_noise_sharpness(fine, coarse, noise) if sharpness_measure == "net-of-noise"
                 else _raw_sharpness(fine, coarse))
    return DetailStats(noise=noise, sharpness=sharpness)


@dataclass(frozen=True)
class DetailRule:
    """Send a photo back when its 1:1 tile is noisier than ``noise_max`` ("noise") or less sharp than
    ``sharpness_min`` ("blur"); None disables that half. ``tile``: the side the thresholds were chosen on
    (the contract's ``detail_tile``; a manifest whose contract asks for another tile is refused)."""
    noise_max: float | None = None
    sharpness_min: float | None = None
    tile: int | None = None
    sharpness_measure: str = SHARPNESS_MEASURE     # the measure ``sharpness_min`` was chosen on

    @classmethod
    def from_dict(cls, d: dict | None) -> "DetailRule | None":
        """None when the rule has no 1:1 part (or one with no threshold: it would send nothing back). A rule
        written before the measure had a name was chosen on the raw ratio, and is held to it."""
        get = lambda k: None if not d or d.get(k) is None else float(d[k])  # noqa: E731
        tile = None if not d or d.get("tile") is None else int(d["tile"])
        measure = (d or {}).get("sharpness_measure") or LEGACY_SHARPNESS_MEASURE
        rule = cls(get("noise_max"), get("sharpness_min"), tile, measure)
        return None if rule.noise_max is None and rule.sharpness_min is None else rule

    def describe(self) -> str:
        """"noise > 13.95 or sharpness < 0.47": the halves that are set."""
        parts = ([f"noise > {self.noise_max:.2f}"] if self.noise_max is not None else []) + \
                ([f"sharpness < {self.sharpness_min:.2f}"] if self.sharpness_min is not None else [])
        return " or ".join(parts)

    def trigger(self, stats: DetailStats | None) -> str | None:
        """The reason the tile sends the photo back ("noise" first: a very noisy tile's hint is the noise), or None."""
        if stats is None:
            return None
        if self.noise_max is not None and stats.noise > self.noise_max:
            return "noise"
        if self.sharpness_min is not None and stats.sharpness is not None and stats.sharpness < self.sharpness_min:
            return "blur"
        return None

    def to_dict(self) -> dict:
        return {"noise_max": self.noise_max, "sharpness_min": self.sharpness_min,
                **({"tile": self.tile} if self.tile is not None else {}), "sharpness_measure": self.sharpness_measure}
