"""Dark skin is not a dark photo: a darker skin tone that loses no information is still accepted.

The transform darkens the skin (CIE L* raised to the power 1.5: skin at L* 70 drops to about 59) but
keeps the full tonal range (black stays black, white stays white), clips nothing and keeps every edge,
unlike an under-exposed photo (KADID's darken level 5 clips the shadows). The shipped gate must accept
such views of photos it never trained on about as often as the photos themselves. (The skin set's
training photos carry darker-tone views at powers 1.3 and 1.6, labelled as their pristine.) The CC0
photos here are dermoscopy of mostly light skin, so this is a synthetic check, not a measurement
across real skin tones (the card says so).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES, SKIN, unseen_skin_photos
from diqa_edge.sdk.cli import bundled_model

pytestmark = pytest.mark.skipif(bundled_model() is None, reason="no bundled default model in this build")

SHARP = ["skin_ISIC_0000051.jpg", "skin_ISIC_0000083.jpg", "skin_ISIC_0000157.jpg", "skin_ISIC_0000173.jpg",
         "skin_ISIC_0000347.jpg", "skin_ISIC_0000447.jpg", "skin_ISIC_0000450.jpg", "skin_ISIC_0000483.jpg"]
GAMMA = 1.5   # the skin set's darker-tone views use 1.3 and 1.6 (diqa_edge.data.kadid.TONE_GAMMAS)


def darker_skin_tone(rgb: np.ndarray) -> np.ndarray:
    from diqa_edge.data.kadid import darker_tone

    return darker_tone(rgb, GAMMA)


def test_the_transform_darkens_without_losing_range_or_detail():
    from scipy.ndimage import laplace

    rgb = np.asarray(Image.open(SAMPLES / SHARP[0]).convert("RGB"))
    dark = darker_skin_tone(rgb)
    grey, dgrey = rgb.mean(axis=2), dark.mean(axis=2)
    assert dgrey.mean() < 0.85 * grey.mean()                                  # visibly darker
    assert dgrey.min() <= grey.min() + 2 and dgrey.max() >= grey.max() - 25   # the range is kept
    assert (dark == 0).mean() < 0.01 and (dark == 255).mean() < 0.01           # nothing clipped
    assert laplace(dgrey).var() > 0.5 * laplace(grey).var()                    # edges kept


@pytest.mark.skipif(not SKIN.exists(), reason="../shared/data/skin-cc0 not present")
def test_bundled_gate_accepts_darker_skin_tones_of_unseen_photos():
    from diqa_edge.sdk import QualityScorer

    photos = unseen_skin_photos()
    scorer = QualityScorer(bundled_model())
    pristine, darker = [], []
    for path in photos:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        pristine.append(scorer.score(rgb).acceptable)
        darker.append(scorer.score(darker_skin_tone(rgb)).acceptable)
    print(f"{len(photos)} unseen photos: pristine accepted {np.mean(pristine):.3f}, darker tone {np.mean(darker):.3f}")
    assert len(photos) == 51
    # measured when shipped (the SVR model), on the full-size originals: pristine 0.961, darker tone 0.961
    # (the skin set's 512-px views of the same photos: 0.961 pristine, 0.941 / 0.922 of the power 1.3 / 1.6
    # views; the ridge model before it: 0.941 and 0.961 here)
    assert np.mean(darker) >= 0.90 and sum(pristine) - sum(darker) <= 2


def test_bundled_gate_accepts_the_darker_tones_of_the_sharp_samples(tmp_path):
    """Every sharp sample photo, darker, is still accepted through `diqa-edge score` (the assertion of the
    first version of this file, kept beside the unseen-photo rate above)."""
    import json
    import subprocess
    import sys

    from conftest import ROOT

    paths = []
    for name in SHARP:
        out = tmp_path / f"darker_{name.replace('.jpg', '.png')}"
        Image.fromarray(darker_skin_tone(np.asarray(Image.open(SAMPLES / name).convert("RGB")))).save(out)
        paths.append(out)
    proc = subprocess.run([sys.executable, "-m", "diqa_edge.cli", "score", *map(str, paths), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    decisions = {r["source"]: (r["decision"], round(r["score"], 2), r.get("top_reason")) for r in records}
    assert len(records) == len(SHARP)
    assert all(d[0] == "accept" for d in decisions.values()), decisions
