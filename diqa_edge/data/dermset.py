"""Build a dermatology IQA set from pristine skin photos, the paper's way, and aggregate human ratings.

``make_derm_set``: each pristine photo is resized so its long side is 512 px
(as the paper did before its observers rated the images), then distorted
into the recipe's views. Labels are **pseudo-MOS** until people rate the
images: 1 + 9 x SSIM to the pristine (mean over R, G, B; scikit-image's
``structural_similarity``, 7x7 window), pristine = 10. A ratings template for
an ITU-T P.910 ACR study is written beside the manifest; ``aggregate_ratings``
turns the filled-in template into MOS with standard deviation, 95 %
confidence interval and rater screening, so a clinic can replace the
pseudo-MOS with its own observers' scores.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..contract import DEFAULT_CONTRACT
from ..errors import DiqaError, ImageDecodeError
from ..sdk.decode import decode_image
from ..sdk.cli import IMAGE_SUFFIXES as SCORABLE_SUFFIXES
from ..fileio import atomic_write_bytes, atomic_write_text, written_in_place
from .distort import FAMILIES, RECIPES, distort
from .records import Problem

LONG_SIDE = 512
IMAGE_SUFFIXES = SCORABLE_SUFFIXES - {".gif"}   # pristine photos: no GIFs
MANIFEST_COLUMNS = ["image", "mos", "group", "pseudo", "distortion", "level", "scale_min", "scale_max"]


def ssim_rgb(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over R, G, B with a 7x7 window (smaller, odd, for images under 7 px)."""
    from skimage.metrics import structural_similarity

    win = min(7, (min(a.shape[:2]) - 1) // 2 * 2 + 1)
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, win_size=win))


def pseudo_mos(pristine: np.ndarray, view: np.ndarray) -> float:
    return 1.0 + 9.0 * float(np.clip(ssim_rgb(pristine, view), 0.0, 1.0))


