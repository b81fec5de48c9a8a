"""Inference runtimes behind one small interface, picked by the model file's suffix.

Each runtime is imported only when a model of its format is loaded, so the SDK
install needs just the runtime it uses (ai-edge-litert or onnxruntime) and
never torch or tensorflow.
"""

from __future__ import annotations

import contextlib
import platform
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError, RuntimeUnavailableError, UsageError
from .manifest import MANIFEST_KEY, ModelManifest
from .probe import CHILD_MEMORY_BYTES, HANDLED_ERROR, verify_in_child

FORMATS = {".tflite": "tflite", ".onnx": "onnx", ".pt": "torchscript", ".mlpackage": "coreml"}


@contextlib.contextmanager
def native_stderr_quiet():
    """Silence what native code writes to file descriptor 2 (the TFLite runtime's "INFO: Created TensorFlow
    Lite XNNPACK delegate for CPU." on every load) unless the log level asks for everything (``-v``);
    Python's own messages go through ``sys.stderr`` and are not touched."""
    import logging
    import os
    import sys

    if logging.getLogger("diqa_edge").getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):     # no real descriptor 2 (an embedded interpreter): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _layout_from_shape(shape, path: Path) -> str:
    dims = list(shape)
    if len(dims) == 4 and dims[1] == 3:
        return "NCHW"
    if len(dims) == 4 and dims[3] == 3:
        return "NHWC"
    raise ModelLoadError(f"{path}: input shape {dims} is neither 1x3xSxS nor 1xSxSx3")


class Runtime(ABC):
    """One loaded model: takes the contract's input tensor, returns the raw score."""

    name = "runtime"
    layout = "NCHW"
    input_size = 0

    def __init__(self, path: Path, threads: int):
        self.path = path
        self.threads = threads

    @abstractmethod
    def outputs(self, x: np.ndarray) -> np.ndarray:
        """x: float32, batch of one, in ``self.layout``; returns the model's output vector
        (the score, then the reasons head's probabilities when the model has one)."""

    def run(self, x: np.ndarray) -> float:
        """The raw score alone."""
        return float(self.outputs(x)[0])

    def output_width(self) -> int | None:
        """How many values one image's output holds, where the file says so without running it."""
        return None

    def embedded_manifest(self) -> ModelManifest | None:
        return None


class TFLiteRuntime(Runtime):
    name = "tflite"

    def __init__(self, path: Path, threads: int):
        super().__init__(path, threads)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise RuntimeUnavailableError(
                "TFLite models need ai-edge-litert: pip install 'diqa-edge[sdk]'") from None
        try:
            with native_stderr_quiet():
                self._interp = Interpreter(model_path=str(path), num_threads=threads)
                self._interp.allocate_tensors()
            inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        except (ValueError, RuntimeError, IndexError, KeyError, MemoryError) as exc:
            raise ModelLoadError(f"{path}: not a loadable TFLite model ({type(exc).__name__}: {exc})") from None
        if not inputs or not outputs:          # what a truncated or edited file often loads as
            raise ModelLoadError(f"{path}: not a loadable TFLite model (it has {len(inputs)} input(s) and "
                                 f"{len(outputs)} output(s))")
        if len(inputs) != 1:                    # the same rule as ONNX: one photo in
            raise ModelLoadError(f"{path}: an image-quality model has one input and an output, this one has "
                                 f"{len(inputs)} and {len(outputs)}")
        self._in, self._out = inputs[0], outputs[0]
        self.layout = _layout_from_shape(self._in["shape"], path)
        self.input_size = int(self._in["shape"][1 if self.layout == "NHWC" else 2])

    def output_width(self) -> int | None:
        return int(np.prod(self._out["shape"][1:]))

    def outputs(self, x: np.ndarray) -> np.ndarray:
        dtype = self._in["dtype"]
        if dtype in (np.int8, np.uint8):
            scale, zero = self._in["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.rint(x / scale + zero), info.min, info.max).astype(dtype)
        else:
            x = x.astype(dtype, copy=False)
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out["index"])
        if self._out["dtype"] in (np.int8, np.uint8):
            scale, zero = self._out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, dtype=np.float64).reshape(-1)

    def embedded_manifest(self) -> ModelManifest | None:
        from .tflite_metadata import read_tflite_metadata

        text = read_tflite_metadata(self.path)
        return ModelManifest.from_json(text, source=f"{self.path} metadata") if text else None


class OnnxRuntime(Runtime):
    name = "onnx"

    def __init__(self, path: Path, threads: int):
        super().__init__(path, threads)
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeUnavailableError(
                "ONNX models need onnxruntime: pip install 'diqa-edge[sdk]'") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own non-exported exception types
            raise ModelLoadError(f"{path}: not a loadable ONNX model ({exc})") from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise ModelLoadError(f"{path}: an image-quality model has one input and an output, this one has "
                                 f"{len(inputs)} and {len(outputs)}")
        inp = inputs[0]
        self._input_name = inp.name
        self.layout = _layout_from_shape([d if isinstance(d, int) else 1 for d in inp.shape], path)
        self.input_size = int(inp.shape[2 if self.layout == "NCHW" else 1])
        dims = outputs[0].shape[1:]
        self._width = int(np.prod(dims)) if all(isinstance(d, int) for d in dims) else None

    def output_width(self) -> int | None:
        return self._width

    def outputs(self, x: np.ndarray) -> np.ndarray:
        y = self._session.run(None, {self._input_name: x.astype(np.float32, copy=False)})[0]
        return np.asarray(y, dtype=np.float64).reshape(-1)

    def embedded_manifest(self) -> ModelManifest | None:
        meta = self._session.get_modelmeta().custom_metadata_map
        if MANIFEST_KEY not in meta:
            return None
        return ModelManifest.from_json(meta[MANIFEST_KEY], source=f"{self.path} metadata_props")


