"""Decode any image file the way the phone app must: upright, 8-bit RGB, alpha on white.

Why each rule: a patient's photo arrives rotated by EXIF, sometimes as a
screenshot with alpha, a 16-bit PNG or a CMYK JPEG; the model was trained on
upright 8-bit RGB, so all of these are normalised here and nowhere else.
Pillow's decompression-bomb guard stays on (a crafted 50k x 50k PNG must not
take the phone's memory); every failure becomes one ``ImageDecodeError``
naming the file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..contract import Contract
from ..errors import ImageDecodeError

ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ORIENTATION = 0x0112   # the EXIF orientation tag


def _to_rgb8(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, compositing transparency on ``background``."""
    if img.mode in _SIXTEEN_BIT_MODES:
        # 16-bit grey: map 0..65535 onto 0..255 (round(v / 257)) instead of
        # Pillow's clipping convert, which would turn most of the image white.
        arr = np.asarray(img, dtype=np.float64)
        arr = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
    if img.mode == "F":
        raise ValueError("floating-point images (mode F) are not supported")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if img.mode != "RGB":
        return img.convert("RGB")
    return img


def _label(source: ImageSource) -> str:
    if isinstance(source, Image.Image):
        return "<PIL image>"
    if isinstance(source, bytes):
        return "<bytes>"
    return str(source)


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, bytes):
        return Image.open(io.BytesIO(source))
    path = Path(source)
    if not path.exists():
        raise ImageDecodeError(path, "file not found")
    if path.is_dir():
        raise ImageDecodeError(path, "is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageDecodeError(path, "empty file (0 bytes)")
    return Image.open(path)


def decode_image(source: ImageSource, contract: Contract) -> np.ndarray:
    """Return the image as an upright HxWx3 uint8 RGB array.

    ``source`` may be a path, the file's bytes, a PIL image or an HxWx3 uint8
    array (taken as already decoded RGB). With ``contract.decode ==
    "jpeg_draft"``, a JPEG much larger than the model input is decoded at 1/2,
    1/4 or 1/8 scale by libjpeg (DCT-domain scaling, what phone decoders use for
    thumbnails), keeping both sides >= ``draft_factor * input_size``.
    """
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
            raise ImageDecodeError("<array>", f"expected HxWx3 uint8 RGB, got {source.dtype} {source.shape}")
        return source
    label = _label(source)
    try:
        img = _open(source)
        with img:
            if contract.decode == "jpeg_draft" and img.format == "JPEG":
                target = contract.draft_factor * contract.input_size
                img.draft("RGB", (target, target))
            img.load()
            # exif_transpose copies the whole image even when nothing turns (3.5 ms on a draft-decoded
            # 12 MP photo): call it only when the orientation tag asks for a turn
            if contract.exif_orientation and img.getexif().get(_ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
            rgb = _to_rgb8(img, contract.alpha_background)
            return np.array(rgb, dtype=np.uint8)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(label, f"refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(label, "not an image file Pillow can identify") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = f"truncated image data ({reason})"
        raise ImageDecodeError(label, reason) from None
