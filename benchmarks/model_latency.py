"""Inference milliseconds of exported model files, side by side (the phone budget of issue 21: the shipped
int8 file may take at most 2 x the 384-px Lite0's 24 ms at 2 threads here).

Each file runs in this process through the SDK's runtime on one real photo's model input, 5 warm-up
runs then ``--runs`` timed ones, at 1 and 2 threads. Where the file's rule looks at 1:1
(``diqa_edge.sdk.detail``), that look is timed too (numpy on the photo's 256-px centre tile, one thread).

    python benchmarks/model_latency.py diqa_edge/models/default.tflite previous.tflite
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    from diqa_edge.bench import measure
    from diqa_edge.sdk import QualityScorer
    from diqa_edge.sdk.decode import decode_image

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--photo", type=Path, default=ROOT / "samples" / "skin_ISIC_0000051.jpg")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    rows = []
    for path in args.models:
        for threads in (1, 2):
            scorer = QualityScorer(path, threads=threads)
            rgb = decode_image(args.photo, scorer.contract)
            x = scorer.model_input(rgb)
            ms = measure(lambda: scorer.runtime.outputs(x), args.runs)
            rows.append({"model": str(path), "input": scorer.contract.input_size,
                         "precision": scorer.manifest.precision, "threads": threads,
                         "size_mb": round(path.stat().st_size / 1e6, 2), **ms})
            print(f"{path.name:48s} {scorer.contract.input_size} px {scorer.manifest.precision:13s} "
                  f"{threads} thr: median {ms['median_ms']:.1f} ms, p90 {ms['p90_ms']:.1f} ms", flush=True)
        if scorer.rule.detail is not None:
            ms = measure(lambda: scorer.detail_stats(rgb), args.runs)
            rows.append({"model": str(path), "step": "the 1:1 look (numpy, centre tile)",
                         "tile": scorer.contract.detail_tile, **ms})
            print(f"{path.name:48s} the 1:1 look ({scorer.contract.detail_tile} px tile): median "
                  f"{ms['median_ms']:.2f} ms, p90 {ms['p90_ms']:.2f} ms", flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
