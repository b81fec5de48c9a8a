"""How many good photos the look at 1:1 would send back if a phone's own pixels were softer than ours.

The calibration photos (CC0 dermoscopy at most 1,024 px wide, PAD-UFES-20 at 300 px) were shrunk from
their originals, so at 1:1 they are sharper than a phone's full-size photo, whose lens, demosaicing and
denoising soften it by roughly a Gaussian of 0.5-1 px. This blurs every calibration photo's centre tile
(``training.detail_gate.tile_with_margin``) by a Gaussian of 0.6, 0.8 and 1.0 px (Pillow) and reports the
share the shipped rule's sharpness threshold sends back, beside KADID's blur levels at 1:1 (what the
threshold is there to catch), for the shipped cut and a few stricter-to-looser ones.

    python benchmarks/detail_softness.py --out benchmarks/results/detail_softness.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SIGMAS = (0.6, 0.8, 1.0)


def softened_sharpness(photos: list[Path], sigma: float, side: int) -> np.ndarray:
    from PIL import Image, ImageFilter

    from diqa_edge.contract import DEFAULT_CONTRACT
    from diqa_edge.sdk.decode import decode_image
    from diqa_edge.sdk.detail import measure_detail
    from diqa_edge.training.detail_gate import tile_with_margin

    out = []
    for p in photos:
        region = tile_with_margin(decode_image(p, DEFAULT_CONTRACT), side)
        if region is None:
            continue
        crop, (top, left) = region
        soft = np.asarray(Image.fromarray(crop).filter(ImageFilter.GaussianBlur(sigma)))
        value = measure_detail(soft[top:top + side, left:left + side]).sharpness
        if value is not None:
            out.append(value)
    return np.array(out)


def main(argv=None) -> int:
    from diqa_edge.sdk.manifest import read_sidecar
    from diqa_edge.training.detail_gate import all_tile_views, calibration_photos

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", type=Path, default=Path("diqa_edge/models/default.card.json"))
    parser.add_argument("--model", type=Path, default=Path("diqa_edge/models/default.tflite"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    card = json.loads(args.card.read_text())
    manifest = read_sidecar(args.model)
    side, shipped = manifest.contract.detail_tile, manifest.rule.detail.sharpness_min
    photos = calibration_photos(card)
    views = all_tile_views(photos, side, progress=False)
    soft = {s: softened_sharpness(photos, s, side) for s in SIGMAS}

    def kadid(family, level):
        return np.array([v.stats.sharpness for v in views
                         if v.family == family and v.level == level and v.stats.sharpness is not None])

    taken = np.array([v.stats.sharpness for v in views if v.family is None and v.stats.sharpness is not None])
    rows = []
    for cut in sorted({round(shipped, 3), 0.455, 0.44, 0.43, 0.48}, reverse=True):
        rows.append({"cut": cut, "shipped": cut == round(shipped, 3), "as_taken": float(np.mean(taken < cut)),
                     **{f"softened_{s}px": float(np.mean(soft[s] < cut)) for s in SIGMAS},
                     **{f"{f}_{lv}": float(np.mean(kadid(f, lv) < cut)) for f, lv in
                        (("gaussian_blur", 3), ("gaussian_blur", 4), ("lens_blur", 2), ("lens_blur", 3),
                         ("motion_blur", 4), ("motion_blur", 5))}})
    head = list(rows[0])
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    if args.out:
        args.out.write_text(json.dumps({"photos": len(photos), "tile": side, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
