"""``diqa-edge make-skin-set``: pristine skin photos -> the phone's faults at KADID's five levels, each view
labelled with KADID-10k's human mean rating of that fault at that level (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cachedir import phone_set_dir, skin_set_dir
from ..contract import DEFAULT_CONTRACT
from ..errors import DiqaError


def _camera_views(text: str) -> int:
    """0 to 35 (``CAMERA_RECIPE``): how many of the camera's (family, level) pairs a dermoscopy photo gets."""
    from .camera import CAMERA_RECIPE

    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= len(CAMERA_RECIPE):
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 0 to {len(CAMERA_RECIPE)}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .camera import CAMERA_RECIPE
    from .kadid import FAMILIES
    from .skinviews import CAMERA_VIEWS_PER_PHOTO, PHONE_VIEWS_PER_PHOTO

    parser.epilog = ("Faults: " + "; ".join(f"{f.name} (KADID type {f.kadid_type}, {f.param_name} "
                                            f"{', '.join(str(p) for p in f.params)})" for f in FAMILIES.values())
                     + ". Spatial parameters are scaled from KADID's 384-px short side to --short-side.")
    parser.add_argument("pristine_dir", type=Path,
                        help="folder of pristine photos (searched recursively); with --phone, a folder holding "
                             "manifest.csv (image, patient) and the photos, beside it or under images/")
    parser.add_argument("out_dir", type=Path, nargs="?", default=None,
                        help=f"where images/ and manifest.csv go (default {skin_set_dir()})")
    parser.add_argument("--short-side", type=int, default=DEFAULT_CONTRACT.input_size,
                        help="resize each photo's shorter side to this first: the model's input size "
                             f"(default {DEFAULT_CONTRACT.input_size})")
    parser.add_argument("--seed", type=int, default=0, help="seed of noise and motion direction (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (for a quick look)")
    parser.add_argument("--phone", action="store_true",
                        help="real phone photos as bases (e.g. ../shared/data/pad-ufes-phone): each at its own size, "
                             "as taken (or 'as taken: blur' where data/reviewed/ lists it) plus "
                             "--views-per-photo faults drawn from every recipe, grouped by patient "
                             f"(default out: {phone_set_dir()})")
    parser.add_argument("--camera-views", type=_camera_views, default=None,
                        help=f"dermoscopy only: how many of the {len(CAMERA_RECIPE)} camera (family, level) pairs "
                             f"each photo gets, drawn per photo (default {CAMERA_VIEWS_PER_PHOTO}, the shipped recipe; "
                             f"{len(CAMERA_RECIPE)}: every one). Another number is another draw (the default's "
                             "views are not a subset of it) and needs its own OUT_DIR")
    parser.add_argument("--colour-casts", action="store_true",
                        help="also build the colour cast (the white balance wrong) at every level on each dermoscopy "
                             "photo and at one drawn level on each phone photo that passed review: not the shipped "
                             "recipe (it costs KADID's saturation cells; benchmarks/RESULTS.md); needs its own OUT_DIR")
    parser.add_argument("--views-per-photo", type=int, default=None,
                        help=f"with --phone: fault views per photo (default {PHONE_VIEWS_PER_PHOTO})")


def recipe_error(args: argparse.Namespace) -> str | None:
    """Why these options cannot be built as asked, or None. A recipe other than the shipped one must go to
    its own folder: training and every benchmark read the default folders, and a resumed build keeps the
    files another recipe wrote there (a view's seed is its place in the photo's list)."""
    from .skinviews import CAMERA_VIEWS_PER_PHOTO, PHONE_VIEWS_PER_PHOTO

    if args.phone and args.camera_views is not None:
        return "--camera-views is for the dermoscopy set; a phone photo's faults are drawn by --views-per-photo"
    if not args.phone and args.views_per_photo is not None:
        return "--views-per-photo is for --phone; the dermoscopy set's camera faults are drawn by --camera-views"
    if args.views_per_photo is not None and args.views_per_photo < 0:
        return f"--views-per-photo {args.views_per_photo}: a count, 0 or more"
    other = (args.colour_casts or args.camera_views not in (None, CAMERA_VIEWS_PER_PHOTO)
             or args.views_per_photo not in (None, PHONE_VIEWS_PER_PHOTO))
    if other and args.out_dir is None:
        return ("a recipe other than the shipped one (--camera-views, --views-per-photo, --colour-casts) is built "
                "into a folder of its own: give OUT_DIR (training and the benchmarks read the default folder)")
    return None


def run(args: argparse.Namespace) -> int:
    from .skinviews import CAMERA_VIEWS_PER_PHOTO, PHONE_VIEWS_PER_PHOTO, make_phone_set, make_skin_set

    problem = recipe_error(args)
    if problem:
        print(f"diqa-edge make-skin-set: {problem}", file=sys.stderr)
        return 2
    try:
        if args.phone:
            report = make_phone_set(args.pristine_dir, args.out_dir or phone_set_dir(), seed=args.seed,
                                    workers=args.workers, limit=args.limit,
                                    views_per_photo=(PHONE_VIEWS_PER_PHOTO if args.views_per_photo is None
                                                     else args.views_per_photo),
                                    colour_casts=args.colour_casts)
        else:
            report = make_skin_set(args.pristine_dir, args.out_dir or skin_set_dir(args.short_side),
                                   short_side=args.short_side, seed=args.seed, workers=args.workers,
                                   limit=args.limit, colour_casts=args.colour_casts,
                                   camera_views=(CAMERA_VIEWS_PER_PHOTO if args.camera_views is None
                                                 else args.camera_views))
    except DiqaError as exc:
        print(f"diqa-edge make-skin-set: {exc}", file=sys.stderr)
        return 1
    for failure in report.failed:
        print(f"error: skipped {failure}", file=sys.stderr)
    print(f"{report.pristine} pristine photos -> {report.views} views (KADID-anchored labels)\n"
          f"manifest: {report.manifest}")
    return 2 if report.failed else 0
