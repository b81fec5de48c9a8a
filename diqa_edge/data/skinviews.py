"""The dermatology set with human-anchored labels: every pristine skin photo and its KADID-10k views.

Each pristine photo is resized so its shorter side is the model's input size
(the view then *is* what the model sees, up to the center crop), and distorted
with each phone fault of ``diqa_edge.data.kadid`` at KADID's five levels. Every
view is labelled with KADID-10k's human mean DMOS for its (type, level); the
pristine, and its two darker-skin-tone views (``kadid.darker_tone``), with 10 (the rule and why:
``kadid.PRISTINE_RULE``); three frames with no skin detail (``kadid.no_detail``: uniform, defocused,
covered lens) with 1. The manifest is
the same loadable layout as the SSIM pseudo-MOS set (``dermset``), so splits,
loaders and export read it unchanged; re-running skips views already written.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..contract import DEFAULT_CONTRACT
from ..errors import ImageDecodeError
from ..sdk.decode import decode_image
from ..sdk.manifest import atomic_write_bytes, atomic_write_text
from .dermset import MANIFEST_COLUMNS, _csv_text, build_views, manifest_row, pristine_sources, view_stem
from .kadid import (FAMILIES, LABEL_RULE, NO_DETAIL_RECIPE, PRISTINE_RULE, RECIPE, TONE_RECIPE, distort_kadid,
                    kadid_label)

LABELS_NOTE = (f"{LABEL_RULE}; {PRISTINE_RULE}; frames with no skin detail (uniform, defocus, covered) "
               "are labelled 1")


def resize_short_side(rgb: np.ndarray, short_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def encode_view(rgb: np.ndarray, family: str | None, level: int | None, seed: int) -> tuple[bytes, str]:
    """The file of one view. JPEG views are the pristine encoded once at the level's quality (never a
    decoded JPEG encoded again); the rest are lossless PNG so the only loss is the intended one."""
    buf = io.BytesIO()
    if family == "jpeg":
        Image.fromarray(rgb).save(buf, format="JPEG", quality=int(FAMILIES["jpeg"].params[level - 1]))
        return buf.getvalue(), ".jpg"
    view = rgb if family is None else distort_kadid(rgb, family, level, seed=seed)
    Image.fromarray(view).save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), ".png"


def view_seed(seed: int, stem: str, index: int) -> int:
    """A view's noise / motion-angle seed: fixed by the photo and the view, whatever the worker order."""
    return int.from_bytes(stem.encode()[:8].ljust(8, b"\0"), "little") % (2 ** 31) + 1000 * seed + index


def _build_one(args) -> tuple[list[dict], str | None]:
    src, out_dir, seed, short_side = args
    stem = Path(src).stem
    views = [(None, None)] + list(RECIPE) + list(TONE_RECIPE) + list(NO_DETAIL_RECIPE)
    todo = []
    for index, (family, level) in enumerate(views):
        suffix = ".jpg" if family == "jpeg" else ".png"
        name = view_stem(stem, family, level) + suffix
        todo.append((index, family, level, name, (out_dir / "images" / name).exists()))
    rgb = None
    if not all(done for *_, done in todo):
        try:
            rgb = resize_short_side(decode_image(src, DEFAULT_CONTRACT), short_side)
        except ImageDecodeError as exc:
            return [], str(exc)
    rows = []
    for index, family, level, name, done in todo:
        if not done:
            data, _ = encode_view(rgb, family, level, view_seed(seed, stem, index))
            atomic_write_bytes(out_dir / "images" / name, data)
        rows.append(manifest_row(name, kadid_label(family, level), stem, family, level))
    return rows, None


@dataclass
class SkinSetReport:
    manifest: Path
    pristine: int
    views: int
    failed: list[str]


def make_skin_set(pristine_dir: Path, out_dir: Path, *, short_side: int = 512, seed: int = 0,
                  workers: int = 2, limit: int | None = None, progress: bool = True) -> SkinSetReport:
    """Write ``out_dir/images/*`` and ``out_dir/manifest.csv`` (resumable)."""
    out_dir = Path(out_dir)
    sources = pristine_sources(pristine_dir, limit)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    jobs = [(str(s), out_dir, seed, short_side) for s in sources]
    rows, failed = build_views(_build_one, jobs, workers, "skin views", progress)
    manifest = out_dir / "manifest.csv"
    atomic_write_text(manifest, _csv_text(MANIFEST_COLUMNS, rows))
    atomic_write_text(out_dir / "LABELS.txt", f"short side {short_side} px, seed {seed}.\nLabels: {LABELS_NOTE}.\n")
    return SkinSetReport(manifest, len(sources) - len(failed), len(rows), failed)
