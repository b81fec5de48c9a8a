"""Can one number tell a colour cast from darker skin, where the trunk's statistics cannot (issue 31)?

The tenth reason for the cast (RESULTS, "A tenth reason for the cast") sent back good photos of darker skin
as a colour cast: both move the skin's colour. What differs: a cast multiplies every colour, the whitest
parts of the photo included (the dermoscope's field, a phone photo's background, a specular highlight);
a darker skin tone (CIE L* lowered, a* and b* kept: ``kadid.darker_tone``) leaves the brightest pixels'
colour where it was. This measures, on the held-out photos, the chroma of the brightest pixels (the mean
a*, b* of the top ``--share`` of L*, as a length) of each photo as taken, at a darker tone (L* to the power
1.5) and with the colour cast of data/camera.py at levels 4 and 5 (each direction once), and, with
``--model``, the white-balance probability of a ten-reason file (the branch's); ROC AUC of each for "cast"
against "darker tone" and against "as taken". A feasibility check for a feature: no model is changed.

    python benchmarks/cast_vs_tone.py --model white_balance=WBTONE.tflite --out benchmarks/results/cast_vs_tone.json
    python benchmarks/cast_vs_tone.py --model white_balance=WBTONE.tflite \\
        --dermoscopy-set ~/.cache/diqa-edge/skin-kadid-512 --out benchmarks/results/cast_vs_tone_dermoscopy.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from phone_gate import add_photo_arguments, chosen_models, chosen_photos  # noqa: E402

TONE_POWER = 1.5
CAST_SEEDS = (11, 1, 4, 7)        # the four cast directions (warm, cool, green, magenta; tests/data)


def bright_chroma(rgb: np.ndarray, share: float) -> float:
    """The chroma (|(a*, b*)|, CIELAB) of the mean colour of the brightest ``share`` of the pixels."""
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb).reshape(-1, 3)
    top = lab[lab[:, 0] >= np.quantile(lab[:, 0], 1 - share)]
    return float(np.hypot(top[:, 1].mean(), top[:, 2].mean()))


def views_of(rgb: np.ndarray, index: int):
    """(kind, image): as taken, darker tone, a cast at levels 4 and 5 (a direction drawn by the photo's place)."""
    from diqa_edge.data.kadid import darker_tone, distort_kadid

    yield "as taken", rgb
    yield "darker tone", darker_tone(rgb, TONE_POWER)
    for level in (4, 5):
        yield "cast", distort_kadid(rgb, "colour_cast", level, seed=CAST_SEEDS[(index + level) % 4])


def measure(photos: list[Path], share: float, models: dict[str, Path]) -> dict:
    from diqa_edge.contract import DEFAULT_CONTRACT
    from diqa_edge.eval.metrics import binary_auc
    from diqa_edge.sdk import QualityScorer
    from diqa_edge.sdk.decode import decode_image
    from tqdm import tqdm

    scorers = {name: QualityScorer(path, threads=2) for name, path in models.items()}
    rows = []
    for i, photo in enumerate(tqdm(photos, desc="photos", unit="photo")):
        rgb = decode_image(photo, DEFAULT_CONTRACT)          # upright, as the SDK decodes it
        for kind, view in views_of(rgb, i):
            row = {"photo": photo.name, "kind": kind, "bright_chroma": bright_chroma(view, share)}
            for name, scorer in scorers.items():
                row[f"p_white_balance[{name}]"] = float(scorer.score(view).reasons.get("white_balance", float("nan")))
            rows.append(row)
    kinds = np.array([r["kind"] for r in rows])
    measures = [k for k in rows[0] if k not in ("photo", "kind")]
    aucs = {}
    for m in measures:
        values = np.array([r[m] for r in rows])
        for other in ("darker tone", "as taken"):
            keep = (kinds == "cast") | (kinds == other)
            aucs[f"{m}: cast vs {other}"] = round(float(binary_auc(values[keep], kinds[keep] == "cast")), 3)
    return {"n_photos": len(photos), "share": share, "tone_power": TONE_POWER, "auc": aucs,
            "medians": {m: {k: round(float(np.median([r[m] for r in rows if r["kind"] == k])), 3)
                            for k in ("as taken", "darker tone", "cast")} for m in measures}, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_photo_arguments(parser, models_required=False)      # the chroma needs no model
    parser.add_argument("--share", type=float, default=0.05, help="the brightest share of pixels (default 0.05)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    photos, _ = chosen_photos(args, parser)
    result = measure(photos, args.share, chosen_models(args, parser))
    for key, value in result["auc"].items():
        print(f"{key:60s} AUC {value:.3f}")
    print(json.dumps(result["medians"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
