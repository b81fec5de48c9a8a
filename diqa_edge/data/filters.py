"""The two filters KADID-10k's blurs and the camera's faults share, in a module of their own so that
``kadid`` (which dispatches to the camera's faults) and ``camera`` (which blurs) do not import each other."""

from __future__ import annotations

import math

import numpy as np


def _filter(rgb: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB ``imfilter(..., 'replicate')`` (what KADID's blurs use), via OpenCV."""
    import cv2

    out = cv2.filter2D(rgb.astype(np.float32), -1, kernel.astype(np.float32), borderType=cv2.BORDER_REPLICATE)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """``fspecial('gaussian', 2*ceil(2*sigma)+1, sigma)``, KADID's Gaussian blur kernel."""
    r = math.ceil(2 * sigma)
    ax = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma * sigma))
    return g / g.sum()
