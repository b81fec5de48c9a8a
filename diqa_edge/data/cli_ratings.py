"""``diqa-edge aggregate-ratings``: raw ACR ratings -> MOS, std, 95 % CI, with rater screening."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DiqaError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ratings", type=Path, help="CSV with columns rater, image, score (1-10)")
    parser.add_argument("--out", type=Path, default=None,
                        help="manifest to write (default: mos_manifest.csv beside the ratings)")
    parser.add_argument("--derm-manifest", type=Path, default=None,
                        help="the derm set's manifest.csv, to carry group/distortion/level over "
                             "(default: manifest.csv beside the ratings, if present)")
    parser.add_argument("--min-corr", type=float, default=0.7,
                        help="drop raters whose correlation with the others' mean is below this (default 0.7)")


def run(args: argparse.Namespace) -> int:
    from .dermset import aggregate_ratings, write_ratings_manifest

    try:
        result = aggregate_ratings(args.ratings, min_corr=args.min_corr)
    except (DiqaError, OSError) as exc:
        print(f"diqa-edge aggregate-ratings: {exc}", file=sys.stderr)
        return 1
    for problem in result.problems:
        print(f"error: {problem}", file=sys.stderr)
    for rater, r in sorted(result.rejected_raters.items()):
        print(f"rater {rater} rejected: correlation with the others' mean {r:.2f} < {args.min_corr}")
    out = args.out or args.ratings.with_name("mos_manifest.csv")
    derm = args.derm_manifest or args.ratings.with_name("manifest.csv")
    write_ratings_manifest(result, out, derm if derm.exists() else None)
    print(f"{len(result.rows)} images with MOS -> {out}")
    return 2 if result.problems else 0
