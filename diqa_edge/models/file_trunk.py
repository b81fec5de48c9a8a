"""Which tensor of an exported pooled-statistics .tflite holds its statistics, and what computes them.

Why here (models, below training and export): training fits heads on the statistics a phone file
computes (``training/file_statistics.py``) and export checks that a file it writes for such a run has
the same trunk; both read the file the same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import DiqaError


def _ops_and_tensors(interpreter) -> tuple[list[dict], dict[int, dict]]:
    # the graph in execution order; LiteRT has no public listing (as export/int8_trunk.float_nodes)
    return interpreter._get_ops_details(), {t["index"]: t for t in interpreter.get_tensor_details()}


def statistics_tensor(interpreter, n_features: int) -> int:
    """The index of the tensor holding the file's pooled statistics (1 x ``n_features``)."""
    ops, tensors = _ops_and_tensors(interpreter)
    found = [op["outputs"][0] for op in ops if op["op_name"] == "CONCATENATION"
             and list(tensors[op["outputs"][0]]["shape"]) == [1, n_features]]
    if len(found) != 1:
        raise DiqaError(f"the model file has {len(found)} concatenation(s) of {n_features} statistics where a "
                        "pooled-statistics file of this run's stages has one: another kind of model, or other stages")
    return found[0]


def trunk_digest(model: Path, n_features: int) -> str:
    """The identity of what computes the statistics: every tensor the statistics depend on (shape, type,
    quantisation and constant bytes, in tensor-index order), not the heads or the manifest inside the file.
    The ops themselves are not hashed: two files with the same tensors and different op types would share a
    digest (the converter and the quantiser produce them together, so this does not happen in practice).
    Tensor names are left out: the converter numbers fused ops differently from one conversion to the next."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    target = statistics_tensor(interpreter, n_features)
    ops, tensors = _ops_and_tensors(interpreter)
    producer = {t: op for op in ops for t in op["outputs"]}
    needed, todo = set(), [target]
    while todo:
        t = todo.pop()
        if t in needed or t < 0:
            continue
        needed.add(t)
        if t in producer:
            todo.extend(producer[t]["inputs"])
    graph = schema.Model.GetRootAsModel(Path(model).read_bytes(), 0)
    subgraph = graph.Subgraphs(0)
    h = hashlib.sha1()
    for t in sorted(needed):
        info = tensors[t]
        q = info["quantization_parameters"]
        h.update(f"{list(info['shape'])}|{np.dtype(info['dtype']).name}|".encode())
        h.update(np.asarray(q["scales"], np.float32).tobytes() + np.asarray(q["zero_points"], np.int64).tobytes())
        buffer = graph.Buffers(subgraph.Tensors(t).Buffer())
        if buffer.DataLength():
            h.update(buffer.DataAsNumpy().tobytes())
    return h.hexdigest()[:16]


KEY_PREFIX = "tflite-trunk-"


def file_features_key(model: Path, n_features: int) -> str:
    """The feature-cache key of a file's statistics: files that share a trunk share the rows."""
    return f"{KEY_PREFIX}{trunk_digest(model, n_features)}"


def fitted_trunk(card: dict) -> str | None:
    """The digest of the int8 trunk a run's heads were fitted on (``train --statistics-from``: its card's
    features key names that trunk), or None for heads fitted on the float trunk."""
    key = str(card.get("features_key", ""))
    return key.removeprefix(KEY_PREFIX) if key.startswith(KEY_PREFIX) else None
