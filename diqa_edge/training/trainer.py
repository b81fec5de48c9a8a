"""One training run: AdamW + one-cycle, class-balanced MSE, validation PLCC every epoch, resumable.

Why the details: the paper's recipe (AdamW, weight decay 1e-5, one-cycle to
2e-4, 20 epochs, best checkpoint by validation PLCC); a run on a shared CPU or
a lent GPU can be cut off, so after every epoch the full state (weights,
optimiser, schedule, RNG states, history) is written atomically and a re-run
continues where it stopped, drawing the same batches it would have drawn.
Under ``torchrun`` the same code runs DistributedDataParallel (NCCL on GPUs,
gloo on CPU); rank 0 alone writes files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from ..data.distort import REASONS
from ..data.records import Record
from ..eval.metrics import plcc, srocc
from ..models.load import load_weights
from ..models.network import build_model
from ..fileio import atomic_write_text, written_in_place
from .alignment import ALIGN_MODES, DatasetAffine, reference_dataset
from .alignment import LR_FACTOR as AFFINE_LR_FACTOR
from .inputs import EvalImages, TrainImages
from .losses import class_weights, pairwise_rank_loss, reason_loss, sample_weights, weighted_mse

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    backbone: str = "efficientnet_lite0"
    input_size: int | None = None          # None: the backbone's own size
    pretrained: bool | str = True
    epochs: int = 20
    batch_size: int = 32
    max_lr: float = 2e-4
    weight_decay: float = 1e-5
    seed: int = 0
    rank_loss_weight: float = 0.0          # 0 = the paper's loss alone
    reason_loss_weight: float = 0.0        # > 0: add the reasons head, trained on distortion labels
    align: str = "rescale"                 # "rescale": the paper's [1, 10] rule; "affine": per-dataset maps
    dither: float = 0.0                    # > 0: add uniform noise of up to this many grey levels (see inputs.py)
    consistency_weight: float = 0.0        # > 0: penalise score changes under invisible noise (see below)
    bf16: bool = False                     # CPU: bfloat16 autocast; GPU: autocast is always on
    channels_last: bool = False
    num_workers: int = 0
    cache_dir: str | None = "cache/images"
    progress: bool = True
    # Stop cleanly after this many epochs in this invocation (a session or job time limit);
    # running again resumes. Not part of what a checkpoint must match.
    stop_after_epochs: int | None = None

    RESUME_IGNORES = ("progress", "stop_after_epochs", "num_workers", "cache_dir")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # fields added after runs were already on disk: left out of the identity at their default,
    # so those runs still resume and the ablation still reuses them
    LATER_DEFAULTS = {"reason_loss_weight": 0.0, "align": "rescale", "dither": 0.0, "consistency_weight": 0.0}

    def identity(self) -> dict:
        """The fields a resumed run must share with the checkpoint it continues."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RESUME_IGNORES
                and not (k in self.LATER_DEFAULTS and v == self.LATER_DEFAULTS[k])}


CONSISTENCY_LEVELS = 1.0   # grey levels of the uniform noise the consistency term compares against


def noise_consistency(model, x, pred, grey, bf16: bool = False):
    """Mean squared score change when uniform noise of +-1 grey level is added to the normalised batch.

    Why: a trained model moved its score by up to 1.2 under +-0.5-level noise (ablation column), which is
    below the 8-bit step and decides the drift between decoders and the int8 error. Label-preserving
    augmentation alone (``dither``) did not remove it; this term asks for it directly."""
    noise = (torch.rand_like(x) * 2 - 1) * (CONSISTENCY_LEVELS / grey)
    with _autocast(x.device, bf16):
        noisy, _ = model(x + noise, training_outputs=True)
    return ((noisy.view(-1) - pred) ** 2).mean()


