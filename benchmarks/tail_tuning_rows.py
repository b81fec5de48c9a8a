"""Rows of issue 21 item 2: the late stages fine-tuned from an activation cache, against the frozen
feature model and full fine-tuning, at equal training time, on the same 1,200 held-out BIQ2021 photos.

Every trained row starts from the frozen model (its linear score head is the ridge fit on the frozen
statistics), trains for ``--minutes`` of training time at most (validation passes not counted) and
keeps the epoch with the best validation SROCC. Rows:

- ``frozen``: nothing trained; the ridge and the RBF SVR on the cached statistics (the shipped recipe);
- ``block5``: stage 7 trains, from the cached output of stage 6 (``block5``);
- ``block4``: stages 6 and 7 train, from the cached output of stage 5;
- ``full``: every stage trains, from the decoded pixels (no cache).

For the cache rows, the statistics of the tuned model are then recomputed for every photo (from the
cache) and the ridge and the SVR refitted on them, as the shipped recipe would. The caches and the
runs live under the cache root (``~/.cache/diqa-edge/activations``, ``.../runs/tail-*``); a rerun
reads them and resumes an interrupted row.

    python benchmarks/tail_tuning_rows.py --rows frozen,block5,block4,full --minutes 12 \
        --out benchmarks/results/tail_tuning_rows.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

STAGES = "block0,block1,block2,block3,block4,block5,block6"
ROWS = {   # name: (cut, epochs of the cosine schedule: what fits in about 12 minutes at this row's speed)
    "block5": ("block5", 10),
    "block4": ("block4", 2),
    "full": (None, 1),
}


def _setup():
    from diqa_edge.cachedir import data_root
    from diqa_edge.training.feature_model import FeatureModelConfig, cached_parts, fit_heads, load_parts

    config = FeatureModelConfig(dataset_dirs={"biq2021": str(data_root() / "biq2021")}, stages=STAGES,
                                reasons=False)
    records = load_parts(config)
    parts, _, _ = cached_parts(config, records)
    train = parts["train"]["biq2021"]
    heads = fit_heads(train.features, train.mos, np.ones(len(train.mos)), None, [], config)
    return config, parts, heads


def _scores(config, parts: dict, features: dict) -> dict:
    """Ridge and SVR refitted on ``features`` ({part: N x F}); SROCC / PLCC on val and test."""
    from diqa_edge.eval.metrics import all_metrics, srocc
    from diqa_edge.training.feature_model import Part, fit_heads, fit_kernel_score

    train = parts["train"]["biq2021"]
    heads = fit_heads(features["train"], train.mos, np.ones(len(train.mos)), None, [], config)
    kernel = fit_kernel_score(Part(train.records, features["train"]), config)
    out = {"ridge_alpha": heads.alpha}
    for head, predict in (("ridge", lambda f: heads.predict(f)[:, 0]), ("svr", kernel.predict)):
        out[head] = {"val_srocc": srocc(predict(features["val"]), parts["val"]["biq2021"].mos),
                     "test": all_metrics(predict(features["test"]), parts["test"]["biq2021"].mos, ci=True)}
    return out


def frozen_row(config, parts, heads) -> dict:
    return {"row": "frozen", "trained": "nothing (ridge / SVR on the cached statistics)",
            **_scores(config, parts, {p: parts[p]["biq2021"].features for p in ("train", "val", "test")})}


def tuned_row(name: str, minutes: float, config, parts, heads, progress: bool) -> dict:
    import torch

    from diqa_edge.cachedir import cache_root
    from diqa_edge.eval.metrics import all_metrics
    from diqa_edge.models.pooled_stats import build_pooled_stats
    from diqa_edge.training.tail_tuning import TailConfig, activation_key, tune_trunk
    from diqa_edge.training.feature_cache import FeatureCache

    cut, epochs = ROWS[name]
    built = build_pooled_stats(config.backbone, STAGES, input_size=config.input_size)
    tail_config = TailConfig(cut=cut, epochs=epochs, minutes=minutes)
    run_dir = cache_root() / "runs" / f"tail-{name}-{minutes:g}min"
    # the full row would need a 512-px pass over all 6,000 photos to refit the heads: its test part only
    log, tuned, tail = tune_trunk(built, parts, heads, tail_config, STAGES, config.backbone, run_dir, progress,
                                  feature_parts=None if cut else ("test",))
    with torch.no_grad():
        linear = tail.head((torch.from_numpy(tuned["test"]["biq2021"]) - tail.mean) * tail.inv_scale).view(-1)
    out = {"row": name, "cut": cut, "epochs_planned": epochs, "minutes": minutes, "run_dir": str(run_dir),
           **log,
           "linear_head": {"test": all_metrics(linear.numpy(), parts["test"]["biq2021"].mos, ci=True)}}
    if cut is not None:   # how long the activation cache took to build (chunk compute times over every run)
        cache = FeatureCache(cache_root() / "activations" / activation_key(config.backbone, cut, built.contract,
                                                                           built.weights))
        out["cache"] = {"folder": str(cache.folder), "images": len(cache), "build_s": round(cache.build_seconds, 1),
                        "images_per_s": len(cache) / max(cache.build_seconds, 1e-9),
                        "gigabytes": sum(f.stat().st_size for f in cache.folder.glob("chunk-*.npy")) / 1e9}
        out |= _scores(config, parts, {p: tuned[p]["biq2021"] for p in tuned})
    return out


def markdown(rows: list[dict]) -> list[str]:
    from diqa_edge.eval.report import markdown_table

    def ci(m):
        return f"{m['srocc']:.3f} [{m['srocc_ci'][0]:.3f}, {m['srocc_ci'][1]:.3f}]"

    table = []
    for r in rows:
        trained = r.get("trained") or (f"stages after {r['cut']}" if r["cut"] else "every stage (pixels)")
        speed = f"{r['images_per_s']:.1f}" if "images_per_s" in r else "–"
        seen = f"{r['images']:,} ({r['seconds'] / 60:.1f} min)" if "images" in r else "–"
        table.append([r["row"], trained, speed, seen, ci(r["linear_head"]["test"]) if "linear_head" in r else "–",
                      ci(r["ridge"]["test"]) if "ridge" in r else "–", ci(r["svr"]["test"]) if "svr" in r else "–"])
    return markdown_table(["row", "trained", "images/s", "images seen (training time)",
                           "linear head, SROCC [95 % CI]", "ridge refitted", "SVR refitted"], table)


def main(argv=None) -> int:
    import torch

    from diqa_edge.cachedir import cache_root, json_once

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="frozen,block5,block4,full",
                        help="comma list of: frozen, " + ", ".join(ROWS))
    parser.add_argument("--minutes", type=float, default=12.0, help="training time of every trained row")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tail_tuning_rows.json"))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config, parts, heads = _setup()
    results = []
    for name in [r.strip() for r in args.rows.split(",") if r.strip()]:
        if name != "frozen" and name not in ROWS:
            parser.error(f"unknown row {name!r}")
        path = cache_root() / "tail-rows" / (f"{name}.json" if name == "frozen" else f"{name}-{args.minutes:g}min.json")
        results.append(json_once(path, lambda: frozen_row(config, parts, heads) if name == "frozen"
                                 else tuned_row(name, args.minutes, config, parts, heads, not args.quiet)))
        print("\n".join(markdown(results[-1:])), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": "python benchmarks/tail_tuning_rows.py " + " ".join(argv or sys.argv[1:]),
                                    "rows": results}, indent=1, default=float) + "\n")
    print("\n".join(markdown(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
