"""The export chain on a real network: every format built, manifests round-trip, the gate bites."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import SKIN
from diqa_edge.contract import Contract
from diqa_edge.errors import ModelLoadError
from diqa_edge.sdk import QualityScorer
from diqa_edge.sdk.manifest import MANIFEST_KEY, read_sidecar
from diqa_edge.sdk.tflite_metadata import read_tflite_metadata

EXPECTED = {("onnx", "fp32"), ("onnx", "fp16"), ("tflite", "fp32"), ("tflite", "fp16"), ("tflite", "int8-dynamic"),
            ("tflite", "int8"), ("tflite", "int8-trunk"), ("coreml", "fp32"), ("coreml", "fp16"), ("coreml", "int8")}


def _row(exported, target, precision):
    return next(r for r in exported["report"] if r["target"] == target and r["precision"] == precision)


def test_export_all_builds_every_format_and_passes_the_gate(exported):
    assert exported["report"] is not None, exported["proc"].stderr[-3000:]
    assert exported["proc"].returncode == 0, exported["proc"].stdout[-3000:]
    assert {(r["target"], r["precision"]) for r in exported["report"]} == EXPECTED
    for r in exported["report"]:
        assert r["status"] == "pass" and r["n"] == 60
        if r["target"] == "coreml":
            assert "reference executor" in r["runtime"] or "Apple" in r["runtime"]
            # 49 conv + 3 score-head linear + reasons-head linear + score
            assert r["layers"]["ok"] and len(r["layers"]["layers"]) == 54
        # both heads in every format: the reasons' probabilities pass the gate too
        if r["precision"] in ("fp32", "fp16"):
            assert r["reasons_max_abs"] <= {"fp32": 0.01, "fp16": 0.05}[r["precision"]], r
        assert r["hint_agreement"] >= 0.9, r
        print(f"{r['target']} {r['precision']}: max|d| {r['max_abs']:.4f}, SROCC vs torch {r['srocc']:.4f}, "
              f"{r['size_mb']:.2f} MB")
    assert _row(exported, "tflite", "fp32")["max_abs"] <= 0.01
    assert _row(exported, "tflite", "fp16")["max_abs"] <= 0.05
    assert _row(exported, "tflite", "int8")["srocc"] >= 0.98   # the fixture's gate, see tests/conftest.py
    assert _row(exported, "tflite", "int8")["size_mb"] < _row(exported, "tflite", "fp32")["size_mb"] / 3
    report_md = (exported["out"] / "export_report.md").read_text()
    assert report_md.count("| TFLite |") == 5 and report_md.count("| Core ML (") == 3
    assert report_md.count("no layer out of tolerance") == 3


def test_bench_runs_every_format_and_the_coreml_reference_executor(exported, tmp_path):
    """Small counts so the suite stays fast; the real figures are in benchmarks/RESULTS.md."""
    from diqa_edge.bench import markdown, run_bench

    doc = run_bench(exported["out"], exported["run"], tmp_path, runs=3, threads=(1,), max_images=12,
                    reference_images=4, images=exported["images"] / "manifest.csv")
    rows = {(r["format"], r["precision"]): r for r in doc["rows"]}
    assert len(rows) == 11   # PyTorch + every artefact
    for (fmt, precision), r in rows.items():
        assert "error" not in r.get("status", ""), r
        if fmt.startswith("Core ML"):
            assert fmt == "Core ML (reference executor, not Apple's runtime)"
            assert r["executor_s_per_image"] > 0 and "latency" not in r
            assert next(iter(r["accuracy"].values()))["n"] == 4
            assert r["max_abs_vs_torch"] <= {"fp32": 1e-3, "fp16": 0.05, "int8": 0.5}[precision]
        else:
            assert r["latency"]["1"]["inference"]["median_ms"] > 0
    md = markdown(doc)
    assert md.count("checker, not a phone runtime") == 3 and "(n=4)" in md
    assert (tmp_path / "bench.png").exists()


def test_int8_tflite_through_the_sdk_scores_real_photos_like_pytorch(exported, tmp_path):
    """The SDK (ai-edge-litert) on the int8 file, against PyTorch on the same tensors."""
    import torch

    from diqa_edge.models.load import load_trained
    from diqa_edge.sdk.preprocess import preprocess

    from helpers.fixture_model import make_image_folder

    trained = load_trained(exported["run"])
    scorer = QualityScorer(next(exported["out"].glob("*_int8.tflite")))
    # photos neither the gate nor the head fit saw, with their graded views (pristine photos alone
    # score within a narrow band, where ranking is noise)
    photos = [p for p, _ in make_image_folder(SKIN, tmp_path / "unseen", 30, 5)]
    ours, ref = [], []
    for p in photos:
        ours.append(scorer.score(p).score)
        with torch.inference_mode():
            ref.append(trained.contract.clamp_score(float(trained.model(torch.from_numpy(preprocess(p, trained.contract))).reshape(-1)[0])))
    from scipy.stats import spearmanr
    ours, ref = np.array(ours), np.array(ref)
    print(f"int8 via SDK on {len(photos)} unseen images: max|d| {np.abs(ours - ref).max():.3f}, "
          f"SROCC {spearmanr(ours, ref)[0]:.4f}")
    # On the gate's own images this file passed 0.98 (the fixture's gate); on these unseen images
    # full-integer int8 measured 0.969 here. A regression guard below that, and the gap stays visible:
    # int8 ranking fidelity below 0.99 is an open problem (benchmarks/RESULTS.md, targets).
    assert spearmanr(ours, ref)[0] >= 0.95


def test_int8_trunk_keeps_the_stem_and_everything_after_the_pooling_in_float(exported):
    """The int8-trunk recipe (diqa_edge.export.int8_trunk), read back from the file: the first two
    convolutions and every op that reads the global pooling compute in float32, every other convolution
    in int8; input and output stay float32 for the SDK."""
    from ai_edge_litert.interpreter import Interpreter

    from diqa_edge.export.int8_trunk import CONVOLUTIONS, STEM_FLOAT_CONVS

    it = Interpreter(model_path=str(next(exported["out"].glob("*_tflite_int8-trunk.tflite"))))
    dtype = {t["index"]: np.dtype(t["dtype"]).name for t in it.get_tensor_details()}
    ops = [o for o in it._get_ops_details() if o["op_name"] not in ("QUANTIZE", "DEQUANTIZE")]
    convs = [dtype[o["outputs"][0]] for o in ops if o["op_name"] in CONVOLUTIONS]
    assert convs[:STEM_FLOAT_CONVS] == ["float32"] * STEM_FLOAT_CONVS
    assert set(convs[STEM_FLOAT_CONVS:]) == {"int8"} and len(convs) > 30
    pooled: set[int] = set()
    for o in ops:
        if o["op_name"] == "MEAN" or pooled.intersection(o["inputs"]):
            pooled.update(o["outputs"])
    assert len(pooled) >= 3 and {dtype[t] for t in pooled} == {"float32"}
    assert it.get_input_details()[0]["dtype"] == np.float32 and it.get_output_details()[0]["dtype"] == np.float32


def test_manifests_round_trip_to_the_same_contract(exported):
    from diqa_edge.models.load import load_trained
    from diqa_edge.sdk.runtimes import load_runtime

    contract = load_trained(exported["run"]).contract
    onnx_path = next(exported["out"].glob("*_onnx_fp32.onnx"))
    embedded = load_runtime(onnx_path).embedded_manifest()
    assert embedded.contract == contract.with_layout("NCHW") and embedded.threshold == 6.0
    for tfl in exported["out"].glob("*.tflite"):
        inside = json.loads(read_tflite_metadata(tfl))
        assert Contract.from_dict(inside["contract"]) == contract.with_layout("NHWC")
        assert read_sidecar(tfl).contract == contract.with_layout("NHWC")
        assert read_sidecar(tfl).precision in tfl.stem
        # bound to its file (sdk.check): the same check inside and beside, one number per output
        assert inside["check"] == read_sidecar(tfl).check and len(inside["check"]["outputs"]) == len(inside["outputs"])
    assert embedded.check and embedded.check == read_sidecar(onnx_path).check


def test_coreml_spec_has_image_input_scale_bias_and_metadata(exported):
    import coremltools as ct

    from diqa_edge.models.load import load_trained

    contract = load_trained(exported["run"]).contract
    for pkg in exported["out"].glob("*.mlpackage"):
        spec = ct.utils.load_spec(str(pkg))
        img = spec.description.input[0].type.imageType
        assert (img.width, img.height) == (224, 224)
        assert ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(img.colorSpace) == "RGB"
        meta = dict(spec.description.metadata.userDefined)
        manifest = json.loads(meta[MANIFEST_KEY])
        assert Contract.from_dict(manifest["contract"]) == contract
        pre = manifest["extra"]["image_input"]
        assert pre["scale"] == pytest.approx(1 / 255)
        assert pre["bias"] == pytest.approx([-m for m in contract.mean])
        assert pre["std_folded_into_first_conv"] == pytest.approx(list(contract.std))
        # the program itself applies that scale and bias to the image
        ops = spec.mlProgram.functions["main"].block_specializations
        block = next(iter(ops.values()))
        names = [(op.type, op.outputs[0].name) for op in block.operations[:6]]
        assert ("mul", "image__scaled__") in names and ("add", "image__biased__") in names


def test_gate_rejects_a_corrupted_model(exported, tmp_path):
    import onnx
    from onnx import numpy_helper

    from diqa_edge.export.formats import Artefact
    from diqa_edge.export.parity import ParityImages, gate, torch_scores
    from diqa_edge.models.load import load_trained

    trained = load_trained(exported["run"])
    src = next(exported["out"].glob("*_onnx_fp32.onnx"))
    model = onnx.load(str(src))
    conv = next(t for t in model.graph.initializer if len(t.dims) == 4)
    w = numpy_helper.to_array(conv).copy()
    w *= np.random.default_rng(0).normal(1.0, 0.5, size=w.shape).astype(w.dtype)   # damage the first conv
    conv.CopyFrom(numpy_helper.from_array(w, conv.name))
    bad = tmp_path / "corrupt.onnx"
    onnx.save(model, str(bad))
    shutil.copy(src.with_suffix(".manifest.json"), tmp_path / "corrupt.manifest.json")
    # the exported manifest is bound to the file it came with: beside the damaged one, the SDK refuses it
    with pytest.raises(ModelLoadError, match="check input"):
        QualityScorer(bad)
    # the gate runs before the binding (api._gate_all), on the manifest as the converter wrote it
    doc = json.loads((tmp_path / "corrupt.manifest.json").read_text())
    doc.pop("check")
    (tmp_path / "corrupt.manifest.json").write_text(json.dumps(doc))
    images = ParityImages.from_folder(exported["images"], 60)
    row = gate(Artefact("onnx", "fp32", bad, 0.0), torch_scores(trained.model, images, trained.contract),
               images, trained.contract)
    assert row["status"] == "FAILED" and row["max_abs"] > 0.01
    assert not bad.exists() and (tmp_path / "corrupt.onnx.failed").exists()


def test_test_vectors_match_the_sdk(exported):
    from diqa_edge.sdk.decode import decode_image
    from diqa_edge.export.vectors import tensor_record

    vec_file = next(exported["out"].glob("*_tflite_int8.vectors.json"))
    doc = json.loads(vec_file.read_text())
    assert len(doc["vectors"]) == 5
    contract = Contract.from_dict(doc["contract"])
    scorer = QualityScorer(next(exported["out"].glob("*_int8.tflite")))
    for v in doc["vectors"]:
        image = exported["out"] / v["image"]
        assert image.exists()
        assert tensor_record(decode_image(image, contract), contract, "NHWC")["sha256"] == v["input"]["sha256"]
        assert scorer.score(image).score == pytest.approx(v["expected_score"], abs=1e-4)


def test_bad_arguments_fail_early_with_one_line(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT
    out = subprocess.run([sys.executable, "-m", "diqa_edge.export", "--target", "coreml", "--precision",
                          "int8-dynamic", "--checkpoint", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "not supported for target 'coreml'" in out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "diqa_edge.export", "--target", "onnx", "--checkpoint",
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "not a training run" in out.stderr


@pytest.mark.parametrize("card, words", [
    ("{broken", "not valid JSON"), ("[]", "JSON object, got list"),
    ('{"contract": {}}', "lacks the field(s) 'backbone'"),
    ('{"backbone": "no_such_net", "contract": {}}', "not a loadable training run"),
])
def test_a_damaged_run_card_is_one_line(tmp_path, card, words):
    """Used to be a JSONDecodeError / KeyError traceback."""
    import subprocess
    import sys

    from conftest import ROOT
    (tmp_path / "card.json").write_text(card)
    (tmp_path / "best.safetensors").write_bytes(b"")
    out = subprocess.run([sys.executable, "-m", "diqa_edge.export", "--target", "onnx", "--checkpoint",
                          str(tmp_path), "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and words in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


def test_an_output_path_that_is_a_file_is_one_line(tmp_path, exported):
    """``--out`` naming a file used to be a FileExistsError traceback."""
    import subprocess
    import sys

    from conftest import ROOT
    (tmp_path / "taken").write_text("a file, not a folder")
    out = subprocess.run([sys.executable, "-m", "diqa_edge.export", "--target", "onnx", "--checkpoint",
                          str(exported["run"]), "--out", str(tmp_path / "taken")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "taken" in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


def _at_least_min_side(path, folder):
    """The fixture's views are smaller than the contract's ``min_side`` (256), which sends any photo back as
    "too small" before its reasons speak: a 2x bilinear copy keeps the fault and passes the size rule."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    scale = -(-256 // min(img.size))
    out = folder / path.name
    img.resize((img.width * scale, img.height * scale), Image.Resampling.BILINEAR).save(out)
    return out


