"""Do more fault views of phone photos sharpen the gate on phone photos (issue 31)? Run folders side by side.

Each run (``--run NAME=DIR``, a feature-model run folder) is scored with its own heads and its own retake
rule (its card's) on the same test views: the test parts of the dermoscopy set and of the phone
set given (``--phone-set``; its split is by patient, so every run sees the same held-out patients), and
the good held-out BIQ2021 photos. Features come from the trainer's cache (computed there once). Rows:
pristine acceptance, darker skin tones accepted, each family's level-4 / level-5 cells below 0.90, the
mean over cells, BIQ2021 SROCC.

    diqa-edge make-skin-set ../shared/data/pad-ufes-phone ~/.cache/diqa-edge/skin-phone-v20 --phone --views-per-photo 20
    diqa-edge train --model pooled-stats --settings-from diqa_edge/models/run \\
        --dataset-dir phone=$HOME/.cache/diqa-edge/skin-phone-v20 --out ~/.cache/diqa-edge/runs/phone20   # ~30 min
    python benchmarks/phone_views_rows.py --run shipped=diqa_edge/models/run --run phone20=~/.cache/diqa-edge/runs/phone20 \\
        --phone-set ~/.cache/diqa-edge/skin-phone-v20 --out benchmarks/results/phone_views_rows.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cells_of(rule, outputs: np.ndarray, records) -> dict:
    from diqa_edge.data.distort import REASONS
    from diqa_edge.eval.gate import Views, acceptance_table

    table = acceptance_table(rule.retake_mask(outputs, REASONS), Views.of(records))
    fams = table["families"]
    cells = {f"{f}_{lv}": round(r[lv]["retake"], 3) for f, r in fams.items() for lv in ("4", "5")
             if lv in r and f != "darker_tone"}
    return {"pristine_accept": round(table["pristine"]["accept"], 3), "n_pristine": table["pristine"]["n"],
            "darker_tone_accept": {lv: round(1 - fams["darker_tone"][lv]["retake"], 3)
                                   for lv in ("1", "2") if lv in fams.get("darker_tone", {})},
            "cells_below_0.90": {k: v for k, v in sorted(cells.items(), key=lambda kv: kv[1]) if v < 0.9},
            "mean_cell": round(float(np.mean(list(cells.values()))), 3), "n_views": len(records)}


def measure(run: Path, parts: dict) -> dict:
    from diqa_edge.data.distort import REASONS
    from diqa_edge.eval.metrics import srocc
    from diqa_edge.models.load import load_trained
    from diqa_edge.training.feature_model import good_natural

    trained = load_trained(run)
    rule = trained.rule
    outputs = trained.model.outputs_of_features
    test = parts["test"]
    natural = good_natural(test["biq2021"])
    return {**{name: cells_of(rule, outputs(test[name].features), test[name].records) for name in ("derm", "phone")},
            "natural_accept": round(float(1 - rule.retake_mask(outputs(natural.features), REASONS).mean()), 3),
            "biq2021_srocc": round(float(srocc(outputs(test["biq2021"].features)[:, 0], test["biq2021"].mos)), 4),
            "n_train_phone_views": trained.card.get("n_train", {}).get("phone")}


def main(argv: list[str] | None = None) -> int:
    from diqa_edge.cachedir import data_root, phone_set_dir, skin_set_dir
    from diqa_edge.training.feature_model import FeatureModelConfig, cached_parts, load_parts

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, metavar="NAME=DIR", help="a run folder (repeatable)")
    parser.add_argument("--phone-set", type=Path, default=phone_set_dir(), help="the phone set whose test views score")
    parser.add_argument("--derm-set", type=Path, default=None,
                        help="the dermoscopy set whose test views score (default: the trainer's, for the input size)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "phone_views_rows.json")
    args = parser.parse_args(argv)
    runs = {name: Path(path).expanduser() for name, path in (r.split("=", 1) for r in args.run)}
    first = next(iter(runs.values()))
    size = json.loads((first / "card.json").read_text())["config"]["input_size"]
    config = FeatureModelConfig.from_card(first / "card.json", {"biq2021": str(data_root() / "biq2021"),
                                                                "derm": str(args.derm_set or skin_set_dir(size)),
                                                                "phone": str(args.phone_set)})
    parts, _, _ = cached_parts(config, load_parts(config), progress=False, parts_wanted=("test",))
    results = {"phone_set": str(args.phone_set), "derm_set": config.dataset_dirs["derm"], "runs": {}}
    for name, run in runs.items():
        results["runs"][name] = measure(run, parts)
        print(name, json.dumps(results["runs"][name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
