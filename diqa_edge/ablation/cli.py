"""``diqa-edge ablate``: train the named variants of one recipe on the same splits and write one table.

Takes every option of ``diqa-edge train`` as the base recipe. Re-running the
same command resumes unfinished variants and reuses finished ones.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import DiqaError
from ..training import cli as train_cli
from .run import EVAL_MODES, VARIANTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    train_cli.add_arguments(parser)
    parser.epilog = ("Variants: " + "; ".join(f"{k}: {v.description}" for k, v in VARIANTS.items())
                     + ". Test-time modes: " + "; ".join(f"{k}: {v}" for k, v in EVAL_MODES.items()) + ".")
    parser.add_argument("--variants", default="baseline,rank-loss,res320,lite1,plus-derm",
                        help="comma-separated variant names (see below); the first dataset in --datasets "
                             "is the held-out test set")
    parser.add_argument("--eval-modes", default="full-image,five-crop",
                        help="test-time crop rules measured on the baseline's weights ('' for none)")
    parser.add_argument("--int8", action="store_true",
                        help="export each variant to full-integer TFLite and add int8 SROCC, latency and size")
    parser.add_argument("--retime", action="store_true",
                        help="re-measure the int8 latency of finished variants (run on a quiet machine)")
    parser.add_argument("--num-calibration", type=int, default=100, help="int8 calibration images per variant")


def run(args: argparse.Namespace) -> int:
    from .run import run_ablation

    try:
        base = train_cli.config_from_args(args)
        if args.grid:
            raise ValueError("--grid does not combine with ablate; each variant is one run")
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        modes = [m.strip() for m in args.eval_modes.split(",") if m.strip()]
        bad = [m for m in modes if m not in EVAL_MODES]
        if bad:
            raise ValueError(f"unknown --eval-modes {', '.join(bad)}; known: {', '.join(EVAL_MODES)}")
        run_ablation(base, variants, args.out, int8=args.int8, eval_modes=modes,
                     num_calibration=args.num_calibration, retime=args.retime)
    except (DiqaError, FileNotFoundError, ValueError) as exc:
        print(f"diqa-edge ablate: {exc}", file=sys.stderr)
        return 1
    print((args.out / "ablation.md").read_text())
    return 0
