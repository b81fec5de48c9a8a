"""Heads and rule fitted on what the phone file computes (issue 31): which of the three closes the cells the
int8 trunk lost?

The phone file runs the trunk in int8; until 2026-12-05 the heads and the retake rule were fitted on the
float trunk's statistics. Each row refits the shipped recipe (the card's settings, its split, training's
out-of-fold calibration) and judges it on the test views of both skin sets and the good held-out BIQ2021
photos, through the statistics the int8 file computes (``training/file_statistics.py``, read from FILE):

- heads and rule on the float statistics, judged on them (what the card described) and on the int8 ones
  (what the phone did);
- heads on the float statistics, rule chosen on the int8 ones (the rule alone re-chosen);
- heads and rule on the int8 statistics (``train --statistics-from FILE``);
each rule search with the pristine margin pooled over all skin photos and held per domain.

    python benchmarks/int8_statistics_rows.py --file diqa_edge/models/default.tflite \
        --out benchmarks/results/int8_statistics_rows.json     # ~10 min once the file's statistics are cached
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from rule_search_rows import judge, outputs_of, shipped_parts  # noqa: E402  (a sibling benchmark's refit and judge)


def row(out_rule: dict, out_judge: dict, per_domain: bool) -> dict:
    from scipy.stats import spearmanr

    from diqa_edge.data.distort import REASONS
    from diqa_edge.eval.gate import Views, choose_rule

    views = Views(out_rule["families"], out_rule["levels"], out_rule["domain"] if per_domain else None)
    chosen = choose_rule(out_rule["calib"], views, REASONS, out_rule["acceptable"])
    return {"rule": chosen.rule.to_dict(), "kind": chosen.kind, "calibration": chosen.calibration,
            "test": judge(chosen.rule, out_judge),
            "biq2021_srocc": float(spearmanr(out_judge["biq_test"], out_judge["biq_mos"])[0])}


def main(argv: list[str] | None = None) -> int:
    from diqa_edge.training.feature_model import cached_parts, load_parts

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", type=Path, default=ROOT / "diqa_edge" / "models" / "run" / "card.json")
    parser.add_argument("--file", type=Path, default=ROOT / "diqa_edge" / "models" / "default.tflite",
                        help="the int8-trunk file whose statistics stand for the phone's")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "int8_statistics_rows.json")
    args = parser.parse_args(argv)
    config, parts32 = shipped_parts(args.card)
    config = replace(config, statistics_from=None, rule_margin="pooled")
    parts32 = cached_parts(config, load_parts(config), progress=False)[0]      # the float trunk's, whatever the card
    parts8 = cached_parts(replace(config, statistics_from=str(args.file)), load_parts(config))[0]
    float_fit = outputs_of(config, parts32)
    float_fit_int8 = outputs_of(config, parts32, parts8)
    int8_fit = outputs_of(config, parts8)
    rows = {}
    for margin, per_domain in (("pooled", False), ("per-domain", True)):
        rows[f"float heads and rule, judged on float statistics ({margin})"] = row(float_fit, float_fit, per_domain)
        rows[f"float heads and rule, judged on int8 statistics ({margin})"] = row(float_fit, float_fit_int8, per_domain)
        rows[f"float heads, rule on int8 statistics ({margin})"] = row(float_fit_int8, float_fit_int8, per_domain)
        rows[f"heads and rule on int8 statistics ({margin})"] = row(int8_fit, int8_fit, per_domain)
    for name, r in rows.items():
        t = r["test"]
        print(f"{name}: phone kept {t['phone']['pristine_accept']} severe {t['phone']['severe_retake']} "
              f"| derm kept {t['derm']['pristine_accept']} severe {t['derm']['severe_retake']} "
              f"below 0.90 {t['derm']['below_0.90']} | BIQ2021 SROCC {r['biq2021_srocc']:.4f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"file": str(args.file), "rows": rows}, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
