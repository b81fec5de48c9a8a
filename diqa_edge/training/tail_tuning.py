"""Fine-tuning past the frozen feature model: the late stages learn, the early stages come from a cache.

Why: on this 2-core CPU a full fine-tuning step at 512 px costs a forward and a
backward pass through the high-resolution early stages, which barely move under
fine-tuning. Their output is computed once per (backbone, input size, contract,
cut) and stored (fp16, memory-mapped, ``feature_cache.FeatureCache`` under
``<cache root>/activations/<key>/``); the stages after the cut, the pooled
statistics and a linear score head then train from it for many epochs at a
fraction of the cost. The statistics of the frozen stages never change, so they
come from the pooled-feature cache.

``cut`` names the last frozen stage (``block4``: stages 6 and 7 train;
``block5``: stage 7 trains). ``cut=None`` is full fine-tuning from the pixels
(no cache, the same loop): the comparison row, and the recipe for a GPU.
No augmentation: a cached activation is one fixed view of its photo.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models.pooled_stats import STAGES, STATS_VERSION, mean_and_std, stage_columns, stage_names
from ..identity import image_ids
from .feature_cache import FeatureCache, cached_outputs


class EarlyStages(nn.Module):
    """The frozen part: stem and stages up to ``cut``; its output is what the activation cache holds."""

    def __init__(self, net: nn.Module, cut: str):
        super().__init__()
        self.conv_stem, self.bn1 = net.conv_stem, net.bn1
        self.blocks = net.blocks[:STAGES.index(cut) + 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.bn1(self.conv_stem(x)))


class Tail(nn.Module):
    """The trained part: the stages after ``cut`` (from the pixels when ``cut`` is None), the statistics
    of the kept ``stages`` among them appended to the frozen stages' cached statistics, and a linear
    score head on standardised features. The feature order is ``PooledStats``' (stage order)."""

    def __init__(self, net: nn.Module, cut: str | None, stages, mean: np.ndarray, scale: np.ndarray):
        super().__init__()
        if "head" in stage_names(stages):
            raise ValueError("tuning covers the seven stages; drop 'head' (the 1,280-channel conv) from the stages")
        net = copy.deepcopy(net)
        self.first = 0 if cut is None else STAGES.index(cut) + 1
        self.stem = nn.Sequential(net.conv_stem, net.bn1) if cut is None else nn.Identity()
        self.blocks = net.blocks[self.first:7]
        self.stages = stage_names(stages)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("inv_scale", 1.0 / torch.as_tensor(scale, dtype=torch.float32))
        self.head = nn.Linear(len(mean), 1)
        for param in self.parameters():   # a copy of a frozen trunk (build_pooled_stats freezes it) must learn
            param.requires_grad_(True)

    def features(self, x: torch.Tensor, early: torch.Tensor | None) -> torch.Tensor:
        out = [] if early is None else [early]
        x = self.stem(x)
        for i, block in enumerate(self.blocks, start=self.first):
            x = block(x)
            if f"block{i}" in self.stages:
                out.append(mean_and_std(x))
        return torch.cat(out, dim=1)

    def forward(self, x: torch.Tensor, early: torch.Tensor | None) -> torch.Tensor:
        return self.head((self.features(x, early) - self.mean) * self.inv_scale).view(-1)

    def train(self, mode: bool = True) -> "Tail":
        """Batch-norm statistics stay ImageNet's (batches of 32 photos would only add noise to them)."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


def activation_key(backbone: str, cut: str, contract, weights: str) -> str:
    """What produced a cached activation: a changed backbone, cut, contract or weights is a new key."""
    blob = json.dumps({"backbone": backbone, "cut": cut, "weights": weights, "contract": contract.fingerprint(),
                       "version": STATS_VERSION, "what": "activation"}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_activations(paths: list[Path], net: nn.Module, cut: str, contract, weights: str, backbone: str, *,
                       root: Path | None = None, progress: bool = True, desc: str = "activations") -> FeatureCache:
    """The cache holding ``cut``'s output for every one of ``paths`` (computing only what it lacks)."""
    key = activation_key(backbone, cut, contract, weights)
    return cached_outputs(paths, EarlyStages(net, cut).eval(), contract, key, kind="activations", root=root,
                          progress=progress, desc=desc)


@dataclass
class TailConfig:
    cut: str | None = "block4"
    epochs: int = 8
    batch_size: int = 32
    lr: float = 1e-4            # AdamW, cosine to zero over ``epochs``; the head starts at the ridge fit
    weight_decay: float = 1e-4
    seed: int = 0
    minutes: float | None = None   # stop after this much training time (the equal-wall-time rows)
    device: str = "cpu"

    def identity(self) -> dict:
        """What a checkpoint must agree with to be resumed."""
        return {k: v for k, v in asdict(self).items() if k not in ("minutes", "device")}


@dataclass
class Rows:
    """One part of the data as the tail sees it: inputs (cache rows or image paths), frozen statistics, MOS."""
    ids: list[str]
    paths: list[Path]
    early: np.ndarray | None      # N x F_frozen, or None from the pixels
    mos: np.ndarray


