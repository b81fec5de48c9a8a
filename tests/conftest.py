"""Shared paths and small builders for the test suite."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
FIXTURE_MODELS = ROOT / "tests" / "fixtures" / "models"
SHARED_DATA = ROOT.parent / "shared" / "data"

sys.path.insert(0, str(ROOT / "tests" / "fixtures"))


@pytest.fixture(scope="session")
def sample_photos() -> list[Path]:
    photos = sorted(SAMPLES.glob("*.jpg"))
    assert len(photos) >= 8, "samples/ must hold the bundled sample photos"
    return photos


def gradient_image(width: int, height: int, seed: int = 0, noise: int = 20) -> np.ndarray:
    """A deterministic, asymmetric RGB test image (so flips and rotations show)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1),
                    (xx + 2 * yy) % 256], axis=-1).astype(np.int32)
    img += rng.integers(-noise, noise + 1, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)

sys.path.insert(0, str(ROOT / "tests" / "data"))
