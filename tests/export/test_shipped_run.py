"""The bundled model can be rebuilt from the repository: its run folder (card + the fitted linear layer)
on the packaged ImageNet backbone computes the PyTorch scores recorded when the file was shipped."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, SAMPLES

RUN = ROOT / "diqa_edge" / "models" / "run"
pytestmark = pytest.mark.skipif(not (RUN / "head.safetensors").exists(), reason="no shipped run folder")


def test_shipped_run_reproduces_the_recorded_pytorch_scores():
    pytest.importorskip("torch", reason="full install only")
    from diqa_edge.export.parity import ParityImages, torch_scores
    from diqa_edge.models.load import load_trained

    trained = load_trained(RUN)
    refs = {r["image"]: r["pytorch_fp32"] for r in
            json.loads((ROOT / "diqa_edge" / "models" / "reference_scores.json").read_text())["scores"]
            if r["set"] == "samples"}
    photos = [SAMPLES / name for name in sorted(refs)][:6]
    scores = torch_scores(trained.model, ParityImages(photos, None), trained.contract)
    for photo, score in zip(photos, scores):
        # the same weights and the same code: only float32 summation order differs
        assert score == pytest.approx(refs[photo.name], abs=1e-3), photo.name
    manifest = json.loads((ROOT / "diqa_edge" / "models" / "default.manifest.json").read_text())
    assert trained.rule.to_dict() == manifest["rule"]          # the whole rule, the look at 1:1 included
    assert tuple(trained.model.output_names) == tuple(manifest["outputs"])
