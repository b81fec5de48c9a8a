"""``python -m diqa_edge.training`` (and ``torchrun -m diqa_edge.training``): the train command."""

import argparse
import sys

from .cli import add_arguments, run

parser = argparse.ArgumentParser(prog="python -m diqa_edge.training", description=__doc__)
add_arguments(parser)
sys.exit(run(parser.parse_args()))
