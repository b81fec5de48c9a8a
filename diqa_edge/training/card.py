"""Model cards: what a trained model is, what it saw, how it scored, and what it was not trained on."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from ..eval.report import markdown_table, reason_auc_table
from ..fileio import atomic_write_text


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=10,
                               cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("+uncommitted changes" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _ci(metrics: dict, name: str) -> str:
    ci = metrics.get(f"{name}_ci")
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def write_card(run_dir: Path, *, config, train_config, members, result, contract, metrics,
               n_train, n_val, split_index, pseudo, outputs=("score",), n_synthetic: int = 0) -> Path:
    """The run's card, as JSON (what export and the SDK read) and as markdown (what a person reads)."""
    card = _card_dict(config=config, train_config=train_config, members=members, result=result,
                      contract=contract, metrics=metrics, n_train=n_train, n_val=n_val, split_index=split_index,
                      pseudo=pseudo, outputs=outputs, n_synthetic=n_synthetic)
    atomic_write_text(run_dir / "card.json", json.dumps(card, indent=1, default=str) + "\n")
    atomic_write_text(run_dir / "card.md", "\n".join(_card_lines(card, contract, metrics, pseudo, result,
                                                                 config.split_seed, n_synthetic)) + "\n")
    return run_dir / "card.json"


def _card_dict(*, config, train_config, members, result, contract, metrics, n_train, n_val, split_index, pseudo,
               outputs, n_synthetic) -> dict:
    return {
        "model": f"{train_config.backbone} + 2-layer regression head"
                 + (" + reasons head" if getattr(train_config, "reason_loss_weight", 0) > 0 else ""),
        "model_kind": "finetune",
        "outputs": list(outputs),
        "alignment": getattr(result, "alignment", {}) or {"rule": "linear rescaling of each declared range to [1, 10]"},
        "backbone": train_config.backbone,
        "backbone_start": result.weights,
        "contract": contract.to_dict(),
        "trained_on": members,
        "labels": {n: ("pseudo-MOS (derived from the distortion, not human ratings)" if pseudo.get(n)
                       else "human MOS") for n in members},
        "dataset_dirs": {n: config.dataset_dirs[n] for n in config.datasets},
        "split": {"index": split_index, "seed": config.split_seed,
                  "trainval_holdout": config.trainval_holdout},
        "synthetic_views": ({"requested": config.synthetic_views, "in_training": n_synthetic,
                             "recipe": config.synthetic_recipe,
                             "made_from": f"{members[0]} training part",
                             "labels": "pseudo-MOS: 1 + (source MOS - 1) x SSIM(source, view)"}
                            if getattr(config, "synthetic_views", 0) else None),
        "n_train": n_train, "n_val": n_val,
        "train_config": train_config.to_dict(),
        "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "best_val_plcc": result.best_val_plcc,
        "train_seconds": round(result.train_seconds, 1),
        "test_metrics": metrics,
        "history": result.history,
        "weights_file": "best.safetensors",
        "git_commit": git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "not_trained_on": [n for n in ("koniq", "kadid", "spaq", "gfiqa", "biq2021", "livec", "derm")
                           if n not in members],
    }


def _card_lines(card: dict, contract, metrics: dict, pseudo: dict, result, split_seed: int,
                n_synthetic: int) -> list[str]:
    members, n_train, n_val = card["trained_on"], card["n_train"], card["n_val"]
    lines = [f"# Model card: {card['model']}", "",
             f"- Backbone start: {card['backbone_start']}",
             f"- Input: {contract.input_size} px, resize shorter side + center crop, "
             f"mean {list(contract.mean)}, std {list(contract.std)}",
             f"- Trained on: {', '.join(n + ' (' + card['labels'][n] + ')' for n in members)}; "
             f"{n_train} training / {n_val} validation images"
             + (f" ({n_synthetic} of the training images are synthetic distorted views of "
                f"{members[0]}'s training photos, pseudo-MOS)" if card["synthetic_views"] else ""),
             f"- Split {card['split']['index']} (seed {split_seed}); not trained on: "
             f"{', '.join(card['not_trained_on']) or 'nothing'}",
             f"- Epochs {len(result.history)}, best epoch {result.best_epoch} "
             f"(validation PLCC {result.best_val_plcc:.3f}), {card['train_seconds']} s",
             f"- Git commit: {card['git_commit']}", ""]
    lines += markdown_table(
        ["test set", "labels", "n", "PLCC [95 % bootstrap CI]", "SROCC [95 % bootstrap CI]", "KROCC", "RMSE",
         "RMSE of predicting the training mean"],
        [[name, "pseudo-MOS" if pseudo.get(name) else "MOS", m["n"], f"{m['plcc']:.3f}{_ci(m, 'plcc')}",
          f"{m['srocc']:.3f}{_ci(m, 'srocc')}", f"{m['krocc']:.3f}", f"{m['rmse']:.3f}",
          f"{m.get('baseline_rmse', float('nan')):.3f}"] for name, m in metrics.items()])
    for name, m in metrics.items():
        if m.get("reason_auc"):
            lines += ["", f"Reasons head on {name} (AUC: a distorted image of that reason vs all others):", ""]
            lines += reason_auc_table(m["reason_auc"])
    if card["alignment"].get("reference"):
        lines += ["", f"MOS alignment: per-dataset affine maps onto {card['alignment']['reference']}'s scale "
                      "(dataset MOS ~ scale x score + shift): " +
                  ", ".join(f"{k} {v['scale']:.3f} x + {v['shift']:.3f}" for k, v in card["alignment"].items()
                            if isinstance(v, dict))]
    return lines
