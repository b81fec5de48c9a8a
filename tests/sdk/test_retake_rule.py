"""The retake rule a manifest stores is the one ``QualityScorer`` and ``diqa-edge score`` apply."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from fixtures.make_models import FIXTURE_CONTRACT
from diqa_edge.sdk.decision import RetakeRule
from diqa_edge.sdk.hints import HINTS
from diqa_edge.sdk.manifest import ModelManifest, write_sidecar

THRESHOLD = 3.0
DARK_T = 0.7


def test_rule_sends_back_on_the_score_or_on_a_reason_past_its_own_threshold():
    rule = RetakeRule.from_decision({"reason_thresholds": {"dark": 0.7, "blur": 0.4}}, 5.0)
    assert rule.decide(6.0, {"dark": 0.2, "blur": 0.1}) == (True, None)
    assert rule.decide(4.0, {"dark": 0.2, "blur": 0.1}) == (False, None)
    assert rule.decide(9.0, {"dark": 0.75, "blur": 0.1}) == (False, "dark")
    assert rule.decide(9.0, {"dark": 0.75, "blur": 0.6}) == (False, "blur")    # furthest past its threshold
    outputs = np.array([[6.0, 0.1, 0.2], [4.0, 0.1, 0.2], [9.0, 0.1, 0.75], [9.0, 0.6, 0.75]])
    assert rule.retake_mask(outputs, ("blur", "dark")).tolist() == [False, True, True, True]
    assert RetakeRule.from_decision({}, 5.0).reason_thresholds == {}          # a score-only manifest


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """ONNX model: m = mean pixel on [0, 1]; outputs [1 + 9 m, p(blur) = 0.1, p(dark) = 1 - m]."""
    torch = pytest.importorskip("torch", reason="full install only (builds the fixture model)")

    class Brightness(torch.nn.Module):
        def forward(self, x):
            std = torch.tensor(FIXTURE_CONTRACT.std).view(1, 3, 1, 1)
            mean = torch.tensor(FIXTURE_CONTRACT.mean).view(1, 3, 1, 1)
            m = (x * std + mean).mean(dim=(1, 2, 3)).unsqueeze(1)
            return torch.cat([1 + 9 * m, torch.full_like(m, 0.1), 1 - m], dim=1)

    path = tmp_path_factory.mktemp("rule") / "rule.onnx"
    size = FIXTURE_CONTRACT.input_size
    torch.onnx.export(Brightness(), torch.zeros(1, 3, size, size), str(path), opset_version=17, dynamo=False,
                      input_names=["image"], output_names=["outputs"])
    write_sidecar(path, ModelManifest(contract=FIXTURE_CONTRACT, threshold=THRESHOLD, name="rule-fixture",
                                      format="onnx", precision="fp32", outputs=("score", "blur", "dark"),
                                      decision={"reason_thresholds": {"dark": DARK_T}}))
    return path


def _grey(folder, value):
    path = folder / f"grey{value}.png"
    Image.new("RGB", (320, 272), (value,) * 3).save(path)   # above the contract's min_side
    return path


@pytest.mark.parametrize("value, acceptable, trigger", [
    (50, False, "dark"),     # score 2.76 < 3 and p(dark) 0.80 > 0.7: the reason names it
    (70, False, "dark"),     # score 3.47 passes, p(dark) 0.73 > 0.7: sent back by the reason rule alone
    (100, True, None),       # score 4.53, p(dark) 0.61: accepted
])
def test_scorer_and_cli_apply_the_manifests_rule(model, tmp_path, value, acceptable, trigger):
    from diqa_edge.sdk import QualityScorer

    photo = _grey(tmp_path, value)
    result = QualityScorer(model).score(photo)
    assert result.score == pytest.approx(1 + 9 * value / 255, abs=1e-3)
    assert result.acceptable is acceptable
    assert result.hint == (HINTS[trigger].hint if trigger else None)
    out = subprocess.run([sys.executable, "-m", "diqa_edge.cli", "score", str(photo), "--model", str(model),
                          "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    record = json.loads(out.stdout.strip().splitlines()[-1])    # --json: one object per photo, per line
    assert record["decision"] == ("accept" if acceptable else "retake"), out.stdout
