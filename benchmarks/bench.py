"""Benchmark every exported format (same as ``diqa-edge bench``); see diqa_edge/bench.py."""

import sys

from diqa_edge.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
