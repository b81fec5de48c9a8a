"""Loaders for the published IQA sets, each reading the files exactly as the authors ship them.

Each loader only knows its own file format (CSV, XLSX, MATLAB) and turns it
into plain rows; ``_records_from_rows`` applies the same checks to every set
(missing image, duplicate name, non-numeric or out-of-range MOS) and reports
every bad row with its file and line. Layouts and column variants are those
of the official releases (and of pyiqa's meta-info scripts, which read them).
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .records import LoadedDataset, Problem, Record, finish, rescale_mos


@dataclass
class Row:
    line: int | None
    name: str
    mos: object
    std: object = None
    n_ratings: object = None
    group: str | None = None
    extra: dict = field(default_factory=dict)


class ImageIndex:
    """Case-insensitive lookup of image files in a folder (BIQ2021 ships a '.JPG' its CSV calls '.jpg')."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._files: dict[str, Path] = {}
        if folder.is_dir():
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_file():
                        self._files.setdefault(entry.name.lower(), Path(entry.path))

    def find(self, name: str) -> Path | None:
        return self._files.get(name.strip().lower())


def _number(value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _records_from_rows(dataset: str, source: Path, rows: Iterable[Row], images: ImageIndex,
                       native_range: tuple[float, float], *,
                       default_group: Callable[[str], str] = lambda name: name,
                       pseudo: bool = False,
                       row_range: Callable[[Row], tuple[float, float]] | None = None,
                       ) -> tuple[list[Record], list[Problem]]:
    records: list[Record] = []
    problems: list[Problem] = []
    seen: dict[str, int | None] = {}
    src = str(source)
    for row in rows:
        name = (row.name or "").strip()
        if not name:
            problems.append(Problem(src, row.line, "empty image name"))
            continue
        if name.lower() in seen:
            problems.append(Problem(src, row.line, f"duplicate image name {name!r} "
                                                   f"(first at line {seen[name.lower()]})"))
            continue
        seen[name.lower()] = row.line
        lo, hi = row_range(row) if row_range else native_range
        mos = _number(row.mos)
        if mos is None:
            problems.append(Problem(src, row.line, f"MOS {row.mos!r} of {name!r} is not a number"))
            continue
        if not lo - 1e-9 <= mos <= hi + 1e-9:
            problems.append(Problem(src, row.line, f"MOS {mos} of {name!r} is outside the declared "
                                                   f"range [{lo}, {hi}]"))
            continue
        path = images.find(name)
        if path is None:
            problems.append(Problem(src, row.line, f"image {name!r} not found in {images.folder}"))
            continue
        std = _number(row.std)
        n = _number(row.n_ratings)
        extra = row.extra
        records.append(Record(
            image=path, name=name, mos_native=mos, mos=rescale_mos(mos, lo, hi),
            group=row.group or default_group(name), dataset=dataset, std=std,
            n_ratings=int(n) if n is not None else None, pseudo=bool(extra.get("pseudo", pseudo)),
            distortion=extra.get("distortion"), level=extra.get("level")))
    return records, problems


def _first_existing(root: Path, candidates: Iterable[str], what: str) -> Path:
    for candidate in candidates:
        path = root / candidate
        if path.exists():
            return path
    raise FileNotFoundError(f"{root}: no {what} found (looked for: {', '.join(candidates)})")


def _pick(header: list[str], candidates: Iterable[str], source: Path, what: str) -> str:
    lowered = {h.strip().lower(): h for h in header if h}
    for candidate in candidates:
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    raise ValueError(f"{source}: no {what} column (header: {header}; expected one of {list(candidates)})")


def _csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """(header, [(line number, row dict)]); empty header cells (BIQ2021's ',,') are dropped."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = []
        for index, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            rows.append((index, {h: v for h, v in zip(header, values) if h}))
    return header, rows


# --- KonIQ-10k -----------------------------------------------------------
KONIQ_CSVS = ("koniq10k_scores_and_distributions.csv", "koniq10k_distributions_sets.csv")


def load_koniq(root: Path, *, skip_bad: bool = False, resolution: str = "1024x768") -> LoadedDataset:
    """KonIQ-10k: MOS 1-5 from ``koniq10k_scores_and_distributions.csv``; one image per group."""
    root = Path(root)
    source = _first_existing(root, KONIQ_CSVS, "KonIQ-10k score CSV")
    header, raw = _csv_rows(source)
    name_col = _pick(header, ["image_name"], source, "image name")
    mos_col = _pick(header, ["MOS"], source, "MOS")
    std_col = _pick(header, ["SD", "MOS_std"], source, "SD")
    n_col = "c_total" if "c_total" in header else None
    rows = [Row(line, r.get(name_col, ""), r.get(mos_col), r.get(std_col), r.get(n_col) if n_col else None)
            for line, r in raw]
    folder = root / resolution
    if not folder.is_dir():
        folder = _first_existing(root, ("1024x768", "512x384"), "KonIQ-10k image folder")
    recs, probs = _records_from_rows("koniq", source, rows, ImageIndex(folder), (1.0, 5.0))
    return finish("koniq", recs, probs, skip_bad=skip_bad, native_range=(1.0, 5.0), role="all")


# --- KADID-10k -----------------------------------------------------------
KADID_DISTORTIONS = {
    1: "gaussian_blur", 2: "lens_blur", 3: "motion_blur", 4: "color_diffusion", 5: "color_shift",
    6: "color_quantization", 7: "color_saturation_1", 8: "color_saturation_2", 9: "jpeg2000",
    10: "jpeg", 11: "white_noise", 12: "white_noise_color", 13: "impulse_noise",
    14: "multiplicative_noise", 15: "denoise", 16: "brighten", 17: "darken", 18: "mean_shift",
    19: "jitter", 20: "non_eccentricity_patch", 21: "pixelate", 22: "quantization",
    23: "color_block", 24: "high_sharpen", 25: "contrast_change",
}
_KADID_NAME = re.compile(r"^(I\d+)_(\d+)_(\d+)\.\w+$", re.IGNORECASE)


def load_kadid(root: Path, *, skip_bad: bool = False) -> LoadedDataset:
    """KADID-10k: ``dmos.csv`` (dist_img, ref_img, dmos, var), DMOS 1-5; group = reference image."""
    root = Path(root)
    source = _first_existing(root, ("dmos.csv",), "KADID-10k dmos.csv")
    header, raw = _csv_rows(source)
    dist_col = _pick(header, ["dist_img"], source, "dist_img")
    ref_col = _pick(header, ["ref_img"], source, "ref_img")
    mos_col = _pick(header, ["dmos"], source, "dmos")
    var_col = "var" if "var" in header else None
    rows = []
    for line, r in raw:
        name = r.get(dist_col, "")
        var = _number(r.get(var_col)) if var_col else None
        match = _KADID_NAME.match(name.strip())
        extra = {}
        if match:
            extra = {"distortion": KADID_DISTORTIONS.get(int(match.group(2)), f"type_{match.group(2)}"),
                     "level": int(match.group(3))}
        rows.append(Row(line, name, r.get(mos_col), math.sqrt(var) if var is not None and var >= 0 else None,
                        group=(r.get(ref_col) or "").strip() or None, extra=extra))
    recs, probs = _records_from_rows("kadid", source, rows, ImageIndex(root / "images"), (1.0, 5.0))
    return finish("kadid", recs, probs, skip_bad=skip_bad, native_range=(1.0, 5.0), role="all")


# --- SPAQ ----------------------------------------------------------------
SPAQ_XLSX = "MOS and Image attribute scores.xlsx"


def _xlsx_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        it = sheet.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(it, [])]
        rows = []
        for index, values in enumerate(it, start=2):
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            rows.append((index, {h: v for h, v in zip(header, values) if h}))
    finally:
        book.close()
    return header, rows


def load_spaq(root: Path, *, skip_bad: bool = False) -> LoadedDataset:
    """SPAQ: ``Annotations/MOS and Image attribute scores.xlsx`` (MOS 0-100), images in ``TestImage/``."""
    root = Path(root)
    source = _first_existing(root, (f"Annotations/{SPAQ_XLSX}", SPAQ_XLSX), "SPAQ MOS spreadsheet")
    header, raw = _xlsx_rows(source)
    name_col = _pick(header, ["Image name", "Image_name", "image name", "image"], source, "image name")
    mos_col = _pick(header, ["MOS"], source, "MOS")
    rows = [Row(line, str(r.get(name_col) or ""), r.get(mos_col)) for line, r in raw]
    folder = _first_existing(root, ("TestImage", "Dataset/TestImage"), "SPAQ TestImage folder")
    recs, probs = _records_from_rows("spaq", source, rows, ImageIndex(folder), (0.0, 100.0))
    return finish("spaq", recs, probs, skip_bad=skip_bad, native_range=(0.0, 100.0), role="all")


# --- GFIQA-20k -----------------------------------------------------------
GFIQA_CSVS = ("mos_rating.csv", "GFIQA-20k.csv", "gfiqa20k.csv", "mos.csv")


def load_gfiqa(root: Path, *, skip_bad: bool = False) -> LoadedDataset:
    """GFIQA-20k: a CSV of image names and MOS in [0, 1], face images in ``image/`` or ``images/``."""
    root = Path(root)
    try:
        source = _first_existing(root, GFIQA_CSVS, "GFIQA-20k MOS CSV")
    except FileNotFoundError:
        csvs = sorted(root.glob("*.csv"))
        if len(csvs) != 1:
            raise
        source = csvs[0]
    header, raw = _csv_rows(source)
    name_col = _pick(header, ["img_name", "image_name", "image", "filename", "name"], source, "image name")
    mos_col = _pick(header, ["mos", "MOS", "score"], source, "MOS")
    std_col = next((h for h in header if h.lower() in ("std", "sd", "mos_std")), None)
    rows = [Row(line, r.get(name_col, ""), r.get(mos_col), r.get(std_col) if std_col else None)
            for line, r in raw]
    folder = _first_existing(root, ("image", "images", "Images"), "GFIQA-20k image folder")
    recs, probs = _records_from_rows("gfiqa", source, rows, ImageIndex(folder), (0.0, 1.0))
    return finish("gfiqa", recs, probs, skip_bad=skip_bad, native_range=(0.0, 1.0), role="all")


# --- BIQ2021 -------------------------------------------------------------
BIQ_TRAIN_CSV = "Train (Images and MOS).csv"


def load_biq2021(root: Path, *, skip_bad: bool = False) -> LoadedDataset:
    """BIQ2021: the authors' training partition only (``Train (Images and MOS).csv``, MOS 0-1).

    The official test CSV is never read: the paper uses BIQ2021 for
    train / validation only, and the held-out test split stays untouched.
    """
    root = Path(root)
    source = _first_existing(root, (BIQ_TRAIN_CSV,), "BIQ2021 training CSV")
    header, raw = _csv_rows(source)
    name_col = _pick(header, ["Image Name", "Image_Name", "image"], source, "image name")
    mos_col = _pick(header, ["MOS"], source, "MOS")
    rows = [Row(line, r.get(name_col, ""), r.get(mos_col)) for line, r in raw]
    recs, probs = _records_from_rows("biq2021", source, rows, ImageIndex(root / "Images"), (0.0, 1.0))
    return finish("biq2021", recs, probs, skip_bad=skip_bad, native_range=(0.0, 1.0), role="trainval")


# --- LIVE In the Wild ----------------------------------------------------
LIVEC_TRAINING_IMAGES = 7  # the first seven entries are the authors' training images


def load_livec(root: Path, *, skip_bad: bool = False) -> LoadedDataset:
    """LIVE-itW: ``Data/AllImages_release.mat`` + ``Data/AllMOS_release.mat`` (MOS 0-100); test only.

    The first seven entries (the study's training images, in
    ``Images/trainingImages/``) are excluded, as the authors recommend.
    """
    import numpy as np
    from scipy.io import loadmat

    root = Path(root)
    names_file = root / "Data" / "AllImages_release.mat"
    mos_file = root / "Data" / "AllMOS_release.mat"
    std_file = root / "Data" / "AllStdDev_release.mat"
    for f in (names_file, mos_file):
        if not f.exists():
            raise FileNotFoundError(f"{root}: LIVE-itW file {f.relative_to(root)} not found")
    names = [str(np.asarray(item).ravel()[0]) for item in loadmat(names_file)["AllImages_release"].ravel()]
    mos = np.asarray(loadmat(mos_file)["AllMOS_release"], dtype=object).ravel()
    std = (np.asarray(loadmat(std_file)["AllStdDev_release"], dtype=object).ravel()
           if std_file.exists() else [None] * len(names))
    problems: list[Problem] = []
    if len(mos) != len(names):
        problems.append(Problem(str(mos_file), None, f"{len(mos)} MOS values for {len(names)} image names"))
    rows = [Row(i + 1, names[i], mos[i] if i < len(mos) else None, std[i] if i < len(std) else None)
            for i in range(LIVEC_TRAINING_IMAGES, len(names))]
    recs, probs = _records_from_rows("livec", names_file, rows, ImageIndex(root / "Images"), (0.0, 100.0))
    return finish("livec", recs, problems + probs, skip_bad=skip_bad, native_range=(0.0, 100.0), role="test")


# --- generic manifest (dermatology set, user data) ----------------------
def load_manifest(path: Path, *, skip_bad: bool = False, name: str | None = None,
                  scale: tuple[float, float] = (1.0, 10.0)) -> LoadedDataset:
    """CSV with ``image, mos`` and optional ``group, std, n_ratings, scale_min, scale_max,
    pseudo, distortion, level``; image paths are relative to the manifest's folder."""
    path = Path(path)
    header, raw = _csv_rows(path)
    for column in ("image", "mos"):
        _pick(header, [column], path, column)
    dataset = name or path.parent.name or path.stem
    folder = path.parent
    rows: list[Row] = []
    pseudo_any = False
    for line, r in raw:
        extra: dict = {}
        if r.get("distortion"):
            extra["distortion"] = r["distortion"].strip()
        level = _number(r.get("level"))
        if level is not None:
            extra["level"] = int(level)
        if str(r.get("pseudo", "")).strip().lower() in ("1", "true", "yes"):
            extra["pseudo"] = True
            pseudo_any = True
        rows.append(Row(line, r.get("image", ""), r.get("mos"), r.get("std"), r.get("n_ratings"),
                        group=(r.get("group") or "").strip() or None, extra=extra))

    raw_by_line = dict(raw)

    def row_range(row: Row) -> tuple[float, float]:
        r = raw_by_line.get(row.line, {})
        lo, hi = _number(r.get("scale_min")), _number(r.get("scale_max"))
        return (lo if lo is not None else scale[0], hi if hi is not None else scale[1])

    recs, probs = _records_from_rows(dataset, path, rows, _ManifestImages(folder), scale,
                                     row_range=row_range)
    return finish(dataset, recs, probs, skip_bad=skip_bad, native_range=scale, role="all",
                  pseudo=pseudo_any)


class _ManifestImages(ImageIndex):
    """Manifest paths may point into sub-folders: resolve relative to the manifest."""

    def __init__(self, folder: Path):
        self.folder = folder

    def find(self, name: str) -> Path | None:
        path = (self.folder / name.strip())
        return path if path.is_file() else None
