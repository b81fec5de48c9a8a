"""How the package talks while it works: progress and warnings go through ``logging``, not ``print``.

Library code logs to its module's logger (``logging.getLogger(__name__)``); only a command line
decides what reaches the terminal. ``diqa-edge`` (and ``python -m diqa_edge.export``) show INFO and
up on stderr by default, everything with ``--verbose``, only warnings and errors with ``--quiet``.
A program that imports the package and configures nothing hears only warnings (Python's default).
What a command prints as its result (a table, ``score``'s lines, JSON) stays on stdout.
"""

from __future__ import annotations

import logging
import sys

LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}


def configure(verbosity: int = 0) -> None:
    """``verbosity``: -1 quiet, 0 normal, 1 verbose. Messages carry no prefix at INFO (they read as the
    command's own progress); at DEBUG each names its module, so a reader knows where it came from."""
    level = LEVELS[max(-1, min(1, verbosity))]
    fmt = "%(name)s: %(message)s" if level == logging.DEBUG else "%(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("diqa_edge")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def add_verbosity_flags(parser, after_command: bool = False) -> None:
    """-v / -q on the main parser, and again on each command (``after_command``) so they work in either
    position (``diqa-edge -q score ...`` and ``diqa-edge score ... -q``); a command that has its own
    ``--verbose`` keeps it, and reads a -v as the same wish (``verbose_wanted``)."""
    import argparse

    taken = set(parser._option_string_actions) if after_command else set()
    default = argparse.SUPPRESS if after_command else 0
    group = parser.add_mutually_exclusive_group()
    group.add_argument(*[o for o in ("-v", "--verbose") if o not in taken], dest="verbosity", action="store_const",
                       const=1, default=default, help="show every message, each with the module it came from")
    group.add_argument(*[o for o in ("-q", "--quiet") if o not in taken], dest="verbosity", action="store_const",
                       const=-1, default=default, help="show only warnings and errors (results still print)")


def verbose_wanted(verbose: bool, verbosity: int) -> bool:
    """A command's own --verbose, or -v given before or after it (``verbosity`` 1)."""
    return bool(verbose) or verbosity > 0
