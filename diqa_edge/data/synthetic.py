"""Synthetic distorted views of a human-rated training part, for cross-domain training on one set.

Why: issue 10 asks whether KADID-style synthetic faults added to BIQ2021's
authentic ones raise or lower BIQ2021 accuracy. The views are made only
from the **training part** of a split and keep their source's group, so a
view of a validation or test photo can never reach training.

Why an anchored pseudo-MOS: a BIQ2021 photo is not pristine, so the
derm set's "pristine = 10" anchor does not hold. A view can be no better
than its source, and it loses what the distortion destroyed:
``MOS_view = 1 + (MOS_source - 1) x SSIM(source, view)``, the derm set's
1 + 9 x SSIM with the source's human MOS in place of 10.

Views are written once under a cache folder with a ``views.csv`` index, so
a re-run (or a resumed training run) reuses them.
"""

from __future__ import annotations

import csv
import io
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..contract import DEFAULT_CONTRACT
from ..errors import ImageDecodeError
from ..sdk.decode import decode_image
from ..fileio import atomic_write_text
from .dermset import LONG_SIDE, resize_long_side, ssim_rgb, view_stem, write_view
from .distort import RECIPES
from .records import SCORE_MIN, Record

log = logging.getLogger(__name__)

SYNTHETIC_SUFFIX = "-synth"   # a view's dataset is its source's name + this
INDEX_COLUMNS = ["file", "source", "group", "source_mos", "distortion", "level", "ssim", "mos"]


def anchored_mos(source_mos: float, ssim: float) -> float:
    """1 + (MOS_source - 1) x SSIM, on the [1, 10] scale; never above the source."""
    return SCORE_MIN + (float(source_mos) - SCORE_MIN) * float(np.clip(ssim, 0.0, 1.0))


def _make_views(job) -> list[dict] | str:
    """Every view drawn for one source (runs in a worker process, decoding the source once): their
    index rows, or an error message for a source that cannot be decoded."""
    src, stem, out_dir, wanted, long_side = job
    try:
        rgb = resize_long_side(decode_image(src, DEFAULT_CONTRACT), long_side)
    except ImageDecodeError as exc:
        return str(exc)
    rows = []
    for family, level, seed in wanted:
        name, stored = write_view(rgb, family, level, seed, Path(out_dir), stem)
        rows.append({"file": name, "distortion": family, "level": level, "ssim": ssim_rgb(rgb, stored)})
    return rows


def _views_on_disk(index_path: Path) -> dict[str, dict]:
    """The index rows of views made by an earlier run whose files are still there (a resumed run skips them)."""
    if not index_path.exists():
        return {}
    with open(index_path, newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh) if (index_path.parent / row["file"]).exists()}


def _make_missing_views(jobs: list[tuple], workers: int, progress: bool) -> tuple[dict[str, dict], list[str]]:
    """({view stem: index row}, problems): each job's views made, in worker processes when there are several
    jobs; a source that cannot be decoded comes back as its problem, and the others go on."""
    from tqdm import tqdm

    made, problems = {}, []
    with tqdm(total=sum(len(job[3]) for job in jobs), desc="synthetic views", unit="view",
              disable=not progress or None) as bar:
        pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 and len(jobs) > 1 else None
        try:
            for job, result in zip(jobs, (pool.map if pool else map)(_make_views, jobs)):
                if isinstance(result, str):
                    problems.append(result)
                else:
                    made.update({Path(row["file"]).stem: row for row in result})
                bar.update(len(job[3]))
        finally:
            if pool:
                pool.shutdown()
    return made, problems


def _write_index(index_path: Path, rows: dict[str, dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(sorted(rows.values(), key=lambda row: row["file"]))
    atomic_write_text(index_path, buf.getvalue())


def synthetic_views(records: list[Record], n_views: int, out_dir: str | Path, *, recipe: str = "paper",
                    seed: int = 0, long_side: int = LONG_SIDE, workers: int = 2,
                    progress: bool = True) -> list[Record]:
    """``n_views`` distinct seeded (source, distortion, level) draws over ``records``, as pseudo-MOS records.

    Each record's dataset is ``<source dataset>-synth`` (so per-dataset alignment and tables keep
    them apart), its group is the source's, and its distortion is known (the reasons head can learn
    from it). Sources that fail to decode are skipped with their error, never silently.
    """
    if n_views <= 0 or not records:
        return []
    views = RECIPES[recipe]
    rng = np.random.default_rng(seed)
    draws = rng.choice(len(records) * len(views), size=min(n_views, len(records) * len(views)), replace=False)
    picks = sorted(divmod(int(d), len(views)) for d in draws)   # distinct (source, view) pairs
    out_dir = Path(out_dir)
    index_path = out_dir / "views.csv"
    done = _views_on_disk(index_path)

    wanted: dict[int, list] = {}   # source index -> [(family, level, seed)], views not on disk yet
    already = {Path(name).stem for name in done}
    for s, v in picks:
        family, level = views[v]
        if view_stem(Path(records[s].name).stem, family, level) not in already:
            wanted.setdefault(s, []).append((family, level, seed + 1000 * s + v))
    jobs = [(str(records[s].image), Path(records[s].name).stem, str(out_dir), w, long_side)
            for s, w in wanted.items()]
    out_dir.mkdir(parents=True, exist_ok=True)
    made, problems = _make_missing_views(jobs, workers, progress)
    by_stem = {**{Path(k).stem: v for k, v in done.items()}, **made}
    rows = []
    for s, v in picks:
        r = records[s]
        row = by_stem.get(view_stem(Path(r.name).stem, *views[v]))
        if row is None:
            continue
        ssim = round(float(row["ssim"]), 6)   # as the index stores it, so a re-run gives the same MOS
        rows.append({"file": row["file"], "source": r.name, "group": r.group, "source_mos": f"{r.mos:.4f}",
                     "distortion": row["distortion"], "level": int(row["level"]), "ssim": f"{ssim:.6f}",
                     "mos": f"{anchored_mos(r.mos, ssim):.4f}"})
    if made:
        _write_index(index_path, {**done, **{row["file"]: row for row in rows}})
    for problem in problems:
        log.warning(f"synthetic views: skipped a source: {problem}")
    dataset = "+".join(sorted({r.dataset for r in records})) + SYNTHETIC_SUFFIX
    return [Record(image=out_dir / row["file"], name=f"synth/{row['file']}", mos_native=float(row["mos"]),
                   mos=float(row["mos"]), group=row["group"], dataset=dataset,
                   pseudo=True, distortion=row["distortion"], level=int(row["level"])) for row in rows]