def resize_long_side(rgb: np.ndarray, long_side: int = LONG_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= long_side:
        return rgb
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def _encode(rgb: np.ndarray, family: str | None, level: int | None) -> tuple[bytes, str]:
    """PNG (lossless) for every view, so the only loss is the intended one; JPEG views stay JPEG."""
    buf = io.BytesIO()
    if family == "jpeg":
        Image.fromarray(rgb).save(buf, format="JPEG", quality=int(FAMILIES["jpeg"].params[level - 1]))
        return buf.getvalue(), ".jpg"
    Image.fromarray(rgb).save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue(), ".png"


def view_stem(stem: str, family: str | None, level: int | None) -> str:
    """A view's file name without its suffix: the one place the naming rule lives."""
    return f"{stem}__pristine" if family is None else f"{stem}__{family}_{level}"


def write_view(rgb: np.ndarray, family: str | None, level: int | None, seed: int, folder: Path,
               stem: str) -> tuple[str, np.ndarray]:
    """Distort (``family`` None: the photo itself), encode and write one view; its file name and the
    pixels the file holds, which are what a label must be computed from (JPEG views lose more)."""
    view = rgb if family is None else distort(rgb, family, level, seed=seed)
    data, suffix = _encode(view, family, level)
    name = view_stem(stem, family, level) + suffix
    atomic_write_bytes(Path(folder) / name, data)
    return name, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _build_one(args) -> tuple[list[dict], str | None]:
    """All views of one pristine photo (runs in a worker process)."""
    src, out_dir, recipe_name, seed, long_side = args
    try:
        rgb = resize_long_side(decode_image(src, DEFAULT_CONTRACT), long_side)
    except ImageDecodeError as exc:
        return [], str(exc)
    stem = Path(src).stem
    rows = []
    views = [(None, None)] + list(RECIPES[recipe_name])
    for index, (family, level) in enumerate(views):
        name, stored = write_view(rgb, family, level, seed + index, out_dir / "images", stem)
        mos = 10.0 if family is None else pseudo_mos(rgb, stored)
        rows.append(manifest_row(name, mos, stem, family, level))
    return rows, None


def manifest_row(name: str, label: float, group: str, family: str | None, level: int | None) -> dict:
    """One view's row in a derm-set manifest (MANIFEST_COLUMNS); ``pseudo``: the label is not a human
    rating of that image."""
    return {"image": f"images/{name}", "mos": f"{label:.4f}", "group": group, "pseudo": 1,
            "distortion": family or "none", "level": level or 0, "scale_min": 1, "scale_max": 10}


@dataclass
class DermSetReport:
    manifest: Path
    template: Path
    pristine: int
    views: int
    failed: list[str]


def pristine_sources(pristine_dir: Path, limit: int | None = None) -> list[Path]:
    sources = sorted(p for p in Path(pristine_dir).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if limit:
        sources = sources[:limit]
    if not sources:
        raise DiqaError(f"{pristine_dir}: no images found")
    return sources


def build_views(build_one, jobs: list, workers: int, desc: str, progress: bool) -> tuple[list[dict], list[str]]:
    """Run ``build_one`` (one pristine photo -> its manifest rows, or an error) over ``jobs``, in worker
    processes when ``workers`` > 1, with a progress bar; rows in job order and the errors."""
    from tqdm import tqdm

    rows: list[dict] = []
    failed: list[str] = []
    with tqdm(total=len(jobs), desc=desc, unit="photo", disable=not progress or None) as bar:
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = list(_tick(pool.map(build_one, jobs), bar))
        else:
            results = list(_tick(map(build_one, jobs), bar))
    for built, error in results:
        rows.extend(built)
        if error:
            failed.append(error)
    return rows, failed


def _tick(results, bar):
    for item in results:
        bar.update()
        yield item


def make_derm_set(pristine_dir: Path, out_dir: Path, *, recipe: str = "paper", seed: int = 0,
                  long_side: int = LONG_SIDE, workers: int = 2, limit: int | None = None,
                  progress: bool = True) -> DermSetReport:
    pristine_dir, out_dir = Path(pristine_dir), Path(out_dir)
    if recipe not in RECIPES:
        raise DiqaError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    sources = pristine_sources(pristine_dir, limit)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    jobs = [(str(s), out_dir, recipe, seed, long_side) for s in sources]
    rows, failed = build_views(_build_one, jobs, workers, "derm set", progress)
    manifest = out_dir / "manifest.csv"
    atomic_write_text(manifest, _csv_text(MANIFEST_COLUMNS, rows))
    rng = np.random.default_rng(seed)
    order = [rows[i]["image"] for i in rng.permutation(len(rows))]
    template = out_dir / "ratings_template.csv"
    atomic_write_text(template, _csv_text(["rater", "image", "score"],
                                          [{"rater": "", "image": im, "score": ""} for im in order]))
    return DermSetReport(manifest, template, len(sources) - len(failed), len(rows), failed)


def _csv_text(columns: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def views_figure(manifest: Path, group: str, out_png: Path) -> Path:
    """One pristine photo and all its views in a grid, labelled with family, level and pseudo-MOS."""
    from ..eval.plots import pyplot

    plt = pyplot()

    with open(manifest, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["group"] == group]
    if not rows:
        raise DiqaError(f"{manifest}: no images of group {group!r}")
    cols = 5
    nrows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 2.6, nrows * 2.3))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), rows):
        ax.imshow(Image.open(manifest.parent / row["image"]).convert("RGB"))
        label = "pristine" if row["distortion"] == "none" else f"{row['distortion']} {row['level']}"
        ax.set_title(f"{label}\npseudo-MOS {float(row['mos']):.1f}", fontsize=8)
    fig.suptitle(f"{group}: pristine and its {len(rows) - 1} distorted views", fontsize=10)
    fig.tight_layout()
    with written_in_place(Path(out_png)) as tmp:
        fig.savefig(tmp, dpi=64)
    plt.close(fig)
    return out_png


# --- ratings -------------------------------------------------------------
@dataclass
class RatingsResult:
    rows: list[dict]
    rejected_raters: dict[str, float]   # rater -> correlation with the others' mean
    problems: list[Problem]


