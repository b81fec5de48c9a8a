"""The paper's experiment grid: train on each dataset alone and on all together, test on every test set.

An experiment is a small config (recorded in every model card), not code.
Output: Tables 3 and 4 of the paper (PLCC and SROCC, mean +- std over
splits) as Markdown and CSV, a scatter of predicted vs MOS per test set, and
one model card per trained model.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.records import LoadedDataset, Record, seeded_subsample
from ..data.registry import DATASETS, load_dataset
from ..data.splits import leaks, split_with_holdout
from ..data.synthetic import SYNTHETIC_SUFFIX
from ..eval.metrics import all_metrics
from ..eval.report import markdown_table
from ..fileio import atomic_write_text
from .card import write_card
from .metrics import reason_aucs
from .trainer import TrainConfig, predict, train

log = logging.getLogger(__name__)

# where each dataset lives under --data-root unless --dataset-dir says otherwise
DEFAULT_FOLDERS = {"koniq": "koniq10k", "kadid": "kadid10k", "spaq": "spaq", "gfiqa": "gfiqa20k",
                   "biq2021": "biq2021", "livec": "livec", "derm": "derm", "phone": "phone"}


@dataclass
class ExperimentConfig:
    datasets: list[str]
    dataset_dirs: dict[str, str]
    splits: list[int] = field(default_factory=lambda: [0])
    split_seed: int = 0
    grid: bool = False
    # Fraction of a train/val-only set (BIQ2021) held out as a test part: its
    # official test split is not available offline, so we report on images it never saw.
    trainval_holdout: float = 0.2
    max_train_images: int | None = None   # subsample for quick CPU runs (seeded)
    max_eval_images: int | None = None
    # synthetic distorted views of the first dataset's training part added to the training pool
    # (anchored pseudo-MOS; see data/synthetic.py), drawn from this recipe
    synthetic_views: int = 0
    synthetic_recipe: str = "paper"
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["train"] = self.train.to_dict()
        return d


def run_label(members: list[str], trainable: list[str]) -> str:
    """The folder a run writes under: its dataset(s), or "all" when it trains on every trainable set."""
    return "+".join(members) if len(members) < len(trainable) or len(trainable) == 1 else "all"


def resolve_dirs(datasets: list[str], data_root: Path, overrides: dict[str, str]) -> dict[str, str]:
    dirs = {}
    for name in datasets:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
        dirs[name] = str(overrides.get(name) or (data_root / DEFAULT_FOLDERS[name]))
    return dirs


def _parts(config: ExperimentConfig, loaded: dict[str, LoadedDataset], split_index: int):
    parts = {}
    for name, data in loaded.items():
        split = split_with_holdout(data, split_index, config.split_seed, config.trainval_holdout)
        problems = leaks(data, split)
        if problems:
            raise RuntimeError(f"{name} split {split_index} leaks: {problems[:3]}")
        parts[name] = {p: split.select(data.records, p) for p in ("train", "val", "test")}
    return parts


def training_pool(config: ExperimentConfig, parts: dict, members: list[str], split_index: int,
                  out_dir: Path) -> list[Record]:
    """Every member's training part, plus synthetic views made from the first member's training part only
    (never from val or test, so no view of a held-out photo can leak into training)."""
    pool = [r for n in members for r in parts[n]["train"]]
    if config.synthetic_views:
        from ..data.synthetic import synthetic_views

        source = members[0]
        pool += synthetic_views(parts[source]["train"], config.synthetic_views,
                                out_dir / "synthetic_views" / f"{source}_split{split_index}",
                                recipe=config.synthetic_recipe, seed=config.split_seed + split_index,
                                progress=config.train.progress)
    return pool


def run_experiment(config: ExperimentConfig, out_dir: str | Path) -> dict:
    """Train every configuration on every split; test each on every test set; write the tables."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = {name: load_dataset(name, config.dataset_dirs[name]) for name in config.datasets}
    trainable = [n for n in config.datasets if loaded[n].role != "test"]
    runs = [[n] for n in trainable] + ([trainable] if len(trainable) > 1 else []) if config.grid \
        else [trainable]
    results: dict = {}
    predictions: dict = {}
    for split_index in config.splits:
        parts = _parts(config, loaded, split_index)
        test_sets = {n: seeded_subsample(parts[n]["test"], config.max_eval_images, split_index)
                     for n in config.datasets if len(parts[n]["test"]) >= 3}
        for members in runs:
            label = run_label(members, trainable)
            seed = config.train.seed + split_index
            train_recs = seeded_subsample(training_pool(config, parts, members, split_index, out_dir),
                                    config.max_train_images, seed)
            val_recs = seeded_subsample([r for n in members for r in parts[n]["val"]],
                                  config.max_eval_images, seed)
            run_dir = out_dir / label / f"split{split_index}"
            tcfg = dataclasses.replace(config.train, seed=seed)
            result = train(train_recs, val_recs, tcfg, run_dir)
            if not result.finished:
                log.warning(f"{run_dir}: stopped after epoch {len(result.history)} of {tcfg.epochs}; "
                            "run the same command again to resume")
                continue
            built_contract = _contract_of(tcfg)
            model = _trained_model(tcfg, run_dir)
            train_mean = float(np.mean([r.mos for r in train_recs]))
            metrics = {}
            for test_name, recs in test_sets.items():
                metrics[test_name], pred = _test_metrics(model, recs, built_contract, tcfg, train_mean, test_name)
                predictions.setdefault((label, test_name), []).append((pred, np.array([r.mos for r in recs])))
                results.setdefault(label, {}).setdefault(test_name, []).append(metrics[test_name])
            if not _is_main():
                continue
            write_card(run_dir, config=config, train_config=tcfg, members=members, result=result,
                       contract=built_contract, metrics=metrics, n_train=len(train_recs),
                       n_val=len(val_recs), split_index=split_index,
                       pseudo={n: loaded[n].pseudo for n in config.datasets},
                       outputs=model.output_names,
                       n_synthetic=sum(r.dataset.endswith(SYNTHETIC_SUFFIX) for r in train_recs))
    if not _is_main():
        return results
    _write_tables(results, out_dir, {n: loaded[n].pseudo for n in config.datasets}, config)
    _write_scatters(predictions, out_dir, {n: loaded[n].pseudo for n in config.datasets})
    atomic_write_text(out_dir / "experiment.json", json.dumps(config.to_dict(), indent=1) + "\n")
    return results


