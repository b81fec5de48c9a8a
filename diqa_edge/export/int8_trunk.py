"""TFLite "int8-trunk": the backbone in int8 (weights and activations), what reads it in float32.

Why not full-integer int8 everywhere: a quality model reads small differences in
the statistics of activations. Measured on the shipped pooled-statistics model
(600 held-out BIQ2021 photos and unseen skin views, benchmarks/RESULTS.md):
- every op in int8 (onnx2tf's full-integer file): ranking against fp32 SROCC
  0.957 and BIQ2021 SROCC 0.038 lower: the pooled standard deviations and the
  score head's kernel (an exp of squared distances) do not survive 8 bits;
- the trunk in int8, everything from the first global pooling (MEAN) on in
  float: 0.995;
- and the first two convolutions in float as well: 0.997, same hint 0.98, at
  about half the fp16 file's time. TensorFlow's quantisation debugger put the
  stem's output error at 4.8 quantisation steps, against 0.2-0.5 everywhere
  else: the image's fine texture is what those layers carry.
So the float part is the first ``STEM_FLOAT_CONVS`` convolutions plus every op
downstream of a MEAN; the rest (over 95 % of the multiply-adds) runs in int8.
Input and output stay float32: the SDK feeds the contract's normalised crop.

Done with TensorFlow's selective quantisation (``QuantizationDebugOptions``'s
``denylisted_nodes``) on the saved model onnx2tf writes beside its files; the
node names come from the converter's own calibrated model (``float_nodes``),
and the result is checked, since the quantiser ignores a name it does not find.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# the first convolutions (stem conv and the first depthwise conv) stay float: see the docstring
STEM_FLOAT_CONVS = 2
CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def float_nodes(model: bytes, stem_convs: int = STEM_FLOAT_CONVS, pooled: bool = True) -> list[str]:
    """Output tensor names, in the TFLite ``model`` (bytes), of the ops that stay float: the first
    ``stem_convs`` convolutions and (``pooled``) every op that reads, directly or not, a global pooling
    (MEAN). Names must come from the very model the quantiser reads (the converter's calibrated float
    model): a fused op's name ends in its constant's number, which differs from one conversion to the
    next."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()   # the graph in execution order; there is no public listing
    pooled_ops: set[int] = set()
    for op in ops:
        if op["op_name"] == "MEAN" or any(i in pooled_ops for i in op["inputs"]):
            pooled_ops.update(op["outputs"])
    stem = [t for op in [o for o in ops if o["op_name"] in CONVOLUTIONS][:stem_convs] for t in op["outputs"]]
    return sorted({names[t] for t in (pooled_ops if pooled else set()) | set(stem)})


def quantize_trunk(saved_model: Path, crops: np.ndarray, contract, stem_convs: int = STEM_FLOAT_CONVS,
                   pooled: bool = True, per_channel: bool = True) -> bytes:
    """The int8-trunk ``.tflite``; ``crops`` are the contract's crops in [0, 1] (N x S x S x 3), normalised
    here as the SDK normalises before feeding the model. Calibration runs over every crop, in order, so
    the same crops give the same file. ``stem_convs``, ``pooled`` and ``per_channel`` are there for the
    benchmark's other rows (benchmarks/int8_rows.py); with no float part at all it is the converter's
    plain full-integer file."""
    import tensorflow as tf

    mean = np.asarray(contract.mean, np.float32)
    std = np.asarray(contract.std, np.float32)

    def representative():
        for crop in crops:
            yield [((crop - mean) / std)[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter._experimental_disable_per_channel = not per_channel   # per-tensor only for the benchmark's row
    if stem_convs == 0 and not pooled:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()
    debug = tf.lite.experimental
    debugger = debug.QuantizationDebugger(converter=converter, debug_dataset=representative,
                                          debug_options=debug.QuantizationDebugOptions())   # calibrates once
    names = float_nodes(debugger.calibrated_model, stem_convs, pooled)
    debugger.options = debug.QuantizationDebugOptions(denylisted_nodes=names)
    model = debugger.get_nondebug_quantized_model()
    _check_float(model, len(names))
    return model


def _check_float(model: bytes, expected: int) -> None:
    """The quantiser ignores a name it does not find; so count what it kept float, never trust it."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    dtype = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    kept = sum(1 for op in interpreter._get_ops_details()
               if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE") and dtype[op["outputs"][0]] == np.float32)
    if kept < expected:
        raise RuntimeError(f"int8-trunk: {expected} ops should stay float32, the quantised model has {kept}")