def aggregate_ratings(ratings_csv: Path, *, scale=(1.0, 10.0), min_corr: float = 0.7,
                      min_ratings_for_screening: int = 5) -> RatingsResult:
    """Raw ACR ratings (rater, image, score) -> MOS, std, n, 95 % CI, after rater screening.

    Screening (correlation-to-mean, as in crowdsourced IQA studies): a rater
    who scored at least ``min_ratings_for_screening`` images is dropped when the
    Pearson correlation between their scores and the mean of the other raters
    on the same images is below ``min_corr``.
    """
    by_image, problems = _read_ratings(Path(ratings_csv), scale)
    rejected = _screen_raters(by_image, min_corr, min_ratings_for_screening)
    rows = []
    for image in sorted(by_image):
        kept = [v for k, v in by_image[image].items() if k not in rejected]
        if kept:
            rows.append({"image": image, **_mos_row(kept), "scale_min": scale[0], "scale_max": scale[1]})
    return RatingsResult(rows, rejected, problems)


def _read_ratings(ratings_csv: Path, scale) -> tuple[dict[str, dict[str, float]], list[Problem]]:
    """({image: {rater: score}}, problems): every usable rating; each bad row named with its line, and
    skipped (an unfilled template row silently)."""
    problems: list[Problem] = []
    by_image: dict[str, dict[str, float]] = defaultdict(dict)
    with open(ratings_csv, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = {"rater", "image", "score"} - set(reader.fieldnames or [])
        if missing:
            raise DiqaError(f"{ratings_csv}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            rater, image, raw = (row.get("rater") or "").strip(), (row.get("image") or "").strip(), row.get("score")
            if not raw or not str(raw).strip():
                continue  # an unfilled template row
            try:
                score = float(raw)
            except ValueError:
                problems.append(Problem(str(ratings_csv), line, f"score {raw!r} is not a number"))
                continue
            if not rater or not image:
                problems.append(Problem(str(ratings_csv), line, "rater and image are required"))
            elif not scale[0] <= score <= scale[1]:
                problems.append(Problem(str(ratings_csv), line, f"score {score} outside {scale}"))
            elif rater in by_image[image]:
                problems.append(Problem(str(ratings_csv), line, f"rater {rater!r} rated {image!r} twice"))
            else:
                by_image[image][rater] = score
    return by_image, problems


def _screen_raters(by_image: dict[str, dict[str, float]], min_corr: float, min_ratings: int) -> dict[str, float]:
    """{rater: correlation} of the raters whose scores follow the others' mean too little."""
    from scipy import stats

    rejected: dict[str, float] = {}
    for rater in sorted({r for scores in by_image.values() for r in scores}):
        mine, others = [], []
        for scores in by_image.values():
            if rater in scores and len(scores) > 1:
                mine.append(scores[rater])
                others.append(np.mean([v for k, v in scores.items() if k != rater]))
        if len(mine) >= min_ratings and np.std(mine) > 0 and np.std(others) > 0:
            r = float(stats.pearsonr(mine, others)[0])
            if r < min_corr:
                rejected[rater] = r
    return rejected


def _mos_row(kept: list[float]) -> dict:
    """MOS, standard deviation, count and the half-width of the 95 % t interval (NaN for one rating)."""
    from scipy import stats

    n = len(kept)
    std = float(np.std(kept, ddof=1)) if n > 1 else 0.0
    ci = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")
    return {"mos": round(float(np.mean(kept)), 4), "std": round(std, 4), "n_ratings": n, "ci95": round(ci, 4)}


def write_ratings_manifest(result: RatingsResult, out_csv: Path, derm_manifest: Path | None = None) -> Path:
    """Write a loadable manifest of human MOS; group / distortion / level come from the derm set's
    own manifest when given, so the splits stay grouped by pristine photo."""
    columns = ["image", "mos", "std", "n_ratings", "ci95", "scale_min", "scale_max"]
    rows = [dict(r) for r in result.rows]
    if derm_manifest is not None and Path(derm_manifest).exists():
        with open(derm_manifest, newline="") as fh:
            known = {r["image"]: r for r in csv.DictReader(fh)}
        for r in rows:
            for key in ("group", "distortion", "level"):
                r[key] = known.get(r["image"], {}).get(key, "")
        columns += ["group", "distortion", "level"]
    atomic_write_text(out_csv, _csv_text(columns, rows))
    return Path(out_csv)
