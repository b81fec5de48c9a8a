"""Execute a saved Core ML ML Program in NumPy, op by op, so Linux can check what only macOS can run.

A checker, not a runtime: it reads the ``.mlpackage`` with coremltools (spec and
weight blobs, no Core ML framework) and evaluates the program's operations in
order. The image input is fed the way Core ML feeds an ImageType: the 8-bit
pixels as floats (0-255) in the channel order the model description states;
the program's own ``mul`` / ``add`` ops then apply its scale and bias, so a
wrong scale, bias or colour order shows up here as it would on a phone.

Dtypes follow the program: every op's output is rounded to the dtype it
declares (float16 where the program says fp16); element-wise fp16 ops compute
in float16; conv and linear accumulate in float32 and round their result to
the declared dtype (as Apple's GPU does). An op this executor does not know is
an error naming it, never a silent skip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..sdk.preprocess import to_layout
from .formats import ExportError

_DTYPES = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "int8": np.int8, "uint8": np.uint8,
           "bool": np.bool_}


class UnknownOpError(ExportError):
    """The program uses an operation the reference executor does not implement."""


def _np_dtype(var) -> type | None:
    name = getattr(var.dtype, "__name__", str(var.dtype))
    return _DTYPES.get(name)


def _conv(x, w, b, strides, pad, dilations, groups):
    n, c, h, wd = x.shape
    pt, pb, pl, pr = (int(v) for v in pad)
    x = np.pad(x.astype(np.float32), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    kh, kw = w.shape[2:]
    dh, dw = (int(v) for v in dilations)
    sh, sw = (int(v) for v in strides)
    win = sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]            # n, c, ho, wo, kh, kw
    w = w.astype(np.float32)
    if groups == 1:
        out = np.einsum("nchwij,ocij->nohw", win, w, optimize=True)
    elif groups == c and w.shape[1] == 1:               # depthwise
        mult = w.shape[0] // c
        out = np.einsum("nchwij,cmij->ncmhw", win, w.reshape(c, mult, kh, kw), optimize=True)
        out = out.reshape(n, c * mult, *out.shape[3:])
    else:
        cg, og = c // groups, w.shape[0] // groups
        out = np.concatenate([np.einsum("nchwij,ocij->nohw", win[:, g * cg:(g + 1) * cg],
                                        w[g * og:(g + 1) * og], optimize=True) for g in range(groups)], axis=1)
    if b is not None:
        out = out + b.astype(np.float32).reshape(1, -1, 1, 1)
    return out


def _same_pad(x_shape, w_shape, strides, dilations):
    pads = []
    for size, k, s, d in zip(x_shape[2:], w_shape[2:], strides, dilations):
        eff = (k - 1) * d + 1
        out = -(-size // s)
        total = max((out - 1) * s + eff - size, 0)
        pads += [total // 2, total - total // 2]
    return pads


class ReferenceExecutor:
    """``ReferenceExecutor(path).run(rgb_crop)`` -> the model's output; ``trace`` keeps every op's value."""

    def __init__(self, path: str | Path):
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

        self.path = Path(path)
        self.spec = ct.utils.load_spec(str(self.path))
        weights = self.path / "Data" / "com.apple.CoreML" / "weights"
        self.program = milproto_load(model_spec=self.spec, specification_version=self.spec.specificationVersion,
                                     file_weights_dir=str(weights))
        self.function = self.program.functions["main"]
        inp = self.spec.description.input[0]
        if inp.type.WhichOneof("Type") != "imageType":
            raise ExportError(f"{self.path}: the reference executor expects an image input")
        from coremltools.proto import FeatureTypes_pb2

        self.input_name = inp.name
        self.colour = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(inp.type.imageType.colorSpace)
        self.size = (inp.type.imageType.height, inp.type.imageType.width)
        self.ops = list(self.function.operations)
        unknown = sorted({op.op_type for op in self.ops} - set(self._HANDLERS))
        if unknown:
            raise UnknownOpError(f"{self.path}: the reference executor does not implement op(s): {', '.join(unknown)}")

    def image_tensor(self, rgb_crop: np.ndarray) -> np.ndarray:
        """What Core ML hands the program for an ImageType: pixels as float, NCHW, in the declared order."""
        if rgb_crop.shape[:2] != self.size:
            raise ValueError(f"image is {rgb_crop.shape[:2]}, the model takes {self.size}")
        pixels = rgb_crop[..., ::-1] if self.colour == "BGR" else rgb_crop
        return to_layout(pixels.astype(np.float32), "NCHW")

    LAYER_OPS = ("conv", "linear")

    def run(self, rgb_crop: np.ndarray, trace: dict | None = None, taps: list | None = None) -> float:
        """The score; ``trace`` collects every op's value by name, ``taps`` the input of every conv / linear
        op in program order (what ``coreml_layers`` compares with PyTorch layer by layer)."""
        return float(self.outputs(rgb_crop, trace, taps)[0])

    def outputs(self, rgb_crop: np.ndarray, trace: dict | None = None, taps: list | None = None) -> np.ndarray:
        """The program's whole output vector: the score, then the reasons head's probabilities if any."""
        env: dict[str, np.ndarray] = {self.input_name: self.image_tensor(rgb_crop)}

        def value_of(v):
            if isinstance(v, (list, tuple)):   # variadic inputs (concat's values)
                return [value_of(e) for e in v]
            return v.val if v.val is not None and v.name not in env else env[v.name]

        for op in self.ops:
            handler = self._HANDLERS[op.op_type]
            args = {k: value_of(v) for k, v in op.inputs.items()}
            value = handler(self, op, args)
            if taps is not None and op.op_type in self.LAYER_OPS:
                taps.append((op.name, np.asarray(args["x"], dtype=np.float32)))
            out = op.outputs[0]
            dtype = _np_dtype(out)
            if dtype is not None and isinstance(value, np.ndarray) and value.dtype != dtype:
                value = value.astype(dtype)
            env[out.name] = value
            if trace is not None and op.op_type not in ("const",) and not op.op_type.startswith("constexpr"):
                trace[out.name] = value
        result = env[self.function.outputs[0].name]
        return np.asarray(result, dtype=np.float64).reshape(-1)

    def manifest(self) -> dict:
        """The diqa-edge manifest stored in the package's metadata ({} if it has none)."""
        import json

        from ..sdk.manifest import MANIFEST_KEY

        text = dict(self.spec.description.metadata.userDefined).get(MANIFEST_KEY)
        return json.loads(text) if text else {}

    # --- ops ---------------------------------------------------------------
    def _const(self, op, a):
        return op.outputs[0].val

    def _binary(fn):
        def handler(self, op, a):
            x, y = np.asarray(a["x"]), np.asarray(a["y"])
            dtype = _np_dtype(op.outputs[0]) or np.float32
            return fn(x.astype(dtype), y.astype(dtype))
        return handler

    def _cast(self, op, a):
        return np.asarray(a["x"]).astype(_DTYPES[str(a["dtype"])])

    def _conv_op(self, op, a):
        x, w = a["x"], a["weight"]
        strides = list(a.get("strides", [1, 1]))
        dilations = list(a.get("dilations", [1, 1]))
        pad_type = str(a.get("pad_type", "valid"))
        if pad_type == "custom":
            pad = list(a["pad"])
        elif pad_type == "valid":
            pad = [0, 0, 0, 0]
        elif pad_type in ("same", "same_lower"):
            pad = _same_pad(x.shape, w.shape, strides, dilations)
        else:
            raise UnknownOpError(f"conv pad_type {pad_type!r} is not implemented")
        return _conv(x, w, a.get("bias"), strides, pad, dilations, int(a.get("groups", 1)))

    def _linear(self, op, a):
        out = a["x"].astype(np.float32) @ a["weight"].astype(np.float32).T
        if a.get("bias") is not None:
            out = out + a["bias"].astype(np.float32)
        return out

    def _clip(self, op, a):
        return np.clip(a["x"], a["alpha"], a["beta"])

    def _relu(self, op, a):
        return np.maximum(a["x"], 0)

    def _relu6(self, op, a):
        return np.clip(a["x"], 0, 6)

    def _sigmoid(self, op, a):
        x = a["x"].astype(np.float32)
        return 1 / (1 + np.exp(-x))

    def _silu(self, op, a):
        x = a["x"].astype(np.float32)
        return x / (1 + np.exp(-x))

    def _reduce_mean(self, op, a):
        axes = tuple(int(v) for v in a["axes"]) if a.get("axes") is not None else None
        return np.mean(a["x"].astype(np.float32), axis=axes, keepdims=bool(a.get("keep_dims", False)))

    def _reduce_sum(self, op, a):
        axes = tuple(int(v) for v in a["axes"]) if a.get("axes") is not None else None
        return np.sum(a["x"].astype(np.float32), axis=axes, keepdims=bool(a.get("keep_dims", False)))

    def _exp(self, op, a):
        return np.exp(a["x"].astype(np.float32))

    def _sqrt(self, op, a):
        return np.sqrt(a["x"].astype(np.float32))

    def _slice_by_index(self, op, a):
        """MIL's strided slice: per axis begin / end / stride, masks that take the whole side, and
        axes squeezed away."""
        x = np.asarray(a["x"])
        n = x.ndim
        begin, end = [int(v) for v in a["begin"]], [int(v) for v in a["end"]]
        stride = [int(v) for v in a["stride"]] if a.get("stride") is not None else [1] * n
        masks = {k: [bool(v) for v in a[k]] if a.get(k) is not None else [False] * n
                 for k in ("begin_mask", "end_mask", "squeeze_mask")}
        index = tuple(slice(None if masks["begin_mask"][i] else begin[i],
                            None if masks["end_mask"][i] else end[i], stride[i]) for i in range(n))
        out = x[index]
        squeeze = tuple(i for i in range(n) if masks["squeeze_mask"][i])
        return np.squeeze(out, axis=squeeze) if squeeze else out

    def _concat(self, op, a):
        if bool(a.get("interleave", False)):
            raise UnknownOpError("concat with interleave=True is not implemented")
        dtype = _np_dtype(op.outputs[0]) or np.float32
        return np.concatenate([np.asarray(v).astype(dtype) for v in a["values"]], axis=int(a["axis"]))

    def _avg_pool(self, op, a):
        raise UnknownOpError("avg_pool is not implemented (not produced by the exported backbones)")

    def _reshape(self, op, a):
        return np.reshape(a["x"], [int(v) for v in a["shape"]])

    def _squeeze(self, op, a):
        axes = tuple(int(v) for v in a["axes"]) if a.get("axes") is not None else None
        return np.squeeze(a["x"], axis=axes)

    def _expand_dims(self, op, a):
        out = a["x"]
        for axis in sorted(int(v) for v in a["axes"]):
            out = np.expand_dims(out, axis)
        return out

    def _transpose(self, op, a):
        return np.transpose(a["x"], [int(v) for v in a["perm"]])

    def _dequantize(self, op, a):
        q = a["quantized_data"].astype(np.float32)
        zero, scale, axis = a["zero_point"], a["scale"], int(a["axis"])
        shape = [1] * q.ndim
        if np.ndim(scale):
            shape[axis] = -1
        zero = np.asarray(zero, np.float32).reshape(shape if np.ndim(zero) else [])
        scale = np.asarray(scale, np.float32).reshape(shape if np.ndim(scale) else [])
        return ((q - zero) * scale).astype(_np_dtype(op.outputs[0]) or np.float32)

    _HANDLERS = {
        "const": _const, "add": _binary(np.add), "sub": _binary(np.subtract), "mul": _binary(np.multiply),
        "real_div": _binary(np.divide), "cast": _cast, "conv": _conv_op, "linear": _linear, "clip": _clip,
        "relu": _relu, "relu6": _relu6, "sigmoid": _sigmoid, "silu": _silu, "reduce_mean": _reduce_mean,
        "avg_pool": _avg_pool, "reshape": _reshape, "squeeze": _squeeze, "expand_dims": _expand_dims,
        "transpose": _transpose, "constexpr_affine_dequantize": _dequantize, "concat": _concat,
        # the frozen feature model: standard deviations of the stages, the SVR's RBF kernel
        "reduce_sum": _reduce_sum, "exp": _exp, "sqrt": _sqrt, "pow": _binary(np.power),
        "slice_by_index": _slice_by_index,
    }


