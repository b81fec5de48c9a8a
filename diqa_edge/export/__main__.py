"""``python -m diqa_edge.export``: see ``diqa_edge/export/cli.py``."""

import argparse
import sys

from ..logs import configure
from .cli import add_arguments, run

parser = argparse.ArgumentParser(
    prog="python -m diqa_edge.export",
    description="Export a trained diqa-edge model to ONNX, TFLite (onnx2tf) and Core ML, each gated on "
                "parity with the PyTorch model on real images.")
add_arguments(parser)
args = parser.parse_args()
configure(1 if args.verbose else 0)
sys.exit(run(args))