def test_sdk_returns_reasons_and_the_cli_prints_the_right_hint(exported, tmp_path):
    """The fixture's reasons head was trained on blurred / darkened / JPEG views of other photos; on
    unseen blurred and darkened views every runtime names the cause, and `diqa-edge score` prints it."""
    import subprocess
    import sys

    from conftest import ROOT
    from diqa_edge.data.distort import REASONS
    from diqa_edge.sdk.hints import HINTS

    blurred, darkened = (_at_least_min_side(next(exported["images"].glob(pattern)), tmp_path)
                         for pattern in ("*__gaussian_blur_4.png", "*__darken_2.png"))
    for model in (next(exported["out"].glob("*_onnx_fp32.onnx")), next(exported["out"].glob("*_tflite_int8.tflite"))):
        scorer = QualityScorer(model, threshold=10.0)   # the top of the range: every photo a retake (hints are for retakes)
        assert scorer.manifest.reasons == REASONS     # blur ... colour, glare, obstruction
        for path, reason in ((blurred, "blur"), (darkened, "dark")):
            result = scorer.score(path)
            assert set(result.reasons) == set(scorer.manifest.reasons)
            assert result.top_reason == reason, (model.name, path.name, result.reasons)
            assert result.hint == HINTS[reason].hint and result.to_dict()["reasons"][reason] >= 0.5
    proc = subprocess.run([sys.executable, "-m", "diqa_edge.cli", "score", "--threshold", "10.0", "--model",
                           str(next(exported["out"].glob("*_tflite_int8.tflite"))), str(blurred), str(darkened)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert HINTS["blur"].hint in next(line for line in lines if blurred.name in line)
    assert HINTS["dark"].hint in next(line for line in lines if darkened.name in line)


def test_every_target_exports_through_one_signature():
    """The export table (formats.FORMATS): each target's module has ``export(trained, precisions, job)``,
    so adding a target is one module and one row, and the CLI has no branch per target."""
    import inspect

    from diqa_edge.export.formats import FORMATS

    for target, fmt in FORMATS.items():
        params = list(inspect.signature(fmt.exporter()).parameters)
        assert params == ["trained", "precisions", "job"], target
    assert list(FORMATS) == ["onnx", "tflite", "coreml"]    # ONNX first: TFLite converts its graph


def test_a_file_failing_its_gate_is_reported_not_a_traceback(exported, tmp_path):
    """The whole command with a gate no float conversion can meet (max |score diff| 0): the failed file
    keeps the evidence under ``.failed``, the report names the file, the measure and the threshold, and
    the command exits 2 with the report rows written (it used to raise ModelLoadError on the renamed file)."""
    import subprocess
    import sys

    from conftest import ROOT
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "diqa_edge.export", "--checkpoint", str(exported["run"]),
                           "--target", "onnx", "--precision", "fp32", "--out", str(out), "--images", str(exported["images"]),
                           "--accept-threshold", "6.0", "--max-abs-fp32", "0"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    (row,) = json.loads((out / "export_report.json").read_text())
    assert row["status"] == "FAILED" and row["max_abs"] > 0 and row["path"].endswith(".onnx.failed")
    assert not list(out.glob("*.onnx")) and list(out.glob("*.onnx.failed"))
    (line,) = [ln for ln in proc.stderr.splitlines() if "FAILED its gate" in ln]
    assert ".onnx" in line and "max |Δ|" in line and "> 0.0" in line


def test_the_commands_defaults_are_the_apis():
    """`python -m diqa_edge.export` with no option and `export(None, ExportOptions())` are the same call
    (issue 33: export is an API the command line maps onto, not a command)."""
    import argparse

    from diqa_edge.export.api import ExportOptions
    from diqa_edge.export.cli import add_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert options_from_args(parser.parse_args([])) == ExportOptions()
    one = options_from_args(parser.parse_args(["--target", "onnx", "--precision", "fp16", "--out", "o"]))
    assert (one.targets, one.precisions, str(one.out)) == (("onnx",), ("fp16",), "o")
