"""TFLite through onnx2tf: float32, float16, dynamic-range int8 and full-integer int8; and "int8-trunk"
(the backbone in int8, what reads it in float: ``int8_trunk``) by TensorFlow's converter on onnx2tf's
saved model.

Two things this module guarantees that onnx2tf alone does not:
- nothing downloads: onnx2tf fetches MS-COCO sample images for its own checks
  whenever an input looks like an image, unless a file of that name sits in
  its working directory; we run it in a fresh temporary folder holding that
  file, written from *our* calibration images;
- int8 calibration uses real images through the contract's preprocessing
  (the crops the phone will feed), never random tensors.
The manifest goes into each .tflite's metadata and beside it as JSON.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..fileio import atomic_write_bytes
from ..sdk.manifest import ModelManifest, write_sidecar
from ..sdk.preprocess import resize_and_crop
from ..sdk.decode import decode_image
from ..sdk.tflite_metadata import embed_tflite_metadata
from ..sdk.decision import RetakeRule
from .formats import DEFAULT_RULE, Artefact, ExportError, ExportJob, stage

ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"
ONNX2TF_OUTPUTS = {"fp32": "float32", "fp16": "float16", "int8-dynamic": "dynamic_range_quant",
                   "int8": "full_integer_quant", "int8-trunk": "int8_trunk"}


def calibration_crops(paths: list[Path], contract) -> np.ndarray:
    """N x S x S x 3 float32 in [0, 1]: the contract's crops of real images (normalised by onnx2tf)."""
    crops = []
    for p in paths:
        try:
            crops.append(resize_and_crop(decode_image(p, contract), contract))
        except Exception:  # a bad calibration image is skipped, the others suffice
            continue
    if len(crops) < 8:
        raise ExportError(f"tflite: need at least 8 decodable calibration images, got {len(crops)}")
    return np.stack(crops).astype(np.float32) / 255.0


def _onnx2tf_sample_file(crops: np.ndarray, folder: Path) -> None:
    """The file onnx2tf would otherwise download: 20 of our crops at 128 x 128."""
    picks = [crops[i % len(crops)] for i in range(20)]
    small = [np.asarray(Image.fromarray((c * 255).round().astype(np.uint8)).resize((128, 128), Image.Resampling.BILINEAR))
             for c in picks]
    np.save(folder / ONNX2TF_SAMPLE, np.stack(small).astype(np.float32) / 255.0)


@stage("tflite", "onnx2tf conversion", "onnx2tf")
def _convert(onnx_path: Path, crops: np.ndarray, contract, workdir: Path, verbose: bool,
             full_integer: bool = True) -> dict:
    """``full_integer``: also calibrate the integer models (onnx2tf then writes four of them, each a pass over
    the calibration images: 16 of the 22 minutes of a 512-px export here); without it only fp32, fp16 and
    dynamic-range int8 are written."""
    import onnx2tf

    _onnx2tf_sample_file(crops, workdir)
    calib = workdir / "calibration.npy"
    np.save(calib, crops)
    mean = np.asarray(contract.mean, np.float32).reshape(1, 1, 1, 3)
    std = np.asarray(contract.std, np.float32).reshape(1, 1, 1, 3)
    onnx_path = Path(onnx_path).resolve()   # before the chdir below
    cwd = os.getcwd()
    log = io.StringIO()
    try:
        os.chdir(workdir)
        with contextlib.redirect_stdout(log) if not verbose else contextlib.nullcontext():
            onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(workdir / "tf"),
                            output_integer_quantized_tflite=full_integer,
                            output_dynamic_range_quantized_tflite=True,
                            custom_input_op_name_np_data_path=[["image", str(calib), mean, std]],
                            non_verbose=not verbose)
    except SystemExit as exc:  # onnx2tf reports errors on stdout and calls sys.exit
        tail = " | ".join(line.strip() for line in log.getvalue().splitlines()[-8:] if line.strip())
        raise RuntimeError(f"onnx2tf exited with status {exc.code}: {tail}") from None
    finally:
        os.chdir(cwd)
    return {"log_tail": log.getvalue()[-2000:]}


@stage("tflite", "int8-trunk quantisation", "tensorflow")
def _int8_trunk(tf_dir: Path, stem: str, crops: np.ndarray, contract) -> Path:
    from .int8_trunk import quantize_trunk
    from .tflite_surgery import drop_round_trips, int8_weight_storage

    out = tf_dir / f"{stem}_{ONNX2TF_OUTPUTS['int8-trunk']}.tflite"
    model, _ = drop_round_trips(quantize_trunk(tf_dir, crops, contract))   # the reasons stay float32
    model, _ = int8_weight_storage(model)    # the score head's matrices stored in int8, computed in float32
    out.write_bytes(model)
    return out


