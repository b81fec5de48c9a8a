"""``diqa-edge train``: one model, a set of splits, or the paper's whole grid (``--grid``).

Runs under ``torchrun --nproc_per_node=N -m diqa_edge.training ...`` for
DistributedDataParallel (NCCL on GPUs, gloo on CPU) with the same arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cachedir import data_root
from ..contract import DEFAULT_CONTRACT
from ..errors import DiqaError, UsageError
from ..eval.gate import RULE_MARGINS
from ..models.load import card_rule

BACKBONE_CHOICES = ("efficientnet_b0", "efficientnet_b3", "efficientnet_b5",
                    "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
DATASET_NAMES = ("koniq", "kadid", "spaq", "gfiqa", "biq2021", "livec", "derm", "phone")


def parse_splits(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,2' -> [0, 2]."""
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out += list(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    if not out or any(i < 0 for i in out):
        raise argparse.ArgumentTypeError(f"bad split list {text!r}")
    return out


# what --settings-from reads from a card: given beside it, one of these would be silently ignored
RECIPE_OPTIONS = ("datasets", "backbone", "input_size", "stages", "ridge_skin_weight", "score_head", "score_rank",
                  "tune", "tune_epochs", "tune_lr", "tune_minutes", "splits", "split_seed", "holdout")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Four groups, so `--help` reads as data, model, schedule, then where it runs and writes."""
    _data_arguments(parser.add_argument_group("data: which sets, which splits"))
    _model_arguments(parser.add_argument_group("model"))
    _schedule_arguments(parser.add_argument_group("fine-tuning schedule and loss"))
    _run_arguments(parser.add_argument_group("speed, caches and output"))
    parser.set_defaults(recipe_defaults={d: parser.get_default(d) for d in RECIPE_OPTIONS})


def _data_arguments(parser) -> None:
    parser.add_argument("--datasets", default=None,
                        help="comma-separated: " + ", ".join(DATASET_NAMES) +
                             " (livec is test only; biq2021 is never trained on its official test split); "
                             "required except with --from-run, which reads the run's own")
    parser.add_argument("--data-root", type=Path, default=data_root(),
                        help="folder holding the datasets in their published layouts (default: $DIQA_EDGE_DATA, "
                             "else ../shared/data)")
    parser.add_argument("--dataset-dir", action="append", default=[], metavar="NAME=PATH", type=dataset_dir_item,
                        help="where one dataset lives (repeatable), e.g. derm=cache/derm")
    parser.add_argument("--holdout", type=float, default=0.2,
                        help="share of a train/val-only set (biq2021) held out as its test part (default 0.2)")
    parser.add_argument("--splits", type=parse_splits, default=[0], help="split indices, e.g. 0-4 (default 0)")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--grid", action="store_true",
                        help="the paper's grid: each dataset alone and all together, tested on every test set")
    parser.add_argument("--max-train-images", type=int, default=None, help="seeded subsample for quick runs")
    parser.add_argument("--max-eval-images", type=int, default=None, help="seeded subsample of val/test sets")
    parser.add_argument("--synthetic-views", type=int, default=0, metavar="N",
                        help="add N distorted views of the first dataset's training photos to training "
                             "(pseudo-MOS = 1 + (source MOS - 1) x SSIM; never made from val/test photos)")
    parser.add_argument("--synthetic-recipe", choices=("paper", "extended"), default="paper",
                        help="distortions the synthetic views are drawn from (default: paper)")


def _model_arguments(parser) -> None:
    parser.add_argument("--model", choices=("finetune", "pooled-stats"), default="finetune",
                        help="finetune: the paper's fine-tuned backbone + 2-layer head (SGD, epochs); "
                             "pooled-stats: the backbone frozen, mean and std of each stage's activations, an "
                             "SVR score head and logistic reasons heads fitted in minutes on cached features "
                             f"(skin gate chosen on skin views; default input {DEFAULT_CONTRACT.input_size} px)")
    parser.add_argument("--stages", default="block0,block1,block2,block3,block4,block5,block6",
                        help="pooled-stats: stages whose statistics are used, from block0..block6 and head "
                             "(default block0-block6: without the 1,280-channel head conv, which measured 0.007 "
                             "lower held-out SROCC; 'all' adds it)")
    parser.add_argument("--ridge-skin-weight", type=float, default=0.05,
                        help="pooled-stats --score-head ridge only: weight of one skin view relative to one "
                             "BIQ2021 photo in the ridge (default 0.05: 8,280 skin views then weigh as 414 photos; "
                             "weight 1 cost 0.08 BIQ2021 SROCC); the SVR head samples its own skin views")
    parser.add_argument("--skin-weight", type=float, dest="ridge_skin_weight", help=argparse.SUPPRESS)  # old name
    parser.add_argument("--score-head", choices=("svr", "ridge"), default="svr",
                        help="pooled-stats: the score head: svr (an RBF support-vector regression on the BIQ2021 "
                             "training photos and 800 skin views; held-out BIQ2021 SROCC 0.81 against the "
                             "ridge's 0.79; default) or ridge (linear, on BIQ2021 and the skin views at --ridge-skin-weight)")
    parser.add_argument("--score-rank", type=int, default=None,
                        help="pooled-stats svr: keep the support vectors in their RANK leading singular directions "
                             "(the phone file's score head shrinks from 22 MB to (centres + 1,568) x RANK x 4 bytes; "
                             "rows per rank: benchmarks/small_head_rows.py; default: the full matrix)")
    parser.add_argument("--settings-from", type=Path, default=None, metavar="RUN",
                        help="pooled-stats: train with every setting of the run folder RUN's card (its data sets, "
                             "backbone, stages, heads, split), reading the data from this machine's folders (the "
                             "defaults, or --dataset-dir); no other recipe option may be given with it. "
                             "`--settings-from diqa_edge/models/run` retrains the shipped model's recipe")
    parser.add_argument("--statistics-from", default=None, metavar="FILE.tflite",
                        help="pooled-stats: fit the heads and choose the rule on the statistics an exported "
                             "int8-trunk file computes (read from the file itself) instead of the float trunk's: "
                             "the numbers the phone's heads will read. Default: the float trunk's, or with "
                             "--settings-from the card's own choice")
    parser.add_argument("--rule-margin", choices=RULE_MARGINS, default=None,
                        help="pooled-stats: hold the rule's pristine margin (0.97 of calibration photos kept) "
                             "over all skin photos ('pooled', the default) or for dermoscopy and phone photos "
                             "each ('per-domain'); with --settings-from, the card's own unless given")
    parser.add_argument("--from-run", type=Path, default=None, metavar="RUN",
                        help="pooled-stats with --score-rank: reduce the score head of the trained run folder RUN "
                             "instead of training (its retake rule kept; test figures measured again from the "
                             "cached features); how the bundled model's head was made")
    parser.add_argument("--tune", choices=("frozen", "block3", "block4", "block5", "pixels"), default="frozen",
                        help="pooled-stats: fine-tune the trunk on BIQ2021's human MOS before the heads are fitted: "
                             "'frozen' (no tuning; default), a cut (the stages after it train from an activation "
                             "cache under the cache root: block5 = the last stage, block4 = the last two), or "
                             "'pixels' (every stage, from the images: full fine-tuning, the GPU recipe)")
    parser.add_argument("--tune-epochs", type=int, default=10, help="pooled-stats --tune: epochs (default 10)")
    parser.add_argument("--tune-lr", type=float, default=1e-4,
                        help="pooled-stats --tune: AdamW learning rate, cosine to zero (default 1e-4)")
    parser.add_argument("--tune-minutes", type=float, default=None,
                        help="pooled-stats --tune: stop after this much training time (re-run to resume)")
    parser.add_argument("--device", default="cpu", help="pooled-stats --tune: torch device, e.g. cuda (default cpu)")
    parser.add_argument("--backbone", choices=BACKBONE_CHOICES, default="efficientnet_lite0",
                        help="timm backbone (default efficientnet_lite0; Lite0/1/2 start from packaged "
                             "ImageNet weights, B0/B3/B5 from random init unless --pretrained PATH)")
    parser.add_argument("--pretrained", default="auto",
                        help="'auto' (packaged ImageNet weights where they exist), 'none', or a checkpoint path")
    parser.add_argument("--input-size", type=int, default=None, help="override the backbone's input size")
    parser.add_argument("--reasons", type=float, default=0.0, metavar="WEIGHT",
                        help="add the reasons head (blur, dark, bright, contrast, noise, jpeg, colour), trained "
                             "with this loss weight on images whose distortion is known (0 = score only)")
    parser.add_argument("--align", choices=("rescale", "affine"), default="rescale",
                        help="MOS alignment across datasets: 'rescale' = the paper's linear map of each "
                             "declared range to [1, 10]; 'affine' = one learnable scale + shift per "
                             "training dataset onto the first human-rated one's scale")


def _schedule_arguments(parser) -> None:
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4, help="one-cycle maximum learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rank-loss", type=float, default=0.0,
                        help="weight of a pairwise fidelity ranking term added to the weighted MSE")
    parser.add_argument("--dither", type=float, default=0.0, metavar="LEVELS",
                        help="augmentation: add uniform noise of up to LEVELS grey levels (amplitude drawn per "
                             "image from [0, LEVELS]) so the score does not hang on invisible rounding "
                             "differences between decoders and int8 steps (0 = off, the paper's recipe)")
    parser.add_argument("--consistency", type=float, default=0.0, metavar="WEIGHT",
                        help="add WEIGHT x the mean squared score change under +-1 grey level of noise to the "
                             "loss (a second forward pass per batch: about 2x the training time; 0 = off)")


def _run_arguments(parser) -> None:
    parser.add_argument("--cache-dir", default="cache/images", help="resized-image cache ('' to disable)")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast: faster only on CPUs with AVX512-BF16 / AMX or on a GPU; "
                             "5-10x slower than fp32 on an AVX2-only CPU (measured 1.0 vs 11.3 img/s)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    parser.add_argument("--stop-after-epochs", type=int, default=None,
                        help="stop cleanly after N epochs of each run in this invocation; re-run to resume")
    parser.add_argument("--out", type=Path, required=True, help="experiment folder (re-run to resume)")

def config_from_args(args: argparse.Namespace):
    """The experiment an argument set describes (shared by ``train`` and ``ablate``)."""
    from .experiments import ExperimentConfig, resolve_dirs
    from .trainer import TrainConfig

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    overrides = dict(args.dataset_dir)
    pretrained = {"auto": True, "none": False}.get(args.pretrained, args.pretrained)
    dirs = resolve_dirs(sorted(set(datasets) | set(overrides)), args.data_root, overrides)
    return ExperimentConfig(
        datasets=datasets, dataset_dirs=dirs, splits=args.splits, split_seed=args.split_seed,
        grid=getattr(args, "grid", False), trainval_holdout=args.holdout, max_train_images=args.max_train_images,
        max_eval_images=args.max_eval_images, synthetic_views=getattr(args, "synthetic_views", 0),
        synthetic_recipe=getattr(args, "synthetic_recipe", "paper"),
        train=TrainConfig(backbone=args.backbone, input_size=args.input_size, pretrained=pretrained,
                          epochs=args.epochs, batch_size=args.batch_size, max_lr=args.lr,
                          seed=args.seed, rank_loss_weight=args.rank_loss, bf16=args.bf16,
                          reason_loss_weight=getattr(args, "reasons", 0.0), align=getattr(args, "align", "rescale"),
                          dither=getattr(args, "dither", 0.0),
                          consistency_weight=getattr(args, "consistency", 0.0),
                          channels_last=args.channels_last, num_workers=args.workers,
                          cache_dir=args.cache_dir or None,
                          stop_after_epochs=args.stop_after_epochs))


def run_pooled_stats(args: argparse.Namespace) -> int:
    """``--model pooled-stats``: one feature-model run (split ``--splits``' first index), or with
    ``--from-run`` the reduction of a trained run's score head."""
    from .experiments import resolve_dirs
    from .feature_model import FeatureModelConfig, reduce_score_head

    if args.settings_from is not None:
        return _train(*settings_from_card(args))
    if args.from_run is not None:
        if args.statistics_from is not None or args.rule_margin is not None:
            raise UsageError("--from-run keeps the run's heads and rule: drop --statistics-from / --rule-margin")
        if not args.score_rank:
            raise ValueError("--from-run reduces a run's score head: give --score-rank too")
        card = reduce_score_head(args.from_run, args.out, args.score_rank)
        rule = card_rule(card)[0]
        print(f"score head of {args.from_run} kept in {args.score_rank} directions; rule kept: "
              f"{rule.describe() if rule is not None else 'none'}")
        for name, m in card["test_metrics"].items():
            print(f"{name:28s} n={m['n']:5d}  SROCC {m['srocc']:.3f} {m['srocc_ci']}  PLCC {m['plcc']:.3f}")
        print(f"run folder: {args.out}")
        return 0

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    size = args.input_size or DEFAULT_CONTRACT.input_size
    unknown = [d for d in datasets if d not in ("biq2021", "derm", "phone")]
    if unknown:
        raise ValueError(f"--model pooled-stats trains on biq2021, derm and phone (make-skin-set folders), "
                         f"not {', '.join(unknown)}")
    if "phone" in datasets and "derm" not in datasets:
        raise ValueError("--datasets phone goes with derm: the skin views of both set the reasons and the rule")
    overrides = skin_set_dirs(datasets, args.dataset_dir, size)
    config = FeatureModelConfig(dataset_dirs=resolve_dirs(datasets, args.data_root, overrides),
                                backbone=args.backbone, input_size=size, stages=args.stages,
                                ridge_skin_weight=args.ridge_skin_weight, reasons="derm" in datasets,
                                score_head=args.score_head, score_rank=args.score_rank, tune=args.tune, tune_epochs=args.tune_epochs,
                                tune_lr=args.tune_lr, tune_minutes=args.tune_minutes, device=args.device,
                                split_index=args.splits[0], split_seed=args.split_seed,
                                trainval_holdout=args.holdout, statistics_from=args.statistics_from,
                                rule_margin=args.rule_margin or "pooled")
    return _train(config, args.out)


def _train(config, out: Path) -> int:
    from .feature_model import train_feature_model

    card = train_feature_model(config, out)
    for name, m in card["test_metrics"].items():
        print(f"{name:28s} n={m['n']:5d}  SROCC {m['srocc']:.3f} {m['srocc_ci']}  PLCC {m['plcc']:.3f}")
    rule = card_rule(card)[0]
    if rule is not None:
        print(rule.describe())
    print(f"run folder: {out} (export: python -m diqa_edge.export --checkpoint {out})")
    return 0


def dataset_dir_item(text: str) -> tuple[str, str]:
    """One ``--dataset-dir NAME=PATH``, parsed once for every command that takes it (``train``, ``ablate``):
    a value without a name or a path is a usage error at parse time, never skipped."""
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"wants NAME=PATH (e.g. derm=cache/derm), got {text!r}")
    return name.strip(), path.strip()


def skin_set_dirs(datasets: list[str], dataset_dir: list[tuple[str, str]], size: int) -> dict[str, str]:
    """``--dataset-dir NAME=PATH`` overrides, with each skin set of ``datasets`` at its default folder when
    not given, and one sentence naming the command that builds a skin set that is not there."""
    from ..cachedir import phone_set_dir, skin_set_dir

    overrides = dict(dataset_dir)
    defaults = {"derm": str(skin_set_dir(size)), "phone": str(phone_set_dir())}
    builds = {"derm": f"`diqa-edge make-skin-set {data_root() / 'skin-cc0' / 'images'} --short-side {size}`",
              "phone": f"`diqa-edge make-skin-set {data_root() / 'pad-ufes-phone'} --phone`"}
    for name in ("derm", "phone"):
        if name in datasets:
            overrides.setdefault(name, defaults[name])
            if not (Path(overrides[name]) / "manifest.csv").exists():
                raise DiqaError(f"{overrides[name]}: no skin set there; build it with {builds[name]}")
    return overrides


def settings_from_card(args: argparse.Namespace):
    """(the FeatureModelConfig of ``--settings-from``'s card with this machine's data folders, ``--out``)."""
    from dataclasses import replace

    from ..models.load import read_run_card
    from .experiments import resolve_dirs
    from .feature_model import FeatureModelConfig

    given = [f"--{d.replace('_', '-')}" for d, default in args.recipe_defaults.items() if getattr(args, d) != default]
    given += ["--from-run"] if args.from_run is not None else []
    if given:
        raise UsageError(f"--settings-from {args.settings_from} reads the recipe from its card; "
                         f"drop {', '.join(given)}")
    card = read_run_card(Path(args.settings_from), ("config", "trained_on"))
    datasets = list(card["trained_on"])
    overrides = skin_set_dirs(datasets, args.dataset_dir, card["config"].get("input_size", DEFAULT_CONTRACT.input_size))
    config = FeatureModelConfig.from_card(Path(args.settings_from) / "card.json",
                                          resolve_dirs(datasets, args.data_root, overrides))
    # where it runs is this machine's choice; the statistics and the margin may be chosen anew for the recipe
    chosen = {k: getattr(args, k) for k in ("statistics_from", "rule_margin") if getattr(args, k) is not None}
    return replace(config, device=args.device, **chosen), args.out


def run(args: argparse.Namespace) -> int:
    from .experiments import run_experiment

    if args.settings_from is not None and args.model != "pooled-stats":
        print("diqa-edge train: --settings-from goes with --model pooled-stats", file=sys.stderr)
        return 2
    if args.datasets is None and args.from_run is None and args.settings_from is None:
        print("diqa-edge train: --datasets is required (e.g. --datasets biq2021,derm)", file=sys.stderr)
        return 2
    if args.from_run is not None and args.model != "pooled-stats":
        print("diqa-edge train: --from-run goes with --model pooled-stats", file=sys.stderr)
        return 2
    if (args.statistics_from is not None or args.rule_margin is not None) and args.model != "pooled-stats":
        print("diqa-edge train: --statistics-from and --rule-margin go with --model pooled-stats", file=sys.stderr)
        return 2
    if args.model == "pooled-stats":
        try:
            return run_pooled_stats(args)
        except UsageError as exc:
            print(f"diqa-edge train: {exc}", file=sys.stderr)
            return 2
        except (DiqaError, FileNotFoundError, ValueError) as exc:
            print(f"diqa-edge train: {exc}", file=sys.stderr)
            return 1
    try:
        config = config_from_args(args)
        run_experiment(config, args.out)
    except (DiqaError, FileNotFoundError, ValueError) as exc:
        print(f"diqa-edge train: {exc}", file=sys.stderr)
        return 1
    print(f"tables: {args.out / 'results.md'}")
    print((args.out / "results.md").read_text())
    return 0
