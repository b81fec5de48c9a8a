"""``diqa-edge bench-12mp``: the phone-size photo path, DCT-domain (draft) decode against full decode.

Why: a phone photo is 12 MP; decoding every pixel only to shrink it to 224
costs most of the time budget. libjpeg can decode at 1/2, 1/4 or 1/8 scale in
the DCT domain (Pillow ``Image.draft``), the way phone gallery thumbnails
are made; the contract's ``decode = "jpeg_draft"`` keeps both sides at least
``draft_factor`` x the input size before the contract's own antialiased resize.
This measures, on 12 MP JPEGs made from real photos, the SDK's full-path
latency under each rule and the score drift the draft rule causes.

The 12 MP files are real photos upscaled (Lanczos) to 4032 x 3024 with mild
sensor-like grain (so the file carries the entropy, and the decoder the
work, of a camera JPEG) and saved at quality 92; they are built once into
``--work`` and reused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .cachedir import cache_root, data_root
from .errors import DiqaError

PHONE_SIZE = (4032, 3024)   # 12.2 MP, a common phone sensor


def make_phone_jpeg(src: Path, dst: Path, seed: int, size=PHONE_SIZE, grain: float = 2.0, quality: int = 92) -> Path:
    """One 12 MP JPEG from a real photo (landscape; portrait sources are rotated in, not cropped)."""
    from PIL import Image, ImageOps

    with Image.open(src) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        if img.height > img.width:
            img = img.rotate(90, expand=True)
        big = np.asarray(img.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    rng = np.random.default_rng(seed)
    big = np.clip(big + rng.normal(0, grain, big.shape).astype(np.float32), 0, 255).astype(np.uint8)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    Image.fromarray(big).save(tmp, "JPEG", quality=quality)
    tmp.replace(dst)
    return dst


def phone_photos(sources: list[Path], work: Path, n: int, progress: bool = True) -> list[Path]:
    """``n`` 12 MP JPEGs from the photos under ``sources`` (round robin over the folders), built once."""
    from tqdm import tqdm

    from .sdk.cli import IMAGE_SUFFIXES

    lists = [sorted(p for p in Path(s).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) for s in sources]
    picked: list[Path] = []
    for i in range(max((len(lst) for lst in lists), default=0)):
        picked += [lst[i] for lst in lists if i < len(lst)]
    if len(picked) < n:
        raise DiqaError(f"found {len(picked)} photos under {', '.join(map(str, sources))}, need {n}")
    out = []
    for i, src in enumerate(tqdm(picked[:n], desc="12 MP JPEGs", unit="photo", disable=not progress or None)):
        dst = work / f"{i:04d}_{src.stem}.jpg"
        out.append(dst if dst.exists() else make_phone_jpeg(src, dst, seed=i))
    return out


def box_reduce(rgb: np.ndarray, k: int) -> np.ndarray:
    """Exact k x k box average (Pillow ``Image.reduce``)."""
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).reduce(k))


def _drift_stats(delta: np.ndarray) -> dict:
    return {"max": float(delta.max()), "mean": float(delta.mean()), "p99": float(np.percentile(delta, 99))}


def drift(model: Path, photos: list[Path], threads: int = 2, progress: bool = True,
          timed_full: int = 20, draft_factor: int | None = None, floor: bool = True) -> dict:
    """Scores under both decode rules for every photo; full-path times (decode + preprocess + inference).

    ``floor`` also scores each full decode after an exact 2 x 2 box average: a downscale no decoder
    approximates, just another valid one. Its drift from the full decode is the model's own sensitivity
    to sub-grey-level changes, the level below which no decode rule can bring the draft drift."""
    from tqdm import tqdm

    from .sdk.decode import decode_image
    from .sdk.scorer import QualityScorer

    draft = QualityScorer(model, threads=threads, decode="jpeg_draft")
    if draft_factor is not None:
        draft.contract = draft.contract.replace(draft_factor=draft_factor)
    full = QualityScorer(model, threads=threads, decode="full")
    for _ in range(3):   # warm-up: first invocations allocate
        draft.score(photos[0])
    d_scores, f_scores, r_scores, d_ms, f_ms, stages = [], [], [], [], [], []
    for i, p in enumerate(tqdm(photos, desc="draft vs full decode", unit="photo", disable=not progress or None)):
        rd = draft.score(p)
        d_scores.append(rd.score)
        d_ms.append(rd.total_ms)
        stages.append((rd.decode_ms, rd.preprocess_ms, rd.inference_ms))
        rf = full.score(p)
        f_scores.append(rf.score)
        if i < timed_full:
            f_ms.append(rf.total_ms)
        if floor:
            r_scores.append(full.score(box_reduce(decode_image(p, full.contract), 2)).score)
    delta = np.abs(np.asarray(d_scores) - np.asarray(f_scores))
    st = np.median(np.asarray(stages), axis=0)
    return {"model": str(model), "photos": len(photos), "size": list(PHONE_SIZE), "threads": threads,
            "draft_factor": draft.contract.draft_factor, "precision": draft.manifest.precision,
            "draft_full_path_ms": {"median": float(np.median(d_ms)), "p90": float(np.percentile(d_ms, 90))},
            "draft_stages_median_ms": {"decode": float(st[0]), "preprocess": float(st[1]), "inference": float(st[2])},
            "full_decode_full_path_ms": {"median": float(np.median(f_ms)), "p90": float(np.percentile(f_ms, 90)),
                                         "photos": len(f_ms)},
            "drift": _drift_stats(delta),
            "box_reduce_drift": _drift_stats(np.abs(np.asarray(r_scores) - np.asarray(f_scores))) if floor else None,
            "median_file_mb": float(np.median([p.stat().st_size for p in photos]) / 1e6),
            "scores": {"draft": d_scores, "full": f_scores, "files": [p.name for p in photos]}}


def markdown(doc: dict) -> str:
    from .eval.report import markdown_table

    d, f, dr, st = (doc["draft_full_path_ms"], doc["full_decode_full_path_ms"], doc["drift"],
                    doc["draft_stages_median_ms"])
    rows = [[f"{doc['photos']} x {doc['size'][0]}x{doc['size'][1]} JPEG (median {doc['median_file_mb']:.1f} MB)",
             f"jpeg_draft x{doc['draft_factor']} ({Path(doc['model']).name}, {doc['precision']})",
             f"{d['median']:.1f} / {d['p90']:.1f} ({st['decode']:.1f} + {st['preprocess']:.1f} + {st['inference']:.1f})",
             f"{dr['max']:.4f} / {dr['mean']:.4f} / {dr['p99']:.4f}"],
            [f"first {f['photos']} of them", "full", f"{f['median']:.1f} / {f['p90']:.1f}", "(reference)"]]
    if doc.get("box_reduce_drift"):
        rows.append(["all", "full, then an exact 2 x 2 box average (the model's own floor, not a decode rule)", "–",
                     "{max:.4f} / {mean:.4f} / {p99:.4f}".format(**doc["box_reduce_drift"])])
    return "\n".join(markdown_table(["photos", "decode rule", "full path ms, median / p90 (decode + preprocess + "
                                      "inference)", "score drift vs full decode, max / mean / p99"], rows)) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="exported model (default: the bundled one)")
    parser.add_argument("--sources", type=Path, nargs="+",
                        default=[data_root() / "skin-cc0" / "images", data_root() / "biq2021" / "Images"],
                        help="folders of real photos to build the 12 MP JPEGs from (default: the CC0 skin and "
                             "BIQ2021 photos under $DIQA_EDGE_DATA, else ../shared/data)")
    parser.add_argument("--n", type=int, default=200, help="number of 12 MP photos (default 200)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--draft-factor", type=int, choices=(1, 2, 4), default=None,
                        help="override the contract's draft factor (decoded sides >= factor x input size)")
    parser.add_argument("--work", type=Path, default=cache_root() / "12mp",
                        help="where the 12 MP JPEGs are kept (default: the cache folder, outside the work tree)")
    parser.add_argument("--out", type=Path, default=Path("out/bench_12mp"), help="where bench_12mp.md/json go")


def run(args: argparse.Namespace) -> int:
    from .sdk.cli import bundled_model
    from .fileio import atomic_write_text

    model = args.model or bundled_model()
    photos = phone_photos(args.sources, args.work, args.n)
    doc = drift(model, photos, threads=args.threads, draft_factor=args.draft_factor)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "bench_12mp.json", json.dumps(doc, indent=1) + "\n")
    md = markdown(doc)
    atomic_write_text(args.out / "bench_12mp.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    from .commands import run_module

    sys.exit(run_module("python -m diqa_edge.bench_12mp (diqa-edge bench-12mp)", add_arguments, run, __doc__))
