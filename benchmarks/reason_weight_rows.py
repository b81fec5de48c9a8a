"""Which views should weigh more in the reasons heads (issue 31)? The dermoscopy cells still short.

The gate's last short cells on dermoscopy are low light and shake with noise at level 4: a darkened photo
with a little noise and shake, and a shaken one with noise. Their reasons ("dark", "blur") share the
photo-wide directions of a darker skin tone and of a soft photo, which the rule must let through; each
reasons head is one logistic regression on the frozen trunk's statistics, every view weighing alike. This
refits the shipped run's reasons heads as training fits them (``rule_search_rows.with_weighted_reasons``:
its cached statistics, split, standardisation, out-of-fold calibration) with chosen views weighing more,
chooses the rule as training does (per-domain pristine margin) and judges it on the test views of both
skin sets and the good held-out BIQ2021 photos.

A weighting is written ``name=w,...``: ``tone`` a darker-skin-tone view (a good photo, negative for every
reason), any camera or KADID family name its severe views (levels 4-5) in their own reason's head.

    python benchmarks/reason_weight_rows.py --weighting none --weighting tone=5 \\
        --weighting tone=5,low_light=3,shake_noise=3 --out benchmarks/results/reason_weight_rows.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rule_search_rows import CARD, cached_outputs, judge, with_weighted_reasons  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def parse_weighting(text: str) -> dict[str, float]:
    """``tone=5,low_light=3`` -> {"tone": 5.0, "low_light": 3.0}; ``none`` -> {} (every view alike)."""
    if text.strip() in ("", "none"):
        return {}
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: expected NAME=WEIGHT") from None
    return out


def weight_function(weighting: dict[str, float]):
    """(record, reason index) -> the view's weight in that reason's fit."""
    from diqa_edge.data.distort import REASONS
    from diqa_edge.data.kadid import DARKER_TONE, reason_of
    from diqa_edge.training.feature_model import SEVERE_LEVELS

    tone = weighting.get("tone", 1.0)

    def weight_of(record, k: int) -> float:
        if record.distortion == DARKER_TONE:
            return tone
        w = weighting.get(record.distortion or "none")
        if w is not None and record.level in SEVERE_LEVELS and REASONS[k] == reason_of(record.distortion):
            return w
        return 1.0
    return weight_of


def row(out: dict) -> dict:
    from diqa_edge.data.distort import REASONS
    from diqa_edge.eval.gate import Views, choose_rule

    views = Views(out["families"], out["levels"], out["domain"])
    chosen = choose_rule(out["calib"], views, REASONS, out["acceptable"])
    retake = chosen.rule.retake_mask(out["calib"], REASONS)
    tone = views.families == "darker_tone"
    return {"calibration": {"darker_tone_accept": round(float(1 - retake[tone].mean()), 3),
                            "pristine_accept": round(float(1 - retake[views.pristine].mean()), 3)},
            "rule": chosen.rule.to_dict(), "test": judge(chosen.rule, out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--card", type=Path, default=CARD, help="the run card whose reasons heads are refitted")
    parser.add_argument("--weighting", action="append", type=parse_weighting, required=True,
                        help="NAME=W,... ('none': every view alike); repeat for more rows")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reason_weight_rows.json")
    args = parser.parse_args(argv)
    shipped = cached_outputs(args.card)
    results = {}
    for weighting in args.weighting:
        name = ",".join(f"{k}={v:g}" for k, v in weighting.items()) or "none"
        start = time.time()
        out = with_weighted_reasons(args.card, shipped, weight_function(weighting))
        results[name] = r = {**row(out), "seconds": round(time.time() - start, 1)}
        print(f"{name}: calibration tones kept {r['calibration']['darker_tone_accept']} | test: derm pristine "
              f"{r['test']['derm']['pristine_accept']} tones {r['test']['derm']['darker_tone_accept']} below "
              f"{r['test']['derm']['below_0.90']} | phone pristine {r['test']['phone']['pristine_accept']} tones "
              f"{r['test']['phone']['darker_tone_accept']} below {r['test']['phone']['below_0.90']} | natural "
              f"{r['test']['natural_accept']:.3f}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