@dataclass
class TrainResult:
    out_dir: Path
    best_epoch: int
    best_val_plcc: float
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    weights: str = ""
    finished: bool = True
    alignment: dict = field(default_factory=dict)   # per-dataset affine maps, when align == "affine"


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def setup_distributed() -> tuple[int, int]:
    """Join the process group torchrun describes in the environment; (rank, world)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    d = _dist()
    return (d.get_rank(), d.get_world_size()) if d else (0, 1)


def _device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def _save_atomic(obj, path: Path) -> None:
    with written_in_place(path) as tmp:
        torch.save(obj, tmp)


def save_weights(model: torch.nn.Module, path: Path, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in _unwrap(model).state_dict().items()}
    with written_in_place(path) as tmp:
        save_file(state, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _autocast(device: torch.device, bf16: bool):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if bf16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.inference_mode()
def predict(model, records: list[Record], contract, *, batch_size=64, cache_dir=None,
            channels_last=False, bf16=False, progress=False, desc="predict",
            all_outputs=False) -> np.ndarray:
    """Scores (N,), or with ``all_outputs`` every output column (N, 1 + reasons)."""
    from tqdm import tqdm

    device = next(model.parameters()).device
    model.eval()
    loader = DataLoader(EvalImages(records, contract, cache_dir), batch_size=batch_size, shuffle=False)
    out = []
    for x, _ in tqdm(loader, desc=desc, unit="batch", disable=not progress or None, leave=False):
        x = x.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, bf16):
            out.append(model(x).float().reshape(len(x), -1).cpu())
    outputs = torch.cat(out).numpy() if out else np.zeros((0, 1))
    return outputs if all_outputs else outputs[:, 0]


def validation_by_dataset(pred: np.ndarray, records: list[Record]) -> dict[str, dict]:
    """PLCC / SROCC per dataset of the validation set. Why not pooled: datasets rate on different scales
    (and with ``align="affine"`` the model learns one latent scale), so a pooled correlation rewards
    matching the scales, not ranking photos; the best epoch is the one with the best mean over datasets."""
    out = {}
    for name in dict.fromkeys(r.dataset for r in records):
        idx = [i for i, r in enumerate(records) if r.dataset == name]
        p, m = pred[idx], np.array([records[i].mos for i in idx])
        if len(m) >= 3 and np.std(m) > 0 and np.std(p) > 0:
            out[name] = {"plcc": plcc(p, m), "srocc": srocc(p, m), "n": len(m)}
    return out


def _mean_or_nan(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


@dataclass
class _Run:
    """What one training run carries from epoch to epoch."""
    built: object                  # models.network.BuiltModel
    model: torch.nn.Module
    contract: object
    affine: DatasetAffine | None
    dataset: TrainImages
    per_rank_batch: int
    optimizer: torch.optim.Optimizer
    scheduler: object


def _build_run(train_records: list[Record], config: TrainConfig, device: torch.device, world: int) -> _Run:
    """Model (output bias at the mean MOS), per-dataset alignment, weighted images, AdamW + one-cycle."""
    built = build_model(config.backbone, pretrained=config.pretrained, input_size=config.input_size,
                        reasons=REASONS if config.reason_loss_weight > 0 else ())
    model = built.model
    train_mos = np.array([r.mos for r in train_records])
    model.set_output_bias(float(train_mos.mean()))
    model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    datasets = list(dict.fromkeys(r.dataset for r in train_records))
    affine = None
    if config.align == "affine":
        pseudo = {r.dataset: r.pseudo for r in train_records}
        affine = DatasetAffine(datasets, reference_dataset(datasets, pseudo)).to(device)
    dataset = TrainImages(train_records, built.contract, sample_weights(train_mos, class_weights(train_mos)),
                          config.seed, config.cache_dir, datasets=datasets, dither=config.dither)
    per_rank_batch = max(1, config.batch_size // world)
    steps_per_epoch = math.ceil(len(dataset) / world / per_rank_batch)
    groups, max_lrs = [{"params": list(model.parameters())}], [config.max_lr]
    if affine is not None:
        groups.append({"params": list(affine.parameters()), "weight_decay": 0.0})
        max_lrs.append(config.max_lr * AFFINE_LR_FACTOR)
    optimizer = torch.optim.AdamW(groups, lr=config.max_lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lrs,
                                                    total_steps=max(1, steps_per_epoch * config.epochs))
    return _Run(built, model, built.contract, affine, dataset, per_rank_batch, optimizer, scheduler)


def _resume(ckpt_path: Path, config: TrainConfig, run: _Run) -> tuple[int, list, dict]:
    """(first epoch, history, best) from ``last.pt`` when the same configuration wrote it."""
    if not ckpt_path.exists():
        return 0, [], {"plcc": -math.inf, "epoch": -1}
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    if state["config"] != config.identity():
        raise ValueError(f"{ckpt_path} was written by another configuration; use a new --out "
                         "or delete it to start over")
    run.model.load_state_dict(state["model"])
    if run.affine is not None:
        run.affine.load_state_dict(state["affine"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return state["epoch"] + 1, state["history"], state["best"]


def _batch_loss(run: _Run, train_model, batch, config: TrainConfig, device: torch.device, grey) -> tuple:
    """(loss, number of images) of one batch: weighted MSE after alignment, plus the optional terms."""
    x, y, w, reasons, known, where = batch
    x, y, w = x.to(device), y.to(device), w.to(device)
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(device, config.bf16):
        score, logits = train_model(x, training_outputs=True)
    pred = score.view(-1)
    fitted = run.affine(pred, where.to(device)) if run.affine is not None else pred
    loss = weighted_mse(fitted, y, w)
    if config.rank_loss_weight:
        loss = loss + config.rank_loss_weight * pairwise_rank_loss(pred, y)
    if logits is not None:
        loss = loss + config.reason_loss_weight * reason_loss(logits, reasons.to(device), known.to(device))
    if config.consistency_weight:
        loss = loss + config.consistency_weight * noise_consistency(train_model, x, pred, grey, config.bf16)
    return loss, len(y)


def _train_epoch(run: _Run, train_model, config: TrainConfig, epoch: int, rank: int, world: int,
                 device: torch.device) -> tuple[int, float, float]:
    """One pass over this rank's share of the images: (images seen, summed loss, seconds)."""
    from tqdm import tqdm

    run.dataset.epoch = epoch
    order = _epoch_order(len(run.dataset), config.seed, epoch)[rank::world]
    loader = DataLoader(Subset(run.dataset, order), batch_size=run.per_rank_batch, shuffle=False,
                        num_workers=config.num_workers, drop_last=False, persistent_workers=False)
    train_model.train()
    grey = torch.tensor(run.contract.std, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255
    seen, loss_sum, t0 = 0, 0.0, time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
               disable=(not config.progress or rank != 0) or None)
    for batch in bar:
        if len(batch[1]) < 2:
            continue  # batch norm cannot train on one image; a lone last image waits for the next epoch
        loss, n = _batch_loss(run, train_model, batch, config, device, grey)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        seen += n
        loss_sum += float(loss.detach()) * n
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", img_s=f"{seen * world / (time.perf_counter() - t0):.1f}")
    return seen, loss_sum, time.perf_counter() - t0


