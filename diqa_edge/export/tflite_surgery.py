"""Two edits of a converted ``.tflite`` that TensorFlow's converter cannot be asked for.

1. **int8 storage of the float part's large weights** (``int8_weight_storage``). The int8-trunk file
   keeps the score head in float32 (a kernel of squared distances does not survive int8
   activations), so its weight matrices were stored in float32: 22 MB of the 25.7 MB file was the
   support-vector matrix. Here each large float32 weight of a FULLY_CONNECTED op is stored as int8
   with one scale per output row and read through a DEQUANTIZE op; TFLite dequantizes a constant once,
   when the interpreter is prepared, so the op still multiplies float32 by float32 and the file
   carries a quarter of the bytes (rows: ``benchmarks/small_head_rows.py``).
2. **No float -> int8 -> float round trip** (``drop_round_trips``). The quantiser put a
   QUANTIZE / DEQUANTIZE pair after the float sigmoid of the reasons head (scale 1/256), so every
   reason probability in the file was a multiple of 1/256 while the README said float32. A pair whose
   int8 tensor feeds nothing else is removed and its consumers read the float tensor again.

Both work on the flatbuffer object model TensorFlow ships (``flatbuffer_utils``), and both are checked
by loading the result; the numbers they change are gated like any export.
"""

from __future__ import annotations

import numpy as np

from ..models.pooled_stats import int8_per_row

MIN_ELEMENTS = 100_000   # only the score head's matrices; the reasons head (8 x 1,568) stays float32


def _model(data: bytes):
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.convert_bytearray_to_object(bytearray(data))


def _bytes(model) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _opcode_index(model, builtin: int, version: int) -> int:
    from tensorflow.lite.python import schema_py_generated as fb

    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            code.version = max(code.version, version)
            return i
    code = fb.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _is(model, op, builtin: int) -> bool:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode) == builtin


def int8_weight_storage(data: bytes, min_elements: int = MIN_ELEMENTS) -> tuple[bytes, list[str]]:
    """(the model with every float32 FULLY_CONNECTED weight of ``min_elements`` or more stored in int8
    (symmetric, one scale per output row) behind a DEQUANTIZE op, the names of the weights changed)."""
    from tensorflow.lite.python import schema_py_generated as fb

    model = _model(data)
    graph = model.subgraphs[0]
    changed = []
    ops = []
    for op in graph.operators:
        if _is(model, op, fb.BuiltinOperator.FULLY_CONNECTED):
            w = op.inputs[1]
            tensor = graph.tensors[w]
            buffer = model.buffers[tensor.buffer] if tensor.buffer else None
            if (tensor.type == fb.TensorType.FLOAT32 and buffer is not None and buffer.data is not None
                    and int(np.prod(tensor.shape)) >= min_elements):
                ops.append(_dequantize_op(model, graph, w))
                changed.append(tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name))
        ops.append(op)
    graph.operators = ops
    return _bytes(model), changed


def _dequantize_op(model, graph, w: int):
    """Replace tensor ``w``'s float32 constant by an int8 constant and return the DEQUANTIZE op that
    recomputes ``w`` from it (per output row: TFLite's per-axis quantisation on dimension 0)."""
    from tensorflow.lite.python import schema_py_generated as fb

    tensor = graph.tensors[w]
    weights = np.frombuffer(bytes(bytearray(model.buffers[tensor.buffer].data)), np.float32).reshape(tensor.shape)
    q, scale = int8_per_row(weights)
    buffer = fb.BufferT()
    buffer.data = np.frombuffer(q.tobytes(), np.uint8)
    model.buffers.append(buffer)
    model.buffers[tensor.buffer].data = None   # the float32 bytes leave the file
    quant = fb.QuantizationParametersT()
    quant.scale, quant.zeroPoint, quant.quantizedDimension = scale.tolist(), [0] * len(scale), 0
    stored = fb.TensorT()
    stored.shape, stored.type, stored.buffer = list(tensor.shape), fb.TensorType.INT8, len(model.buffers) - 1
    stored.name, stored.quantization = (tensor.name or b"") + b"__int8", quant
    graph.tensors.append(stored)
    tensor.buffer = 0                              # now computed at run time (buffer 0: the empty one)
    op = fb.OperatorT()
    op.opcodeIndex = _opcode_index(model, fb.BuiltinOperator.DEQUANTIZE, 4)   # version 4: per-axis int8
    op.inputs, op.outputs = [len(graph.tensors) - 1], [w]
    return op


def drop_round_trips(data: bytes) -> tuple[bytes, int]:
    """(the model without float -> QUANTIZE -> int8 -> DEQUANTIZE -> float pairs whose int8 tensor feeds
    nothing else, how many were removed)."""
    from tensorflow.lite.python import schema_py_generated as fb

    model = _model(data)
    graph = model.subgraphs[0]
    readers: dict[int, list] = {}
    for op in graph.operators:
        for t in op.inputs:
            readers.setdefault(int(t), []).append(op)
    rename, dropped = {}, set()
    for op in graph.operators:
        if not _is(model, op, fb.BuiltinOperator.QUANTIZE):
            continue
        src, mid = int(op.inputs[0]), int(op.outputs[0])
        after = readers.get(mid, [])
        if (graph.tensors[src].type == fb.TensorType.FLOAT32 and len(after) == 1
                and _is(model, after[0], fb.BuiltinOperator.DEQUANTIZE) and mid not in graph.outputs):
            rename[int(after[0].outputs[0])] = src
            dropped |= {id(op), id(after[0])}
    if not rename:
        return data, 0
    graph.operators = [op for op in graph.operators if id(op) not in dropped]
    for op in graph.operators:
        op.inputs = [rename.get(int(t), int(t)) for t in op.inputs]
    graph.outputs = [rename.get(int(t), int(t)) for t in graph.outputs]
    return _bytes(model), len(rename)
