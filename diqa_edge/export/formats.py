"""One table drives the export formats: CLI choices, docs, the benchmark loop, and early validation.

After Ultralytics' ``export_formats()``: each row names a target, its file
suffix, the precisions it supports and whether this machine can execute it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import DiqaError
from ..sdk.decision import RetakeRule

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8", "int8-trunk")
# the precisions whose activation ranges are calibrated on real images
CALIBRATED = ("int8", "int8-trunk")
# the bundled sample photos (test vectors, default images for checks)
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@dataclass(frozen=True)
class Format:
    target: str
    title: str
    suffix: str
    precisions: tuple[str, ...]
    layout: str
    tool: str
    module: str          # diqa_edge.export.<module>.export(trained, precisions, job) makes the files

    def runs_here(self) -> bool:
        return self.target != "coreml" or platform.system() == "Darwin"

    def exporter(self):
        """The target's ``export`` function, imported only when this target is asked for (each pulls in
        its own converter: onnx2tf and TensorFlow, coremltools)."""
        return importlib.import_module(f"diqa_edge.export.{self.module}").export


# in the order the files are made: TFLite converts the ONNX graph, so ONNX comes first
FORMATS: dict[str, Format] = {f.target: f for f in (
    Format("onnx", "ONNX", ".onnx", ("fp32", "fp16"), "NCHW", "torch.onnx + onnxsim", "onnx_target"),
    Format("tflite", "TFLite", ".tflite", ("fp32", "fp16", "int8-dynamic", "int8", "int8-trunk"), "NHWC", "onnx2tf",
           "tflite_target"),
    Format("coreml", "Core ML", ".mlpackage", ("fp32", "fp16", "int8"), "image", "coremltools", "coreml_target"),
)}

# the rule of a model that chose none (no skin rule at training, no validation images at export): the
# middle of the score range, said so in the manifest's evidence
DEFAULT_RULE = RetakeRule(5.0)
DEFAULT_EVIDENCE = {"chosen_on": "not chosen on data: the middle of the score range (the model had no "
                                 "rule from training and no validation images to choose one on)"}


@dataclass
class ExportJob:
    """What every target's ``export(trained, precisions, job)`` needs besides the model: where files go,
    the rule each manifest carries, int8 calibration images, and the ONNX graph, made once by
    ``make_onnx`` (given by the caller, so this table never imports a target) for all targets that need it."""
    out_dir: Path
    make_onnx: Callable[[], "Artefact"]
    rule: RetakeRule = DEFAULT_RULE
    rule_evidence: dict = field(default_factory=dict)
    calibration: list[Path] = field(default_factory=list)
    dynamic_batch: bool = False
    verbose: bool = False
    _onnx: "Artefact | None" = None

    def meta(self) -> dict:
        return {"rule": self.rule, "rule_evidence": self.rule_evidence}

    def onnx_graph(self) -> "Artefact":
        if self._onnx is None:
            self._onnx = self.make_onnx()
        return self._onnx

# what each precision means per target, for the report and --help
PRECISION_NOTES = {
    ("tflite", "fp32"): "float32 weights and activations",
    ("tflite", "fp16"): "float16 weights, float32 compute",
    ("tflite", "int8-dynamic"): "int8 weights, activations quantised on the fly",
    ("tflite", "int8"): "full integer: int8 weights, activations, input and output (calibrated)",
    ("tflite", "int8-trunk"): "the backbone's weights and activations in int8 (calibrated); its first two "
                              "convolutions, the pooling and the heads in float32; float32 input and output",
    ("coreml", "fp32"): "ML Program, float32 compute",
    ("coreml", "fp16"): "ML Program, float16 compute",
    ("coreml", "int8"): "8-bit linear weights (constexpr dequantise), float16 compute",
    ("onnx", "fp32"): "float32, opset 17",
    ("onnx", "fp16"): "float16 weights (the score head's matrices int8, as in the phone file), float32 compute",
}


class ExportError(DiqaError):
    """A conversion that failed; names the stage and the tool version."""


def validate(target: str, precisions: list[str]) -> list[str]:
    """Fail early with one clear line, like "argument 'int8-dynamic' is not supported for coreml"."""
    fmt = FORMATS[target]
    bad = [p for p in precisions if p not in fmt.precisions]
    if bad:
        raise ExportError(f"precision {', '.join(bad)} is not supported for target '{target}' "
                          f"(supported: {', '.join(fmt.precisions)})")
    return precisions


@dataclass
class Artefact:
    target: str
    precision: str
    path: Path
    seconds: float
    notes: dict = field(default_factory=dict)

    @property
    def size_mb(self) -> float:
        p = Path(self.path)
        if p.is_dir():
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 1e6
        return p.stat().st_size / 1e6 if p.exists() else 0.0


def tool_version(module: str) -> str:
    try:
        from importlib.metadata import version

        return f"{module} {version(module)}"
    except Exception:  # a missing distribution is only a label problem here
        return module


@contextlib.contextmanager
def converters_to_log(log_path: Path, verbose: bool = False):
    """Send what runs inside to ``log_path`` at the descriptor level (TensorFlow / XLA / absl C++ logs,
    onnx2tf's and coremltools' prints and progress bars: 33-78 lines per export that buried the report),
    unless ``verbose``. Descriptors as well as ``sys.stdout`` / ``sys.stderr``: most of it comes from native
    code."""
    if verbose:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved: list[int] = []
    try:
        saved += [os.dup(1), os.dup(2)]
    except OSError:                  # no real descriptors (an embedded interpreter): nothing to redirect
        for fd in saved:
            os.close(fd)
        yield
        return
    try:
        with open(log_path, "ab") as log, open(log_path, "a", buffering=1, errors="replace") as text, \
                contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            try:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                _flush_native_stdio()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _flush_native_stdio() -> None:
    """C / C++ code buffers its own stdout: flush it into the log before the terminal comes back."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):     # no C library to ask (an unusual platform): nothing buffered to lose
        pass


def log_tail(log_path: Path, lines: int = 12) -> str:
    """The last ``lines`` non-empty lines of a converters' log (for an error message)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def stage(target: str, what: str, tool: str):
    """Decorator: time a conversion stage and turn any failure into one ExportError naming it."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except ExportError:
                raise
            except Exception as exc:  # converters raise anything; the user needs the stage and tool
                raise ExportError(f"{target}: {what} failed ({tool_version(tool)}): "
                                  f"{type(exc).__name__}: {exc}") from exc
            return result, time.perf_counter() - t0
        return inner
    return wrap
