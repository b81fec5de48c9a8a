"""The live-preview path: ``QualityScorer.score_frame`` on camera-sized frames.

Two questions, one table each:

1. Speed: 1280 x 720 and 1920 x 1080 frames, RGB and NV21, at 1 and 2 threads: YUV -> RGB conversion,
   preprocessing (resize + crop + normalise) and inference, median and p90 over ``--repeats`` frames.
2. Stability: for each sample photo, 30 frames of the same still scene with sensor-like noise (each
   pixel +-2 grey levels, uniform, new every frame, delivered as NV21): the score's standard deviation,
   how often the accept / retake answer flips between consecutive frames, and the scene's margin (how far
   the median frame is from the nearest threshold of the rule: the score's, or a reason's). A flip is
   only acceptable inside the threshold's band (score within 0.3, or a reason within 0.5 in logit
   units). The same frames through ``PreviewGate`` (median of 5 frames, a change held for 3) give the
   steadied flips.

    python benchmarks/preview_frames.py --out benchmarks/results/preview_frames.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from diqa_edge.bench import frame_of

ROOT = Path(__file__).resolve().parents[1]
FRAME_SIZES = ((1280, 720), (1920, 1080))
SCORE_BAND, REASON_BAND = 0.3, 0.5


def noisy(rgb: np.ndarray, rng: np.random.Generator, amplitude: int = 2) -> np.ndarray:
    return np.clip(rgb.astype(np.int16) + rng.integers(-amplitude, amplitude + 1, rgb.shape), 0, 255).astype(np.uint8)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return float(np.log(p / (1 - p)))


def margin(result, rule) -> float:
    """How far a result is from flipping, in units of each rule's band (1.0 = at the band's edge): the
    score's band is 0.3 on the 1-10 scale, a reason's 0.5 in logit units (a probability band would call
    p = 0.000 "near" a threshold of 0.03)."""
    gaps = [abs(result.score - rule.score_threshold) / SCORE_BAND]
    gaps += [abs(_logit(result.reasons[r]) - _logit(t)) / REASON_BAND
             for r, t in rule.reason_thresholds.items() if r in result.reasons]
    return float(min(gaps))


def speed(model: Path, photo: Path, repeats: int) -> list[dict]:
    from diqa_edge.sdk import QualityScorer
    from diqa_edge.sdk.frames import rgb_to_yuv420

    rows = []
    for threads in (1, 2):
        scorer = QualityScorer(model, threads=threads)
        for width, height in FRAME_SIZES:
            rgb = frame_of(photo, width, height)
            for layout in ("rgb", "nv21"):
                frame = rgb if layout == "rgb" else rgb_to_yuv420(rgb, layout)
                scorer.score_frame(frame, layout, width, height)      # warm-up
                runs = [scorer.score_frame(frame, layout, width, height) for _ in range(repeats)]
                stat = {k: np.array([getattr(r, k) for r in runs]) for k in ("decode_ms", "preprocess_ms",
                                                                              "inference_ms", "total_ms")}
                rows.append({"frame": f"{width}x{height}", "layout": layout, "threads": threads,
                             **{f"{k}_median": round(float(np.median(v)), 2) for k, v in stat.items()},
                             "total_ms_p90": round(float(np.percentile(stat["total_ms"], 90)), 2)})
    return rows


def stability(model: Path, photos: list[Path], frames: int = 30, seed: int = 0) -> list[dict]:
    from diqa_edge.sdk import QualityScorer
    from diqa_edge.sdk.frames import PreviewGate, rgb_to_yuv420

    scorer = QualityScorer(model, threads=2)
    rng = np.random.default_rng(seed)
    rows = []
    for photo in photos:
        rgb = frame_of(photo, 1280, 720)
        results = [scorer.score_frame(rgb_to_yuv420(noisy(rgb, rng), "nv21"), "nv21", 1280, 720)
                   for _ in range(frames)]
        scores = np.array([r.score for r in results])
        answers = np.array([r.acceptable for r in results])
        gate = PreviewGate(scorer.rule)
        steadied = np.array([gate.update(r)[0] for r in results])
        median = results[int(np.argsort(scores)[len(scores) // 2])]
        rows.append({"photo": photo.name, "score_median": round(float(np.median(scores)), 3),
                     "score_std": round(float(scores.std()), 4), "flips": int((answers[1:] != answers[:-1]).sum()),
                     "flips_steadied": int((steadied[1:] != steadied[:-1]).sum()),
                     "accept_share": round(float(answers.mean()), 3), "margin_in_bands": round(margin(median, scorer.rule), 2)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "diqa_edge/models/default.tflite")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/preview_frames.json")
    args = parser.parse_args(argv)
    photos = sorted((ROOT / "samples").glob("*.jpg"))
    report = {"model": args.model.name, "speed": speed(args.model, photos[0], args.repeats),
              "stability": stability(args.model, photos)}
    report["scenes_flipping_outside_band"] = sum(1 for r in report["stability"] if r["flips"] and r["margin_in_bands"] > 1)
    report["scenes_flipping_steadied"] = sum(1 for r in report["stability"] if r["flips_steadied"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
