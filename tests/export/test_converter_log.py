"""The converters' own output (native TensorFlow / XLA logs, onnx2tf and coremltools prints) goes to a log
file beside the export, not over the report; a failing converter's last lines reach the error."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from diqa_edge.export.formats import ExportError, converters_to_log, log_tail
from diqa_edge.sdk.decision import RetakeRule


def _noisy():
    os.write(1, b"onnx2tf: 412 nodes converted\n")
    os.write(2, b"W0000 00:00:1733 cpu_feature_guard.cc:210] This TensorFlow binary is optimized\n")
    print("a Python print from a converter", flush=True)


def test_native_and_python_output_go_to_the_log(tmp_path, capfd):
    log = tmp_path / "converters.log"
    with converters_to_log(log):
        _noisy()
    out, err = capfd.readouterr()
    assert "onnx2tf" not in out + err and "cpu_feature_guard" not in out + err
    text = log.read_text()
    assert "412 nodes" in text and "cpu_feature_guard" in text and "a Python print" in text
    print("after the block the terminal is ours again", flush=True)
    assert "ours again" in capfd.readouterr().out


def test_verbose_shows_everything(tmp_path, capfd):
    with converters_to_log(tmp_path / "converters.log", verbose=True):
        _noisy()
    out, err = capfd.readouterr()
    assert "412 nodes" in out and "cpu_feature_guard" in err
    assert not (tmp_path / "converters.log").exists()


def test_a_failing_converter_names_its_log_and_last_lines(tmp_path, monkeypatch, capfd):
    from diqa_edge.export import api

    def exporter(trained, precisions, job):
        for i in range(30):
            os.write(2, f"converter line {i}\n".encode())
        raise ExportError("tflite: onnx2tf conversion failed (onnx2tf 1.26): ValueError: bad node")

    fmt = SimpleNamespace(exporter=lambda: exporter)
    monkeypatch.setattr(api, "FORMATS", {"tflite": fmt})
    options = api.ExportOptions(out=tmp_path, targets=("tflite",))
    with pytest.raises(ExportError) as info:
        api._convert(None, {"tflite": ["fp32"]}, options, SimpleNamespace(paths=[]), RetakeRule(5.0), {})
    message = str(info.value)
    assert "bad node" in message and str(tmp_path / "converters.log") in message
    assert "converter line 29" in message and "converter line 5\n" not in message    # the tail only
    out, err = capfd.readouterr()
    assert "converter line" not in err
    assert log_tail(tmp_path / "converters.log", 2) == "converter line 28\nconverter line 29"


def test_a_given_cut_on_a_run_without_a_rule_spends_no_validation_pass(monkeypatch):
    """--accept-threshold on a BIQ2021-only run: the cut is the rule; choosing another on the validation
    images (minutes of PyTorch) and throwing it away was wasted."""
    from diqa_edge.export import api

    def no_pass(*a, **k):
        raise AssertionError("a validation pass ran")

    monkeypatch.setattr(api, "_rule_on_validation", no_pass)
    run = SimpleNamespace(rule=None, rule_evidence={})
    rule, evidence = api._rule_for(run, api.ExportOptions(accept_threshold=6.0))
    assert rule == RetakeRule(6.0) and evidence == {"chosen_on": "score cut given at export (accept_threshold)"}
    chosen = SimpleNamespace(rule=RetakeRule(4.7, {"dark": 0.8}), rule_evidence={"kind": "greedy"})
    rule, evidence = api._rule_for(chosen, api.ExportOptions(accept_threshold=6.0))
    assert rule == RetakeRule(6.0, {"dark": 0.8}) and evidence["as_chosen"] == {"kind": "greedy"}
    assert api._rule_for(chosen, api.ExportOptions()) == (chosen.rule, chosen.rule_evidence)