class Inputs:
    """Batches of the tail's input: cached activations, or the contract's crops when there is no cut.

    From the pixels, photos are decoded and cropped in ``workers`` threads (Pillow releases the GIL);
    with ``keep_crops`` (the training photos) each uint8 crop is kept in memory (768 KB at 512 px), so
    epochs after the first cost the network alone: what lets a GPU run many epochs in minutes. A single
    pass (the features of every view) keeps nothing."""

    def __init__(self, cache: FeatureCache | None, contract, workers: int | None = None, keep_crops: bool = False):
        import os

        self.cache, self.contract, self.keep_crops = cache, contract, keep_crops
        self.workers = workers or min(8, os.cpu_count() or 1)
        self._crops: dict[Path, np.ndarray] = {}

    def _crop(self, path: Path) -> np.ndarray:
        from ..sdk.decode import decode_image
        from ..sdk.preprocess import resize_and_crop

        return resize_and_crop(decode_image(path, self.contract), self.contract)

    def pixels(self, paths: list[Path]) -> np.ndarray:
        from concurrent.futures import ThreadPoolExecutor

        from ..sdk.preprocess import normalise, to_layout

        todo = [p for p in dict.fromkeys(paths) if p not in self._crops]
        fresh: dict[Path, np.ndarray] = {}
        if todo:
            with ThreadPoolExecutor(self.workers) as pool:
                fresh = dict(zip(todo, pool.map(self._crop, todo)))
        if self.keep_crops:
            self._crops.update(fresh)
        return np.concatenate([to_layout(normalise(fresh[p] if p in fresh else self._crops[p], self.contract), "NCHW")
                               for p in paths])

    def batch(self, rows: Rows, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.cache is not None:
            x = torch.from_numpy(self.cache.read([rows.ids[i] for i in index]))
        else:
            x = torch.from_numpy(self.pixels([rows.paths[i] for i in index]))
        early = None if rows.early is None else torch.from_numpy(rows.early[index].astype(np.float32))
        return x, early


def rows_for(records, early: np.ndarray | None) -> Rows:
    paths = [Path(r.image) for r in records]
    return Rows(image_ids(paths), paths, early, np.array([r.mos for r in records], np.float32))


@torch.no_grad()
def tail_outputs(tail: Tail, inputs: Inputs, rows: Rows, batch_size: int = 64, features: bool = False,
                 device: str = "cpu") -> np.ndarray:
    """Scores (or, with ``features``, the full feature vectors) of every row, in order."""
    tail.eval()
    out = []
    for start in range(0, len(rows.ids), batch_size):
        x, early = inputs.batch(rows, np.arange(start, min(start + batch_size, len(rows.ids))))
        x, early = x.to(device), None if early is None else early.to(device)
        y = tail.features(x, early) if features else tail(x, early)
        out.append(y.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def tune_tail(tail: Tail, inputs: Inputs, train: Rows, val: Rows, config: TailConfig, out_dir: Path,
              progress: bool = True) -> dict:
    """Train ``tail`` (resuming from ``out_dir/checkpoint.pt``), keep the epoch with the best validation
    SROCC in ``out_dir/best.pt``; returns the history (per epoch: images, training seconds, val SROCC)."""
    from tqdm import tqdm

    from ..eval.metrics import srocc

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device)
    tail.to(device)
    optimiser = torch.optim.AdamW(tail.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * int(np.ceil(len(train.ids) / config.batch_size))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 0.5 * (1 + np.cos(np.pi * min(s / steps, 1))))
    state = {"epoch": 0, "history": [], "seconds": 0.0, "images": 0, "best": -2.0}
    ckpt = out_dir / "checkpoint.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, map_location=device, weights_only=False)
        if saved["identity"] != config.identity():
            raise ValueError(f"{out_dir} holds a run of another configuration: {saved['identity']}; "
                             "choose another folder")
        tail.load_state_dict(saved["tail"])
        optimiser.load_state_dict(saved["optimiser"])
        schedule.load_state_dict(saved["schedule"])
        state = saved["state"]
    if not state["history"]:
        start_val = srocc(tail_outputs(tail, inputs, val, device=config.device), val.mos)
        state["history"].append({"epoch": 0, "images": 0, "seconds": 0.0, "val_srocc": start_val})
        state["best"] = start_val if np.isfinite(start_val) else -2.0   # a constant start ranks nothing
        torch.save(tail.state_dict(), out_dir / "best.pt")
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if config.minutes is not None and state["seconds"] >= 60 * config.minutes:
            break
        tail.train()
        order = np.random.default_rng(config.seed + epoch).permutation(len(train.ids))
        t0, losses = time.perf_counter(), []
        with tqdm(total=len(order), desc=f"epoch {epoch}/{config.epochs}", unit="img",
                  disable=not progress or None) as bar:
            for start in range(0, len(order), config.batch_size):
                index = np.sort(order[start:start + config.batch_size])
                x, early = inputs.batch(train, index)
                x, early = x.to(device), None if early is None else early.to(device)
                y = torch.from_numpy(train.mos[index]).to(device)
                loss = torch.nn.functional.mse_loss(tail(x, early), y)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(float(loss) * len(index))
                state["images"] += len(index)
                bar.update(len(index))
                if config.minutes is not None and state["seconds"] + time.perf_counter() - t0 >= 60 * config.minutes:
                    break
        state["seconds"] += time.perf_counter() - t0
        val_srocc = srocc(tail_outputs(tail, inputs, val, device=config.device), val.mos)
        state["history"].append({"epoch": epoch, "images": state["images"], "seconds": round(state["seconds"], 1),
                                 "train_mse": sum(losses) / max(1, state["images"] - state["history"][-1]["images"]),
                                 "val_srocc": val_srocc})
        if val_srocc > state["best"]:
            state["best"] = val_srocc
            torch.save(tail.state_dict(), out_dir / "best.pt")
        state["epoch"] = epoch
        torch.save({"identity": config.identity(), "tail": tail.state_dict(), "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(), "state": state}, ckpt)
    tail.load_state_dict(torch.load(out_dir / "best.pt", map_location=device))
    return {"history": state["history"], "seconds": state["seconds"], "images": state["images"],
            "images_per_s": state["images"] / max(state["seconds"], 1e-9), "best_val_srocc": state["best"]}


def early_width(trunk, stages, cut: str | None) -> int:
    """How many leading columns of a ``stages`` feature vector belong to the frozen stages up to ``cut``."""
    early = [] if cut is None else [s for s in stage_names(stages) if STAGES.index(s) <= STAGES.index(cut)]
    return len(stage_columns(trunk, early)) if early else 0


def tune_trunk(built, parts: dict, heads, config: TailConfig, stages, backbone: str, out_dir: Path,
               progress: bool = True, feature_parts=None) -> tuple[dict, dict, Tail]:
    """Fine-tune the stages after ``config.cut`` of ``built.model.trunk`` (a PooledStats) on the BIQ2021
    training photos' human MOS (the skin views' KADID labels are means over natural images, not ratings:
    they fit the heads, they do not move the trunk), starting from the ridge ``heads``; write the tuned
    stages into the trunk. Returns (the tuning log, ``{part: {dataset: tuned features}}`` for every part
    the caller loaded, or those of ``feature_parts``), so the heads are refitted on what the tuned trunk
    computes, and the tuned ``Tail`` (whose linear head is the score the tuning optimised)."""
    trunk = built.model.trunk
    n_early = early_width(trunk, stages, config.cut)
    cache_of: dict[str, FeatureCache | None] = {}
    if config.cut is not None:   # one cache per data set, holding every part's images
        for name in dict.fromkeys(name for by_name in parts.values() for name in by_name):
            paths = [Path(r.image) for by_name in parts.values() if name in by_name for r in by_name[name].records]
            if paths:
                cache_of[name] = cached_activations(paths, trunk, config.cut, built.contract, built.weights,
                                                    backbone, progress=progress, desc=f"{config.cut} {name}")
    rows = {(p, name): rows_for(part.records, part.features[:, :n_early] if config.cut else None)
            for p, by_name in parts.items() for name, part in by_name.items()}
    tail = Tail(trunk, config.cut, stages, heads.mean, heads.scale)
    with torch.no_grad():
        tail.head.weight.copy_(torch.as_tensor(heads.weight[:1], dtype=torch.float32))
        tail.head.bias.copy_(torch.as_tensor(heads.bias[:1], dtype=torch.float32))
    biq = Inputs(cache_of.get("biq2021"), built.contract, keep_crops=True)   # read every epoch
    trainable = sum(param.numel() for param in tail.parameters() if param.requires_grad)
    log = tune_tail(tail, biq, rows[("train", "biq2021")], rows[("val", "biq2021")], config, out_dir, progress)
    tail.cpu().eval()
    for i, block in enumerate(tail.blocks, start=tail.first):
        trunk.blocks[i] = block
    if config.cut is None:
        trunk.conv_stem, trunk.bn1 = tail.stem[0], tail.stem[1]
    for param in trunk.parameters():
        param.requires_grad_(False)
    inputs_of = {name: biq if name == "biq2021" else Inputs(cache_of.get(name), built.contract)
                 for by_name in parts.values() for name in by_name}   # the training crops are not decoded again
    tuned = {p: {name: tail_outputs(tail, inputs_of[name], rows[(p, name)], features=True) for name in by_name}
             for p, by_name in parts.items() if feature_parts is None or p in feature_parts}
    log["tuned_modules"] = tuned_module_names(config.cut)
    log["trainable_parameters"] = trainable
    return log, tuned, tail


def tuned_module_names(cut: str | None) -> list[str]:
    """The trunk's submodules a tuning from ``cut`` changes: what a run folder must store besides its heads."""
    first = 0 if cut is None else STAGES.index(cut) + 1
    return (["conv_stem", "bn1"] if cut is None else []) + [f"blocks.{i}" for i in range(first, 7)]
