"""Ablation runner: variants of one recipe on the same seeded splits, one table.

Why a runner and not a notebook: a lever (resolution, loss, backbone, extra
data, epochs) only counts when it is measured on exactly the splits and
budget of the baseline, and when its cost on the phone is in the same row.
Each variant is a small change to the base experiment; every row is trained
with ``run_experiment`` (so it resumes like any run), tested on the held-out
part, and, with ``--int8``, exported to full-integer TFLite and scored again
with the SDK, with its on-device latency and size. Evaluation-only levers
(crop rule at test time) reuse the baseline's weights.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.splits import run_split_part
from ..eval.report import markdown_table
from ..fileio import atomic_write_text
from ..training.experiments import ExperimentConfig, run_experiment, run_label


@dataclass(frozen=True)
class Variant:
    description: str
    change: Callable[[ExperimentConfig], ExperimentConfig]


def _train(**changes):
    return lambda c: dataclasses.replace(c, train=dataclasses.replace(c.train, **changes))


def _with_datasets(*extra):
    return lambda c: dataclasses.replace(c, datasets=c.datasets + [d for d in extra if d not in c.datasets])


def _epochs_times(k: int):
    return lambda c: dataclasses.replace(c, train=dataclasses.replace(c.train, epochs=c.train.epochs * k))


VARIANTS: dict[str, Variant] = {
    "baseline": Variant("paper recipe: Lite0, backbone's input size, weighted MSE", lambda c: c),
    "rank-loss": Variant("weighted MSE + pairwise fidelity ranking term (weight 1)", _train(rank_loss_weight=1.0)),
    "res320": Variant("input 320 px", _train(input_size=320)),
    "res384": Variant("input 384 px", _train(input_size=384)),
    "res512": Variant("input 512 px (BIQ2021's native size)", _train(input_size=512)),
    "lite1": Variant("EfficientNet-Lite1 at its 240 px", _train(backbone="efficientnet_lite1")),
    "lite2": Variant("EfficientNet-Lite2 at its 260 px", _train(backbone="efficientnet_lite2")),
    "plus-derm": Variant("adds the dermatology set (pseudo-MOS) to training", _with_datasets("derm")),
    "derm-affine": Variant("plus-derm with per-dataset affine MOS alignment instead of [1, 10] rescaling",
                           lambda c: _train(align="affine")(_with_datasets("derm")(c))),
    "derm-reasons": Variant("plus-derm with the reasons head (loss weight 1)",
                            lambda c: _train(reason_loss_weight=1.0)(_with_datasets("derm")(c))),
    "derm-affine-reasons": Variant("plus-derm with affine alignment and the reasons head",
                                   lambda c: _train(align="affine", reason_loss_weight=1.0)(_with_datasets("derm")(c))),
    "plus-synth": Variant("adds 1,600 synthetic distorted views of its own training photos (paper recipe, "
                          "pseudo-MOS anchored on the source's human MOS), as many images as plus-derm adds",
                          lambda c: dataclasses.replace(c, synthetic_views=1600)),
    "epochs-x2": Variant("twice the epochs", _epochs_times(2)),
    "nchw": Variant("CPU speed reference: contiguous NCHW instead of channels_last", _train(channels_last=False)),
    "dither": Variant("augmentation: uniform noise of up to 2 grey levels, amplitude drawn per image",
                      _train(dither=2.0)),
    "res384-dither": Variant("res384 with the dither augmentation", _train(input_size=384, dither=2.0)),
    "consistency": Variant("adds 100 x the mean squared score change under +-1-level noise to the loss",
                           _train(consistency_weight=100.0)),
    "consistency-10": Variant("the consistency term at weight 10", _train(consistency_weight=10.0)),
    "res384-consistency": Variant("res384 with the consistency term at weight 10",
                                  _train(input_size=384, consistency_weight=10.0)),
}
# Test-time levers: the baseline's weights, another way of looking at the image.
EVAL_MODES = {
    "full-image": "whole image, shorter side to S, no crop (fully convolutional, global pooling)",
    "five-crop": "mean of 5 S x S crops (corners + centre) of the image resized to 1.5 S",
}


def _held_out_name(config: ExperimentConfig) -> str:
    return config.datasets[0]


def _run_dir(out: Path, config: ExperimentConfig) -> Path:
    return out / run_label(config.datasets, config.datasets) / f"split{config.splits[0]}"


def _test_records(config: ExperimentConfig, name: str):
    from ..data.registry import load_dataset
    from ..data.records import seeded_subsample
    from ..training.experiments import split_with_holdout

    data = load_dataset(name, config.dataset_dirs[name])
    split = split_with_holdout(data, config.splits[0], config.split_seed, config.trainval_holdout)
    return seeded_subsample(split.select(data.records, "test"), config.max_eval_images, config.splits[0])


def _srocc_plcc(pred, mos) -> dict:
    from ..eval.metrics import plcc, srocc

    return {"srocc": srocc(pred, mos), "plcc": plcc(pred, mos)}


def model_mmacs(model, size: int) -> float:
    """Multiply-accumulates per image, in millions (torch's FLOP counter counts a MAC as 2 FLOPs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.eval()(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 2 / 1e6


def int8_figures(run_dir: Path, records, out_dir: Path, num_calibration: int, latency_runs: int = 30) -> dict:
    """Export the run to full-integer TFLite and score the held-out images with the SDK's runtime."""
    from ..export.onnx_target import export_onnx
    from ..export.parity import ParityImages, artefact_scores
    from ..export.tflite_target import export_tflite
    from ..models.load import load_trained
    from ..sdk.preprocess import preprocess_rgb

    trained = load_trained(run_dir)
    calib = ParityImages.from_records(run_split_part(trained.card, "val"), num_calibration, 1)
    onnx = export_onnx(trained, out_dir)
    arts = {a.precision: a for a in export_tflite(trained, onnx.path, ["fp32", "int8"], out_dir, calib.paths)}
    images = ParityImages.from_records(records, len(records))
    figures, scores = {}, {}
    for precision, art in arts.items():
        scores[precision] = artefact_scores(art.path, images, trained.contract)
        figures[precision] = _srocc_plcc(scores[precision], images.mos)
    x = preprocess_rgb(images.decoded(trained.contract)[0], trained.contract, layout="NHWC")
    return {"fp32_tflite": figures["fp32"], "int8": figures["int8"],
            "int8_vs_fp32": _agreement(scores["int8"], scores["fp32"]),
            "int8_latency_ms": int8_latency(arts["int8"].path, x, latency_runs), "int8_size_mb": arts["int8"].size_mb,
            "latency_image": str(images.paths[0])}


def _agreement(a: np.ndarray, b: np.ndarray) -> dict:
    from ..eval.metrics import srocc

    d = np.abs(np.asarray(a) - np.asarray(b))
    return {"srocc": srocc(a, b), "max_abs": float(d.max()), "mean_abs": float(d.mean())}


def int8_agreement(run_dir: Path, records, contract) -> dict:
    """int8 against fp32 TFLite scores on the held-out images, from the files a finished row exported
    (rows exported before this figure existed get it on a re-run, without exporting again)."""
    from ..export.parity import ParityImages, artefact_scores

    images = ParityImages.from_records(records, len(records))
    files = {p: next((run_dir / "export").glob(f"*_tflite_{p}.tflite")) for p in ("fp32", "int8")}
    return _agreement(*(artefact_scores(files[p], images, contract) for p in ("int8", "fp32")))


def int8_latency(path: Path, x: np.ndarray | None = None, runs: int = 30, threads: int = 2) -> float:
    """Median inference ms of the TFLite file (5 warm-up runs); on a zero-valued input when none is given."""
    from ..sdk.runtimes import load_runtime

    from ..bench import measure

    runtime = load_runtime(path, threads=threads)
    if x is None:
        size = runtime.input_size
        x = np.zeros((1, size, size, 3), np.float32)
    return measure(lambda: runtime.run(x), runs)["median_ms"]


def noise_sensitivity(model, records, contract, n: int = 200, levels: float = 0.5, seed: int = 0) -> dict:
    """Mean and max |score change| when uniform noise of +-``levels`` grey levels is added to the crop.

    Why a column: noise this small is invisible and below the 8-bit step, yet it is what a different
    JPEG decoder, a box instead of a bilinear downscale, or an int8 input step changes. A model whose
    score moves with it cannot meet a drift bound of 0.02 (issue 10), whatever the phone's decoder."""
    import torch

    from ..sdk.decode import decode_image
    from ..sdk.preprocess import normalise, resize_and_crop, to_layout

    rng = np.random.default_rng(seed)
    deltas = []
    model.eval()
    with torch.inference_mode():
        for r in records[:n]:
            crop = resize_and_crop(decode_image(r.image, contract), contract).astype(np.float32)
            noisy = np.clip(crop + rng.uniform(-levels, levels, crop.shape).astype(np.float32), 0, 255)
            x = torch.from_numpy(np.concatenate([to_layout(normalise(v, contract), "NCHW") for v in (crop, noisy)]))
            out = model(x)[:, 0]
            deltas.append(float((out[1] - out[0]).abs()))
    d = np.array(deltas)
    return {"mean": float(d.mean()), "max": float(d.max()), "n": len(d), "levels": levels}


def eval_mode_scores(model, records, contract, mode: str) -> np.ndarray:
    """Scores under a test-time crop rule other than the contract's center crop."""
    import torch

    from ..sdk.decode import decode_image
    from ..sdk.preprocess import normalise, resize_shorter_side, to_layout

    s = contract.input_size
    out = []
    with torch.inference_mode():
        for r in records:
            rgb = decode_image(r.image, contract)
            if mode == "full-image":
                views = [resize_shorter_side(rgb, s)]
            elif mode == "five-crop":
                big = resize_shorter_side(rgb, int(round(1.5 * s)))
                h, w = big.shape[:2]
                corners = [(0, 0), (0, w - s), (h - s, 0), (h - s, w - s), ((h - s) // 2, (w - s) // 2)]
                views = [big[t:t + s, l:l + s] for t, l in corners]
            else:
                raise ValueError(f"unknown evaluation mode {mode!r}; known: {', '.join(EVAL_MODES)}")
            x = torch.from_numpy(np.concatenate([to_layout(normalise(v, contract), "NCHW") for v in views]))
            out.append(float(model(x)[:, 0].mean()))   # column 0: the score (reasons follow)
    return np.array(out)


def _trained_row(name: str, config: ExperimentConfig, card: dict, held_out: str) -> dict:
    """A finished variant's row from its run card: training cost, validation and held-out figures."""
    best = next(h for h in card["history"] if h["epoch"] == card["best_epoch"])
    test = card["test_metrics"][held_out]
    row = {"variant": name, "description": VARIANTS[name].description, "status": "done",
           "backbone": config.train.backbone, "input_size": card["contract"]["input_size"],
           "train_images": card["n_train"], "epochs": card["epochs_run"],
           "train_s": card["train_seconds"],
           "images_per_s": float(np.mean([h["images_per_s"] for h in card["history"]])),
           "val_srocc": best["val_srocc"], "val_plcc": best["val_plcc"],
           "held_out_srocc": test["srocc"], "held_out_plcc": test["plcc"], "held_out_n": test["n"],
           "other_tests": {k: {"srocc": v["srocc"], "plcc": v["plcc"], "n": v["n"]}
                           for k, v in card["test_metrics"].items() if k != held_out}}
    aucs = [v["auc"] for m in card["test_metrics"].values() for v in m.get("reason_auc", {}).values()
            if v["auc"] is not None]
    if aucs:
        row["reason_auc_mean"] = float(np.mean(aucs))
    return row


def _int8_columns(run_dir: Path, test_records: Callable[[], list], contract, num_calibration: int,
                  retime: bool) -> dict:
    """The int8 export's accuracy, agreement with fp32, latency and size (each measured once, kept in
    ``int8.json``; ``retime`` measures the latency again)."""
    from ..cachedir import json_once

    figures_path = run_dir / "int8.json"
    figures = json_once(figures_path, lambda: int8_figures(run_dir, test_records(), run_dir / "export",
                                                           num_calibration))
    int8_file = next((run_dir / "export").glob("*_tflite_int8.tflite"), None)
    if "int8_vs_fp32" not in figures and int8_file is not None:
        figures["int8_vs_fp32"] = int8_agreement(run_dir, test_records(), contract)
        atomic_write_text(figures_path, json.dumps(figures, indent=1) + "\n")
    if retime and int8_file is not None:
        figures["int8_latency_ms"] = int8_latency(int8_file)
        atomic_write_text(figures_path, json.dumps(figures, indent=1) + "\n")
    agree = figures.get("int8_vs_fp32", {})
    return {"int8_vs_fp32_srocc": agree.get("srocc"), "int8_vs_fp32_max_abs": agree.get("max_abs"),
            "int8_srocc": figures["int8"]["srocc"], "fp32_tflite_srocc": figures["fp32_tflite"]["srocc"],
            "int8_latency_ms": figures["int8_latency_ms"], "int8_size_mb": figures["int8_size_mb"]}


def _finished_card(vdir: Path, run_dir: Path, config: ExperimentConfig) -> dict | None:
    """The variant's run card, training it first unless a run of the same configuration finished."""
    card_path = run_dir / "card.json"
    if card_path.exists():   # a finished variant is not trained or tested again on a re-run
        done = json.loads(card_path.read_text())["train_config"]
        if {k: done.get(k) for k in config.train.identity()} != config.train.identity():
            raise ValueError(f"{vdir} holds a run of another configuration; use a new --out")
    else:
        run_experiment(config, vdir)
    return json.loads(card_path.read_text()) if card_path.exists() else None


def run_ablation(base: ExperimentConfig, variants: list[str], out: Path, *, int8: bool = False,
                 eval_modes: list[str] = (), num_calibration: int = 100, retime: bool = False) -> list[dict]:
    """Train and measure every variant; write ablation.md / ablation.csv / ablation.json under ``out``.

    ``retime`` re-measures the int8 latency of finished variants (timings taken while other work shared
    the CPU are not worth keeping)."""
    from ..cachedir import json_once
    from ..models.network import contract_for
    from ..training.experiments import _trained_model

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    out = Path(out)
    held_out = _held_out_name(base)
    rows = []
    for name in variants:
        config = VARIANTS[name].change(base)
        vdir = out / name
        run_dir = _run_dir(vdir, config)
        card = _finished_card(vdir, run_dir, config)
        if card is None:
            rows.append({"variant": name, "description": VARIANTS[name].description, "status": "unfinished"})
            continue
        row = _trained_row(name, config, card, held_out)
        model = _trained_model(config.train, run_dir)
        contract = contract_for(config.train.backbone, config.train.input_size)
        # the held-out records, loaded at most once per row and only when a figure is missing
        test_records = functools.cache(lambda config=config: _test_records(config, held_out))
        row["mmacs"] = model_mmacs(model, row["input_size"])
        sens = json_once(run_dir / "noise_sensitivity.json", lambda: noise_sensitivity(model, test_records(), contract))
        row.update(noise_delta_mean=sens["mean"], noise_delta_max=sens["max"])
        if int8:
            row.update(_int8_columns(run_dir, test_records, contract, num_calibration, retime))
        rows.append(row)
        if name == "baseline":
            for mode in eval_modes:
                m = _eval_mode_metrics(model, test_records, contract, run_dir, mode)
                rows.append({"variant": f"baseline, test: {mode}", "description": EVAL_MODES[mode],
                             "status": "done (evaluation only)", "input_size": row["input_size"],
                             "held_out_srocc": m["srocc"], "held_out_plcc": m["plcc"],
                             "held_out_n": m["n"]})
        write_table(rows, out, base, held_out)
    return rows


def _eval_mode_metrics(model, test_records: Callable[[], list], contract, run_dir: Path, mode: str) -> dict:
    """Held-out metrics of the baseline's weights under a test-time crop rule, kept in the run folder.

    Why kept: five-crop scores 5 views of each of hundreds of images, minutes on this CPU that a re-run
    (adding one variant) should not spend again on weights that have not changed."""
    path = run_dir / "eval_modes.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    if mode not in saved:
        records = test_records()
        pred = eval_mode_scores(model, records, contract, mode)
        saved[mode] = {**_srocc_plcc(pred, np.array([r.mos for r in records])), "n": len(records)}
        atomic_write_text(path, json.dumps(saved, indent=1) + "\n")
    return saved[mode]


def _fmt(v, digits=3):
    if v is None:
        return "–"
    if isinstance(v, dict):   # other test sets
        return "; ".join(f"{k} {m['srocc']:.3f} / {m['plcc']:.3f}" if isinstance(m, dict) else f"{k} {m:.3f}"
                         for k, m in v.items()) or "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


COLUMNS = [("variant", "variant"), ("input_size", "px"), ("train_images", "train imgs"), ("epochs", "epochs"),
           ("train_s", "train s"), ("images_per_s", "img/s"), ("val_srocc", "val SROCC"),
           ("val_plcc", "val PLCC"), ("held_out_srocc", "held-out SROCC"), ("held_out_plcc", "held-out PLCC"),
           ("fp32_tflite_srocc", "TFLite fp32 SROCC"), ("int8_srocc", "int8 SROCC"),
           ("int8_vs_fp32_srocc", "int8 vs fp32 SROCC"), ("int8_vs_fp32_max_abs", "int8 vs fp32 max |Δ|"),
           ("int8_latency_ms", "int8 ms (2 thr)"), ("mmacs", "MMACs"), ("int8_size_mb", "int8 MB"),
           ("noise_delta_mean", "score Δ, ±0.5-level noise, mean"), ("noise_delta_max", "score Δ, ±0.5-level noise, max"),
           ("other_tests", "other test sets SROCC / PLCC"), ("reason_auc_mean", "mean reason AUC")]


def write_table(rows: list[dict], out: Path, base: ExperimentConfig, held_out: str) -> None:
    md = io.StringIO()
    md.write(f"Held-out: {held_out} test part (seeded split {base.splits[0]}, seed {base.split_seed}, "
             f"{base.max_eval_images or 'all'} images); train subsample {base.max_train_images or 'all'}, "
             f"base epochs {base.train.epochs}.\n\n")
    digits = {"train_s": 1, "images_per_s": 1, "mmacs": 1, "int8_latency_ms": 1, "int8_size_mb": 2}
    md.write("\n".join(markdown_table([t for _, t in COLUMNS],
                                      [[_fmt(r.get(k), digits.get(k, 3)) for k, _ in COLUMNS] for r in rows])) + "\n")
    md.write("\n" + "\n".join(f"- **{r['variant']}**: {r['description']}" for r in rows) + "\n")
    atomic_write_text(out / "ablation.md", md.getvalue())
    atomic_write_text(out / "ablation.json", json.dumps(rows, indent=1, default=str) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[k for k, _ in COLUMNS] + ["description", "status"],
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "ablation.csv", buf.getvalue())
