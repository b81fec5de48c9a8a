"""Which rule search closes the gate's weakest cells (issue 31)? The shipped heads, other searches.

The shipped rule is the greedy search of ``diqa_edge.eval.gate``: it moves, one step at a time, the
threshold that sends back the most severe calibration views per good view it costs. Counting views, it
spends the false-retake budget where views are plentiful and easy (glare, obstruction, noise) and leaves
the weakest families (motion blur, contrast and darkening at level 4 on phone photos) where they are. This
refits the shipped run's heads exactly as training does (the shipped card's config, its cached features
and split), computes the calibration outputs once (out-of-fold, as training: cached under
``~/.cache/diqa-edge/rule-search``), then chooses the rule with each search in ``SEARCHES`` and judges
it on the test views of both skin sets (the card's sampled views) and the good held-out BIQ2021 photos.

    python benchmarks/rule_search_rows.py --out benchmarks/results/rule_search_rows.json   # ~8 min once, then s
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "diqa_edge" / "models" / "run" / "card.json"
# name: (how a greedy step values severe views (eval.gate.SEARCHES), pristine margin held per domain,
#        weight of a phone view in the reasons heads' fit)
ROWS = {
    "views, pooled": ("views", False, 1.0),      # the shipped search: reproduces the shipped rule
    "views": ("views", True, 1.0),
    "cells": ("cells", True, 1.0),
    "coverage": ("coverage", True, 1.0),
    "coverage, phone views x2.3": ("coverage", True, 2.3),     # phone views weigh as much as dermoscopy's
}


def shipped_parts(card: Path):
    """(the card's config reading this machine's data folders, its parts with cached features)."""
    from diqa_edge.cachedir import data_root, phone_set_dir, skin_set_dir
    from diqa_edge.training.feature_model import FeatureModelConfig, cached_parts, load_parts

    size = json.loads(Path(card).read_text())["config"]["input_size"]
    config = FeatureModelConfig.from_card(card, {"biq2021": str(data_root() / "biq2021"),
                                                 "derm": str(skin_set_dir(size)), "phone": str(phone_set_dir())})
    return config, cached_parts(config, load_parts(config), progress=False)[0]


def compute_outputs(card: Path) -> dict:
    """Calibration and test outputs of the shipped recipe's heads, refitted on its cached features."""
    return outputs_of(*shipped_parts(card))


def outputs_of(config, fit_parts: dict, pred_parts: dict | None = None) -> dict:
    """Training's fit on ``fit_parts``; calibration (training's out-of-fold ``calibration_outputs``) and test
    outputs, on ``pred_parts``' statistics of the same views when given (another trunk's), else on the
    fitted ones."""
    from diqa_edge.data.distort import REASONS
    from diqa_edge.models.pooled_stats import build_pooled_stats
    from diqa_edge.training.feature_model import _fit, _test_metrics, calibration_outputs, good_natural

    parts = pred_parts or fit_parts
    built = build_pooled_stats(config.backbone, config.stages, REASONS, input_size=config.input_size)
    heads, kernel = _fit(config, fit_parts, built)
    _, predictions = _test_metrics(config, parts, heads)
    calib, views, acceptable, records = calibration_outputs(config, fit_parts, heads, kernel, predictions, pred_parts)
    out = {"calib": calib, "families": views.families, "levels": views.levels, "acceptable": acceptable,
           "domain": np.array([r.dataset for r in records] + ["natural"] * (len(calib) - len(records))),
           "natural_test": heads.predict(good_natural(parts["test"]["biq2021"]).features),
           "biq_test": predictions[("biq2021", "test")][:, 0], "biq_mos": parts["test"]["biq2021"].mos}
    for name in ("derm", "phone"):
        test = parts["test"][name]
        out[f"{name}_test"] = predictions[(name, "test")]
        out[f"{name}_families"] = np.array([r.distortion or "none" for r in test.records])
        out[f"{name}_levels"] = np.array([r.level or 0 for r in test.records])
    return out


def with_phone_weighted_reasons(card: Path, out: dict, phone_weight: float) -> dict:
    """``out`` with the reasons heads refitted, each phone view weighing ``phone_weight``: the phone views
    are 30 % of the skin views; does weighing them as much as the dermoscopy views sharpen the reasons on
    phone photos?"""
    return with_weighted_reasons(card, out, lambda r, k: phone_weight if r.dataset == "phone" else 1.0)


