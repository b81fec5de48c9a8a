"""QualityScorer on fixture models whose score is a known function of the pixels."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image

from conftest import FIXTURE_MODELS
from diqa_edge.errors import ModelLoadError, RuntimeUnavailableError
from diqa_edge.sdk import QualityScorer, decode_image, resize_and_crop
from diqa_edge.sdk.decision import RetakeRule
from diqa_edge.sdk.manifest import ModelManifest, read_sidecar, sidecar_path, write_sidecar
from fixtures.make_models import FIXTURE_CONTRACT as C
from fixtures.make_models import THRESHOLD, brightness_score

FP32_MODELS = ["brightness.onnx", "brightness.tflite"]
# fp32: the models sum 150,528 float32 values; accumulation error reaches ~7e-4.
FP32_TOL = 1e-3
# int8: input step 0.0187 in normalised units, output step 0.031 on the 1-10
# scale; half an output step plus input rounding stays under 0.05.
INT8_TOL = 0.05


def _grey_png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 272), (value,) * 3).save(buf, format="PNG")   # above min_side (256)
    return buf.getvalue()


@pytest.fixture(scope="module")
def scorers():
    return {name: QualityScorer(FIXTURE_MODELS / name) for name in
            FP32_MODELS + ["brightness_int8.tflite"]}


@pytest.mark.parametrize("value", [0, 64, 128, 200, 255])
def test_uniform_grey_scores_by_hand(scorers, value):
    expected = 1 + 9 * value / 255          # computed by hand, no model involved
    for name in FP32_MODELS:
        assert scorers[name].score(_grey_png(value)).score == pytest.approx(expected, abs=FP32_TOL), name
    assert scorers["brightness_int8.tflite"].score(_grey_png(value)).score == pytest.approx(expected, abs=INT8_TOL)


def test_real_photos_score_the_crop_the_contract_defines(scorers, sample_photos):
    for photo in sample_photos:
        expected = brightness_score(resize_and_crop(decode_image(photo, C), C))
        for name in FP32_MODELS:
            assert scorers[name].score(photo).score == pytest.approx(expected, abs=FP32_TOL)
        assert scorers["brightness_int8.tflite"].score(photo).score == pytest.approx(expected, abs=INT8_TOL)


def test_threshold_from_manifest_and_override(scorers):
    dark, bright = _grey_png(60), _grey_png(200)  # 3.12 and 8.06
    scorer = scorers["brightness.onnx"]
    assert scorer.threshold == THRESHOLD
    assert not scorer.score(dark).acceptable and scorer.score(bright).acceptable
    strict = QualityScorer(FIXTURE_MODELS / "brightness.onnx", threshold=9.0)
    assert not strict.score(bright).acceptable and strict.score(bright).threshold == 9.0


def test_result_reports_each_stage_time(scorers, sample_photos):
    r = scorers["brightness.tflite"].score(sample_photos[0])
    assert r.decode_ms > 0 and r.preprocess_ms > 0 and r.inference_ms > 0
    d = r.to_dict()
    assert d["total_ms"] == pytest.approx(r.decode_ms + r.preprocess_ms + r.inference_ms)
    assert d["decision"] in ("accept", "retake") and d["source"] == str(sample_photos[0])


def test_clamp_to_score_range(tmp_path):
    """A model whose raw output leaves its range a little is clamped (the contract's rule), raw kept; one far
    outside it (past half the range: not a regression head extrapolating) is an error, not a clipped
    answer (issue 32: a foreign model's 1000 read as 10.00)."""
    # the TFLite fixture carries no manifest inside, so the edited sidecar is the only one
    for name in ("brightness.tflite", "brightness.manifest.json"):
        shutil.copy(FIXTURE_MODELS / name, tmp_path / name)
    manifest = read_sidecar(tmp_path / "brightness.tflite")
    tight = manifest.contract.replace(score_min=2.0, score_max=8.0)
    write_sidecar(tmp_path / "brightness.tflite", ModelManifest(tight, RetakeRule(3.0), format="tflite"))
    scorer = QualityScorer(tmp_path / "brightness.tflite")
    white = scorer.score(_grey_png(255))          # raw 10: 2 past the top of 2-8, within half the range
    assert white.raw == pytest.approx(10.0, abs=FP32_TOL) and white.score == 8.0
    assert scorer.score(_grey_png(0)).score == 2.0
    write_sidecar(tmp_path / "brightness.tflite", ModelManifest(tight.replace(score_max=4.0), RetakeRule(3.0), format="tflite"))
    with pytest.raises(ModelLoadError, match=r"outside their range \(score 10 \(range 2-4\)"):
        QualityScorer(tmp_path / "brightness.tflite").score(_grey_png(255))


def test_onnx_falls_back_to_its_embedded_manifest(tmp_path):
    shutil.copy(FIXTURE_MODELS / "brightness.onnx", tmp_path / "m.onnx")
    scorer = QualityScorer(tmp_path / "m.onnx")  # no sidecar: metadata_props
    assert scorer.manifest.contract == C.with_layout("NCHW")


def test_missing_or_wrong_manifest_is_refused(tmp_path):
    shutil.copy(FIXTURE_MODELS / "brightness.tflite", tmp_path / "m.tflite")
    with pytest.raises(ModelLoadError, match="no manifest"):
        QualityScorer(tmp_path / "m.tflite")
    write_sidecar(tmp_path / "m.tflite", ModelManifest(C.replace(input_size=320), RetakeRule(5.0)))
    with pytest.raises(ModelLoadError, match="320"):
        QualityScorer(tmp_path / "m.tflite")
    sidecar_path(tmp_path / "m.tflite").write_text("{broken")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        QualityScorer(tmp_path / "m.tflite")


def test_unknown_and_corrupt_model_files(tmp_path):
    with pytest.raises(ModelLoadError, match="unknown model format"):
        QualityScorer(tmp_path / "model.h5")
    with pytest.raises(ModelLoadError, match="not found"):
        QualityScorer(tmp_path / "absent.onnx")
    (tmp_path / "junk.tflite").write_bytes(b"\0" * 64)
    with pytest.raises(ModelLoadError, match="TFLite"):
        QualityScorer(tmp_path / "junk.tflite")
    (tmp_path / "junk.onnx").write_bytes(b"\0" * 64)
    with pytest.raises(ModelLoadError, match="ONNX"):
        QualityScorer(tmp_path / "junk.onnx")


def test_coreml_prediction_says_it_needs_macos(tmp_path):
    import platform
    if platform.system() == "Darwin":
        pytest.skip("on macOS the Core ML runtime is real and is exercised by the parity tests")
    (tmp_path / "m.mlpackage").mkdir()
    with pytest.raises(RuntimeUnavailableError, match="macOS"):
        QualityScorer(tmp_path / "m.mlpackage")


def test_torchscript_runtime_matches(tmp_path, sample_photos):
    torch = pytest.importorskip("torch", reason="full install only")
    from diqa_edge.sdk.manifest import MANIFEST_KEY

    class Brightness(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("std", torch.tensor(C.std).view(1, 3, 1, 1))
            self.register_buffer("mean", torch.tensor(C.mean).view(1, 3, 1, 1))

        def forward(self, x):
            return (1 + 9 * (x * self.std + self.mean).mean()).reshape(1, 1)

    path = tmp_path / "b.pt"
    manifest = ModelManifest(C, RetakeRule(5.0), format="torchscript")
    torch.jit.save(torch.jit.script(Brightness()), str(path), _extra_files={MANIFEST_KEY: manifest.to_json()})
    scorer = QualityScorer(path)
    expected = brightness_score(resize_and_crop(decode_image(sample_photos[2], C), C))
    assert scorer.score(sample_photos[2]).score == pytest.approx(expected, abs=FP32_TOL)


def test_fixture_models_rebuild_to_the_same_function(tmp_path, sample_photos):
    """The committed fixtures are what tests/fixtures/make_models.py builds."""
    pytest.importorskip("tensorflow", reason="full install only")
    from fixtures import make_models

    built = make_models.build_all(tmp_path)
    for key, committed in (("onnx", "brightness.onnx"), ("tflite", "brightness.tflite")):
        a = QualityScorer(built[key]).score(sample_photos[3]).score
        b = QualityScorer(FIXTURE_MODELS / committed).score(sample_photos[3]).score
        assert a == pytest.approx(b, abs=1e-6)


@pytest.mark.parametrize("damage", ["truncated", "identifier-then-noise"])
def test_a_damaged_tflite_file_is_one_typed_error_not_a_crash(tmp_path, damage):
    """Both used to kill the process with SIGSEGV (exit 139, no message) inside the TFLite runtime."""
    import numpy as np
    good = (FIXTURE_MODELS / "brightness.tflite").read_bytes()
    bad = tmp_path / "m.tflite"
    if damage == "truncated":    # the reproduction: the bundled model cut at 2,219,776 bytes
        from diqa_edge.sdk.cli import bundled_model
        bad.write_bytes(bundled_model().read_bytes()[:2219776])
    else:
        bad.write_bytes(good[:8] + np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    shutil.copy(FIXTURE_MODELS / "brightness.manifest.json", tmp_path / "m.manifest.json")
    with pytest.raises(ModelLoadError, match="m.tflite: (damaged|not a loadable)"):
        QualityScorer(bad)


R5 = '"rule": {"version": 1, "score_threshold": 5}'


@pytest.mark.parametrize("text, words", [
    ("[]", "JSON object, got list"), ("null", "JSON object, got NoneType"),
    (b"\xff\xfe{", "not UTF-8"), ('{"manifest_version": 2, ' + R5 + '}', "lacks the field 'contract'"),
    ('{"manifest_version": 2, "contract": {}}', "lacks the field 'rule'"),
    ('{"manifest_version": 2, "contract": {}, "rule": {"version": 1, "score_threshold": NaN}}',
     "'rule.score_threshold' must be a finite number"),
    ('{"manifest_version": 2, "contract": {}, "rule": {"version": 2, "score_threshold": 5}}',
     "this SDK reads rule version 1"),
    ('{"manifest_version": 2, "contract": {}, "rule": {"version": 1, "score_threshold": 5, "threshold": 5}}',
     "unknown key(s) 'threshold'"),
    ('{"manifest_version": 2, "contract": {}, ' + R5 + ', "outputs": "score"}', "'outputs'"),
    ('{"manifest_version": 2, "contract": {}, "outputs": ["score", "dark"], "rule": {"version": 1, '
     '"score_threshold": 5, "reason_thresholds": {"dark": 2}}}', "rule.reason_thresholds.dark"),
    # issue 32: each of these used to load, and then answer every photo the same wrong way
    ('{"manifest_version": 2, "contract": {}, "outputs": ["score", "blur"], "rule": {"version": 1, '
     '"score_threshold": 5, "reason_thresholds": {"blurr": 0.5}}}', "names 'blurr', which the model does not output"),
    ('{"manifest_version": 2, "contract": {"std": [NaN, 0.2, 0.2]}, ' + R5 + '}', "std must be 3 finite"),
    ('{"manifest_version": 2, "contract": {"std": [Infinity, 0.2, 0.2]}, ' + R5 + '}', "std must be 3 finite"),
    ('{"manifest_version": 2, "contract": {"mean": [1e30, 0.4, 0.4]}, ' + R5 + '}', "mean must be 3 finite"),
    ('{"manifest_version": 2, "contract": {}, "rule": {"version": 1, "score_threshold": 50}}',
     "'rule.score_threshold' must lie in the score range 1-10"),
    ('{"manifest_version": 2, "contract": {}, ' + R5 + ', "outputs": ["score", "dark", "dark"]}',
     "list of distinct names"),
    ('{"manifest_version": 2, "contract": {"alpha_background": [300, -5, 0]}, ' + R5 + '}',
     "alpha_background must be 3 integers in 0-255"),
    ('{"manifest_version": 2, "contract": {"clamp": "no"}, ' + R5 + '}', "clamp must be true or false"),
    # a version 1 manifest (threshold beside a decision) meets the same checks
    ('{"manifest_version": 1, "contract": {}}', "lacks the field 'threshold'"),
    ('{"manifest_version": 1, "contract": {}, "threshold": NaN}', "field 'threshold' must be a finite number"),
    ('{"manifest_version": 1, "contract": {}, "threshold": 5, "decision": {"detail": {"noise_mx": 14}}}',
     "'decision.detail' has unknown key(s) 'noise_mx'"),   # a misspelt threshold would switch the 1:1 noise look off
    ('{"manifest_version": 1, "contract": {}, "threshold": 50}', "'rule.score_threshold' must lie in the score range"),
    ('{"manifest_version": 1, "contract": {}, "threshold": 5, "outputs": ["score", "dark"], '
     '"decision": {"reason_thresholds": {"dark": 2}}}', "rule.reason_thresholds.dark"),
    ('{"manifest_version": 1, "contract": {}, "threshold": 5, "decision": {"detail": [1]}}',
     "'decision.detail' must be a JSON object"),
    ('{"manifest_version": 3, "contract": {}, ' + R5 + '}', "manifest_version 3 is not supported"),
])
def test_a_damaged_manifest_names_its_problem(tmp_path, text, words):
    shutil.copy(FIXTURE_MODELS / "brightness.onnx", tmp_path / "m.onnx")
    path = sidecar_path(tmp_path / "m.onnx")
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ModelLoadError, match=words.replace("(", r"\(").replace(")", r"\)")):
        QualityScorer(tmp_path / "m.onnx")


def test_arguments_outside_their_range_are_usage_errors(sample_photos):
    from diqa_edge.errors import DiqaError, UsageError
    for threshold in (float("nan"), float("inf"), 1e9, -5.0):
        with pytest.raises(UsageError, match="outside the score range"):
            QualityScorer(FIXTURE_MODELS / "brightness.onnx", threshold=threshold)
    for runtime in FP32_MODELS:
        with pytest.raises(UsageError, match="threads"):
            QualityScorer(FIXTURE_MODELS / runtime, threads=0)
    with pytest.raises(DiqaError, match="decode"):
        QualityScorer(FIXTURE_MODELS / "brightness.onnx", decode="bogus")


def test_a_thumbnail_or_a_single_pixel_is_sent_back_as_too_small(scorers):
    """A 1 x 1 image used to be accepted (score 7.03 with the old bundled model)."""
    from diqa_edge.sdk.hints import INPUT_HINTS
    scorer = scorers["brightness.onnx"]
    for size in ((1, 1), (255, 400)):
        buf = io.BytesIO()
        Image.new("RGB", size, (230,) * 3).save(buf, format="PNG")
        result = scorer.score(buf.getvalue())
        assert result.score > scorer.threshold       # bright enough for this model: only the size fails it
        assert not result.acceptable and result.top_reason == "small" and result.hint == INPUT_HINTS["small"].hint
    assert scorer.score(_grey_png(230)).acceptable   # 320 x 272: above min_side


def test_a_manifest_is_strict_json_even_when_its_evidence_holds_nan():
    """An older run card's decision carried ``"quantile": NaN``: the manifest written from it must still parse
    in a browser (JSON has no NaN), with null in its place, and numbers that are finite kept exactly."""
    import json

    manifest = ModelManifest(C, RetakeRule(4.0435), rule_evidence={"quantile": float("nan"),
                                                                   "table": [{"t": float("inf"), "s": 0.5}]})
    doc = json.loads(manifest.to_json(), parse_constant=lambda c: pytest.fail(f"{c} in the manifest"))
    assert doc["rule_evidence"] == {"quantile": None, "table": [{"t": None, "s": 0.5}]}
    assert doc["rule"] == {"version": 1, "score_threshold": 4.0435, "reason_thresholds": {}}


def test_a_sidecar_that_disagrees_with_the_files_own_manifest_is_refused(tmp_path):
    """Issue 32: the sidecar won over the manifest inside the file without a word when they disagreed; a
    sidecar copied beside another model decided its every answer."""
    shutil.copy(FIXTURE_MODELS / "brightness.onnx", tmp_path / "m.onnx")   # carries its manifest inside
    embedded = QualityScorer(tmp_path / "m.onnx").manifest
    write_sidecar(tmp_path / "m.onnx", embedded)                           # the same: fine
    assert QualityScorer(tmp_path / "m.onnx").manifest == embedded
    write_sidecar(tmp_path / "m.onnx", ModelManifest(embedded.contract, RetakeRule(embedded.threshold + 1.0), format="onnx"))
    with pytest.raises(ModelLoadError, match=r"disagrees with the manifest inside m.onnx \(field\(s\) rule\)"):
        QualityScorer(tmp_path / "m.onnx")


def test_photo_bytes_in_any_buffer_or_file_object_are_scored_and_errors_stay_short(tmp_path, sample_photos):
    """Issue 32: score(bytearray) was refused with the whole buffer's repr in the message (441,202 characters
    for 154 KB); io.BytesIO and open files were refused; score_frame(width=1024.0) raised a raw TypeError;
    "NV21" was refused."""
    import io

    import numpy as np

    from diqa_edge.errors import DiqaError, UsageError
    from diqa_edge.sdk.frames import rgb_to_yuv420

    scorer = QualityScorer(FIXTURE_MODELS / "brightness.onnx")
    data = sample_photos[0].read_bytes()
    want = scorer.score(data).score
    with open(sample_photos[0], "rb") as fh:
        sources = [bytearray(data), memoryview(data), io.BytesIO(data), fh]
        assert [scorer.score(s).score for s in sources] == [want] * 4
    with pytest.raises(DiqaError) as caught:
        scorer.score(bytearray(b"\x00" * 200_000))
    assert len(str(caught.value)) < 200 and "<bytearray>" in str(caught.value)
    with pytest.raises(DiqaError, match="not a photo source"):
        scorer.score(12345)
    rgb = np.asarray(Image.open(sample_photos[0]).convert("RGB").resize((320, 240)))
    nv21 = rgb_to_yuv420(rgb, "nv21")
    assert scorer.score_frame(nv21, "NV21", 320, 240).score == scorer.score_frame(nv21, "nv21", 320, 240).score
    with pytest.raises(UsageError, match="width must be a whole number"):
        scorer.score_frame(nv21, "nv21", 320.0, 240)


def test_the_bundled_model_has_a_public_constructor_and_results_say_their_decision(sample_photos):
    """Issue 32: the bundled model was reachable only through sdk.cli.bundled_model(); the decision word only
    through to_dict()."""
    from diqa_edge.sdk import QualityScorer as Public
    from diqa_edge.sdk.scorer import bundled_model

    scorer = Public.bundled(threads=1)
    assert scorer.model_path == bundled_model() and scorer.model_path.name == "default.tflite"
    result = scorer.score(sample_photos[0])
    assert result.decision == ("accept" if result.acceptable else "retake") == result.to_dict()["decision"]
