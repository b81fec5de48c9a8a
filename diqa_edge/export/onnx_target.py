"""ONNX: torch.onnx at a fixed opset, batch 1 (or dynamic), simplified, checked, manifest in metadata_props."""

from __future__ import annotations

import os
from pathlib import Path

from ..sdk.manifest import MANIFEST_KEY, ModelManifest, write_sidecar
from .formats import Artefact, ExportJob, stage

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
                threshold: float = 5.0, threshold_rule: str = "", decision: dict | None = None) -> Artefact:
    import onnx
    from onnx import helper

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = name or f"{trained.name}_onnx_fp32"
    path = out_dir / f"{stem}.onnx"
    info, seconds = _convert(trained.model, trained.contract.input_size, path, dynamic_batch)
    model = info.pop("model")
    manifest = ModelManifest(trained.contract.with_layout("NCHW"), threshold, name=trained.name,
                             format="onnx", precision="fp32", threshold_rule=threshold_rule, decision=decision or {},
                             outputs=tuple(trained.model.output_names),
                             extra={"opset": OPSET, "dynamic_batch": dynamic_batch,
                                    "card": _card_summary(trained.card)})
    helper.set_model_props(model, {MANIFEST_KEY: manifest.to_json()})
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
    write_sidecar(path, manifest)
    return Artefact("onnx", "fp32", path, seconds, {**info, "opset": OPSET, "dynamic_batch": dynamic_batch})


def _card_summary(card: dict) -> dict:
    return {k: card.get(k) for k in ("backbone", "trained_on", "labels", "split", "git_commit", "best_val_plcc")}


def export(trained, precisions: list[str], job: ExportJob) -> list[Artefact]:
    """The export table's entry (``formats.FORMATS``): ONNX has one precision, fp32."""
    return [job.onnx_graph()]
