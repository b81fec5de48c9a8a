"""``diqa-edge make-derm-set``: build the dermatology IQA set from a folder of pristine skin photos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DiqaError
from .dermset import LONG_SIDE
from .distort import RECIPES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pristine_dir", type=Path, help="folder of pristine photos (searched recursively)")
    parser.add_argument("out_dir", type=Path, help="where images/, manifest.csv and ratings_template.csv go")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="paper",
                        help="paper: the paper's 18 views per photo; extended: + KADID's other families "
                             "(default: paper)")
    parser.add_argument("--long-side", type=int, default=LONG_SIDE,
                        help=f"resize long side first (default {LONG_SIDE}: the paper's recipe)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise distortions (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (for a quick look)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="also write a PNG of the first photo and its views here")


def run(args: argparse.Namespace) -> int:
    from .dermset import make_derm_set, views_figure

    try:
        report = make_derm_set(args.pristine_dir, args.out_dir, recipe=args.recipe, seed=args.seed,
                               long_side=args.long_side, workers=args.workers, limit=args.limit)
    except DiqaError as exc:
        print(f"diqa-edge make-derm-set: {exc}", file=sys.stderr)
        return 1
    for failure in report.failed:
        print(f"error: skipped {failure}", file=sys.stderr)
    print(f"{report.pristine} pristine photos -> {report.views} images (pseudo-MOS labels)")
    print(f"manifest: {report.manifest}\nratings template for a human study: {report.template}")
    if args.figure:
        import csv
        with open(report.manifest, newline="") as fh:
            first = next(csv.DictReader(fh))["group"]
        print(f"figure: {views_figure(report.manifest, first, args.figure)}")
    return 2 if report.failed else 0
