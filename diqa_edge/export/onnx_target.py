"""ONNX: torch.onnx at a fixed opset, batch 1 (or dynamic), simplified, checked, manifest in metadata_props."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..fileio import written_in_place
from ..sdk.manifest import MANIFEST_KEY, ModelManifest, write_sidecar
from ..sdk.decision import RetakeRule
from .formats import DEFAULT_RULE, Artefact, ExportJob, stage

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "score"   # with a reasons head the one output is [score, p...]


@stage("onnx", "torch.onnx.export + onnxsim + onnx.checker", "onnx")
def _convert(model, size: int, path: Path, dynamic_batch: bool) -> dict:
    import onnx
    import onnxsim
    import torch

    tmp = path.with_name(f".{path.stem}.raw.onnx")
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(model, torch.zeros(1, 3, size, size), str(tmp), opset_version=OPSET,
                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes,
                      dynamo=False)
    raw = onnx.load(str(tmp))
    simplified, ok = onnxsim.simplify(raw)
    if not ok:
        raise RuntimeError("onnxsim could not validate the simplified graph")
    onnx.checker.check_model(simplified)
    tmp.unlink(missing_ok=True)
    return {"nodes_before": len(raw.graph.node), "nodes_after": len(simplified.graph.node),
            "model": simplified}


def export_onnx(trained, out_dir: Path, *, dynamic_batch: bool = False, name: str | None = None,
                rule: RetakeRule = DEFAULT_RULE, rule_evidence: dict | None = None) -> Artefact:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = name or f"{trained.name}_onnx_fp32"
    path = out_dir / f"{stem}.onnx"
    info, seconds = _convert(trained.model, trained.contract.input_size, path, dynamic_batch)
    model = info.pop("model")
    manifest = ModelManifest(trained.contract.with_layout("NCHW"), rule, name=trained.name,
                             format="onnx", precision="fp32", rule_evidence=rule_evidence or {},
                             outputs=tuple(trained.model.output_names),
                             extra={"opset": OPSET, "dynamic_batch": dynamic_batch,
                                    "card": _card_summary(trained.card)})
    save_with_manifest(model, path, manifest)
    return Artefact("onnx", "fp32", path, seconds, {**info, "opset": OPSET, "dynamic_batch": dynamic_batch})


def save_with_manifest(model, path: Path, manifest: ModelManifest) -> None:
    """An ONNX model saved with ``manifest`` inside (``metadata_props``; other properties kept) and beside it."""
    import onnx
    from onnx import helper

    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, MANIFEST_KEY: manifest.to_json()})
    with written_in_place(path) as tmp:
        onnx.save(model, str(tmp))
    write_sidecar(path, manifest)


def _card_summary(card: dict) -> dict:
    return {k: card.get(k) for k in ("backbone", "trained_on", "labels", "split", "git_commit", "best_val_plcc")}


# weights smaller than this, and every vector (biases, norms, the feature standardisation), stay float32
HALF_MIN_ELEMENTS = 1024


@stage("onnx", "float16 / int8 weight storage", "onnx")
def _half_weights(model) -> dict:
    """Weights stored small, computed in float32, so the file runs wherever the fp32 file runs
    (onnxruntime-web's WebAssembly kernels have no float16 convolution): every large matrix read by a
    MatMul (the score head's) in int8 with one scale per output column, rounded exactly as the phone
    file rounds it (``pooled_stats.int8_per_row``), behind a DequantizeLinear; every other weight of
    two or more dimensions in float16, behind a Cast."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from ..models.pooled_stats import int8_per_row
    from .tflite_surgery import MIN_ELEMENTS

    graph = model.graph
    matmul_b = {n.input[1] for n in graph.node if n.op_type == "MatMul" and len(n.input) > 1}
    added, counts = [], {"int8": 0, "fp16": 0}
    for i, init in enumerate(list(graph.initializer)):
        size = int(np.prod(init.dims))
        if init.data_type != TensorProto.FLOAT or len(init.dims) < 2 or size < HALF_MIN_ELEMENTS:
            continue
        w, name = numpy_helper.to_array(init), init.name   # ``init`` is renamed below: keep its name
        if name in matmul_b and len(init.dims) == 2 and size >= MIN_ELEMENTS:
            q, scale = int8_per_row(w.T)            # MatMul's B is [in, out]: one scale per output column
            graph.initializer[i].CopyFrom(numpy_helper.from_array(q.T.copy(), f"{name}__int8"))
            graph.initializer.extend([numpy_helper.from_array(scale, f"{name}__scale"),
                                      numpy_helper.from_array(np.zeros(len(scale), np.int8), f"{name}__zero")])
            added.append(helper.make_node("DequantizeLinear", [f"{name}__int8", f"{name}__scale",
                                                               f"{name}__zero"], [name], axis=1,
                                          name=f"{name}__dequantize"))
            counts["int8"] += 1
        else:
            graph.initializer[i].CopyFrom(numpy_helper.from_array(w.astype(np.float16), f"{name}__fp16"))
            added.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=TensorProto.FLOAT,
                                          name=f"{name}__to_fp32"))
            counts["fp16"] += 1
    for node in reversed(added):
        graph.node.insert(0, node)
    return {"model": model, "weights_in_int8": counts["int8"], "weights_in_fp16": counts["fp16"]}


def half_weights(graph: Artefact, out_dir: Path) -> Artefact:
    """The fp32 ONNX file as the ``fp16`` precision: weights stored in float16 (the score head's matrices
    in int8, as in the phone file), compute in float32."""
    import onnx

    from ..sdk.manifest import read_sidecar

    model = onnx.load(str(graph.path))
    info, seconds = _half_weights(model)
    model = info.pop("model")
    onnx.checker.check_model(model)
    manifest = dataclasses.replace(read_sidecar(graph.path), precision="fp16")
    path = out_dir / graph.path.name.replace("_onnx_fp32", "_onnx_fp16")
    if path == graph.path:
        path = graph.path.with_name(graph.path.stem + "_fp16.onnx")
    save_with_manifest(model, path, manifest)
    return Artefact("onnx", "fp16", path, seconds, {**info, "opset": OPSET})


def export(trained, precisions: list[str], job: ExportJob) -> list[Artefact]:
    """The export table's entry (``formats.FORMATS``): fp32, and fp16 (float16 weights, float32 compute)."""
    graph = job.onnx_graph()
    return ([graph] if "fp32" in precisions else []) + \
        ([half_weights(graph, job.out_dir)] if "fp16" in precisions else [])
