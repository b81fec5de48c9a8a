"""The contract's preprocessing, as the phone must do it; training's eval transform calls this too.

Every step is spelled out for Kotlin / Swift re-implementers in
``docs/preprocessing.md``. In short, for an upright 8-bit RGB image W x H and
``S = contract.input_size``:

1. Resize so the shorter side is S, aspect kept: if H <= W the new size is
   (W * S // H) x S, else S x (H * S // W) (integer floor division). The
   filter is Pillow's BILINEAR: a triangle kernel of radius ``max(scale, 1)``
   source pixels (scale = source/target), sample centres at (i + 0.5) * scale,
   weights normalised per output pixel; horizontal pass first, rounded to
   uint8, then vertical pass, rounded to uint8. Shrinking therefore averages
   every source pixel under the kernel (antialiasing).
2. Center crop S x S: left = (W' - S) // 2, top = (H' - S) // 2.
3. Normalise in float32: x = (p / 255 - mean[c]) / std[c].
4. Layout: NCHW (PyTorch, ONNX) or NHWC (TFLite), batch of one.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..contract import Contract
from .decode import ImageSource, decode_image


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(new_width, new_height) with the shorter side at ``size``, aspect kept, floor rounding."""
    if height <= width:
        return max(size, width * size // height), size
    return size, max(size, height * size // width)


def resize_shorter_side(rgb: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize (Pillow BILINEAR) so the shorter side is ``size``."""
    height, width = rgb.shape[:2]
    new_w, new_h = resized_size(width, height, size)
    if (new_w, new_h) == (width, height):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR))


def center_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} from {width}x{height}")
    top, left = (height - size) // 2, (width - size) // 2
    return rgb[top:top + size, left:left + size]


def resize_and_crop(rgb: np.ndarray, contract: Contract) -> np.ndarray:
    """Steps 1-2: the SxSx3 uint8 crop the model sees."""
    size = contract.input_size
    return center_crop(resize_shorter_side(rgb, size), size)


def normalise(crop: np.ndarray, contract: Contract) -> np.ndarray:
    """Step 3: HxWx3 uint8 -> HxWx3 float32, (p / 255 - mean) / std."""
    mean = np.asarray(contract.mean, dtype=np.float32)
    std = np.asarray(contract.std, dtype=np.float32)
    return (crop.astype(np.float32) / np.float32(255.0) - mean) / std


def to_layout(hwc: np.ndarray, layout: str) -> np.ndarray:
    """Step 4: add the batch axis in the layout the runtime wants."""
    if layout == "NCHW":
        return np.ascontiguousarray(hwc.transpose(2, 0, 1)[None])
    if layout == "NHWC":
        return np.ascontiguousarray(hwc[None])
    raise ValueError(f"unknown layout {layout!r}")


def preprocess_rgb(rgb: np.ndarray, contract: Contract, layout: str | None = None) -> np.ndarray:
    """Decoded RGB uint8 -> the exact model input (float32, batch of one)."""
    return to_layout(normalise(resize_and_crop(rgb, contract), contract), layout or contract.layout)


def preprocess(source: ImageSource, contract: Contract, layout: str | None = None) -> np.ndarray:
    """File / bytes / PIL image -> the exact model input (decode included)."""
    return preprocess_rgb(decode_image(source, contract), contract, layout)
