"""Camera faults built on a sample photo, for the tests that follow a fault to the patient's hint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def glare_view(folder: Path, level: int = 5) -> Path:
    """A flash reflection built on a sample skin photo (data/camera.py: a clipped patch near the centre),
    the camera fault the glare reason and hint were made for (issue 31)."""
    from diqa_edge.data.kadid import distort_kadid

    rgb = np.asarray(Image.open(SAMPLES / "skin_ISIC_0000173.jpg").convert("RGB"))
    path = Path(folder) / f"skin_ISIC_0000173_glare_{level}.png"
    Image.fromarray(distort_kadid(rgb, "glare", level, seed=11)).save(path)
    return path
