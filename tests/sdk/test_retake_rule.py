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
    rule = RetakeRule(5.0, {"dark": 0.7, "blur": 0.4})
    assert rule.decide(6.0, {"dark": 0.2, "blur": 0.1}) == (True, None)
    assert rule.decide(4.0, {"dark": 0.2, "blur": 0.1}) == (False, None)
    assert rule.decide(9.0, {"dark": 0.75, "blur": 0.1}) == (False, "dark")
    assert rule.decide(9.0, {"dark": 0.75, "blur": 0.6}) == (False, "blur")    # furthest past its threshold
    outputs = np.array([[6.0, 0.1, 0.2], [4.0, 0.1, 0.2], [9.0, 0.1, 0.75], [9.0, 0.6, 0.75]])
    assert rule.retake_mask(outputs, ("blur", "dark")).tolist() == [False, True, True, True]
    assert RetakeRule(5.0).reason_thresholds == {}          # a score-only manifest


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
    write_sidecar(path, ModelManifest(contract=FIXTURE_CONTRACT, rule=RetakeRule(THRESHOLD, {"dark": DARK_T}),
                                      name="rule-fixture", format="onnx", precision="fp32",
                                      outputs=("score", "blur", "dark")))
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


def _numbers(doc) -> list[float]:
    """Every number in a JSON document, wherever it sits."""
    if isinstance(doc, dict):
        return [n for v in doc.values() for n in _numbers(v)]
    if isinstance(doc, list):
        return [n for v in doc for n in _numbers(v)]
    return [doc] if isinstance(doc, (int, float)) and not isinstance(doc, bool) else []


def test_the_bundled_manifest_stores_each_threshold_of_its_rule_once():
    """Issue 33: the score threshold was stored three times (threshold, decision.threshold,
    decision.score_threshold) and again in two sentences; now the rule's JSON form is its only home."""
    from diqa_edge.sdk.scorer import BUNDLED_MODEL_DIR

    doc = json.loads((BUNDLED_MODEL_DIR / "default.manifest.json").read_text())
    rule = RetakeRule.from_dict(doc["rule"])
    numbers = _numbers(doc)
    thresholds = [rule.score_threshold, *rule.reason_thresholds.values(), rule.detail.noise_max, rule.detail.sharpness_min]
    assert len(thresholds) == 12 and all(numbers.count(t) == 1 for t in thresholds), \
        [t for t in thresholds if numbers.count(t) != 1]
    assert doc["rule"]["version"] == 1 and not {"threshold", "threshold_rule", "decision"} & set(doc)
    assert f"{rule.score_threshold:.3f}" not in json.dumps(doc["rule_evidence"])   # no sentence repeats it


def test_a_version_1_manifest_reads_as_the_same_rule_and_evidence():
    """The bundled manifest as it was written before the rule had its own form (committed copy) gives the
    rule the same model's manifest carried in the rule's own form (version 2, committed copy of the bundled
    manifest of 52751be; the bundled model has changed since), and keeps how it was chosen as evidence."""
    v1 = ModelManifest.from_json((ROOT / "tests/fixtures/legacy/default.manifest.v1.json").read_bytes())
    now = ModelManifest.from_json((ROOT / "tests/fixtures/legacy/default.manifest.v2.json").read_bytes())
    assert v1.rule == now.rule and v1.rule_evidence == now.rule_evidence
    assert v1.rule.score_threshold == pytest.approx(4.6909077, abs=1e-7) and v1.rule.detail.tile == 256
    assert set(v1.rule_evidence) == {"kind", "quantile", "chosen_on", "calibration", "detail"}
    assert set(v1.rule_evidence["detail"]) == {"chosen_on", "table"}
    assert json.loads(v1.to_json())["manifest_version"] == 2          # written again, it is version 2


def test_the_rule_round_trips_through_its_json_form_and_says_itself():
    from diqa_edge.sdk.detail import DetailRule

    rule = RetakeRule(4.5, {"dark": 0.7, "blur": 0.25}, DetailRule(noise_max=14.0, sharpness_min=0.47, tile=256))
    doc = rule.to_dict()
    assert doc == {"version": 1, "score_threshold": 4.5, "reason_thresholds": {"dark": 0.7, "blur": 0.25},
                   "detail": {"noise_max": 14.0, "sharpness_min": 0.47, "tile": 256,
                              "sharpness_measure": "net-of-noise"}}
    assert RetakeRule.from_dict(json.loads(json.dumps(doc))) == rule
    assert rule.describe() == ("retake when the score is below 4.500 or a reason's probability is above its "
                               "threshold or, at 1:1, noise > 14.00 or sharpness < 0.47")
    assert RetakeRule(5.0).describe() == "retake when the score is below 5.000"
    stricter = rule.with_score_threshold(6.0)       # score --threshold: the reasons' thresholds stay
    assert stricter.score_threshold == 6.0 and stricter.reason_thresholds == rule.reason_thresholds
    assert stricter.detail == rule.detail


def test_a_version_1_manifest_with_a_given_cut_keeps_how_it_was_chosen():
    doc = {"manifest_version": 1, "contract": {}, "threshold": 6.0, "threshold_rule": "given at export (--accept-threshold)"}
    m = ModelManifest.from_json(json.dumps(doc))
    assert m.rule == RetakeRule(6.0) and m.rule_evidence == {"chosen_on": "given at export (--accept-threshold)"}