def _test_metrics(model, recs, contract, tcfg, train_mean: float, test_name: str) -> tuple[dict, np.ndarray]:
    """(metrics with intervals, predicted scores) of one trained model on one test set; beside them the
    reasons head's AUCs and the RMSE of the trivial baseline (the training mean for every image, whose
    SROCC is 0 by definition), so a reader sees what the model adds."""
    outputs = predict(model, recs, contract, cache_dir=tcfg.cache_dir, channels_last=tcfg.channels_last,
                      bf16=tcfg.bf16, progress=tcfg.progress, desc=f"test {test_name}", all_outputs=True)
    pred, mos = outputs[:, 0], np.array([r.mos for r in recs])
    metrics = all_metrics(pred, mos, ci=True)
    if model.reasons:
        aucs = reason_aucs(outputs[:, 1:], [r.distortion for r in recs], model.reasons)
        if aucs:
            metrics["reason_auc"] = aucs
    metrics["baseline_rmse"] = float(np.sqrt(np.mean((mos - train_mean) ** 2)))
    return metrics, pred


_MODEL_CACHE: dict = {}


def _is_main() -> bool:
    """Under torchrun only rank 0 writes cards and tables."""
    return int(os.environ.get("RANK", "0")) == 0


def _contract_of(tcfg: TrainConfig):
    from ..models.network import contract_for

    return contract_for(tcfg.backbone, tcfg.input_size)


def _trained_model(tcfg: TrainConfig, run_dir: Path):
    import torch

    from ..models.load import load_weights

    key = str(run_dir)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        built = _quiet_build(tcfg)
        load_weights(built.model, run_dir / "best.safetensors")
        model = built.model.eval()
        if tcfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        _MODEL_CACHE[key] = model
    return _MODEL_CACHE[key]


def _quiet_build(tcfg: TrainConfig):
    import warnings

    from ..data.distort import REASONS
    from ..models.network import build_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # weights are loaded from the run right after
        return build_model(tcfg.backbone, pretrained=False, input_size=tcfg.input_size,
                           reasons=REASONS if tcfg.reason_loss_weight > 0 else ())


def _mean_std(values: list[float]) -> str:
    arr = np.asarray(values, dtype=float)
    return f"{arr.mean():.3f} ± {arr.std(ddof=0):.3f}" if len(arr) > 1 else f"{arr.mean():.3f}"


def _write_tables(results: dict, out_dir: Path, pseudo: dict[str, bool], config: ExperimentConfig) -> None:
    tests = sorted({t for per in results.values() for t in per})
    md = io.StringIO()
    rows = []
    for number, metric in ((3, "plcc"), (4, "srocc")):
        md.write(f"\n### Table {number}: {metric.upper()} (mean ± std over splits {config.splits})\n\n")
        header = ["trained on"] + [f"{t} ({'pseudo-MOS' if pseudo.get(t) else 'MOS'})" for t in tests]
        table = []
        for label, per in results.items():
            cells = [label]
            for t in tests:
                vals = [m[metric] for m in per.get(t, [])]
                cells.append(_mean_std(vals) if vals else "–")
                if vals:
                    rows.append({"metric": metric, "trained_on": label, "test_set": t,
                                 "labels": "pseudo-MOS" if pseudo.get(t) else "MOS",
                                 "mean": float(np.mean(vals)), "std": float(np.std(vals)),
                                 "splits": len(vals)})
            table.append(cells)
        md.write("\n".join(markdown_table(header, table)) + "\n")
    atomic_write_text(out_dir / "results.md", md.getvalue().lstrip("\n"))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["metric", "trained_on", "test_set", "labels", "mean", "std", "splits"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "results.csv", buf.getvalue())


def _write_scatters(predictions: dict, out_dir: Path, pseudo: dict[str, bool]) -> None:
    from .plots import scatter

    for (label, test_name), pairs in predictions.items():
        pred = np.concatenate([p for p, _ in pairs])
        mos = np.concatenate([m for _, m in pairs])
        scatter(pred, mos, out_dir / "scatter" / f"{label}__on__{test_name}.png",
                f"{label} on {test_name}", "pseudo-MOS" if pseudo.get(test_name) else "MOS")
