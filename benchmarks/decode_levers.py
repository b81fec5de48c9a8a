"""Issue 22 item 3: what each decode / resize lever buys on a 12 MP JPEG, and what it costs in drift.

Every variant turns the same 12 MP JPEGs (``diqa-edge bench-12mp``'s, kept in the cache folder) into
the model's 512 x 512 uint8 crop; the shipped model then scores the crop. Drift is the score's
distance from the full-decode path's (the contract's reference), beside the model's own floor (an
exact 2 x 2 box average of the full decode, then the same resize). Times are medians over the photos,
one process, 2 threads for the model, and nothing else running.

Variants:
- ``full``: every pixel decoded (the reference the drift is measured from);
- ``sdk``: the SDK as shipped (Pillow, DCT-domain 1/2 scale, to NumPy, Pillow BILINEAR resize, crop);
- ``pil-only``: the same pixels without the round trip through a NumPy array between decode and resize;
- ``reduce-gap``: Pillow's ``reducing_gap=2`` (an integer box reduction before the bilinear resize);
- ``simplejpeg``: libjpeg-turbo through simplejpeg (scale 1/2 in the DCT domain), then the SDK's resize;
- ``simplejpeg-fast``: the same with libjpeg's fast integer DCT and plain (not fancy) chroma upsampling.

    python benchmarks/decode_levers.py --out benchmarks/results/decode_levers.json
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np


def _crop(img, size: int) -> np.ndarray:
    from diqa_edge.sdk.preprocess import center_crop, resized_size

    from PIL import Image

    w, h = resized_size(img.width, img.height, size)
    return center_crop(np.asarray(img.resize((w, h), Image.Resampling.BILINEAR)), size)


def variants(contract):
    """name -> (decode: bytes -> PIL image or array, resize: that -> uint8 crop)."""
    from PIL import Image

    from diqa_edge.sdk.decode import decode_image
    from diqa_edge.sdk.preprocess import resize_and_crop

    size, target = contract.input_size, contract.draft_factor * contract.input_size

    def pil_draft(data: bytes):
        img = Image.open(io.BytesIO(data))
        img.draft("RGB", (target, target))
        img.load()
        return img

    def simplejpeg_decode(fast: bool):
        import simplejpeg

        return lambda data: simplejpeg.decode_jpeg(data, "RGB", fastdct=fast, fastupsample=fast,
                                                   min_height=target, min_width=target)

    def reduce_gap(img) -> np.ndarray:
        from diqa_edge.sdk.preprocess import center_crop, resized_size

        w, h = resized_size(img.width, img.height, size)
        return center_crop(np.asarray(img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0)), size)

    draft = contract.replace(decode="jpeg_draft")
    return {
        "full": (lambda data: decode_image(data, contract.replace(decode="full")),
                 lambda rgb: resize_and_crop(rgb, contract)),
        "sdk": (lambda data: decode_image(data, draft), lambda rgb: resize_and_crop(rgb, contract)),
        "pil-only": (pil_draft, lambda img: _crop(img, size)),
        "reduce-gap": (pil_draft, reduce_gap),
        "simplejpeg": (simplejpeg_decode(False), lambda rgb: resize_and_crop(rgb, contract)),
        "simplejpeg-fast": (simplejpeg_decode(True), lambda rgb: resize_and_crop(rgb, contract)),
    }


def main(argv=None) -> int:
    from PIL import Image

    from diqa_edge.bench_12mp import box_reduce
    from diqa_edge.cachedir import cache_root
    from diqa_edge.models.load import SHIPPED_MODEL
    from diqa_edge.sdk.preprocess import normalise, resize_and_crop
    from diqa_edge.sdk.scorer import QualityScorer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=cache_root() / "12mp",
                        help="folder of 12 MP JPEGs (diqa-edge bench-12mp makes them)")
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per photo (median kept)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decode_levers.json"))
    args = parser.parse_args(argv)
    photos = sorted(args.photos.glob("*.jpg"))
    if not photos:
        parser.error(f"no JPEGs under {args.photos}: run `diqa-edge bench-12mp` first")
    scorer = QualityScorer(args.model, threads=2, decode="full")
    contract = scorer.contract
    table = variants(contract)
    try:
        import simplejpeg  # noqa: F401  (not a dependency of diqa-edge: `pip install simplejpeg` for its rows)
    except ImportError:
        print("simplejpeg is not installed: its rows are skipped (pip install simplejpeg)")
        table = {k: v for k, v in table.items() if not k.startswith("simplejpeg")}
    full_scores, floor = [], []
    for p in photos:
        rgb = np.asarray(Image.open(p).convert("RGB"))
        full_scores.append(scorer.score(resize_and_crop(rgb, contract)).score)
        floor.append(scorer.score(resize_and_crop(box_reduce(rgb, 2), contract)).score)
    model_ms = float(np.median([scorer.score(resize_and_crop(np.asarray(Image.open(photos[0]).convert("RGB")),
                                                             contract)).inference_ms for _ in range(20)]))
    rows = {}
    for name, (decode, resize) in table.items():
        dec, pre, drift = [], [], []
        for p, ref in zip(photos, full_scores):
            data = p.read_bytes()
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                img = decode(data)
                t1 = time.perf_counter()
                crop = resize(img)
                normalise(crop, contract)
                t2 = time.perf_counter()
                dec.append((t1 - t0) * 1e3)
                pre.append((t2 - t1) * 1e3)
            drift.append(abs(scorer.score(crop).score - ref))
        rows[name] = {"decode_ms": float(np.median(dec)), "preprocess_ms": float(np.median(pre)),
                      "total_ms": float(np.median(dec) + np.median(pre)),
                      "drift_max": float(np.max(drift)), "drift_mean": float(np.mean(drift))}
        r = rows[name]
        print(f"{name:16s} decode {r['decode_ms']:5.1f}  preprocess {r['preprocess_ms']:5.1f}  "
              f"= {r['total_ms']:5.1f} ms ({r['total_ms'] / model_ms:.2f} x the model)  drift max "
              f"{r['drift_max']:.3f} mean {r['drift_mean']:.3f}", flush=True)
    floor_drift = np.abs(np.asarray(floor) - np.asarray(full_scores))
    doc = {"command": "python benchmarks/decode_levers.py " + " ".join(argv or sys.argv[1:]),
           "photos": len(photos), "model": str(args.model), "model_ms": model_ms,
           "floor": {"max": float(floor_drift.max()), "mean": float(floor_drift.mean())}, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"model {model_ms:.1f} ms; floor drift max {doc['floor']['max']:.3f} mean {doc['floor']['mean']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
