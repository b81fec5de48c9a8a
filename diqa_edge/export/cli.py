"""``python -m diqa_edge.export`` / ``diqa-edge export``: trained checkpoint -> phone files, gated on parity.

The command line of ``export.api.export``: options in, the report printed, exit 0 (every file passed), 1
(nothing could be exported) or 2 (a file failed its gate; the others' rows are still written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DiqaError
from ..logs import verbose_wanted
from .formats import FORMATS, PRECISION_NOTES, PRECISIONS, ExportError
from .parity import DEFAULT_THRESHOLDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    notes = "; ".join(f"{t}/{p}: {n}" for (t, p), n in PRECISION_NOTES.items())
    parser.epilog = f"Precisions: {notes}."
    parser.add_argument("--target", choices=sorted(FORMATS) + ["all"], default="all",
                        help="output format (default: all); coreml peaks at about 7.4 GB of memory for the "
                             "bundled model (fp16, measured with /usr/bin/time -v)")
    parser.add_argument("--precision", action="append", choices=PRECISIONS, default=None,
                        help="repeatable; default: every precision the target supports")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="training run folder (card.json + best.safetensors or head.safetensors) written by "
                             "`diqa-edge train` (default: the bundled model's run folder, diqa_edge/models/run: "
                             "then the default precision is the bundled file's, and each file is also compared "
                             "with the bundled one)")
    parser.add_argument("--out", type=Path, default=Path("out/export"), help="output folder (default out/export)")
    parser.add_argument("--calibration", type=Path, default=None,
                        help="int8 calibration images: a folder, a manifest CSV, or 'bundled' (the samples and "
                             "their fault views, 54 images that ship with the repository: the bundled file's "
                             "calibration) (default: the model's own validation images; 'bundled' when "
                             "rebuilding the bundled model)")
    parser.add_argument("--num-calibration", type=int, default=400,
                        help="calibration images (default 400: with 100, the Lite0 int8 ranking missed the 0.99 gate)")
    parser.add_argument("--images", type=Path, default=None,
                        help="parity images: a folder or manifest CSV (default: the model's held-out test images)")
    parser.add_argument("--num-images", type=int, default=60, help="parity images, at least 50 (default 60)")
    parser.add_argument("--accept-threshold", type=float, default=None,
                        help="the score cut stored in the manifests' rule (default: the rule the run chose at "
                             "training, else a cut chosen on its validation images for --min-sensitivity, else "
                             "5.0); a rule chosen at training keeps its reasons' thresholds and its 1:1 look")
    parser.add_argument("--min-sensitivity", type=float, default=0.9,
                        help="decision target: retake at least this share of validation photos whose MOS is "
                             "below --mos-cutoff, with the highest specificity that allows (default 0.9; "
                             "0 = maximise Youden's J instead)")
    parser.add_argument("--mos-cutoff", type=float, default=5.5,
                        help="a photo with MOS below this (1-10 scale) is unacceptable (default 5.5)")
    gates = DEFAULT_THRESHOLDS
    parser.add_argument("--max-abs-fp32", type=float, default=gates["fp32"]["max_abs"],
                        help="fp32 gate: max |score delta| (default %(default)s)")
    parser.add_argument("--max-abs-fp16", type=float, default=gates["fp16"]["max_abs"],
                        help="fp16 gate: max |score delta| (default %(default)s)")
    parser.add_argument("--min-srocc-int8", type=float, default=gates["int8"]["srocc"],
                        help="int8 and int8-dynamic gate: SROCC vs PyTorch (default %(default)s)")
    parser.add_argument("--min-srocc-int8-trunk", type=float, default=gates["int8-trunk"]["srocc"],
                        help="int8-trunk gate: SROCC vs PyTorch (default %(default)s; --max-mean-abs-int8-trunk "
                             "and the same hint on 90 %% of the images are required too)")
    parser.add_argument("--max-mean-abs-int8-trunk", type=float, default=gates["int8-trunk"]["mean_abs"],
                        help="int8-trunk gate: mean |score delta| vs PyTorch (default %(default)s: a correct file "
                             "measured 0.070-0.145 on 60-image sets, the full-integer file 0.246-0.452)")
    parser.add_argument("--dynamic-batch", action="store_true", help="ONNX with a dynamic batch axis")
    parser.add_argument("--verbose", action="store_true",
                        help="show the converters' own output (TensorFlow, onnx2tf, coremltools) on the terminal; "
                             "by default it goes to OUT/converters.log, and its last lines into any error")


def options_from_args(args: argparse.Namespace):
    """The command line as ``ExportOptions``."""
    from .api import ExportOptions

    gates = {**DEFAULT_THRESHOLDS, "fp32": {"max_abs": args.max_abs_fp32}, "fp16": {"max_abs": args.max_abs_fp16},
             "int8": {"srocc": args.min_srocc_int8}, "int8-dynamic": {"srocc": args.min_srocc_int8},
             "int8-trunk": {"srocc": args.min_srocc_int8_trunk, "mean_abs": args.max_mean_abs_int8_trunk}}
    return ExportOptions(out=args.out, targets=tuple(sorted(FORMATS)) if args.target == "all" else (args.target,),
                         precisions=tuple(args.precision or ()), images=args.images, num_images=args.num_images,
                         calibration=args.calibration, num_calibration=args.num_calibration,
                         accept_threshold=args.accept_threshold, min_sensitivity=args.min_sensitivity,
                         mos_cutoff=args.mos_cutoff, gates=gates, dynamic_batch=args.dynamic_batch,
                         verbose=verbose_wanted(args.verbose, getattr(args, "verbosity", 0)))


def run(args: argparse.Namespace) -> int:
    from .api import export

    options = options_from_args(args)
    try:
        report = export(args.checkpoint, options)
    except (DiqaError, ExportError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:   # the output folder is a file, a disk is full, a path is unreadable
        print(f"export: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print("\n" + report.markdown)
    for r in report.failed:   # one line per file on stderr: which file, which measure, which threshold
        print(f"export: {Path(r['path']).name} FAILED its gate: {r['rule']}", file=sys.stderr)
    return 2 if report.failed else 0
