"""Can another reasons head close the skin gate's two level-4 cells (issue 18)?

The shipped gate sends back 0.80 of level-4 contrast and 0.69 of level-4 darkening (target 0.90) while
every other family at levels 4-5 is at 0.94 or more. The score head cannot help there: KADID's people
rate those two views 8.1 and 6.7 of 10, so only the reasons heads can catch them. This refits the
reasons heads of the shipped recipe (the shipped run's config, its cached features and split) in
several forms, chooses the rule for each exactly as training does (``diqa_edge.eval.gate.choose_rule``
on out-of-fold calibration outputs: 180 training photos' views in 5 grouped folds, the 26 validation
photos' views, good BIQ2021 validation photos; standardised per fold as ``fit_heads`` does) and judges
it on the 51 unseen test photos' views. The ``logistic-0.5`` row is the shipped run's own recipe: it
reproduces the rule in ``diqa_edge/models/run/card.json`` (every threshold) and its test figures.
Beside the rule, each cell's own reason and the score are each given the whole false-retake budget
alone (``caught_alone``): how far one output gets by itself (a rule ORs them, so not a strict bound).

The score column is the shipped SVR (refitted per fold for the calibration outputs, as training does);
it is computed once and kept under ``~/.cache/diqa-edge/reason-rows``. Rows are computed with
scikit-learn, not through the int8-trunk file, so they compare with the fp16 ``previous`` column of the
skin gate table, not with the shipped file's.

    python benchmarks/reason_head_rows.py --out benchmarks/results/reason_head_rows.json   # ~17 min
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "diqa_edge" / "models" / "run" / "card.json"
CELLS = {"contrast": "contrast", "darken": "dark"}      # the two cells and the reason meant to catch them
ALONE_AT = (0.97, 0.95)     # share of the must-pass calibration views accepted (pristine; or with level 1 and tones)

# name: (kind, strength, class weight, note)
ROWS = {
    "logistic-0.5": ("logistic", 0.5, None, "the shipped recipe: L2 logistic regression, C 0.5"),
    "logistic-0.1": ("logistic", 0.1, None, "stronger L2 (C 0.1)"),
    "logistic-2": ("logistic", 2.0, None, "weaker L2 (C 2)"),
    "logistic-balanced": ("logistic", 0.5, "balanced", "C 0.5, positives weighted up to the negatives' total"),
    "mlp-1": ("mlp", 1.0, None, "one hidden layer of 64 (ReLU), L2 1.0"),
    "mlp-10": ("mlp", 10.0, None, "one hidden layer of 64 (ReLU), L2 10"),
}


def classifier(kind: str, strength: float, class_weight):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if kind == "logistic":
        return LogisticRegression(C=strength, max_iter=2000, class_weight=class_weight)   # as fit_heads
    return MLPClassifier(hidden_layer_sizes=(64,), alpha=strength, max_iter=300, random_state=0)


def fit_reasons(x, records, row) -> list:
    from diqa_edge.data.distort import REASONS
    from diqa_edge.training.feature_model import reason_targets

    targets, used = reason_targets(records)
    return [classifier(*row[:3]).fit(x[used[:, k]], targets[used[:, k], k]) for k in range(len(REASONS))]


def probabilities(models, x) -> np.ndarray:
    return np.stack([m.predict_proba(x)[:, 1] for m in models], axis=1)


def score_columns(config, parts, cache: Path) -> dict:
    """The SVR's score for the test and validation views and good natural photos, and the out-of-fold
    score of every training view (its photo's fold left out of the SVR)."""
    from diqa_edge.training.feature_model import Part, fit_kernel_score, good_natural, photo_folds

    if cache.exists():
        return dict(np.load(cache))
    biq, skin = parts["train"]["biq2021"], parts["train"]["derm"]
    kernel = fit_kernel_score(biq, config, skin)
    fold = photo_folds(skin.records, config)
    oof = np.zeros(len(skin.records))
    for k in range(config.cv_folds):
        keep = fold != k
        sub = Part([r for r, m in zip(skin.records, keep) if m], skin.features[keep])
        oof[~keep] = fit_kernel_score(biq, config, sub).predict(skin.features[~keep])
    out = {"oof": oof, "fold": fold, "val": kernel.predict(parts["val"]["derm"].features),
           "test": kernel.predict(parts["test"]["derm"].features),
           "natural_val": kernel.predict(good_natural(parts["val"]["biq2021"]).features),
           "natural_test": kernel.predict(good_natural(parts["test"]["biq2021"]).features)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def measure(row, parts, scores) -> dict:
    """Calibration and test rates of the rule chosen for reasons heads of this ``row``."""
    from diqa_edge.data.distort import REASONS
    from diqa_edge.eval.gate import Views, acceptance_table, caught_alone, choose_rule
    from diqa_edge.training.feature_model import calibration_views, good_natural, standardisation

    skin, val, test = parts["train"]["derm"], parts["val"]["derm"], parts["test"]["derm"]
    natural = good_natural(parts["train"]["biq2021"])
    natural_val, natural_test = good_natural(parts["val"]["biq2021"]), good_natural(parts["test"]["biq2021"])
    biq = parts["train"]["biq2021"].features

    def standardiser(skin_rows: np.ndarray):
        """As fit_heads: by the rows the heads are fitted beside (BIQ2021 training photos and these skin views)."""
        mean, scale = standardisation(np.concatenate([biq, skin_rows]))
        return lambda x: (x - mean) / scale

    oof = np.zeros((len(skin.records), len(REASONS)))
    for k in np.unique(scores["fold"]):
        keep = scores["fold"] != k
        z = standardiser(skin.features[keep])
        models = fit_reasons(z(np.concatenate([skin.features[keep], natural.features])),
                             [r for r, m in zip(skin.records, keep) if m] + natural.records, row)
        oof[~keep] = probabilities(models, z(skin.features[~keep]))
    z = standardiser(skin.features)
    models = fit_reasons(z(np.concatenate([skin.features, natural.features])), skin.records + natural.records, row)
    calib = np.concatenate([np.c_[scores["oof"], oof], np.c_[scores["val"], probabilities(models, z(val.features))],
                            np.c_[scores["natural_val"], probabilities(models, z(natural_val.features))]])
    records = skin.records + val.records
    views, must_pass = calibration_views(records, len(natural_val.records))
    mild = must_pass & (views.families != "natural")
    chosen = choose_rule(calib, views, REASONS, must_pass)
    calib_retake = chosen.rule.retake_mask(calib, REASONS)
    # the cell's own reason, and the score, each given the whole false-retake budget by itself
    alone = {}
    for fam, reason in CELLS.items():
        cell = (views.families == fam) & (views.levels == 4)
        for must_pass, mask in (("pristine", views.pristine), ("pristine_and_mild", views.pristine | mild)):
            alone[f"{fam}_4_by_{reason}_alone_vs_{must_pass}"] = caught_alone(
                calib[:, 1 + REASONS.index(reason)], cell, mask, ALONE_AT)
        alone[f"{fam}_4_by_score_alone_vs_pristine"] = caught_alone(-calib[:, 0], cell, views.pristine, ALONE_AT)
    test_out = np.c_[scores["test"], probabilities(models, z(test.features))]
    table = acceptance_table(chosen.rule.retake_mask(test_out, REASONS), Views.of(test.records), None)
    natural_kept = ~chosen.rule.retake_mask(np.c_[scores["natural_test"],
                                                  probabilities(models, z(natural_test.features))], REASONS)
    fams = table["families"]
    severe = {f: min(fams[f][lv]["retake"] for lv in ("4", "5") if lv in fams[f])
              for f in fams if f != "darker_tone" and ("4" in fams[f] or "5" in fams[f])}
    return {"rule": chosen.to_dict()["rule"], "thresholds": chosen.rule.to_dict(),
            "calibration": {**chosen.calibration,
                            **{f"{f}_4_retake": float(calib_retake[(views.families == f) & (views.levels == 4)].mean())
                               for f in CELLS}, **alone},
            "test": {"pristine_accept": table["pristine"]["accept"], "pristine_ci": table["pristine"]["accept_ci"],
                     **{f"{f}_4_retake": fams[f]["4"]["retake"] for f in CELLS},
                     **{f"{f}_4_ci": fams[f]["4"]["ci"] for f in CELLS},
                     "worst_severe_family": min(severe, key=severe.get), "worst_severe_retake": min(severe.values()),
                     "level1_accept_min": min(1 - fams[f]["1"]["retake"] for f in fams
                                              if "1" in fams[f] and f != "darker_tone"),
                     "darker_tone_accept": [1 - fams["darker_tone"][lv]["retake"] for lv in ("1", "2")],
                     "natural_accept": float(natural_kept.mean())}}


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from diqa_edge.cachedir import cache_root, data_root, skin_set_dir
    from diqa_edge.training.feature_model import FeatureModelConfig, cached_parts, load_parts

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma list of: {', '.join(ROWS)}")
    parser.add_argument("--card", type=Path, default=CARD, help="the run card whose config is refitted")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reason_head_rows.json")
    args = parser.parse_args(argv)
    unknown = [r for r in args.rows.split(",") if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
    config = FeatureModelConfig.from_card(args.card, {"biq2021": str(data_root() / "biq2021"),
                                                      "derm": str(skin_set_dir())})
    if not Path(config.dataset_dirs["derm"]).exists():
        print(f"{config.dataset_dirs['derm']}: no skin set (diqa-edge make-skin-set first)", file=sys.stderr)
        return 2
    parts, _, key = cached_parts(config, load_parts(config))
    scores = score_columns(config, parts, cache_root() / "reason-rows" / f"scores-{key}-{config.split_seed}.npz")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name in tqdm(args.rows.split(","), desc="reasons heads"):
        start = time.time()
        results[name] = {"note": ROWS[name][3], **measure(ROWS[name], parts, scores),
                         "seconds": round(time.time() - start, 1)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        t = results[name]["test"]
        print(f"{name}: calibration contrast-4 {results[name]['calibration']['contrast_4_retake']:.2f} "
              f"darken-4 {results[name]['calibration']['darken_4_retake']:.2f} | test contrast-4 "
              f"{t['contrast_4_retake']:.2f} darken-4 {t['darken_4_retake']:.2f} pristine {t['pristine_accept']:.3f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