def with_weighted_reasons(card: Path, out: dict, weight_of) -> dict:
    """``out`` with the reasons columns of heads refitted as training fits them (same rows, same
    standardisation, out-of-fold for the training views) but each view weighing ``weight_of(record, k)``
    in reason ``k``'s logistic fit (a good natural photo weighs 1)."""
    from sklearn.linear_model import LogisticRegression

    from diqa_edge.data.distort import REASONS
    from diqa_edge.training.feature_model import (Part, good_natural, merged_skin, photo_folds, reason_targets,
                                                  standardisation, training_rows)

    config, parts = shipped_parts(card)
    train, val = merged_skin(parts["train"]), merged_skin(parts["val"])
    skin, natural = train["derm"], good_natural(parts["train"]["biq2021"])

    def fit(skin_part: Part):
        mean, scale = standardisation(training_rows({**train, "derm": skin_part}, config)[0])
        records = skin_part.records + natural.records
        rows = (np.concatenate([skin_part.features, natural.features]) - mean) / scale
        weight = np.array([[weight_of(r, k) if i < len(skin_part.records) else 1.0 for k in range(len(REASONS))]
                           for i, r in enumerate(records)])
        targets, used = reason_targets(records)
        models = [LogisticRegression(C=config.reason_c, max_iter=2000).fit(
            rows[used[:, k]], targets[used[:, k], k], sample_weight=weight[used[:, k], k])
            for k in range(len(REASONS))]
        return lambda f: np.stack([m.predict_proba((f - mean) / scale)[:, 1] for m in models], axis=1)

    fold = photo_folds(skin.records, config)
    oof = np.zeros((len(skin.records), len(REASONS)))
    for k in range(config.cv_folds):
        keep = fold != k
        oof[~keep] = fit(Part([r for r, m in zip(skin.records, keep) if m], skin.features[keep]))(skin.features[~keep])
    full = fit(skin)
    calib = np.concatenate([oof, full(val["derm"].features), full(good_natural(parts["val"]["biq2021"]).features)])
    new = {**out, "calib": np.c_[out["calib"][:, 0], calib],
           "natural_test": np.c_[out["natural_test"][:, 0], full(good_natural(parts["test"]["biq2021"]).features)]}
    for name in ("derm", "phone"):
        new[f"{name}_test"] = np.c_[out[f"{name}_test"][:, 0], full(parts["test"][name].features)]
    return new


def cached_outputs(card: Path) -> dict:
    from diqa_edge.cachedir import cache_root

    text = card.read_text()
    # the statistics' key names the trunk, not the recipe: two runs on one trunk (a branch's card with more
    # outputs) must not share a cache, so the card's own digest is part of the name
    key = f'{json.loads(text).get("features_key", "run")}-{hashlib.sha256(text.encode()).hexdigest()[:10]}'
    path = cache_root() / "rule-search" / f"outputs-{key}.npz"
    if not path.exists():
        out = compute_outputs(card)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
    return dict(np.load(path, allow_pickle=False))


def calibration_cells(retake: np.ndarray, views) -> dict:
    """Each severe (domain, family) cell's share sent back on the calibration views."""
    cells, names = views.severe_cells(), views.cell_names()
    return {str(names[cells == c][0]): round(float(retake[cells == c].mean()), 3) for c in np.unique(cells[cells >= 0])}


def judge(rule, out: dict) -> dict:
    """Pristine acceptance and each family's level-4 / level-5 retake on both skin test parts."""
    from diqa_edge.data.distort import REASONS
    from diqa_edge.eval.gate import Views, acceptance_table

    result = {"natural_accept": float(1 - rule.retake_mask(out["natural_test"], REASONS).mean())}
    for name in ("derm", "phone"):
        views = Views(out[f"{name}_families"], out[f"{name}_levels"])
        table = acceptance_table(rule.retake_mask(out[f"{name}_test"], REASONS), views)
        cells = {f"{f}_{lv}": round(row[lv]["retake"], 3) for f, row in table["families"].items()
                 for lv in ("4", "5") if lv in row and f != "darker_tone"}
        severe = views.severe() & (views.families != "darker_tone")
        result[name] = {"pristine_accept": round(table["pristine"]["accept"], 3),
                        "severe_retake": round(float(rule.retake_mask(out[f"{name}_test"][severe], REASONS).mean()), 3),
                        "below_0.90": {c: v for c, v in sorted(cells.items(), key=lambda kv: kv[1]) if v < 0.9},
                        "darker_tone_accept": round(1 - float(np.mean([table["families"]["darker_tone"][lv]["retake"]
                                                                      for lv in ("1", "2")])), 3)}
    return result


def main(argv: list[str] | None = None) -> int:
    from diqa_edge.data.distort import REASONS
    from diqa_edge.eval.gate import Views, choose_rule, rates

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", type=Path, default=CARD, help="the run card whose heads are refitted")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rule_search_rows.json")
    args = parser.parse_args(argv)
    shipped = cached_outputs(args.card)
    results = {}
    for name, (search, by_domain, phone_weight) in ROWS.items():
        start = time.time()
        out = shipped if phone_weight == 1.0 else with_phone_weighted_reasons(args.card, shipped, phone_weight)
        views = Views(out["families"], out["levels"], out["domain"] if by_domain else None)
        chosen = choose_rule(out["calib"], views, REASONS, out["acceptable"], search=search)
        calib_views = Views(out["families"], out["levels"], out["domain"])
        calib_retake = chosen.rule.retake_mask(out["calib"], REASONS)
        cells = calibration_cells(calib_retake, calib_views)
        results[name] = {"rule": chosen.rule.to_dict(), "kind": chosen.kind,
                         "calibration": {**rates(calib_retake, calib_views, out["acceptable"]),
                                         "mean_cell": round(float(np.mean(list(cells.values()))), 3),
                                         "cells_below_0.90": {c: v for c, v in sorted(cells.items(), key=lambda kv: kv[1])
                                                              if v < 0.9}},
                         "test": judge(chosen.rule, out), "seconds": round(time.time() - start, 1)}
        t = results[name]["test"]
        print(f"{name}: phone pristine {t['phone']['pristine_accept']} severe {t['phone']['severe_retake']} "
              f"below {t['phone']['below_0.90']} | derm pristine {t['derm']['pristine_accept']} severe "
              f"{t['derm']['severe_retake']} below {t['derm']['below_0.90']} | natural {t['natural_accept']:.3f}",
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
