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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..contract import DEFAULT_CONTRACT
from ..errors import ImageDecodeError
from ..sdk.decode import decode_image
from ..sdk.manifest import atomic_write_bytes, atomic_write_text
from .dermset import LONG_SIDE, encode_view, resize_long_side, ssim_rgb
from .distort import RECIPES
from .records import SCORE_MIN, Record

INDEX_COLUMNS = ["file", "source", "group", "source_mos", "distortion", "level", "ssim", "mos"]


def anchored_mos(source_mos: float, ssim: float) -> float:
    """1 + (MOS_source - 1) x SSIM, on the [1, 10] scale; never above the source."""
    return SCORE_MIN + (float(source_mos) - SCORE_MIN) * float(np.clip(ssim, 0.0, 1.0))


def _make_view(job) -> dict | str:
    """One view (runs in a worker process): the index row, or an error message for a bad source."""
    src, stem, out_dir, family, level, seed, long_side = job
    from .distort import distort

    try:
        rgb = resize_long_side(decode_image(src, DEFAULT_CONTRACT), long_side)
    except ImageDecodeError as exc:
        return str(exc)
    data, suffix = encode_view(distort(rgb, family, level, seed=seed), family, level)
    name = f"{stem}__{family}_{level}{suffix}"
    atomic_write_bytes(Path(out_dir) / name, data)
    stored = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))   # what the file holds
    return {"file": name, "distortion": family, "level": level, "ssim": ssim_rgb(rgb, stored)}


def synthetic_views(records: list[Record], n_views: int, out_dir: str | Path, *, recipe: str = "paper",
                    seed: int = 0, long_side: int = LONG_SIDE, workers: int = 2,
                    progress: bool = True) -> list[Record]:
    """``n_views`` distinct seeded (source, distortion, level) draws over ``records``, as pseudo-MOS records.

    Each record's dataset is ``<source dataset>-synth`` (so per-dataset alignment and tables keep
    them apart), its group is the source's, and its distortion is known (the reasons head can learn
    from it). Sources that fail to decode are skipped with their error, never silently.
    """
    from tqdm import tqdm

    if n_views <= 0 or not records:
        return []
    views = RECIPES[recipe]
    rng = np.random.default_rng(seed)
    draws = rng.choice(len(records) * len(views), size=min(n_views, len(records) * len(views)), replace=False)
    picks = sorted(divmod(int(d), len(views)) for d in draws)   # distinct (source, view) pairs
    out_dir = Path(out_dir)
    index_path = out_dir / "views.csv"
    done: dict[str, dict] = {}
    if index_path.exists():
        with open(index_path, newline="") as fh:
            done = {row["file"]: row for row in csv.DictReader(fh) if (out_dir / row["file"]).exists()}

    rows, jobs, problems = [], [], []
    for s, v in picks:
        r, (family, level) = records[s], views[v]
        jobs.append((r, (str(r.image), Path(r.name).stem, str(out_dir), family, level, seed + 1000 * s + v,
                         long_side)))
    already = {Path(name).stem for name in done}
    todo = [job for _, job in jobs if _file_stem(job) not in already]
    out_dir.mkdir(parents=True, exist_ok=True)
    made = {}
    with tqdm(total=len(todo), desc="synthetic views", unit="view", disable=not progress or None) as bar:
        pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 and len(todo) > 1 else None
        try:
            for job, result in zip(todo, (pool.map if pool else map)(_make_view, todo)):
                if isinstance(result, str):
                    problems.append(result)
                else:
                    made[_file_stem(job)] = result
                bar.update()
        finally:
            if pool:
                pool.shutdown()
    by_stem = {**{Path(k).stem: v for k, v in done.items()}, **made}
    for r, job in jobs:
        row = by_stem.get(_file_stem(job))
        if row is None:
            continue
        ssim = round(float(row["ssim"]), 6)   # as the index stores it, so a re-run gives the same MOS
        rows.append({"file": row["file"], "source": r.name, "group": r.group, "source_mos": f"{r.mos:.4f}",
                     "distortion": row["distortion"], "level": int(row["level"]), "ssim": f"{ssim:.6f}",
                     "mos": f"{anchored_mos(r.mos, ssim):.4f}"})
    if made:
        merged = {**done, **{row["file"]: row for row in rows}}
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(merged.values(), key=lambda row: row["file"]))
        atomic_write_text(index_path, buf.getvalue())
    for problem in problems:
        print(f"synthetic views: skipped a source: {problem}")
    dataset = {r.dataset for r in records}
    return [Record(image=out_dir / row["file"], name=f"synth/{row['file']}", mos_native=float(row["mos"]),
                   mos=float(row["mos"]), group=row["group"], dataset=f"{'+'.join(sorted(dataset))}-synth",
                   pseudo=True, distortion=row["distortion"], level=int(row["level"])) for row in rows]


def _file_stem(job) -> str:
    _, stem, _, family, level, _, _ = job
    return f"{stem}__{family}_{level}"
