"""Bind each exported file's manifest to the file: its outputs on the SDK's check input (``sdk.check``),
written into the sidecar and into the copy inside the file, so the SDK refuses the manifest beside any
other model. Run on files that passed their gate and run on this machine (Core ML predicts only on
macOS: its manifest carries no check, and the SDK then checks nothing)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..sdk.check import DEFAULT_TOLERANCE, check_image, check_record
from ..sdk.manifest import read_sidecar, write_sidecar

# int8 kernels may round differently on another CPU or delegate (XNNPACK on ARM, NNAPI, VNNI): a wider band
# for them, still far under what another model differs by (the previous shipped file: score 0.16 and a
# reason 0.99 away on the check input)
INT8_TOLERANCE = 0.1


def model_check_outputs(path: Path) -> np.ndarray:
    """The file's own outputs on the check input, preprocessed as the SDK does (``QualityScorer``)."""
    from ..sdk.scorer import QualityScorer

    scorer = QualityScorer(path, threads=1)
    return np.ravel(scorer.runtime.outputs(scorer.model_input(check_image(scorer.contract.input_size))))


def bind_manifest(path: Path) -> dict:
    """Write the check into ``path``'s manifests (sidecar, and the embedded copy of a .tflite / .onnx)."""
    manifest = read_sidecar(path)
    tolerance = INT8_TOLERANCE if manifest.precision.startswith("int8") else DEFAULT_TOLERANCE
    bound = dataclasses.replace(manifest, check=check_record(model_check_outputs(path), tolerance))
    if path.suffix == ".tflite":
        from .tflite_target import save_with_manifest

        save_with_manifest(path.read_bytes(), path, bound)
    elif path.suffix == ".onnx":
        import onnx

        from .onnx_target import save_with_manifest

        save_with_manifest(onnx.load(str(path)), path, bound)
    else:
        write_sidecar(path, bound)
    return bound.check
