"""Fit the reasons head as a linear probe on a trained model's frozen backbone.

Why a probe: trained jointly (``--reasons 1``) on a few hundred labelled
skin images, the head stayed weak (per-reason AUC 0.56-0.86) and the shared
backbone lost about 0.02 SROCC on both test sets. Fitting the head alone on
the pooled features of the model's own training images leaves the score path
bit-identical (so the score head's SROCC equals the score-only model's by
construction) and lets the head train to convergence in seconds: the
features are computed once, then full-batch AdamW runs on a 1280 x K layer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..data.distort import REASONS, reason_target
from ..data.records import Record
from ..data.splits import run_split_part
from ..errors import DiqaError
from ..eval.report import reason_auc_table
from ..fileio import atomic_write_text


def pooled_features(model, records: list[Record], contract, cache_dir=None, batch_size: int = 32,
                    progress: bool = True) -> np.ndarray:
    """The backbone's global-pooled features of each record's contract crop (the phone's view)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from .inputs import EvalImages

    model.eval()
    loader = DataLoader(EvalImages(records, contract, cache_dir), batch_size=batch_size, shuffle=False)
    with torch.inference_mode():
        out = [model.backbone(x).float() for x, _ in tqdm(loader, desc="features", unit="batch",
                                                          disable=not progress or None, leave=False)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def fit_probe(features: np.ndarray, targets: np.ndarray, steps: int = 600, lr: float = 1e-2,
              weight_decay: float = 1e-3, seed: int = 0):
    """Multi-label logistic regression (BCE per reason), full batch; returns the layer and its final loss."""
    import torch

    torch.manual_seed(seed)
    x = torch.from_numpy(np.asarray(features, np.float32))
    y = torch.from_numpy(np.asarray(targets, np.float32))
    layer = torch.nn.Linear(x.shape[1], y.shape[1])
    opt = torch.optim.AdamW(layer.parameters(), lr=lr, weight_decay=weight_decay)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(layer(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return layer.eval(), float(loss.detach())


def labelled(records: list[Record]) -> tuple[list[Record], np.ndarray]:
    keep = [(r, reason_target(r.distortion)) for r in records]
    keep = [(r, t) for r, t in keep if t is not None]
    return [r for r, _ in keep], (np.stack([t for _, t in keep]) if keep else np.zeros((0, len(REASONS))))


def probe_run(run_dir: Path, *, steps: int = 600, lr: float = 1e-2, cache_dir: str | None = "cache/images",
              progress: bool = True) -> dict:
    """Fit the probe on the run's training part, test it on its test part, rewrite its weights and card."""
    import torch

    from ..models.load import load_trained
    from .metrics import reason_aucs
    from ..models.network import IQAModel
    from .trainer import save_weights

    trained = load_trained(run_dir)
    model: IQAModel = trained.model
    train_recs, targets = labelled(run_split_part(trained.card, "train"))
    if not train_recs:
        raise DiqaError(f"{run_dir}: its training part has no images with a known distortion "
                        "(train with the dermatology set, or another set that records distortions)")
    feats = pooled_features(model, train_recs, trained.contract, cache_dir, progress=progress)
    layer, loss = fit_probe(feats, targets, steps=steps, lr=lr)
    if model.reason_head is None or model.reasons != REASONS:
        model.reasons = REASONS
        model.reason_head = torch.nn.Linear(layer.in_features, len(REASONS))
    model.reason_head.load_state_dict(layer.state_dict())
    model.eval()

    card = trained.card
    test_recs, _ = labelled(run_split_part(trained.card, "test"))
    metrics = {}
    for name in sorted({r.dataset for r in test_recs}):
        recs = [r for r in test_recs if r.dataset == name]
        with torch.inference_mode():
            probs = torch.sigmoid(model.reason_head(torch.from_numpy(
                pooled_features(model, recs, trained.contract, cache_dir, progress=progress)))).numpy()
        metrics[name] = reason_aucs(probs, [r.distortion for r in recs], REASONS)
        card.setdefault("test_metrics", {}).setdefault(name, {})["reason_auc"] = metrics[name]
    weights = run_dir / "best.safetensors"
    joint = run_dir / "best.joint.safetensors"
    if not joint.exists() and "reasons_probe" not in card:
        weights.replace(joint)   # keep what training wrote
    save_weights(model, weights, {"reasons_head": "linear probe"})
    card["outputs"] = list(model.output_names)
    card["reasons_probe"] = {"train_images": len(train_recs), "steps": steps, "lr": lr,
                             "final_bce": round(loss, 4), "feature_dim": layer.in_features,
                             "note": "reasons head refit on the frozen backbone; score path unchanged"}
    atomic_write_text(run_dir / "card.json", json.dumps(card, indent=1, default=str) + "\n")
    _append_card_md(run_dir, card["reasons_probe"], metrics)
    return {"probe": card["reasons_probe"], "reason_auc": metrics}


def _append_card_md(run_dir: Path, probe: dict, metrics: dict) -> None:
    path = run_dir / "card.md"
    text = path.read_text() if path.exists() else ""
    marker = "\n## Reasons head: linear probe"
    text = text.split(marker)[0].rstrip("\n") + "\n"
    lines = [marker.strip("\n"), "",
             f"Refit on the frozen backbone's pooled features of {probe['train_images']} training images with a "
             f"known distortion ({probe['steps']} full-batch AdamW steps, lr {probe['lr']}, final BCE "
             f"{probe['final_bce']}); the score path is unchanged.", ""]
    for name, aucs in metrics.items():
        lines += [f"Per-reason AUC on {name}'s test part (a distorted image of that reason vs all others):", ""]
        lines += reason_auc_table(aucs)
    atomic_write_text(path, text + "\n".join(lines) + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a training run folder (card.json + best.safetensors)")
    parser.add_argument("--steps", type=int, default=600, help="full-batch AdamW steps (default 600)")
    parser.add_argument("--lr", type=float, default=1e-2, help="learning rate (default 1e-2)")
    parser.add_argument("--cache-dir", default="cache/images", help="resized-image cache ('' to disable)")


def run(args: argparse.Namespace) -> int:
    try:
        result = probe_run(args.run, steps=args.steps, lr=args.lr, cache_dir=args.cache_dir or None)
    except (DiqaError, FileNotFoundError, ValueError) as exc:
        print(f"diqa-edge fit-reasons: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1))
    return 0
