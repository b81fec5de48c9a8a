"""``diqa-edge``: one entry point, one sub-command per job.

Sub-commands import their heavy dependencies only when chosen, so ``score``
works in an SDK-only install (no torch, no tensorflow).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import signal
import sys
import threading

from .commands import EXIT_CODES, configure_verbosity, guarded
from .errors import UsageError
from .logs import add_verbosity_flags

# name -> (module with add_arguments(parser) and run(args) -> int, one-line help)
COMMANDS = {
    "score": ("diqa_edge.sdk.cli", "score photos with an exported model: accept or retake"),
    "make-derm-set": ("diqa_edge.data.cli_dermset",
                      "build a dermatology IQA set (distorted views + pseudo-MOS) from pristine photos"),
    "make-skin-set": ("diqa_edge.data.cli_skinset",
                      "skin photos -> the phone's faults at KADID-10k's levels, labelled with KADID's human ratings"),
    "aggregate-ratings": ("diqa_edge.data.cli_ratings",
                          "turn raw 1-10 ratings into MOS with std, 95%% CI and rater screening"),
    "make-splits": ("diqa_edge.data.cli_splits", "write five seeded, grouped train/val/test splits"),
    "export": ("diqa_edge.export.cli",
               "export a trained model to ONNX / TFLite / Core ML, gated on parity with PyTorch"),
    "bench": ("diqa_edge.bench",
              "benchmark every exported format: size, accuracy, drift from PyTorch, latency, memory"),
    "bench-12mp": ("diqa_edge.bench_12mp",
                   "12 MP phone photos: full-path latency and score drift of the DCT-domain (draft) decode"),
    "train": ("diqa_edge.training.cli",
              "train EfficientNet IQA models: one run, several splits, or the paper's grid"),
    "fit-reasons": ("diqa_edge.training.reasons_probe",
                    "fit a run's reasons head as a linear probe on its frozen backbone (score path unchanged)"),
    "web": ("diqa_edge.web.cli",
            "serve the browser client: camera or photo, scored in the page by the exported model"),
    "ablate": ("diqa_edge.ablation.cli",
               "train variants of one recipe (resolution, loss, backbone, data) on the same splits; one table"),
    "detail-rule": ("diqa_edge.training.detail_gate",
                    "choose a run's 1:1 thresholds (noise, sharpness of the photo's own centre) and write them "
                    "into its card's rule"),
    "coreml-layers": ("diqa_edge.export.coreml_layers",
                      "compare a Core ML package with its PyTorch model layer by layer (no macOS needed)"),
    "bundle": ("diqa_edge.export.bundle",
               "maintainers: make an exported file the package's bundled model (manifest, card, test vectors)"),
    "figures": ("diqa_edge.eval.figures",
                "maintainers: write (or --check) the README's figures table from the committed results"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser with every command listed, but only the chosen command's module imported: the
    others may need torch or tensorflow, which an SDK-only install does not have."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(
        prog="diqa-edge",
        description="Decide whether a skin photo is good enough for a teledermatology consult: "
                    "train no-reference image-quality models, export them to the phone, score photos.",
        epilog="Run `diqa-edge COMMAND --help` for a command's options. Progress goes to stderr (-q: only "
               "warnings and errors; -v: everything). Exit codes: "
               f"{EXIT_CODES}; `score` adds 3 when a photo could not be scored.")
    add_verbosity_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        # argparse %-formats a sub-command's help but prints its description as written
        sp = sub.add_parser(name, help=help_text, description=help_text.replace("%%", "%"))
        sp.set_defaults(_module=module)
        if name == chosen:
            _import_command(name, module).add_arguments(sp)
            add_verbosity_flags(sp, after_command=True)
    return parser


# the heavy packages a command's module may need, and the install extra that brings them
_EXTRA_OF = {"torch": "full", "tensorflow": "full", "timm": "full", "onnx": "full", "onnx2tf": "full",
             "coremltools": "full", "scipy": "full", "sklearn": "full", "matplotlib": "full", "safetensors": "full"}


class MissingExtra(UsageError):
    """A command needs a package this install does not have (an SDK-only install has no torch)."""


def _import_command(name: str, module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in _EXTRA_OF:
            raise
        raise MissingExtra(f"`diqa-edge {name}` needs {top}, which this install lacks (an SDK-only install "
                           f"scores photos only): pip install 'diqa-edge[{_EXTRA_OF[top]}]'") from None


_interrupted = False


def _on_ctrl_c(signum, frame) -> None:
    """Python's own SIGINT behaviour, remembered: an extension module whose import a Ctrl-C cuts short may
    turn the KeyboardInterrupt into its own error (numpy: "ImportError: numpy.core.multiarray failed to
    import"), which must still read as an interruption, not as a failure with a traceback."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    global _interrupted
    _interrupted = False          # this run's Ctrl-C only (tests call main in one process)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_ctrl_c) if in_main_thread else None
    try:
        return _main(argv)
    except KeyboardInterrupt:   # at any moment, start-up included (a Ctrl-C while numpy imports gave a traceback)
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        if not _interrupted:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _main(argv: list[str] | None) -> int:
    try:
        parser = build_parser(argv)
    except MissingExtra as exc:
        print(f"diqa-edge: {exc}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):   # `diqa-edge` alone: the help, which is what was asked for
        parser.print_help()
        return 0
    verbose, verbosity = bool(getattr(args, "verbose", False)), getattr(args, "verbosity", 0)
    return guarded(f"diqa-edge {args.command}",
                   lambda: configure_verbosity(verbose, verbosity) or _import_command(args.command, args._module).run(args))


def entry() -> None:
    """The program (``diqa-edge``, ``python -m diqa_edge.cli``): ``main``'s exit code, and 130 after a Ctrl-C
    every time. Measured: a Ctrl-C at start-up exited -2 (killed by SIGINT) about once in ten to thirty runs,
    after printing "interrupted": the interrupt was caught and answered, yet the interpreter re-raised
    SIGINT at exit (our reading of CPython 3.11: a flag set when a KeyboardInterrupt passes through code run
    by ``PyRun_String``, as some extension imports do, and never cleared). So an interrupted run flushes,
    runs its exit handlers and leaves with 130 itself."""
    code = main()
    if code == 130:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        atexit._run_exitfuncs()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    entry()
