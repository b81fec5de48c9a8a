"""The classical gate an app developer would write in ten lines, which a learned gate must beat.

Blur: variance of the Laplacian of the grey image (sharp edges give a large
variance). Exposure: mean brightness, too low or too high. Each is measured on
the same crop the model sees (the contract's resize + center crop), and each
threshold sits at the same tail share of pristine calibration photos, chosen so
that together they let the stated share of pristine photos through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import Contract
from ..sdk.decode import decode_image
from ..sdk.preprocess import resize_and_crop


def classical_measures(path, contract: Contract) -> tuple[float, float]:
    """(variance of the Laplacian, mean brightness) of the grey crop, on 0-255."""
    from scipy.ndimage import laplace

    grey = resize_and_crop(decode_image(path, contract), contract).astype(np.float64) @ [0.299, 0.587, 0.114]
    return float(laplace(grey).var()), float(grey.mean())


@dataclass(frozen=True)
class ClassicalGate:
    min_sharpness: float
    min_brightness: float
    max_brightness: float

    def retake(self, measures: np.ndarray) -> np.ndarray:
        m = np.asarray(measures, float).reshape(-1, 2)
        return (m[:, 0] < self.min_sharpness) | (m[:, 1] < self.min_brightness) | (m[:, 1] > self.max_brightness)

    def badness(self, measures: np.ndarray) -> np.ndarray:
        """How far past its nearest threshold a view is (log sharpness, brightness / 255), for ROC curves."""
        m = np.asarray(measures, float).reshape(-1, 2)
        return np.maximum.reduce([np.log(self.min_sharpness + 1e-9) - np.log(m[:, 0] + 1e-9),
                                  (self.min_brightness - m[:, 1]) / 255, (m[:, 1] - self.max_brightness) / 255])

    def to_dict(self) -> dict:
        return {"min_laplacian_variance": self.min_sharpness, "min_brightness": self.min_brightness,
                "max_brightness": self.max_brightness}


def calibrate(measures: np.ndarray, pristine: np.ndarray, accept: float = 0.95) -> ClassicalGate:
    """The three thresholds at one common tail share q of pristine photos, q as large as keeps ``accept``."""
    m = np.asarray(measures, float)[np.asarray(pristine, bool)]
    best = ClassicalGate(-np.inf, -np.inf, np.inf)
    for q in np.linspace(0.001, 0.1, 100):
        gate = ClassicalGate(float(np.quantile(m[:, 0], q)), float(np.quantile(m[:, 1], q)),
                             float(np.quantile(m[:, 1], 1 - q)))
        if 1 - gate.retake(m).mean() >= accept:
            best = gate
    return best
