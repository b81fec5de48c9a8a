"""Everything the page needs, in one folder: its own files, the runtime's WebAssembly from npm, the model.

Why an ONNX file and not the shipped ``.tflite``: the page runs onnxruntime-web, the same release
(1.23.0) as the onnxruntime the SDK scores ONNX files with, so a difference between the page and
the SDK can only come from the page's own preprocessing, which is what the parity test looks for.
The file is exported from the shipped run folder (``diqa_edge/models/run``, the same weights as
``default.tflite``) with the shipped manifest's decision, and cached under the cache root by the
run folder's content, so a second build copies it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from ..cachedir import cache_root
from ..errors import DiqaError
from ..export.formats import SAMPLES
from ..models.load import MODELS_DIR, SHIPPED_MODEL, SHIPPED_RUN
from ..sdk.hints import GENERIC, HINTS, INPUT_HINTS, MIN_PROBABILITY
from ..fileio import atomic_write_text
from ..sdk.manifest import ModelManifest, read_sidecar

CLIENT_DIR = SAMPLES.parent / "clients" / "web"
VECTORS = MODELS_DIR / "vectors"
# the runtime files the page loads: the WASM-only ES module and its threaded SIMD build
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PAGE_FILES = ("index.html", "style.css", "app.js", "scorer.js", "contract.js", "rule.js", "detail.js")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def run_fingerprint(run_dir: Path) -> str:
    """Hash of the run folder's files: a new run (or new head) gets a new cached ONNX file."""
    h = hashlib.sha256()
    for f in sorted(p for p in run_dir.iterdir() if p.is_file()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def shipped_onnx(run_dir: Path = SHIPPED_RUN, shipped_model: Path = SHIPPED_MODEL) -> Path:
    """The shipped run as an ONNX file with the shipped decision in its manifest, its weights stored in
    float16 and computed in float32 (``onnx_target.half_weights``: half the fp32 file, which is what a
    page opened on a phone downloads); exported once, about a minute, then read from the cache."""
    manifest = read_sidecar(shipped_model)
    if manifest is None:
        raise DiqaError(f"{shipped_model}: no manifest beside the shipped model")
    key = hashlib.sha256((run_fingerprint(run_dir) + manifest.to_json()).encode()).hexdigest()[:16]
    out_dir = cache_root() / "web" / key
    path = out_dir / "model_fp16.onnx"
    if path.exists() and read_sidecar(path) is not None:
        return path
    from ..export.onnx_target import export_onnx, half_weights
    from ..models.load import load_trained

    graph = export_onnx(load_trained(run_dir), out_dir, name="model", threshold=manifest.threshold,
                        threshold_rule=manifest.threshold_rule, decision=manifest.decision)
    return half_weights(graph, out_dir).path


def hints_table() -> dict:
    """``diqa_edge.sdk.hints`` as JSON, so the page shows the SDK's sentences (one table to translate)."""
    return {"min_probability": MIN_PROBABILITY, "generic": asdict(GENERIC),
            "hints": {k: asdict(v) for k, v in HINTS.items()},
            "input_hints": {k: asdict(v) for k, v in INPUT_HINTS.items()}}


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.stat().st_size != src.stat().st_size or dst.stat().st_mtime < src.stat().st_mtime:
        shutil.copy2(src, dst)


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) if folder.is_dir() else []


def build_site(site_dir: Path, model: Path | None = None, client_dir: Path = CLIENT_DIR) -> Path:
    """Lay out the static site in ``site_dir``; ``model`` is an ONNX file with its manifest beside it
    (default: the shipped run's). Returns ``site_dir``."""
    ort_dist = client_dir / "node_modules" / "onnxruntime-web" / "dist"
    missing = [f for f in PAGE_FILES if not (client_dir / f).exists()]
    if missing:
        raise DiqaError(f"{client_dir}: the web client's files are missing ({', '.join(missing)}); "
                        "run this from a checkout of the repository")
    if not all((ort_dist / f).exists() for f in ORT_FILES):
        raise DiqaError(f"{ort_dist}: onnxruntime-web is not installed; run `npm ci --prefix {client_dir}` "
                        "(Node.js and npm from your system's packages)")
    model = shipped_onnx() if model is None else Path(model)
    manifest: ModelManifest | None = read_sidecar(model)
    if manifest is None or manifest.format != "onnx":
        raise DiqaError(f"{model}: an ONNX model with its manifest beside it is needed")
    for name in PAGE_FILES:
        _copy(client_dir / name, site_dir / name)
    for name in ORT_FILES:
        _copy(ort_dist / name, site_dir / "ort" / name)
    _copy(model, site_dir / "model.onnx")
    atomic_write_text(site_dir / "model.manifest.json", manifest.to_json())
    atomic_write_text(site_dir / "hints.json", json.dumps(hints_table(), indent=1) + "\n")
    photos = {}
    for folder, prefix in ((SAMPLES, "samples"), (VECTORS, "vectors")):
        for photo in _photos(folder):
            _copy(photo, site_dir / prefix / photo.name)
            photos[f"{prefix}/{photo.name}"] = photo.name
    atomic_write_text(site_dir / "photos.json", json.dumps(sorted(photos), indent=1) + "\n")
    return site_dir
