"""The two edits of a converted .tflite (export/tflite_surgery.py): int8 storage of the float part's large
weights computes what the int8-rounded weights compute, and the shipped file's reason probabilities are
float32, not multiples of the quantiser's 1/256."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def _dense_tflite(weights: np.ndarray) -> bytes:
    tf = pytest.importorskip("tensorflow", reason="full install only")

    layer = tf.keras.layers.Dense(weights.shape[1], use_bias=False)
    model = tf.keras.Sequential([tf.keras.Input((weights.shape[0],)), layer])
    layer.set_weights([weights])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _run(data: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_int8_storage_computes_the_rounded_weights_in_float():
    from diqa_edge.export.tflite_surgery import int8_weight_storage

    rng = np.random.default_rng(0)
    w = (rng.normal(size=(400, 300)) * rng.uniform(0.01, 3.0, size=(1, 300))).astype(np.float32)  # in x out
    x = rng.normal(size=(1, 400)).astype(np.float32)
    data = _dense_tflite(w)
    small, changed = int8_weight_storage(data, min_elements=100_000)
    assert len(changed) == 1
    assert len(data) - len(small) > 0.7 * w.size * 4            # 4 bytes a weight became about 1
    # the expected result: each output row (a column of w) rounded to int8 with its own scale
    scale = np.abs(w).max(axis=0) / 127.0
    rounded = np.clip(np.round(w / scale), -127, 127) * scale
    out = _run(small, x)
    np.testing.assert_allclose(out, x.astype(np.float64) @ rounded, rtol=1e-4, atol=1e-4)
    assert np.abs(out - x @ w).max() > 1e-4                  # and it is the rounded weights, not the float ones
    unchanged, none = int8_weight_storage(data, min_elements=w.size + 1)
    assert none == [] and len(unchanged) == pytest.approx(len(data), rel=0.01)


def test_the_shipped_file_keeps_its_reason_probabilities_float():
    pytest.importorskip("ai_edge_litert", reason="the TFLite runtime")
    from ai_edge_litert.interpreter import Interpreter

    path = ROOT / "diqa_edge" / "models" / "default.tflite"
    it = Interpreter(model_path=str(path))
    ops = it._get_ops_details()
    names = [op["op_name"] for op in ops]
    last_logistic = max(i for i, n in enumerate(names) if n == "LOGISTIC")
    assert "QUANTIZE" not in names[last_logistic:], names[last_logistic:]
    from diqa_edge.sdk.manifest import read_sidecar
    from diqa_edge.sdk.preprocess import preprocess

    contract = read_sidecar(path).contract
    x = preprocess(ROOT / "samples" / "skin_ISIC_0000157_darkened.jpg", contract, layout="NHWC")
    probabilities = _run(path.read_bytes(), x.reshape(1, *x.shape[-3:]).astype(np.float32))[0, 1:]
    assert probabilities.max() > 0.1                                    # the dark reason speaks here
    on_grid = np.isclose(probabilities * 256, np.round(probabilities * 256), atol=1e-4)
    assert not on_grid.all(), probabilities                             # not the int8 grid of 1/256
