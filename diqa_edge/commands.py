"""How every command of the package runs, whichever way it was started: ``diqa-edge NAME`` or the
``python -m diqa_edge.<module>`` it also answers to. One place decides the flags every command shares
(-v / -q), how they set the log level, and how an error becomes one line on stderr and an exit code, so
the two ways of starting a command cannot drift apart.

Exit codes: 0 done, 1 failed (the reason on stderr), 2 usage error (a bad option or a value argparse
could not see) or, for export and coreml-layers, a file that failed its check, 130 interrupted, 141 the reader of stdout went away; ``score`` adds 3 when a photo
could not be scored.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from .errors import DiqaError, UsageError
from .logs import add_verbosity_flags, configure, verbose_wanted

EXIT_CODES = ("0 done, 1 failed (the reason is on stderr), 2 usage error (export, coreml-layers: also a file that "
              "failed its check)")


def configure_verbosity(verbose: bool, verbosity: int) -> None:
    """-v / -q (``verbosity`` 1 / -1) or a command's own --verbose (the same wish: ``diqa-edge -v export`` and
    ``diqa-edge export --verbose`` both show every message and the converters' own output); a command's
    --verbose with -q asks for two opposite things and is a usage error."""
    if verbose and verbosity < 0:
        raise UsageError("--verbose and -q ask for opposite things: give one")
    configure(1 if verbose_wanted(verbose, verbosity) else verbosity)


def guarded(name: str, run: Callable[[], int]) -> int:
    """``run()``'s exit code, with every way a command can fail turned into one line on stderr: never a
    traceback for a bad file, a bad option value or a full disk."""
    try:
        return run()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:  # a bad option value that argparse could not see
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except DiqaError as exc:   # a command that let a typed error through: still one line
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`diqa-edge score ... | head`): stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:     # an output folder that is a file, a full disk, a path that cannot be read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{name}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


def run_module(prog: str, add_arguments: Callable[[argparse.ArgumentParser], None],
               run: Callable[[argparse.Namespace], int], description: str | None = None,
               argv: list[str] | None = None) -> int:
    """``python -m diqa_edge.<module>``: the same parser, flags, logging and exit codes as ``diqa-edge
    NAME`` (whose name ``prog`` should say, so a reader knows the two are one command)."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     epilog=f"Exit codes: {EXIT_CODES}.")
    add_arguments(parser)
    add_verbosity_flags(parser, after_command=True)
    args = parser.parse_args(argv)
    verbose, verbosity = bool(getattr(args, "verbose", False)), getattr(args, "verbosity", 0)
    return guarded(prog, lambda: configure_verbosity(verbose, verbosity) or run(args))
