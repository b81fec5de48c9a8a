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
  the weakest of four directions: for each of horizontal, vertical and the two diagonals, the mean
  absolute second difference of the tile averaged 2 x 2, over the same of the tile averaged 4 x 4. A
  sharp photo of skin keeps 0.5-1.3 (the photos here); Gaussian blur of 2 px at 1:1 brings 99.7 % of the
  calibration tiles below the shipped threshold (0.469), motion
  in one direction lowers that direction's ratio. ``None`` when the tile has no structure to judge
  (a uniform patch): the model's own reasons speak for those.

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
MIN_STRUCTURE = 0.5                           # mean coarse second difference (grey levels) below which
                                              # a tile is uniform: its sharpness is not judged


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


def second_differences(y: np.ndarray) -> np.ndarray:
    """Mean |z(p - u) - 2 z(p) + z(p + u)| over the interior for u horizontal, vertical, and the two diagonals."""
    c = y[1:-1, 1:-1]
    pairs = ((y[1:-1, :-2], y[1:-1, 2:]), (y[:-2, 1:-1], y[2:, 1:-1]),
             (y[:-2, :-2], y[2:, 2:]), (y[:-2, 2:], y[2:, :-2]))
    return np.array([np.abs(a - 2 * c + b).mean() for a, b in pairs])


def measure_detail(tile: np.ndarray) -> DetailStats:
    """Noise and sharpness of a native-resolution RGB uint8 tile (module docstring)."""
    y = luma(tile)
    fine = halve(y)
    coarse = halve(fine)
    d_fine, d_coarse = second_differences(fine), second_differences(coarse)
    sharpness = None if d_coarse.mean() < MIN_STRUCTURE else float(np.min(d_fine / np.maximum(d_coarse, 1e-9)))
    return DetailStats(noise=noise_sigma(y), sharpness=sharpness)


@dataclass(frozen=True)
class DetailRule:
    """Send a photo back when its 1:1 tile is noisier than ``noise_max`` ("noise") or less sharp than
    ``sharpness_min`` ("blur"); None disables that half. ``tile``: the side the thresholds were chosen on
    (the contract's ``detail_tile``; a manifest whose contract asks for another tile is refused)."""
    noise_max: float | None = None
    sharpness_min: float | None = None
    tile: int | None = None

    @classmethod
    def from_dict(cls, d: dict | None) -> "DetailRule | None":
        """None when the rule has no 1:1 part (or one with no threshold: it would send nothing back)."""
        get = lambda k: None if not d or d.get(k) is None else float(d[k])  # noqa: E731
        tile = None if not d or d.get("tile") is None else int(d["tile"])
        rule = cls(get("noise_max"), get("sharpness_min"), tile)
        return None if rule.noise_max is None and rule.sharpness_min is None else rule

    def describe(self) -> str:
        """"noise > 13.95 or sharpness < 0.47": the halves that are set."""
        parts = ([f"noise > {self.noise_max:.2f}"] if self.noise_max is not None else []) + \
                ([f"sharpness < {self.sharpness_min:.2f}"] if self.sharpness_min is not None else [])
        return " or ".join(parts)

    def trigger(self, stats: DetailStats | None) -> str | None:
        """The reason the tile sends the photo back ("noise" first: noise also raises sharpness), or None."""
        if stats is None:
            return None
        if self.noise_max is not None and stats.noise > self.noise_max:
            return "noise"
        if self.sharpness_min is not None and stats.sharpness is not None and stats.sharpness < self.sharpness_min:
            return "blur"
        return None

    def to_dict(self) -> dict:
        return {"noise_max": self.noise_max, "sharpness_min": self.sharpness_min,
                **({"tile": self.tile} if self.tile is not None else {})}
