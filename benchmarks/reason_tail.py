"""Would a last stage trained on the reasons separate the gate's two missed cells (issue 18)?

The reasons heads read frozen ImageNet statistics. This trains the backbone's last stage (block 6,
from a cache of block 5's output: ``diqa_edge.training.tail_tuning``) together with the seven reasons
heads, by masked binary cross-entropy on the skin training photos' views (the targets the shipped
heads are fitted on: ``reason_targets``), starting from the frozen logistic fit. It reports, on the
views of the 77 validation and test photos, each missed cell (contrast level 4, darkening level 4)
caught by its own reason alone when 97 % / 95 % of the pristine views (or of the pristine, level-1 and
darker-tone views together) pass: the frozen start against each epoch.

    python benchmarks/reason_tail.py --out benchmarks/results/reason_tail.json   # ~9 min (+12 min for the cache, once)
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
CUT = "block5"
CELLS = {"contrast": "contrast", "darken": "dark"}


def separation(p: np.ndarray, records) -> dict:
    """Each cell caught by its own reason alone at 0.97 / 0.95 of the must-pass views."""
    from diqa_edge.data.distort import REASONS
    from diqa_edge.eval.gate import Views, caught_alone
    from diqa_edge.training.feature_model import mild_views

    views, mild = Views.of(records), mild_views(records)
    out = {}
    for fam, reason in CELLS.items():
        cell = (views.families == fam) & (views.levels == 4)
        for must_pass, mask in (("pristine", views.pristine), ("pristine_and_mild", views.pristine | mild)):
            caught = caught_alone(p[:, REASONS.index(reason)], cell, mask)
            out[f"{fam}_4_by_{reason}_alone_vs_{must_pass}"] = {a: round(v, 3) for a, v in caught.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    import torch
    from sklearn.linear_model import LogisticRegression

    from diqa_edge.cachedir import skin_set_dir
    from diqa_edge.data.distort import REASONS
    from diqa_edge.models.pooled_stats import build_pooled_stats
    from diqa_edge.training.feature_model import (FeatureModelConfig, cached_parts, load_parts, reason_targets,
                                                  standardisation)
    from diqa_edge.training.tail_tuning import Inputs, Tail, cached_activations, early_width, rows_for, tail_outputs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reason_tail.json")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    config = FeatureModelConfig.from_card(CARD, {"derm": str(skin_set_dir())})
    parts, _, _ = cached_parts(config, load_parts(config))
    train, held = parts["train"]["derm"], parts["val"]["derm"]
    held_records = held.records + parts["test"]["derm"].records
    held_features = np.concatenate([held.features, parts["test"]["derm"].features])
    built = build_pooled_stats(config.backbone, config.stages, input_size=config.input_size)
    trunk, n_early = built.model.trunk, early_width(built.model.trunk, config.stages, CUT)
    start = time.time()
    cache = cached_activations([Path(r.image) for r in train.records + held_records], trunk, CUT, built.contract,
                               built.weights, config.backbone, desc=f"{CUT} activations")
    cache_seconds = time.time() - start
    mean, scale = standardisation(train.features)
    targets, used = reason_targets(train.records)
    fits = [LogisticRegression(C=config.reason_c, max_iter=3000).fit(((train.features - mean) / scale)[used[:, k]],
                                                                     targets[used[:, k], k])
            for k in range(len(REASONS))]
    tail = Tail(trunk, CUT, config.stages, mean, scale)
    tail.head = torch.nn.Linear(len(mean), len(REASONS))
    with torch.no_grad():
        tail.head.weight.copy_(torch.tensor(np.stack([f.coef_.ravel() for f in fits]), dtype=torch.float32))
        tail.head.bias.copy_(torch.tensor([f.intercept_[0] for f in fits], dtype=torch.float32))
    inputs = Inputs(cache, built.contract)
    train_rows = rows_for(train.records, train.features[:, :n_early])
    held_rows = rows_for(held_records, held_features[:, :n_early])

    def probabilities() -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(tail.head((torch.from_numpy(tail_outputs(tail, inputs, held_rows, features=True))
                                            - tail.mean) * tail.inv_scale)).numpy()

    result = {"cut": CUT, "train_views": len(train.records), "held_views": len(held_records),
              "cache_seconds": round(cache_seconds, 1), "lr": args.lr,
              "epochs": [{"epoch": 0, "what": "frozen logistic start", **separation(probabilities(), held_records)}]}
    optimiser = torch.optim.AdamW(tail.parameters(), lr=args.lr, weight_decay=1e-4)
    y, mask = torch.tensor(targets), torch.tensor(used, dtype=torch.float32)
    for epoch in range(1, args.epochs + 1):
        tail.train()
        order, losses, t0 = np.random.default_rng(epoch).permutation(len(train.records)), [], time.time()
        for s in range(0, len(order), 32):
            index = np.sort(order[s:s + 32])
            x, early = inputs.batch(train_rows, index)
            z = tail.head((tail.features(x, early) - tail.mean) * tail.inv_scale)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(z, y[index], reduction="none")
            loss = (bce * mask[index]).sum() / mask[index].sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(float(loss))
        result["epochs"].append({"epoch": epoch, "train_bce": round(float(np.mean(losses)), 5),
                                 "seconds": round(time.time() - t0, 1), **separation(probabilities(), held_records)})
        print(json.dumps(result["epochs"][-1]), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
