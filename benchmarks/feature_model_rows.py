"""Rows of the feature-model table (issue 21): what each choice does to held-out BIQ2021 accuracy.

Every row fits the ridge score head on cached pooled statistics (``~/.cache/diqa-edge/features``;
the first run of a (backbone, input size) extracts them, later runs read them) and reports SROCC /
PLCC with 95 % bootstrap intervals on the 1,200 held-out BIQ2021 photos and on the 800 of them that
the earlier shipped model was tested on. Stage subsets slice the columns of the all-stage features.

    python benchmarks/feature_model_rows.py --rows base,first4000,late,early,plus-skin,res384 \
        --out benchmarks/results/feature_model_rows.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIQ = ROOT.parent / "shared" / "data" / "biq2021"

ROWS = {
    # name: (backbone, input size, stages kept, BIQ train rows limit, skin weight or None, note)
    "base": ("efficientnet_lite0", 512, "all", None, None, "Lite0 512 px, all stages, 6,000-photo split"),
    "first4000": ("efficientnet_lite0", 512, "all", 2800, None, "trained on the first 4,000 rows' train part"),
    "late": ("efficientnet_lite0", 512, "block4,block5,block6,head", None, None, "late stages only"),
    "early": ("efficientnet_lite0", 512, "block0,block1,block2,block3", None, None, "early stages only"),
    "no-head": ("efficientnet_lite0", 512, "block0,block1,block2,block3,block4,block5,block6", None, None,
                "without the 1,280-channel head conv"),
    "plus-skin": ("efficientnet_lite0", 512, "all", None, 1.0, "+ KADID-labelled skin views (weight 1)"),
    "plus-skin-0.3": ("efficientnet_lite0", 512, "all", None, 0.3, "+ skin views at weight 0.3"),
    "plus-skin-0.05": ("efficientnet_lite0", 512, "all", None, 0.05, "+ skin views at weight 0.05"),
    "res384": ("efficientnet_lite0", 384, "all", None, None, "Lite0 at 384 px (resized from 512)"),
    "res384-no-head": ("efficientnet_lite0", 384, "block0,block1,block2,block3,block4,block5,block6", None, None,
                       "Lite0 at 384 px, without the head conv"),
    "lite1": ("efficientnet_lite1", 512, "all", None, None, "Lite1 at 512 px"),
    "lite2": ("efficientnet_lite2", 512, "all", None, None, "Lite2 at 512 px"),
    "svr": ("efficientnet_lite0", 512, "block0,block1,block2,block3,block4,block5,block6", None, None,
            "no-head features, RBF SVR score head (C 2, gamma 5e-4, epsilon 0.3) on BIQ2021 only"),
    "svr-all": ("efficientnet_lite0", 512, "all", None, None, "all stages, RBF SVR score head"),
    "res448-no-head": ("efficientnet_lite0", 448, "block0,block1,block2,block3,block4,block5,block6", None, None,
                       "Lite0 at 448 px, blocks 0-6"),
    "svr-448": ("efficientnet_lite0", 448, "block0,block1,block2,block3,block4,block5,block6", None, None,
                "Lite0 at 448 px, blocks 0-6, RBF SVR score head"),
    "lite2-no-head": ("efficientnet_lite2", 512, "block0,block1,block2,block3,block4,block5,block6", None, None,
                      "Lite2 at 512 px, blocks 0-6"),
    "svr-lite2": ("efficientnet_lite2", 512, "block0,block1,block2,block3,block4,block5,block6", None, None,
                  "Lite2 at 512 px, blocks 0-6, RBF SVR score head"),
}
KERNEL_ROWS = {"svr", "svr-all", "svr-448", "svr-lite2"}     # rows whose score head is the SVR (training/feature_model.fit_kernel_score)


def run_row(name: str, skin_dir: Path) -> dict:
    from diqa_edge.training.feature_model import (FeatureModelConfig, _earlier_holdout, cached_parts, fit_heads,
                                                  fit_kernel_score, load_parts, training_rows)
    from diqa_edge.eval.metrics import all_metrics

    backbone, size, stages, limit, skin_weight, note = ROWS[name]
    dirs = {"biq2021": str(BIQ)} | ({"derm": str(skin_dir)} if skin_weight else {})
    config = FeatureModelConfig(dataset_dirs=dirs, backbone=backbone, input_size=size, stages=stages, reasons=False,
                                ridge_skin_weight=skin_weight or 1.0, max_train={"biq2021": limit} if limit else {})
    t0 = time.perf_counter()
    parts, computed, _ = cached_parts(config, load_parts(config), parts_wanted=("train", "test"))
    extract_s = time.perf_counter() - t0
    x, y, w = training_rows(parts["train"], config)
    t1 = time.perf_counter()
    kernel = fit_kernel_score(parts["train"]["biq2021"], config) if name in KERNEL_ROWS else None
    if kernel is not None and config.stages == "all":     # gamma scales with 1 / the number of features
        kernel = fit_kernel_score(parts["train"]["biq2021"], replace(config, svr_gamma=config.svr_gamma * 1568 / 4128))
    heads = fit_heads(x, y, w, None, [], config, kernel=kernel)
    fit_s = time.perf_counter() - t1
    test = parts["test"]["biq2021"]
    pred = heads.predict(test.features)[:, 0]
    old = set(_earlier_holdout(config))
    first = np.array([r.key in old for r in test.records])
    return {"row": name, "note": note, "backbone": backbone, "input_size": size, "stages": stages,
            "features": int(test.features.shape[1]), "n_train": {ds: len(p.records) for ds, p in parts["train"].items()},
            "alpha": heads.alpha, "score_head": kernel.describe() if kernel else "ridge", "images_extracted": computed, "extract_s": round(extract_s, 1),
            "fit_s": round(fit_s, 1), "biq_heldout_1200": all_metrics(pred, test.mos, ci=True),
            "biq_heldout_800": all_metrics(pred[first], test.mos[first], ci=True)}


def main(argv=None) -> int:
    from diqa_edge.cachedir import skin_set_dir
    from diqa_edge.fileio import atomic_write_text

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="base,first4000,late,early,no-head,plus-skin,plus-skin-0.3,plus-skin-0.05,res384",
                    help="comma list of: " + ", ".join(ROWS))
    ap.add_argument("--skin-set", type=Path, default=skin_set_dir())
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "feature_model_rows.json")
    args = ap.parse_args(argv)
    done = {r["row"]: r for r in json.loads(args.out.read_text())} if args.out.exists() else {}
    for name in [r.strip() for r in args.rows.split(",") if r.strip()]:
        if name not in ROWS:
            ap.error(f"unknown row {name!r}; known: {', '.join(ROWS)}")
        done[name] = run_row(name, args.skin_set)
        atomic_write_text(args.out, json.dumps(list(done.values()), indent=1) + "\n")   # resumable row by row
        r = done[name]
        a, b = r["biq_heldout_1200"], r["biq_heldout_800"]
        print(f"{name:14s} SROCC 1200: {a['srocc']:.3f} {a['srocc_ci']}  800: {b['srocc']:.3f} {b['srocc_ci']}  "
              f"PLCC {a['plcc']:.3f}  ridge alpha {r['alpha'] if r['alpha'] is None else format(r['alpha'], '.3g')}  extract {r['extract_s']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
