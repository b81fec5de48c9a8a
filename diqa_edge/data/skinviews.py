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
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..contract import DEFAULT_CONTRACT
from ..errors import DiqaError, ImageDecodeError
from ..sdk.decode import decode_image
from ..fileio import atomic_write_bytes, atomic_write_text
from .dermset import MANIFEST_COLUMNS, _csv_text, build_views, manifest_row, pristine_sources, view_stem
from .camera import CAMERA_RECIPE, CAST_RECIPE
from .kadid import (AS_TAKEN, FAMILIES, LABEL_RULE, NO_DETAIL_RECIPE, PRISTINE_RULE, RECIPE, TONE_RECIPE,
                    distort_kadid, kadid_label)

LABELS_NOTE = (f"{LABEL_RULE}; {PRISTINE_RULE}; frames with no skin detail (uniform, defocus, covered) "
               "are labelled 1; the camera's own faults by their family's rule (data/camera.py); phone photos "
               "a reviewer judged not acceptable as taken (data/reviewed/) as KADID's level-4 Gaussian blur")
# Every dermoscopy photo also gets this many of the camera's faults (data/camera.py), drawn per photo from
# the 35 (family, level) pairs: all of them on all 257 photos would add 9,000 views to extract.
CAMERA_VIEWS_PER_PHOTO = 10
# A phone photo gets its as-taken view and this many views drawn from every recipe (KADID, tones, no-detail
# frames, camera faults): 629 photos x 11 views.
PHONE_VIEWS_PER_PHOTO = 10
# With ``colour_casts`` (not the shipped recipe: RESULTS, "A colour cast in the recipe"), a phone photo also
# gets one colour cast at a drawn level and a dermoscopy photo the cast at every level, added after the
# views above, so those keep their seeds, pixels and cached statistics.
PHONE_CAST_VIEWS = 1
ALL_FAULTS = tuple(RECIPE) + tuple(TONE_RECIPE) + tuple(NO_DETAIL_RECIPE) + tuple(CAMERA_RECIPE)
REVIEWED_DIR = Path(__file__).parent / "reviewed"


def resize_short_side(rgb: np.ndarray, short_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def encode_view(rgb: np.ndarray, family: str | None, level: int | None, seed: int) -> tuple[bytes, str]:
    """The file of one view. JPEG views are the pristine encoded once at the level's quality (never a
    decoded JPEG encoded again); the rest are lossless PNG so the only loss is the intended one."""
    buf = io.BytesIO()
    if family is not None and family.startswith(AS_TAKEN):
        family = None                        # the photo as taken; only its label says it fails
    if family == "jpeg":
        Image.fromarray(rgb).save(buf, format="JPEG", quality=int(FAMILIES["jpeg"].params[level - 1]))
        return buf.getvalue(), ".jpg"
    view = rgb if family is None else distort_kadid(rgb, family, level, seed=seed)
    Image.fromarray(view).save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), ".png"


def view_seed(seed: int, stem: str, index: int) -> int:
    """A view's noise / motion / placement seed: fixed by the photo and the view, whatever the worker order
    (a CRC of the whole name: photo names share long prefixes such as "ISIC_" and "PAT_")."""
    return zlib.crc32(stem.encode()) % (2 ** 31) + 1000 * seed + index


def drawn_views(seed: int, stem: str, pool: tuple, n: int, draw: int = 999) -> list[tuple[str, int]]:
    """``n`` (family, level) pairs of ``pool`` for one photo, fixed by the photo's name, the seed and ``draw``
    (another ``draw`` for another pool, so two draws of one photo are not alike)."""
    rng = np.random.default_rng(view_seed(seed, stem, draw))
    return [pool[i] for i in sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]


def dermoscopy_views(seed: int, stem: str, camera_views: int = CAMERA_VIEWS_PER_PHOTO,
                     colour_casts: bool = False) -> list[tuple]:
    """Every fixed view of a dermoscopy photo, ``camera_views`` drawn camera faults in recipe order, then
    (``colour_casts``) the colour cast at every level. A view's seed is its place in this list (as the
    shipped set was built), so a set built with every camera fault and a set with a few drawn hold other
    noise and placements for a same-named view; the casts come last so the views before them keep theirs."""
    return ([(None, None)] + list(RECIPE) + list(TONE_RECIPE) + list(NO_DETAIL_RECIPE)
            + drawn_views(seed, stem, CAMERA_RECIPE, camera_views) + (list(CAST_RECIPE) if colour_casts else []))


def _build_one(args) -> tuple[list[dict], str | None]:
    """All views of one photo (in a worker). ``short_side`` None: the photo's own size (its faults are built
    at the resolution it has); ``views``: its (family, level) pairs; ``group``: the split group."""
    src, out_dir, seed, short_side, views, group = args
    stem = Path(src).stem
    todo = []
    for index, (family, level) in enumerate(views):
        suffix = ".jpg" if family == "jpeg" else ".png"
        name = view_stem(stem, family, level) + suffix
        todo.append((index, family, level, name, (out_dir / "images" / name).exists()))
    rgb = None
    if not all(done for *_, done in todo):
        try:
            rgb = decode_image(src, DEFAULT_CONTRACT)
            rgb = resize_short_side(rgb, short_side) if short_side else rgb
        except ImageDecodeError as exc:
            return [], str(exc)
    rows = []
    for index, family, level, name, done in todo:
        if not done:
            data, _ = encode_view(rgb, family, level, view_seed(seed, stem, index))
            atomic_write_bytes(out_dir / "images" / name, data)
        rows.append(manifest_row(name, kadid_label(family, level), group or stem, family, level))
    return rows, None


