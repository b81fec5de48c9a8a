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


@pytest.fixture(scope="session")
def _digest_memo_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("identity-memo")


@pytest.fixture(autouse=True)
def _own_digest_memo(_digest_memo_root, monkeypatch):
    """Image ids computed by tests are memoised in the session's temporary folder, not in the user's cache
    (whose memo would keep a line for every temporary photo of every run): by the variable, so the processes
    a test starts (the DDP trainer, the CLI) inherit it."""
    monkeypatch.setenv("DIQA_EDGE_DIGEST_MEMO", str(_digest_memo_root / "digests.jsonl"))


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

SKIN = SHARED_DATA / "skin-cc0" / "images"


def unseen_skin_photos() -> list[Path]:
    """The test part of the skin set's grouped split (seed 0): the CC0 photos the shipped model never
    trained on. Every photo has the same number of views, so splitting one record per photo gives the
    same parts."""
    from diqa_edge.data.records import LoadedDataset, Record
    from diqa_edge.data.splits import split_with_holdout

    photos = sorted(SKIN.glob("*.jpg"))
    records = [Record(image=p, name=p.stem, mos_native=10, mos=10, group=p.stem, dataset="derm") for p in photos]
    test = set(split_with_holdout(LoadedDataset("derm", records, (1.0, 10.0), "all"), 0, 0, 0.2).test)
    return [p for p in photos if p.stem in test]


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """One real export per test session (onnx2tf takes about a minute), shared by export and parity tests."""
    import json
    import subprocess

    from helpers.fixture_model import make_run_dir

    if not SKIN.exists():
        pytest.skip("../shared/data/skin-cc0 not present: no real images for parity")
    base = tmp_path_factory.mktemp("export")
    images = base / "images"
    run = make_run_dir(base / "run", SKIN, images)
    out = base / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "diqa_edge.export", "--checkpoint", str(run), "--out", str(out),
         "--images", str(images), "--num-images", "60", "--calibration", str(images), "--num-calibration", "60",
         "--accept-threshold", "6.0",
         # The fixture's head is trained for seconds on 120 images; its full-integer int8 ranking
         # measured SROCC 0.988 against PyTorch. Shipped models keep the default gate (0.99).
         "--min-srocc-int8", "0.98",
         # Its int8-trunk file measured 0.9944 (its int8-dynamic 0.9955: this head's scores sit in a
         # narrow band where int8 noise reorders neighbours). The shipped model keeps 0.995 (0.9952 on
         # its own parity images, 0.9972 on 600 held-out crops); the hint gate (95 %) is unchanged.
         "--min-srocc-int8-trunk", "0.99"],
        capture_output=True, text=True, cwd=ROOT, timeout=1200)
    report_path = out / "export_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return {"run": run, "out": out, "proc": proc, "report": report, "images": images}



@pytest.fixture
def restore_logging():
    """The package's logging as it was: a test that runs ``logs.configure`` leaves no handler behind."""
    import logging

    root = logging.getLogger("diqa_edge")
    saved = (root.handlers[:], root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved
