"""The README's main job on the bundled model: the blurred and the darkened sample photos are retakes
with the right patient hint."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, SAMPLES
from diqa_edge.sdk.cli import bundled_model
from diqa_edge.sdk.hints import HINTS
from helpers.camera_views import glare_view

pytestmark = pytest.mark.skipif(bundled_model() is None, reason="no bundled default model in this build")


def test_score_prints_the_right_hint_for_the_blurred_and_darkened_samples():
    blurred = SAMPLES / "skin_ISIC_0000083_blurred.jpg"
    darkened = SAMPLES / "skin_ISIC_0000157_darkened.jpg"
    proc = subprocess.run([sys.executable, "-m", "diqa_edge.cli", "score", str(blurred), str(darkened)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith(str(SAMPLES))}
    print("\n".join(rows.values()))
    assert "retake" in rows[str(blurred)] and HINTS["blur"].hint in rows[str(blurred)]
    assert "retake" in rows[str(darkened)] and HINTS["dark"].hint in rows[str(darkened)]


def test_score_json_gives_the_glare_hint_for_a_flash_reflection(tmp_path):
    photo = glare_view(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "diqa_edge.cli", "score", str(photo), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.splitlines()[0])
    assert row["acceptable"] is False
    assert row["top_reason"] == "glare"
    assert row["hint"] == HINTS["glare"].hint