def check_fitted_trunk(trained, produced: Path) -> None:
    """A run whose heads were fitted on an int8-trunk file's statistics (``train --statistics-from``; its
    card's features key names that trunk) gets int8-trunk files with that very trunk, or none: other int8
    statistics would feed heads fitted on different numbers, which no parity gate against PyTorch (a float
    trunk) would see. Float files (fp32, fp16, ONNX) of such a run are not checked: their trunk is the float
    one the parity gate compares with."""
    from ..models.file_trunk import fitted_trunk, trunk_digest

    fitted = fitted_trunk(trained.card)
    if fitted is None:
        return
    made = trunk_digest(produced, int(trained.model.head.weight.shape[1]))
    if made != fitted:
        raise ExportError(f"tflite int8-trunk: this run's heads were fitted on the statistics of the int8 trunk "
                          f"{fitted} ({trained.card['config'].get('statistics_from')}), "
                          f"but this export quantised the trunk as {made}: export with "
                          "the calibration images that file was made with (the bundled model's: --calibration "
                          "bundled), or retrain on this file's statistics")


def _io_layout(path: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    return {"input_shape": [int(d) for d in inp["shape"]], "input_dtype": np.dtype(inp["dtype"]).name,
            "output_shape": [int(d) for d in out["shape"]], "output_dtype": np.dtype(out["dtype"]).name}


def export_tflite(trained, onnx_path: Path, precisions: list[str], out_dir: Path, calibration: list[Path], *,
                  rule: RetakeRule = DEFAULT_RULE, rule_evidence: dict | None = None,
                  verbose: bool = False) -> list[Artefact]:
    contract = trained.contract
    crops = calibration_crops(calibration, contract)
    with tempfile.TemporaryDirectory(prefix="diqa-onnx2tf-") as tmp:
        workdir = Path(tmp)
        info, seconds = _convert(onnx_path, crops, contract, workdir, verbose, full_integer="int8" in precisions)
        stem = onnx_path.stem
        if "int8-trunk" in precisions:
            made, quant_s = _int8_trunk(workdir / "tf", stem, crops, contract)
            check_fitted_trunk(trained, made)       # before any file is written to out_dir
            seconds += quant_s
        artefacts = []
        for precision in precisions:
            produced = workdir / "tf" / f"{stem}_{ONNX2TF_OUTPUTS[precision]}.tflite"
            if not produced.exists():
                raise ExportError(f"tflite: onnx2tf did not produce {produced.name} for {precision}")
            layout = _io_layout(produced)
            s = contract.input_size
            if layout["input_shape"] != [1, s, s, 3]:
                raise ExportError(f"tflite {precision}: input is {layout['input_shape']}, expected NHWC "
                                  f"[1, {s}, {s}, 3]")
            manifest = ModelManifest(contract.with_layout("NHWC"), rule, name=trained.name,
                                     format="tflite", precision=precision, rule_evidence=rule_evidence or {},
                                     outputs=tuple(trained.model.output_names),
                                     extra={"converter": "onnx2tf", "calibration_images": len(crops),
                                            "io": layout})
            out = out_dir / f"{trained.name}_tflite_{precision}.tflite"
            save_with_manifest(produced.read_bytes(), out, manifest)
            notes = {"io": layout, "calibration_images": len(crops),
                     "transposed": {"input": "NCHW [1,3,S,S] -> NHWC [1,S,S,3] (onnx2tf)",
                                    "output": f"{layout['output_shape']} unchanged"}}
            artefacts.append(Artefact("tflite", precision, out, seconds / len(precisions), notes))
    return artefacts


def save_with_manifest(model_bytes: bytes, path: Path, manifest: ModelManifest) -> None:
    """A .tflite flatbuffer saved with ``manifest`` inside (its metadata list) and beside it."""
    atomic_write_bytes(path, embed_tflite_metadata(model_bytes, manifest.to_json()))
    write_sidecar(path, manifest)


def export(trained, precisions: list[str], job: ExportJob) -> list[Artefact]:
    """The export table's entry: onnx2tf converts the job's ONNX graph (a static-batch one of its own when
    the job's ONNX file has a dynamic batch axis)."""
    if job.dynamic_batch:
        from .onnx_target import export_onnx

        static = export_onnx(trained, job.out_dir, name=f"{trained.name}_onnx_static", **job.meta()).path
    else:
        static = job.onnx_graph().path
    return export_tflite(trained, static, precisions, job.out_dir, job.calibration, verbose=job.verbose,
                         **job.meta())
