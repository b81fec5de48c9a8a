"""The gate at the dermatologist's zoom: faults built at full size, which the 512-px view shrinks away, on
held-out photos, with and without the look at 1:1 (``diqa_edge.sdk.detail``).

The photos: dermoscopy photos of the shipped run's test part at their own size (545-802 px on the short
side, as ``../shared/data/skin-cc0`` holds them: the 512-px view shrinks them 1.1-1.6 times), PAD-UFES-20 phone photos of the test part's patients (300
px: there the tile is most of the photo, so this row checks that the 1:1 look does not send good phone
photos back), and BIQ2021 natural photos of the test part that people rated well (accepted share only).
The faults: KADID's noise and blur families built on the **whole photo at its own resolution with KADID's
pixel parameters unscaled**, i.e. as KADID's raters saw them at 1:1 (their rating is the label), with seeds
no calibration drew. Each view goes through ``QualityScorer`` once; "model alone" is the same result
without the 1:1 look (the rule's answer on the model's outputs), "with 1:1" is what ``diqa-edge score``
answers. A fault should be sent back when its label is below the score threshold (4.59): noise at level 5,
blur at levels 4 and 5, shake with noise at levels 4 and 5. Low light at level 4 is labelled 6.38 (its
darkening's KADID rating, above the cut-off: by its label it may pass); it is listed because the gate's
target names every family's level 4.

    python benchmarks/detail_gate.py --out benchmarks/results/detail_gate.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

# The camera's combined faults come last, so the KADID rows keep their seeds: shake with noise (KADID motion
# blur at the level under noise one level lower) and low light (darkening at the level, noise and shake two
# lower), labelled by their family's rule (``data/camera.py``), built at 1:1 like the rest.
FAULTS = (("noise", 4), ("noise", 5), ("gaussian_blur", 3), ("gaussian_blur", 4), ("gaussian_blur", 5),
          ("lens_blur", 4), ("motion_blur", 4), ("motion_blur", 5), ("shake_noise", 3), ("shake_noise", 4),
          ("shake_noise", 5), ("low_light", 4))
SEED_OFFSET = 104729      # past any seed the skin sets or the 1:1 calibration drew


def outcome(result) -> dict:
    """The answer with the 1:1 look and the model's alone (the same result without it)."""
    by_tile = bool(result.detail and result.detail.get("sent_back"))
    return {"with": bool(result.acceptable), "alone": bool(result.acceptable or by_tile),
            "reason": result.top_reason if not result.acceptable else None}


def score_views(scorer, photos: list[Path], faults, desc: str) -> dict:
    from diqa_edge.data.kadid import KADID_SHORT_SIDE, distort_kadid, kadid_label, reason_of
    from diqa_edge.data.skinviews import view_seed
    from diqa_edge.sdk.decode import decode_image

    rows: dict = {"as taken": []}
    for path in tqdm(photos, desc=desc, unit="photo", mininterval=10):
        rgb = decode_image(path, scorer.contract)
        rows["as taken"].append(outcome(scorer.score(rgb)))
        for i, (family, level) in enumerate(faults):
            view = distort_kadid(rgb, family, level, short_side=KADID_SHORT_SIDE,
                                 seed=view_seed(SEED_OFFSET, path.stem, i))
            rows.setdefault(f"{family} {level}", []).append(outcome(scorer.score(view)))
    table = {}
    for key, got in rows.items():
        family, _, level = key.rpartition(" ") if key != "as taken" else (key, "", "")
        sent = [g for g in got if not g["with"]]
        table[key] = {
            "n": len(got), "label": None if key == "as taken" else round(kadid_label(family, int(level)), 2),
            "sent_back_model_alone": round(float(np.mean([not g["alone"] for g in got])), 4),
            "sent_back_with_1to1": round(float(np.mean([not g["with"] for g in got])), 4),
            "right_hint": (round(sum(g["reason"] == reason_of(family) for g in sent) / len(sent), 4)
                           if sent and key != "as taken" else None)}
    return table


def natural_accepted(scorer, paths: list[Path]) -> dict:
    got = [outcome(scorer.score(p)) for p in tqdm(paths, desc="BIQ2021 good", unit="photo", mininterval=10)]
    return {"n": len(got), "accepted_model_alone": round(float(np.mean([g["alone"] for g in got])), 4),
            "accepted_with_1to1": round(float(np.mean([g["with"] for g in got])), 4)}


def good_natural_test(card: dict) -> list[Path]:
    from diqa_edge.data.splits import run_split_part
    from diqa_edge.training.feature_model import GOOD_NATURAL_MOS

    biq = {**card, "dataset_dirs": {"biq2021": card["dataset_dirs"]["biq2021"]}}
    return [r.image for r in run_split_part(biq, "test") if r.mos >= GOOD_NATURAL_MOS]


def markdown(doc: dict) -> str:
    lines = ["| photos | view | KADID label | n | sent back, model alone | sent back, with 1:1 | right hint |",
             "|---|---|---|---|---|---|---|"]
    for domain, table in doc["skin"].items():
        for key, r in table.items():
            hint = f"{r['right_hint']:.2f}" if r["right_hint"] is not None else "–"
            label = f"{r['label']:.2f}" if r["label"] is not None else "–"
            lines.append(f"| {domain} | {key} | {label} | {r['n']} | {r['sent_back_model_alone']:.3f} | "
                         f"{r['sent_back_with_1to1']:.3f} | {hint} |")
    nat = doc["natural"]
    lines.append(f"| BIQ2021 test, rated well | accepted | – | {nat['n']} | {nat['accepted_model_alone']:.3f} "
                 f"(accepted) | {nat['accepted_with_1to1']:.3f} (accepted) | – |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from diqa_edge.cachedir import data_root
    from diqa_edge.sdk import QualityScorer
    from diqa_edge.training.detail_gate import part_photos

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("diqa_edge/models/default.tflite"))
    parser.add_argument("--card", type=Path, default=Path("diqa_edge/models/default.card.json"),
                        help="the run's card (its split and data folders)")
    parser.add_argument("--out", type=Path, default=None, help="JSON of the results (a .md table beside it)")
    args = parser.parse_args(argv)
    card = json.loads(args.card.read_text())
    scorer = QualityScorer(args.model, threads=2)
    derm = part_photos(card, "derm", "test", data_root() / "skin-cc0" / "images")
    phone = part_photos(card, "phone", "test", data_root() / "pad-ufes-phone" / "images")   # reviewed ones left out
    doc = {"model": str(args.model), "rule": scorer.rule.to_dict(), "faults": [list(f) for f in FAULTS],
           "skin": {"dermoscopy test, own size": score_views(scorer, derm, FAULTS, "dermoscopy"),
                    "phone test, 300 px": score_views(scorer, phone, FAULTS, "phone")},
           "natural": natural_accepted(scorer, good_natural_test(card))}
    table = markdown(doc)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
