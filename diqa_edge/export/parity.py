"""The parity gate: an exported file must score real photos as the PyTorch model did.

Both sides see the same tensors: the SDK decodes and preprocesses each image
once (the phone's path); PyTorch runs on that NCHW tensor, the artefact runs
through the SDK's runtime for its format. Thresholds on the 1-10 scale:
fp32 max |delta| <= 0.01 (conversion only, no rounding on purpose); fp16
<= 0.05 (half-precision weights); int8 is judged on ranking, SROCC against
PyTorch >= 0.99 (quantisation moves scores a little but must not reorder
photos). A failing artefact is renamed ``*.failed`` and the export exits
non-zero. Core ML packages are executed by Apple's runtime on macOS and by
the NumPy reference executor elsewhere (labelled as such in the report).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.records import Record
from ..errors import DiqaError
from ..sdk.decode import decode_image
from ..sdk.preprocess import preprocess_rgb
from .formats import Artefact

DEFAULT_THRESHOLDS = {"fp32": {"max_abs": 0.01}, "fp16": {"max_abs": 0.05},
                      "int8-dynamic": {"srocc": 0.99}, "int8": {"srocc": 0.99}}


@dataclass
class ParityImages:
    paths: list[Path]
    mos: np.ndarray | None            # human (or pseudo) labels on [1, 10] where known
    labels: str = "none"              # "MOS", "pseudo-MOS" or "none"
    rgb: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def from_records(cls, records: list[Record], limit: int, seed: int = 0) -> "ParityImages":
        if len(records) > limit:
            rng = np.random.default_rng(seed)
            records = [records[i] for i in sorted(rng.choice(len(records), size=limit, replace=False))]
        kinds = {r.pseudo for r in records}
        labels = "MOS" if kinds == {False} else "pseudo-MOS" if kinds == {True} else "MOS + pseudo-MOS"
        return cls([r.image for r in records], np.array([r.mos for r in records]), labels)

    @classmethod
    def from_folder(cls, folder: Path, limit: int) -> "ParityImages":
        from ..sdk.cli import IMAGE_SUFFIXES

        paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
        return cls(paths, None, "none")

    def decoded(self, contract) -> list[np.ndarray]:
        if not self.rgb:
            kept, rgb, mos = [], [], []
            for i, p in enumerate(self.paths):
                try:
                    rgb.append(decode_image(p, contract))
                except DiqaError:
                    continue
                kept.append(p)
                if self.mos is not None:
                    mos.append(self.mos[i])
            self.paths, self.rgb = kept, rgb
            self.mos = np.array(mos) if self.mos is not None else None
        return self.rgb


def torch_scores(model, images: ParityImages, contract) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for rgb in images.decoded(contract):
            x = torch.from_numpy(preprocess_rgb(rgb, contract, layout="NCHW"))
            out.append(contract.clamp_score(float(model(x).reshape(-1)[0])))
    return np.array(out)


REFERENCE_LABEL = "Core ML (reference executor, not Apple's runtime)"


def reference_executor_scores(path: Path, images: ParityImages, contract) -> np.ndarray:
    """Core ML off macOS: run the saved ML Program in NumPy (diqa_edge.export.coreml_reference)."""
    from ..sdk.preprocess import resize_and_crop
    from .coreml_reference import ReferenceExecutor

    executor = ReferenceExecutor(path)
    return np.array([contract.clamp_score(executor.run(resize_and_crop(rgb, contract)))
                     for rgb in images.decoded(contract)])


def artefact_scores(path: Path, images: ParityImages, contract, threads: int = 2) -> np.ndarray:
    from ..sdk.scorer import QualityScorer

    scorer = QualityScorer(path, threads=threads)
    return np.array([scorer.score(rgb).score for rgb in images.decoded(contract)])


def compare(reference: np.ndarray, scores: np.ndarray, mos: np.ndarray | None) -> dict:
    from scipy import stats

    d = {"n": int(len(scores)), "max_abs": float(np.max(np.abs(scores - reference))),
         "mean_abs": float(np.mean(np.abs(scores - reference))),
         "plcc": float(stats.pearsonr(scores, reference)[0]) if np.std(scores) > 0 else float("nan"),
         "srocc": float(stats.spearmanr(scores, reference)[0]) if np.std(scores) > 0 else float("nan")}
    if mos is not None and len(mos) == len(scores):
        d["srocc_vs_labels"] = float(stats.spearmanr(scores, mos)[0])
        d["srocc_torch_vs_labels"] = float(stats.spearmanr(reference, mos)[0])
    return d


def verdict(precision: str, figures: dict, thresholds: dict) -> tuple[bool, str]:
    rule = thresholds[precision]
    if "max_abs" in rule:
        ok = figures["max_abs"] <= rule["max_abs"]
        return ok, f"max |Δ| {figures['max_abs']:.4f} {'<=' if ok else '>'} {rule['max_abs']}"
    ok = figures["srocc"] >= rule["srocc"]
    return ok, f"SROCC vs PyTorch {figures['srocc']:.4f} {'>=' if ok else '<'} {rule['srocc']}"


def mark_failed(artefact: Artefact) -> Path:
    """Keep the evidence, but never under the name an app would load."""
    failed = artefact.path.with_name(artefact.path.name + ".failed")
    if failed.exists():
        shutil.rmtree(failed) if failed.is_dir() else failed.unlink()
    os.replace(artefact.path, failed)
    return failed


def gate(artefact: Artefact, reference: np.ndarray, images: ParityImages, contract,
         thresholds: dict = DEFAULT_THRESHOLDS, model=None) -> dict:
    """Run the artefact, compare, and return the report row (status pass / FAILED / built, not executed).

    Core ML off macOS runs through the NumPy reference executor and says so in ``runtime``; given the
    PyTorch ``model``, a Core ML row also carries the per-layer comparison on the first image."""
    from .formats import FORMATS

    row = {"target": artefact.target, "precision": artefact.precision, "path": str(artefact.path),
           "size_mb": round(artefact.size_mb, 3), "convert_s": round(artefact.seconds, 1), **artefact.notes}
    if artefact.target == "coreml":
        from .formats import ExportError

        try:
            executed = reference_executor_scores(artefact.path, images, contract)
        except ExportError as exc:   # e.g. an op the executor does not implement: say so, do not guess
            row.update(status="built, not executed", reason=f"reference executor: {exc}")
            return row
        if FORMATS["coreml"].runs_here():   # macOS: Apple's runtime decides, the executor is compared to it
            scores = artefact_scores(artefact.path, images, contract)
            row["runtime"] = "Core ML (Apple's runtime)"
            row["reference_executor_vs_runtime_max_abs"] = float(np.max(np.abs(executed - scores)))
        else:
            scores = executed
            row["runtime"] = REFERENCE_LABEL
        if model is not None:
            from .coreml_layers import compare_layers

            row["layers"] = compare_layers(artefact.path, model, contract, images.decoded(contract)[0]).to_dict()
    else:
        scores = artefact_scores(artefact.path, images, contract)
    figures = compare(reference, scores, images.mos)
    ok, why = verdict(artefact.precision, figures, thresholds)
    row.update(figures, status="pass" if ok else "FAILED", rule=why, labels=images.labels)
    if not ok:
        row["path"] = str(mark_failed(artefact))
    return row
