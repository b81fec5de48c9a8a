"""The size table (#34): each phone / page file's size, held-out accuracy, answers against the previous
file, and speed at 2 threads.

Phone files (``--phone NAME=PATH``, the first one is the reference "previous" file): held-out BIQ2021
SROCC on the shipped run's 1,200 test photos; on its 2,601 held-out skin views the share with the same
accept / retake answer and the same patient hint (``hint_for``: the hint's label, or none for an
accepted photo) as the first file; latency median of 50 runs after 5 warm-up runs, 2 threads.
Page files (``--page NAME=PATH``, ONNX): the same answer and hint as the phone file named by
``--phone-for-page`` on the 54 bundled parity images, and their size.

    python benchmarks/small_file_table.py --phone previous=old.tflite --phone shipped=diqa_edge/models/default.tflite \\
        --page "page fp32=model.onnx" --page "page fp16=model_fp16.onnx" --out benchmarks/results/small_file_table.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm


def outputs(path: Path, images) -> tuple[np.ndarray, list]:
    """(scores, (acceptable, hint label) per image) through the SDK, as the app gets them."""
    from diqa_edge.sdk import QualityScorer

    scorer = QualityScorer(path, threads=2)
    scores, answers = [], []
    for image in tqdm(images, desc=path.name, unit="img", mininterval=10):
        r = scorer.score(image)
        scores.append(r.score)
        answers.append((r.acceptable, r.hint))
    return np.array(scores), answers


def latency_ms(path: Path, image: Path, runs: int = 50) -> float:
    from diqa_edge.sdk import QualityScorer
    from diqa_edge.sdk.decode import decode_image

    scorer = QualityScorer(path, threads=2)
    rgb = decode_image(image, scorer.manifest.contract)
    for _ in range(5):
        scorer.score(rgb)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        scorer.score(rgb)
        times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)), 1)


def agreement(answers: list, reference: list) -> dict:
    return {"same_answer": round(float(np.mean([a[0] == b[0] for a, b in zip(answers, reference)])), 4),
            "same_hint": round(float(np.mean([a == b for a, b in zip(answers, reference)])), 4)}


def main(argv=None) -> int:
    from diqa_edge.cachedir import cache_root
    from diqa_edge.data.splits import run_split_part
    from diqa_edge.eval.metrics import srocc
    from diqa_edge.eval.report import markdown_table
    from diqa_edge.export.parity import bundled_parity_set
    from diqa_edge.models.load import SHIPPED_RUN, load_trained

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phone", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--page", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--phone-for-page", default=None, help="the phone file the pages must agree with "
                                                                "(default: the last --phone)")
    parser.add_argument("--bundled-only", action="store_true",
                        help="phone files: only their answers on the 54 bundled images and their latency (the page "
                             "comparison without the held-out sets: ~2 min instead of ~10 a file)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/small_file_table.json"))
    args = parser.parse_args(argv)

    phones = dict(p.split("=", 1) for p in args.phone)
    pages = dict(p.split("=", 1) for p in args.page)
    test = run_split_part(load_trained(SHIPPED_RUN).card, "test")
    biq = [r for r in test if r.dataset == "biq2021"]
    skin = [r.image for r in test if r.dataset == "derm"]
    bundled = bundled_parity_set(cache_root() / "parity-images").paths
    rows, first = [], None
    phone_on_bundled = {}
    for name, path in phones.items():
        path = Path(path)
        if args.bundled_only:
            _, phone_on_bundled[name] = outputs(path, bundled)
            rows.append({"file": name, "kind": "phone", "path": str(path), "mb": round(path.stat().st_size / 1e6, 2),
                         "ms_2_threads": latency_ms(path, skin[0])})
            print(json.dumps(rows[-1]), flush=True)
            continue
        scores, _ = outputs(path, [r.image for r in biq])
        _, answers = outputs(path, skin)
        first = first or answers
        _, phone_on_bundled[name] = outputs(path, bundled)
        rows.append({"file": name, "kind": "phone", "path": str(path), "mb": round(path.stat().st_size / 1e6, 2),
                     "biq2021_srocc": round(float(srocc(scores, np.array([r.mos for r in biq]))), 4),
                     **{f"skin_{k}_vs_{next(iter(phones))}": v for k, v in agreement(answers, first).items()},
                     "ms_2_threads": latency_ms(path, skin[0])})
        print(json.dumps(rows[-1]), flush=True)
    reference = args.phone_for_page or list(phones)[-1]
    for name, path in pages.items():
        path = Path(path)
        _, answers = outputs(path, bundled)
        rows.append({"file": name, "kind": "page", "path": str(path), "mb": round(path.stat().st_size / 1e6, 2),
                     **{f"bundled_{k}_vs_{reference}": v
                        for k, v in agreement(answers, phone_on_bundled[reference]).items()},
                     "ms_2_threads_onnxruntime": latency_ms(path, skin[0])})
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "n_biq2021": len(biq), "n_skin_views": len(skin),
                                    "n_bundled": len(bundled)}, indent=1) + "\n")
    keys = sorted({k for r in rows for k in r if k not in ("path",)}, key=lambda k: list(rows[0]).index(k)
                  if k in rows[0] else 99)
    print("\n".join(markdown_table(keys, [[r.get(k, "–") for k in keys] for r in rows])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
