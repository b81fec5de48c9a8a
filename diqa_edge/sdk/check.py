"""Binding a manifest to its model: what the model answers on one fixed synthetic input.

Why: a manifest decides every answer (contract, threshold, rule), and nothing else ties it to the model
file beside it. Any model with the same input and output shapes (another export, a damaged copy, a
foreign file renamed) was scored under our manifest as if it were ours. The exporter runs each file it
makes on ``check_image`` and writes the outputs into that file's manifest (``check``); the SDK runs the
same input once at load (one inference, ~20 ms) and refuses the pair when an output is further than
``check.tolerance`` from what the manifest says. The input is computed, not shipped: an app rebuilds it
from this formula (``docs/preprocessing.md``).
"""

from __future__ import annotations

import numpy as np

CHECK_INPUTS = ("bands-v1",)
DEFAULT_TOLERANCE = 0.05       # a model's score and probabilities on the same runtime agree to ~1e-5;
                               # across CPUs and delegates to ~1e-3; another model differs by far more


def check_image(size: int, name: str = "bands-v1") -> np.ndarray:
    """``size`` x ``size`` x 3 uint8: three sine gratings on a warm (skin-like) base, one per channel, and
    an integer-hash texture t in [-20, 20] (exact on every platform):
    h = ((x * 73856093) ^ (y * 19349663) ^ ((x // 3) * 83492791)) mod 251, t = (h / 250 - 0.5) * 40;
    R = 170 + 60 sin(2 pi (3u + v)) + t, G = 120 + 50 sin(2 pi 5v + 1) + 0.8 t,
    B = 100 + 40 cos(2 pi (4u - 2v)) + 0.6 t, u = x / size, v = y / size (x, y from 0, 64-bit integers
    for the hash), clipped to 0-255 and rounded half up. A platform's sine differing in the last bit may
    move a pixel by one level at a tie, which moves no output measurably."""
    if name not in CHECK_INPUTS:
        raise ValueError(f"unknown check input {name!r}")
    y, x = np.mgrid[0:size, 0:size].astype(np.int64)
    u, v = x / size, y / size
    t = (((x * 73856093) ^ (y * 19349663) ^ ((x // 3) * 83492791)) % 251 / 250 - 0.5) * 40
    r = 170 + 60 * np.sin(2 * np.pi * (3 * u + v)) + t
    g = 120 + 50 * np.sin(2 * np.pi * 5 * v + 1) + 0.8 * t
    b = 100 + 40 * np.cos(2 * np.pi * (4 * u - 2 * v)) + 0.6 * t
    return np.clip(np.floor(np.stack([r, g, b], axis=-1) + 0.5), 0, 255).astype(np.uint8)


def check_record(outputs: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> dict:
    return {"input": CHECK_INPUTS[0], "outputs": [round(float(v), 6) for v in np.ravel(outputs)],
            "tolerance": tolerance}


def check_differences(check: dict, outputs: np.ndarray, names: tuple[str, ...]) -> list[str]:
    """The outputs further from the manifest's than its tolerance, as "name got X, manifest Y"."""
    got = np.ravel(outputs)
    return [f"{n} {g:.4f} (manifest {e:.4f})" for n, g, e in zip(names, got, check["outputs"])
            if not abs(float(g) - float(e)) <= check["tolerance"]]