def _epoch_entry(run: _Run, val_records: list[Record], config: TrainConfig, epoch: int, seen: int,
                 loss_sum: float, seconds: float, world: int) -> dict:
    """The epoch's line of the history: training loss, validation PLCC / SROCC per dataset and mean."""
    val_pred = predict(run.model, val_records, run.contract, cache_dir=config.cache_dir,
                       channels_last=config.channels_last, bf16=config.bf16)
    by_dataset = validation_by_dataset(val_pred, val_records)
    return {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1),
            "val_plcc": _mean_or_nan([m["plcc"] for m in by_dataset.values()]),
            "val_srocc": _mean_or_nan([m["srocc"] for m in by_dataset.values()]),
            "val_by_dataset": by_dataset,
            "lr": run.scheduler.get_last_lr()[0], "images_per_s": seen * world / seconds,
            "seconds": seconds}


def _checkpoint(run: _Run, entry: dict, best: dict, history: list, config: TrainConfig, out_dir: Path) -> dict:
    """Best weights when validation improved (the latest epoch without a usable validation set), and the
    resumable ``last.pt`` every epoch; returns the best so far."""
    epoch = entry["epoch"] - 1
    if not math.isfinite(entry["val_plcc"]) or entry["val_plcc"] > best["plcc"]:
        best = {"plcc": entry["val_plcc"], "epoch": epoch + 1,
                "alignment": run.affine.to_dict() if run.affine is not None else {}}
        save_weights(run.model, out_dir / "best.safetensors", {"epoch": epoch + 1})
    _save_atomic({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                  "affine": run.affine.state_dict() if run.affine is not None else None,
                  "scheduler": run.scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                  "epoch": epoch, "history": history, "best": best,
                  "config": config.identity()}, out_dir / "last.pt")
    if config.progress:
        log.info(f"epoch {epoch + 1}: loss {entry['train_loss']:.3f}  val PLCC {entry['val_plcc']:.3f}  "
                 f"SROCC {entry['val_srocc']:.3f}  {entry['images_per_s']:.1f} img/s")
    return best


def train(train_records: list[Record], val_records: list[Record], config: TrainConfig,
          out_dir: str | Path) -> TrainResult:
    rank, world = setup_distributed()
    out_dir = Path(out_dir)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    _seed_everything(config.seed)
    device = _device()
    if config.align not in ALIGN_MODES:
        raise ValueError(f"unknown alignment {config.align!r}; choose from {', '.join(ALIGN_MODES)}")
    run = _build_run(train_records, config, device, world)
    start_epoch, history, best = _resume(out_dir / "last.pt", config, run)
    train_model = run.model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[device.index] if device.type == "cuda" else None)
    last_epoch = config.epochs
    if config.stop_after_epochs is not None:
        last_epoch = min(config.epochs, start_epoch + config.stop_after_epochs)
    for epoch in range(start_epoch, last_epoch):
        seen, loss_sum, seconds = _train_epoch(run, train_model, config, epoch, rank, world, device)
        history.append(_epoch_entry(run, val_records, config, epoch, seen, loss_sum, seconds, world))
        if rank == 0:
            best = _checkpoint(run, history[-1], best, history, config, out_dir)
        if _dist():
            _dist().barrier()
    finished = len(history) >= config.epochs
    if rank == 0 and finished:
        atomic_write_text(out_dir / "history.json", json.dumps(history, indent=1) + "\n")
        from .plots import training_curves
        training_curves(history, out_dir / "curves.png")
    if (out_dir / "best.safetensors").exists():
        load_weights(run.model, out_dir / "best.safetensors")
    return TrainResult(out_dir, best["epoch"], best["plcc"], history,
                       sum(h["seconds"] for h in history), run.built.weights, finished,
                       alignment=best.get("alignment", {}))   # the maps that went with the best weights
