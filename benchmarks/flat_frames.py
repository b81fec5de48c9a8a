"""Frames with no skin detail (a covered lens, a uniform field, a hopeless defocus, a thumbnail): does the
gate send them back, and with which reason?

Made from the pristine views of the skin photos none of the models trained on (the test part of the
grouped split, as in ``skin_gate.py``), one frame of each kind per photo:

- ``uniform``: the photo's mean colour over the whole frame (a wall, a sleeve, a finger very close);
- ``defocus``: Gaussian blur with sigma 8 % of the short side, far past KADID's level 5 (a lens focused
  at infinity on skin 5 cm away);
- ``covered``: a finger over the lens: 2-4 % of the photo's light, reddish, with sensor noise (sigma 2);

(the three are ``diqa_edge.data.kadid.no_detail``, the frames the skin recipe now trains on, made here
from photos the model never saw)
- ``flat-1024x768``: the issue's reproduction, one skin-coloured 1024 x 768 frame (200, 150, 130);
- ``thumbnail``: the photo shrunk to 160 px on its short side (the SDK's "too small" rule).

The pristine views of the same photos are the control (they should pass).

    python benchmarks/flat_frames.py --model diqa_edge/models/default.tflite \
        --out benchmarks/results/flat_frames.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

KINDS = ("pristine", "uniform", "defocus", "covered", "thumbnail")


def no_detail_frame(rgb: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """One frame of ``kind`` made from a pristine photo (HxWx3 uint8): the skin recipe's own no-detail
    frames (``diqa_edge.data.kadid.no_detail``), a thumbnail, or the photo itself."""
    from diqa_edge.data.kadid import no_detail

    if kind == "pristine":
        return rgb
    if kind == "thumbnail":
        h, w = rgb.shape[:2]
        s = 160 / min(h, w)
        return np.asarray(Image.fromarray(rgb).resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS))
    return no_detail(rgb, kind, seed)


def measure(model: Path, photos: list[Path]) -> dict:
    from diqa_edge.sdk import QualityScorer
    from diqa_edge.eval.gate import wilson

    scorer = QualityScorer(model)
    table = {}
    for kind in KINDS:
        results = [scorer.score(no_detail_frame(np.asarray(Image.open(p).convert("RGB")), kind, i))
                   for i, p in enumerate(photos)]
        retake = [not r.acceptable for r in results]
        table[kind] = {"n": len(results), "retake": float(np.mean(retake)),
                       "retake_ci": wilson(sum(retake), len(retake)),
                       "mean_score": float(np.mean([r.score for r in results])),
                       "reasons": dict(Counter(r.top_reason or "none" for r in results if not r.acceptable))}
    flat = scorer.score(np.full((768, 1024, 3), (200, 150, 130), np.uint8))
    table["flat-1024x768"] = {"n": 1, "retake": float(not flat.acceptable), "mean_score": flat.score,
                              "reasons": {flat.top_reason or "none": 1} if not flat.acceptable else {}}
    return table


def markdown(table: dict) -> str:
    lines = ["| frame | photos | sent back | 95 % CI | mean score | reason given (count) |", "|---|---|---|---|---|---|"]
    for kind, row in table.items():
        ci = f"{row['retake_ci'][0]:.2f}-{row['retake_ci'][1]:.2f}" if "retake_ci" in row else "–"
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(row["reasons"].items(), key=lambda kv: -kv[1])) or "–"
        lines.append(f"| {kind} | {row['n']} | {row['retake']:.2f} | {ci} | {row['mean_score']:.2f} | {reasons} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from diqa_edge.data.splits import skin_set_parts

    from diqa_edge.cachedir import skin_set_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "diqa_edge/models/default.tflite")
    parser.add_argument("--skin-set", type=Path, default=None, help="default: the cached skin set at 512 px")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/flat_frames.json")
    args = parser.parse_args(argv)
    test = skin_set_parts(args.skin_set or skin_set_dir())["test"]
    photos = sorted(Path(r.image) for r in test if r.distortion in (None, "none"))   # the pristine views
    table = measure(args.model, photos)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": str(args.model.name), "photos": len(photos), "table": table},
                                   indent=1) + "\n")
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
