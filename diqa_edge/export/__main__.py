"""``python -m diqa_edge.export`` (the design card's name for ``diqa-edge export``): see ``export/cli.py``."""

import sys

from ..commands import run_module
from .cli import add_arguments, run

sys.exit(run_module("python -m diqa_edge.export (diqa-edge export)", add_arguments, run,
                    "Export a trained diqa-edge model to ONNX, TFLite (onnx2tf) and Core ML, each gated on "
                    "parity with the PyTorch model on real images."))
