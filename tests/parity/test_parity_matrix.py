"""Parity matrix: the SDK's full path against PyTorch for every format this machine runs,
the training eval transform against the SDK, and the bundled model against its recorded reference."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest
from scipy.stats import spearmanr

from conftest import ROOT, SAMPLES, SHARED_DATA
from diqa_edge.contract import DEFAULT_CONTRACT
from diqa_edge.sdk import QualityScorer
from diqa_edge.sdk.decode import decode_image
from diqa_edge.sdk.preprocess import resize_and_crop

# Tolerances on the 1-10 scale, with their reason:
TOLERANCE = {
    "fp32": {"max_abs": 0.01},      # conversion only; float32 reassociation moves scores by < 1e-4
    "fp16": {"max_abs": 0.05},      # weights rounded to half precision
    "int8-dynamic": {"srocc": 0.99},  # int8 weights: small shifts, ranking must hold
    "int8": {"srocc": 0.98},        # int8 weights and activations on a 60-image fixture head (see below)
    "int8-trunk": {"srocc": 0.99},   # the backbone in int8, pooling and heads in float; the fixture's
}                                    # export gate (tests/conftest.py; the shipped model's: parity.DEFAULT_THRESHOLDS)
# The shipped-model gate stays SROCC >= 0.99 (diqa_edge.export.parity); the session fixture is a head
# trained for seconds on 120 images, whose full-integer int8 SROCC measured 0.988 here.


def test_training_eval_transform_is_the_sdk_preprocessing(tmp_path, sample_photos):
    """Shared code, so exactly equal, with and without the resized-image cache."""
    from diqa_edge.data.records import Record
    from diqa_edge.training.inputs import EvalImages

    records = [Record(image=p, name=p.name, mos_native=5, mos=5, group=p.name, dataset="s") for p in sample_photos]
    for cache in (None, tmp_path / "cache"):
        ds = EvalImages(records, DEFAULT_CONTRACT, cache)
        for i, p in enumerate(sample_photos):
            assert np.array_equal(ds.crop(i), resize_and_crop(decode_image(p, DEFAULT_CONTRACT), DEFAULT_CONTRACT))


def _formats(exported):
    return [(r["target"], r["precision"]) for r in exported["report"]]


def test_every_runnable_format_matches_pytorch_through_the_sdk(exported):
    import torch

    from diqa_edge.models.load import load_trained
    from diqa_edge.sdk.preprocess import preprocess

    trained = load_trained(exported["run"])
    images = sorted(exported["images"].glob("*.png"))
    with torch.inference_mode():
        ref = np.array([trained.contract.clamp_score(float(trained.model(torch.from_numpy(preprocess(p, trained.contract))).reshape(-1)[0]))
                        for p in images])
    checked = 0
    for target, precision in _formats(exported):
        if target == "coreml" and platform.system() != "Darwin":
            print(f"coreml {precision}: skipped, Core ML prediction needs macOS")
            continue
        path = next(p for p in exported["out"].glob(f"*_{target}_{precision}.*")
                    if p.suffix in (".onnx", ".tflite", ".mlpackage"))
        scores = np.array([QualityScorer(path).score(p).score for p in images])
        max_abs = float(np.abs(scores - ref).max())
        rho = float(spearmanr(scores, ref)[0])
        print(f"{target} {precision}: max|d| {max_abs:.4f}, SROCC {rho:.4f} on {len(images)} images")
        rule = TOLERANCE[precision]
        if "max_abs" in rule:
            assert max_abs <= rule["max_abs"], (target, precision, max_abs)
        else:
            assert rho >= rule["srocc"], (target, precision, rho)
        checked += 1
    assert checked >= 6   # ONNX fp32 + five TFLite precisions


BUNDLED = ROOT / "diqa_edge" / "models"
SKIN = SHARED_DATA / "skin-cc0" / "images"
HELDOUT_SROCC = 0.95


@pytest.mark.skipif(not (BUNDLED / "default.tflite").exists(), reason="no bundled default model in this build")
def test_bundled_model_reproduces_its_recorded_pytorch_scores():
    """The shipped int8 file through the SDK, against PyTorch fp32 scores recorded at export, on the
    sample photos, CC0 skin photos and their distorted views (rebuilt here by the same pure functions)."""
    from diqa_edge.export.bundle import reference_view

    refs = json.loads((BUNDLED / "reference_scores.json").read_text())["scores"]
    roots = {"samples": SAMPLES, "skin-cc0": SKIN, "skin-cc0-views": SKIN,
             "biq2021-heldout": SHARED_DATA / "biq2021" / "Images"}
    scorer = QualityScorer(BUNDLED / "default.tflite")
    ours, theirs, views, held = [], [], [], []
    for r in refs:
        path = roots[r["set"]] / r["image"]
        if not path.exists():
            continue
        if r["set"] == "skin-cc0-views":
            ours.append(scorer.score(reference_view(path, r["family"], r["level"], scorer.contract)).score)
            views.append(len(ours) - 1)
        else:
            ours.append(scorer.score(path).score)
            if r["set"] == "biq2021-heldout":
                held.append(len(ours) - 1)
        theirs.append(r["pytorch_fp32"])
    ours, theirs = np.array(ours), np.array(theirs)
    d = np.abs(ours - theirs)
    rho_all = float(spearmanr(ours, theirs)[0])
    rho_views = float(spearmanr(ours[views], theirs[views])[0])
    rho_held = float(spearmanr(ours[held], theirs[held])[0])
    print(f"bundled int8 vs recorded PyTorch on {len(ours)} images: max|d| {d.max():.3f}, mean|d| {d.mean():.3f}, "
          f"SROCC {rho_all:.4f}; BIQ2021 held-out {rho_held:.4f} (n={len(held)}); skin views {rho_views:.4f} "
          f"(n={len(views)})")
    assert len(held) == 100 and len(views) == 60
    # A regression guard below the fidelity measured when the file was shipped (benchmarks/RESULTS.md):
    # the 512-px fp16 feature model, 1.0000 on these 100 held-out BIQ2021 images, mean |d| 0.004 (the
    # previous 384-px int8-dynamic file: 0.9976, 0.049; these bounds were set for it).
    assert rho_held >= HELDOUT_SROCC and d[held].mean() < 0.2


@pytest.mark.skipif(not (BUNDLED / "default.tflite").exists(), reason="no bundled default model in this build")
def test_bundled_test_vectors_hold():
    from diqa_edge.contract import Contract
    from diqa_edge.export.vectors import detail_record, tensor_record

    doc = json.loads((BUNDLED / "default.vectors.json").read_text())
    contract = Contract.from_dict(doc["contract"])
    scorer = QualityScorer(BUNDLED / "default.tflite")
    for v in doc["vectors"]:
        image = BUNDLED / v["image"]
        assert tensor_record(decode_image(image, contract), contract, "NHWC")["sha256"] == v["input"]["sha256"]
        result = scorer.score(image)
        assert result.score == pytest.approx(v["expected_score"], abs=1e-4)
        # the 1:1 look: the same tile and the same two numbers (docs/preprocessing.md, step 8)
        got = detail_record(decode_image(image, contract), contract, v["detail"].get("sharpness_measure", "raw"))
        assert got["sha256"] == v["detail"]["sha256"]
        assert got["noise"] == pytest.approx(v["detail"]["noise"], abs=1e-6)
        assert got["sharpness"] == pytest.approx(v["detail"]["sharpness"], abs=1e-6)
        assert result.detail["noise"] == pytest.approx(v["detail"]["noise"], abs=1e-4)
