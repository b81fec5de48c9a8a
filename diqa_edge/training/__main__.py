"""``python -m diqa_edge.training`` (and ``torchrun -m diqa_edge.training``): ``diqa-edge train``."""

import sys

from ..commands import run_module
from .cli import add_arguments, run

sys.exit(run_module("python -m diqa_edge.training (diqa-edge train)", add_arguments, run, __doc__))
