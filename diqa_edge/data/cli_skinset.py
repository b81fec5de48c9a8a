"""``diqa-edge make-skin-set``: pristine skin photos -> the phone's faults at KADID's five levels, each view
labelled with KADID-10k's human mean rating of that fault at that level (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cachedir import skin_set_dir
from ..errors import DiqaError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .kadid import FAMILIES

    parser.epilog = ("Faults: " + "; ".join(f"{f.name} (KADID type {f.kadid_type}, {f.param_name} "
                                            f"{', '.join(str(p) for p in f.params)})" for f in FAMILIES.values())
                     + ". Spatial parameters are scaled from KADID's 384-px short side to --short-side.")
    parser.add_argument("pristine_dir", type=Path, help="folder of pristine photos (searched recursively)")
    parser.add_argument("out_dir", type=Path, nargs="?", default=None,
                        help=f"where images/ and manifest.csv go (default {skin_set_dir()})")
    parser.add_argument("--short-side", type=int, default=512,
                        help="resize each photo's shorter side to this first: the model's input size (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="seed of noise and motion direction (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (for a quick look)")


def run(args: argparse.Namespace) -> int:
    from .skinviews import make_skin_set

    out = args.out_dir or skin_set_dir(args.short_side)
    try:
        report = make_skin_set(args.pristine_dir, out, short_side=args.short_side, seed=args.seed,
                               workers=args.workers, limit=args.limit)
    except DiqaError as exc:
        print(f"diqa-edge make-skin-set: {exc}", file=sys.stderr)
        return 1
    for failure in report.failed:
        print(f"error: skipped {failure}", file=sys.stderr)
    print(f"{report.pristine} pristine photos -> {report.views} views (KADID-anchored labels)\n"
          f"manifest: {report.manifest}")
    return 2 if report.failed else 0
