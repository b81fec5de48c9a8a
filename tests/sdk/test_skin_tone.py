"""Dark skin is not a dark photo: a darker skin tone that loses no information is still accepted.

The transform darkens the skin (CIE L* raised to a power: skin at L* 70 drops to about 58) but keeps
the full tonal range (black stays black, white stays white), clips nothing and keeps every edge,
unlike an under-exposed photo (KADID's darken level 5 clips the shadows). The bundled gate must keep
accepting the sharp sample photos after it. The CC0 photos here are dermoscopy of mostly light skin,
so this is a synthetic check, not a measurement across real skin tones (the card says so).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SAMPLES
from diqa_edge.sdk.cli import bundled_model

pytestmark = pytest.mark.skipif(bundled_model() is None, reason="no bundled default model in this build")

SHARP = ["skin_ISIC_0000051.jpg", "skin_ISIC_0000083.jpg", "skin_ISIC_0000157.jpg", "skin_ISIC_0000173.jpg",
         "skin_ISIC_0000347.jpg", "skin_ISIC_0000447.jpg", "skin_ISIC_0000450.jpg", "skin_ISIC_0000483.jpg"]
GAMMA = 1.5


def darker_skin_tone(rgb: np.ndarray, gamma: float = GAMMA) -> np.ndarray:
    """L* -> 100 (L*/100)^gamma, chroma kept: darker, same range, monotonic (no detail merged away)."""
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(rgb)
    lab[..., 0] = 100 * (lab[..., 0] / 100) ** gamma
    return np.clip(np.rint(lab2rgb(lab) * 255), 0, 255).astype(np.uint8)


def test_the_transform_darkens_without_losing_range_or_detail():
    from scipy.ndimage import laplace

    rgb = np.asarray(Image.open(SAMPLES / SHARP[0]).convert("RGB"))
    dark = darker_skin_tone(rgb)
    grey, dgrey = rgb.mean(axis=2), dark.mean(axis=2)
    assert dgrey.mean() < 0.85 * grey.mean()                                  # visibly darker
    assert dgrey.min() <= grey.min() + 2 and dgrey.max() >= grey.max() - 25   # the range is kept
    assert (dark == 0).mean() < 0.01 and (dark == 255).mean() < 0.01           # nothing clipped
    assert laplace(dgrey).var() > 0.5 * laplace(grey).var()                    # edges kept


def test_bundled_gate_accepts_darker_skin_tones(tmp_path):
    paths = []
    for name in SHARP:
        rgb = np.asarray(Image.open(SAMPLES / name).convert("RGB"))
        out = tmp_path / f"darker_{name.replace('.jpg', '.png')}"
        Image.fromarray(darker_skin_tone(rgb)).save(out)
        paths.append(out)
    proc = subprocess.run([sys.executable, "-m", "diqa_edge.cli", "score", *map(str, paths), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    import json

    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    decisions = {r["source"]: (r["decision"], round(r["score"], 2), r.get("top_reason")) for r in records}
    print(decisions)
    assert len(records) == len(SHARP)
    assert all(d[0] == "accept" for d in decisions.values()), decisions