@dataclass
class SkinSetReport:
    manifest: Path
    pristine: int
    views: int
    failed: list[str]


def make_skin_set(pristine_dir: Path, out_dir: Path, *, short_side: int = DEFAULT_CONTRACT.input_size, seed: int = 0,
                  workers: int = 2, limit: int | None = None, progress: bool = True,
                  camera_views: int = CAMERA_VIEWS_PER_PHOTO, colour_casts: bool = False) -> SkinSetReport:
    """Write ``out_dir/images/*`` and ``out_dir/manifest.csv`` (resumable); ``camera_views`` of the 35
    camera (family, level) pairs on each photo, and with ``colour_casts`` the cast at every level."""
    out_dir = Path(out_dir)
    sources = pristine_sources(pristine_dir, limit)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    jobs = [(str(s), out_dir, seed, short_side, dermoscopy_views(seed, Path(s).stem, camera_views, colour_casts),
             None) for s in sources]
    rows, failed = build_views(_build_one, jobs, workers, "skin views", progress)
    how = ("" if camera_views == CAMERA_VIEWS_PER_PHOTO else f", {camera_views} camera faults a photo") + \
        (", colour casts at every level" if colour_casts else "")
    manifest = _write_set(out_dir, rows, f"short side {short_side} px, seed {seed}{how}.")
    return SkinSetReport(manifest, len(sources) - len(failed), len(rows), failed)


def _write_set(out_dir: Path, rows: list[dict], how: str) -> Path:
    """A built set's ``manifest.csv`` and ``LABELS.txt`` (how it was built, then the labels' rules)."""
    manifest = out_dir / "manifest.csv"
    atomic_write_text(manifest, _csv_text(MANIFEST_COLUMNS, rows))
    atomic_write_text(out_dir / "LABELS.txt", f"{how}\nLabels: {LABELS_NOTE}.\n")
    return manifest


def reviewed_retakes(path: Path | None = None) -> dict[str, str]:
    """{file name: reason} of the phone photos a reviewer judged not acceptable as taken (a label)."""
    import csv

    path = path or REVIEWED_DIR / "pad_ufes_phone.csv"
    with open(path, newline="") as fh:
        return {r["image"]: r["reason"] for r in csv.DictReader(fh) if r["verdict"] == "retake"}


def make_phone_set(phone_dir: Path, out_dir: Path, *, seed: int = 0, workers: int = 2,
                   views_per_photo: int = PHONE_VIEWS_PER_PHOTO, limit: int | None = None,
                   reviewed: dict[str, str] | None = None, progress: bool = True,
                   colour_casts: bool = False) -> SkinSetReport:
    """Real phone photos of skin as bases (``phone_dir``: ``manifest.csv`` with image and patient, and the
    images beside it, or under ``images/``): each photo at its own resolution, as taken (labelled 10, or
    "as taken: <reason>" when ``reviewed`` lists it; default ``reviewed_retakes()``), and, for a photo that passes review,
    ``views_per_photo`` faults drawn from every recipe, built on it at that resolution (the model's
    resize then enlarges them as it enlarges the photo). Grouped by patient (resumable)."""
    import csv

    phone_dir, out_dir = Path(phone_dir), Path(out_dir)
    manifest_in = phone_dir / "manifest.csv"
    if not manifest_in.exists():
        raise DiqaError(f"{manifest_in}: not found (a phone set needs image and patient columns)")
    with open(manifest_in, newline="") as fh:
        listed = [(r["image"], r["patient"]) for r in csv.DictReader(fh)]
    listed = listed[:limit] if limit else listed
    images = phone_dir / "images" if (phone_dir / "images").is_dir() else phone_dir
    reviewed = reviewed_retakes() if reviewed is None else reviewed
    jobs = []
    for name, patient in listed:
        stem = Path(name).stem
        views = ([(f"{AS_TAKEN}{reviewed[name]}", 5)] if name in reviewed else
                 [(None, None)] + drawn_views(seed, stem, ALL_FAULTS, views_per_photo)
                 + (drawn_views(seed, stem, CAST_RECIPE, PHONE_CAST_VIEWS, draw=998) if colour_casts else []))
        jobs.append((str(images / name), out_dir, seed, None, views, patient))
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows, failed = build_views(_build_one, jobs, workers, "phone views", progress)
    manifest = _write_set(out_dir, rows, f"phone photos at their own size, seed {seed}, {views_per_photo} fault "
                                         "views per photo" + (" and a colour cast" if colour_casts else "")
                                         + ", grouped by patient.")
    return SkinSetReport(manifest, len(jobs) - len(failed), len(rows), failed)
