"""Everything the page needs, in one folder: its own files, LiteRT.js from npm, the model.

Why the shipped ``.tflite`` itself: the page runs it with LiteRT.js (Google's WebAssembly build of the
runtime the SDK and the phone use), so the page gives the phone's answer from the phone's file (its
int8 trunk included) and downloads that 7.6 MB file, not a second export. A difference between the
page and the SDK can then only come from the page's own preprocessing, which is what the parity test
looks for.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from ..errors import DiqaError
from ..export.formats import SAMPLES
from ..fileio import atomic_write_text
from ..models.load import MODELS_DIR, SHIPPED_MODEL
from ..sdk.hints import GENERIC, HINTS, INPUT_HINTS, MIN_PROBABILITY
from ..sdk.manifest import ModelManifest

CLIENT_DIR = SAMPLES.parent / "clients" / "web"
VECTORS = MODELS_DIR / "vectors"
LITERT = CLIENT_DIR / "node_modules" / "@litertjs"
# the runtime the page loads (site path: npm path); index.html's import map names wasm-utils.js
RUNTIME_FILES = {"litert/core.js": "core/dist/index.js", "litert/wasm-utils.js": "wasm-utils/dist/index.js"}
RUNTIME_WASM = "core/wasm"      # loadLiteRt picks one build (plain, threaded, JSPI) of the four inside
PAGE_FILES = ("index.html", "style.css", "app.js", "scorer.js", "contract.js", "rule.js", "detail.js")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def page_manifest(model: Path) -> ModelManifest:
    """The manifest the SDK would use for ``model`` (beside or inside it), after the SDK's own load, which
    runs the manifest's check: the page is never handed a model its manifest does not belong to."""
    from ..sdk.scorer import QualityScorer

    return QualityScorer(model, threads=1).manifest


def runtime_missing(litert: Path = LITERT) -> str | None:
    """Why the page's runtime cannot be laid out, or None."""
    if all((litert / f).exists() for f in RUNTIME_FILES.values()) and (litert / RUNTIME_WASM).is_dir():
        return None
    return (f"{litert}: LiteRT.js is not installed; run `npm ci --prefix {CLIENT_DIR}` "
            "(Node.js and npm from your system's packages)")


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
    """Lay out the static site in ``site_dir``; ``model`` is a ``.tflite`` file with its manifest (inside or
    beside it; default: the shipped ``default.tflite``). Returns ``site_dir``."""
    missing = [f for f in PAGE_FILES if not (client_dir / f).exists()]
    if missing:
        raise DiqaError(f"{client_dir}: the web client's files are missing ({', '.join(missing)}); "
                        "run this from a checkout of the repository")
    litert = client_dir / "node_modules" / "@litertjs"
    why = runtime_missing(litert)
    if why:
        raise DiqaError(why)
    model = SHIPPED_MODEL if model is None else Path(model)
    if model.suffix != ".tflite":
        raise DiqaError(f"{model}: the page runs a .tflite file (with LiteRT.js); export one with "
                        "`python -m diqa_edge.export --target tflite`")
    manifest = page_manifest(model)
    for name in PAGE_FILES:
        _copy(client_dir / name, site_dir / name)
    for site_name, npm_name in RUNTIME_FILES.items():
        _copy(litert / npm_name, site_dir / site_name)
    for wasm in sorted((litert / RUNTIME_WASM).iterdir()):
        _copy(wasm, site_dir / "litert" / "wasm" / wasm.name)
    _copy(model, site_dir / "model.tflite")
    atomic_write_text(site_dir / "model.manifest.json", manifest.to_json())
    atomic_write_text(site_dir / "hints.json", json.dumps(hints_table(), indent=1) + "\n")
    photos = {}
    for folder, prefix in ((SAMPLES, "samples"), (VECTORS, "vectors")):
        for photo in _photos(folder):
            _copy(photo, site_dir / prefix / photo.name)
            photos[f"{prefix}/{photo.name}"] = photo.name
    atomic_write_text(site_dir / "photos.json", json.dumps(sorted(photos), indent=1) + "\n")
    return site_dir
