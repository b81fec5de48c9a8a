"""One table for the phone (issue 22, item 4): every path a camera app takes, for each model file.

Rows per file: the model alone (the crop already in memory), a 12 MP JPEG through the SDK with a full
decode and with the DCT-domain draft decode, and a 1920 x 1080 and a 1280 x 720 NV21 preview frame
(``score_frame``). Columns: milliseconds median / p90 at 1 and 2 threads, file size, drift (what the
path moves the score by, against what), and, for the file itself, its ranking against the PyTorch
float32 model (SROCC of scores) and the share of images with the same accept / retake answer and hint
under the manifest's rule, on held-out BIQ2021 photos and unseen skin views of the shipped run.

    python benchmarks/phone_table.py diqa_edge/models/default.tflite \
        ~/.cache/diqa-edge/previous/default-b01253e.tflite --out benchmarks/results/phone_table.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from diqa_edge.cachedir import cache_root

from diqa_edge.bench import frame_of
from diqa_edge.sdk.hints import row_answers

ROOT = Path(__file__).resolve().parents[1]

WORK = cache_root() / "phone-table"     # DIQA_EDGE_CACHE, as every cache of the package


def fidelity(path: Path, trained, records, rule, names) -> dict:
    """The file against PyTorch float32 on the same held-out crops: ranking, same answer, same hint."""
    from scipy.stats import spearmanr

    from diqa_edge.export.parity import ParityImages, artefact_outputs, torch_outputs

    images = ParityImages.from_records(records, limit=len(records))
    ref = torch_outputs(trained.model, images, trained.contract)
    out = artefact_outputs(path, images, trained.contract)
    a, b = row_answers(out, rule, names), row_answers(ref, rule, names)
    return {"n": len(out), "srocc_vs_fp32": float(spearmanr(out[:, 0], ref[:, 0])[0]),
            "max_abs_vs_fp32": float(np.abs(np.clip(out[:, 0], 1, 10) - np.clip(ref[:, 0], 1, 10)).max()),
            "same_answer": float(np.mean([x[0] == y[0] for x, y in zip(a, b)])),
            "same_hint": float(np.mean([x == y for x, y in zip(a, b)]))}


def timed(fn, runs: int) -> dict:
    from diqa_edge.bench import measure

    return measure(fn, runs, warmup=2)


def path_rows(path: Path, photos: list[Path], frame_photo: Path, runs: int) -> list[dict]:
    """Milliseconds of each path at 1 and 2 threads, and each path's drift."""
    from diqa_edge.sdk import QualityScorer
    from diqa_edge.sdk.decode import decode_image
    from diqa_edge.sdk.frames import rgb_to_yuv420

    rows = {name: {"path": name} for name in ("model only", "12 MP JPEG, full decode", "12 MP JPEG, jpeg_draft",
                                              "1920x1080 NV21 frame", "1280x720 NV21 frame")}
    frames = {size: frame_of(frame_photo, *size) for size in ((1920, 1080), (1280, 720))}
    for threads in (1, 2):
        full = QualityScorer(path, threads=threads, decode="full")
        draft = QualityScorer(path, threads=threads, decode="jpeg_draft")
        x = full.model_input(decode_image(photos[0], full.contract))
        photo = iter(photos * runs)
        cases = {"model only": lambda: full.runtime.outputs(x),
                 "12 MP JPEG, full decode": lambda: full.score(photos[0]),
                 "12 MP JPEG, jpeg_draft": lambda: draft.score(next(photo))}
        for (w, h), rgb in frames.items():
            nv21 = rgb_to_yuv420(rgb, "nv21")
            cases[f"{w}x{h} NV21 frame"] = lambda nv21=nv21, w=w, h=h: full.score_frame(nv21, "nv21", w, h)
        for name, fn in cases.items():
            ms = timed(fn, runs)
            rows[name][f"ms_{threads}t"] = [ms["median_ms"], ms["p90_ms"]]
    full = QualityScorer(path, threads=2, decode="full")
    draft = QualityScorer(path, threads=2, decode="jpeg_draft")
    delta = np.abs([draft.score(p).score - full.score(p).score for p in photos])
    rows["12 MP JPEG, jpeg_draft"]["drift"] = f"{delta.max():.3f} / {delta.mean():.3f} against the full decode"
    for (w, h), rgb in frames.items():
        d = abs(full.score_frame(rgb_to_yuv420(rgb, "nv21"), "nv21", w, h).score
                - full.score_frame(rgb, "rgb", w, h).score)
        rows[f"{w}x{h} NV21 frame"]["drift"] = f"{d:.3f} against the RGB frame (4:2:0 chroma)"
    return list(rows.values())


def main(argv=None) -> int:
    from diqa_edge.bench_12mp import phone_photos
    from diqa_edge.data.records import seeded_subsample
    from diqa_edge.data.splits import run_split_part
    from diqa_edge.eval.report import markdown_table
    from diqa_edge.models.load import SHIPPED_RUN, load_trained
    from diqa_edge.sdk.manifest import read_sidecar

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help=".tflite files of the shipped run (with their manifests)")
    ap.add_argument("--photos", type=int, default=10, help="12 MP JPEGs (made once from the samples)")
    ap.add_argument("--images", type=int, default=200, help="held-out crops for the fidelity columns")
    ap.add_argument("--runs", type=int, default=20, help="timed runs per path and thread count")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    trained = load_trained(SHIPPED_RUN)
    rule = trained.rule
    names = tuple(trained.model.output_names[1:])
    test = run_split_part(trained.card, "test")
    records = (seeded_subsample([r for r in test if not r.pseudo], args.images // 2, 2)
               + seeded_subsample([r for r in test if r.pseudo], args.images // 2, 2))
    photos = phone_photos([ROOT / "samples"], WORK, args.photos, progress=False)
    frame_photo = ROOT / "samples" / "skin_ISIC_0000051.jpg"
    doc = {"held_out": len(records), "photos_12mp": len(photos), "files": []}
    table = []
    for path in args.models:
        manifest = read_sidecar(path)
        entry = {"file": str(path), "precision": manifest.precision, "size_mb": round(path.stat().st_size / 1e6, 2),
                 "fidelity": fidelity(path, trained, records, rule, names),
                 "paths": path_rows(path, photos, frame_photo, args.runs)}
        doc["files"].append(entry)
        f = entry["fidelity"]
        for i, row in enumerate(entry["paths"]):
            table.append([path.name if i == 0 else "", manifest.precision if i == 0 else "", row["path"],
                          "{:.1f} / {:.1f}".format(*row["ms_1t"]), "{:.1f} / {:.1f}".format(*row["ms_2t"]),
                          f"{entry['size_mb']:.2f}" if i == 0 else "", row.get("drift", "–"),
                          f"{f['srocc_vs_fp32']:.4f} (max abs {f['max_abs_vs_fp32']:.2f})" if i == 0 else "",
                          f"{f['same_answer']:.3f} / {f['same_hint']:.3f}" if i == 0 else ""])
        print(json.dumps(entry), flush=True)
    md = markdown_table(["file", "precision", "path", "ms 1 thread (median / p90)", "ms 2 threads (median / p90)",
                         "MB", "drift, max / mean", f"ranking vs PyTorch fp32 (SROCC, n={len(records)})",
                         "same answer / same hint"], table)
    doc["markdown"] = "\n".join(md)
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(doc["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