class TorchScriptRuntime(Runtime):
    """A TorchScript export of the trained model: the PyTorch reference in the full install."""

    name = "torchscript"

    def __init__(self, path: Path, threads: int):
        super().__init__(path, threads)
        try:
            import torch
        except ImportError:
            raise RuntimeUnavailableError(
                "TorchScript models need PyTorch: pip install 'diqa-edge[full]'") from None
        self._torch = torch
        torch.set_num_threads(threads)
        extra = {MANIFEST_KEY: ""}
        try:
            self._module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval()
        except Exception as exc:  # torch raises RuntimeError/ValueError/zipfile errors
            raise ModelLoadError(f"{path}: not a loadable TorchScript model ({exc})") from None
        self._manifest_text = extra[MANIFEST_KEY]
        self.layout = "NCHW"

    def outputs(self, x: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            y = self._module(self._torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return y.reshape(-1).double().numpy()

    def embedded_manifest(self) -> ModelManifest | None:
        if not self._manifest_text:
            return None
        text = self._manifest_text.decode() if isinstance(self._manifest_text, bytes) else self._manifest_text
        return ModelManifest.from_json(text, source=f"{self.path} extra file")


class CoreMLRuntime(Runtime):
    """Apple's runtime; only macOS has the Core ML framework that ``predict`` needs."""

    name = "coreml"

    def __init__(self, path: Path, threads: int):
        super().__init__(path, threads)
        if platform.system() != "Darwin":
            raise RuntimeUnavailableError(
                f"{path}: Core ML prediction needs macOS (this is {platform.system()}); "
                "use the .tflite or .onnx export of the same model here")
        try:
            import coremltools as ct
        except ImportError:
            raise RuntimeUnavailableError("Core ML models need coremltools: pip install coremltools") from None
        self._model = ct.models.MLModel(str(path))
        spec = self._model.get_spec()
        self._input_name = spec.description.input[0].name
        self._meta = dict(spec.description.metadata.userDefined)
        self.layout = "image"

    def outputs(self, x) -> np.ndarray:  # x: a PIL image already resized + cropped (ImageType input)
        out = self._model.predict({self._input_name: x})
        return np.asarray(next(iter(out.values())), dtype=np.float64).reshape(-1)

    def embedded_manifest(self) -> ModelManifest | None:
        if MANIFEST_KEY not in self._meta:
            return None
        return ModelManifest.from_json(self._meta[MANIFEST_KEY], source=f"{self.path} user metadata")


_RUNTIMES = {"tflite": TFLiteRuntime, "onnx": OnnxRuntime, "torchscript": TorchScriptRuntime,
             "coreml": CoreMLRuntime}


def model_format(path: str | Path) -> str:
    path = Path(path)
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ModelLoadError(f"{path}: unknown model format {path.suffix!r} "
                             f"(expected one of {', '.join(FORMATS)})") from None


MAX_THREADS = 64   # past the cores of any phone or laptop


def load_runtime(path: str | Path, threads: int = 2) -> Runtime:
    path = Path(path)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UsageError(f"threads must be a whole number >= 1, got {threads!r}")
    fmt = model_format(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: model file not found")
    if path.is_dir() and fmt != "coreml":
        raise ModelLoadError(f"{path}: is a folder, not a {fmt} model file")
    if not path.is_dir() and not path.is_file():   # a FIFO or a device: reading it blocked for 120 s
        raise ModelLoadError(f"{path}: not a regular file (a pipe or a device), not a {fmt} model file")
    if isinstance(threads, int) and threads > MAX_THREADS:
        raise UsageError(f"threads must be at most {MAX_THREADS}, got {threads}: more do not help and a "
                         "runtime with 100,000 never finished")
    verify_in_child(path, fmt)
    return _RUNTIMES[fmt](path, threads)


def probe_child(path: str, fmt: str) -> int:
    """The child of ``probe.verify_in_child``: load and run once under a memory cap; 0 when both work,
    ``HANDLED_ERROR`` on a Python-level error (MemoryError too: the cap turns an absurd allocation into
    one), its last stderr line naming it."""
    import sys

    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):  # not Linux / macOS, or a lower hard limit already
        pass
    try:
        runtime = _RUNTIMES[fmt](Path(path), 1)
        size = runtime.input_size
        shape = (1, 3, size, size) if runtime.layout == "NCHW" else (1, size, size, 3)
        runtime.outputs(np.zeros(shape, dtype=np.float32))
    except Exception as exc:  # noqa: BLE001 - reported by the parent, named
        print(f"{type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return HANDLED_ERROR
    return 0


if __name__ == "__main__":
    import os
    import sys

    code = probe_child(sys.argv[1], sys.argv[2])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)   # skip interpreter teardown: the verdict is given, nothing is left to free
