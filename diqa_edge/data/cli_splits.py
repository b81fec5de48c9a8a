"""``diqa-edge make-splits``: five seeded, grouped train/val/test splits of a dataset, as JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DiqaError
from .registry import DATASETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=sorted(DATASETS), help="which loader reads ROOT")
    parser.add_argument("root", type=Path, help="the dataset folder as published (derm: the manifest)")
    parser.add_argument("out", type=Path, help="split JSON to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=5, help="number of splits (default 5)")
    parser.add_argument("--skip-bad", action="store_true", help="drop bad label rows instead of failing")


def run(args: argparse.Namespace) -> int:
    from .registry import load_dataset
    from .splits import leaks, make_splits, write_splits

    try:
        data = load_dataset(args.dataset, args.root, skip_bad=args.skip_bad)
    except (DiqaError, FileNotFoundError, ValueError) as exc:
        print(f"diqa-edge make-splits: {exc}", file=sys.stderr)
        return 1
    splits = make_splits(data, n=args.n, seed=args.seed)
    for s in splits:
        bad = leaks(data, s)
        if bad:
            print(f"split {s.index} leaks: {bad[:3]}", file=sys.stderr)
            return 1
        print(f"split {s.index}: train {len(s.train)}, val {len(s.val)}, test {len(s.test)}")
    digest = write_splits(args.out, splits)
    print(f"{args.out} (sha256 {digest[:16]})")
    return 0
