"""Decode any image file the way the phone app must: upright, 8-bit RGB, alpha on white.

Why each rule: a patient's photo arrives rotated by EXIF, sometimes as a
screenshot with alpha, a 16-bit PNG or a CMYK JPEG; the model was trained on
upright 8-bit RGB, so all of these are normalised here and nowhere else.
The contract's pixel budget is checked on the size the header announces,
before a pixel is decoded: a crafted 50k x 50k PNG or a 1 x 100,000 strip must
not take the phone's memory (Pillow's own bomb guard stays on behind it). HEIC
(an iPhone's default) decodes through ``pillow-heif`` when it is installed (the
``sdk`` extra installs it); AVIF through Pillow itself. Every failure becomes
one ``ImageDecodeError`` naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import errno
import io
import os
import stat
import struct
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..contract import Contract
from ..errors import ImageDecodeError

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image, np.ndarray]

try:  # HEIC / HEIF: the SDK extra installs pillow-heif; without it such files are refused by name
    from pillow_heif import register_heif_opener
except ImportError:  # pragma: no cover - exercised only on a bare install
    HEIF_SUPPORTED = False
else:
    register_heif_opener()
    HEIF_SUPPORTED = True

log = logging.getLogger(__name__)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ORIENTATION = 0x0112   # the EXIF orientation tag


def _integer_scale(img: Image.Image, arr: np.ndarray) -> float:
    """What one 8-bit step is in an integer grey image: 257 for 16-bit modes; for Pillow's 32-bit mode "I"
    (a 32-bit TIFF, or an older Pillow's 16-bit PNG) the range the values actually use: 1 when they fit
    0-255 (a 32-bit TIFF holding 8-bit values read black with the 16-bit rule), 257 when they fit 0-65535,
    else the full 32-bit range."""
    if img.mode != "I":
        return 257.0
    top = float(arr.max()) if arr.size else 0.0
    if top <= 255:
        return 1.0
    return 257.0 if top <= 65535 else 16843009.0   # (2**32 - 1) / 255


def _to_rgb8(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, compositing transparency on ``background``."""
    if img.mode in _SIXTEEN_BIT_MODES:
        # 16-bit grey: map 0..65535 onto 0..255 (round(v / 257)) instead of
        # Pillow's clipping convert, which would turn most of the image white.
        arr = np.asarray(img, dtype=np.float64)
        arr = np.clip(np.rint(arr / _integer_scale(img, arr)), 0, 255).astype(np.uint8)
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
    """How a source is named in messages: a path as given, anything else by its type (never its repr: a
    bytearray's repr is the whole photo, 441,202 characters for 154 KB)."""
    if isinstance(source, Image.Image):
        return "<PIL image>"
    if isinstance(source, (str, Path)):
        return str(source)
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return f"<file {name}>" if isinstance(name, str) else f"<{type(source).__name__}>"
    return f"<{type(source).__name__}>"


def _as_bytes(source) -> bytes | None:
    """The bytes of a bytes-like object (bytes, bytearray, memoryview) or of a readable file object
    (an open file, ``io.BytesIO``), read from where it stands; None for anything else."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise ImageDecodeError(_label(source), "a file object opened in text mode; open it with 'rb'")
        return bytes(data)
    return None


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    data = _as_bytes(source)
    if data is not None:
        if not data:
            raise ImageDecodeError(_label(source), "empty (0 bytes)")
        return _pillow_open(io.BytesIO(data))
    if not isinstance(source, (str, Path)) and not hasattr(source, "__fspath__"):
        raise ImageDecodeError(_label(source), "not a photo source: give a path, the file's bytes, a file "
                                               "object, a PIL image or an HxWx3 uint8 RGB array")
    path = Path(source)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageDecodeError(path, "broken symbolic link (its target does not exist)" if path.is_symlink()
                               else "file not found") from None
    except OSError as exc:
        raise ImageDecodeError(path, "symbolic link loop" if exc.errno == errno.ELOOP
                               else f"cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageDecodeError(path, "is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):   # a FIFO or /dev/zero: "empty file (0 bytes)" was the wrong reason
        raise ImageDecodeError(path, "not a regular file (a pipe, a socket or a device), not a photo")
    if st.st_size == 0:
        raise ImageDecodeError(path, "empty file (0 bytes)")
    return _pillow_open(path)


# The formats a photo of skin comes in (the README's list), by content: Pillow would otherwise run any of
# its ~40 decoders on whatever the file is called (an EPS named .jpg was handed to Ghostscript; XBM, QOI,
# SGI and ICO were scored). MPO (a phone's multi-picture JPEG) is opened by the JPEG plugin.
DECODABLE_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "HEIF", "AVIF")


def _pillow_open(fp) -> Image.Image:
    """Image.open without Pillow's raw DecompressionBombWarning: ``check_budget`` judges the size
    itself, with a reason (Pillow still raises above twice its own limit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(fp, formats=list(DECODABLE_FORMATS))
    if img.format in ("HEIF", "HEIC") and not HEIF_SUPPORTED:  # pragma: no cover
        raise ValueError("HEIC needs pillow-heif: pip install 'diqa-edge[sdk]'")
    return img


def check_budget(width: int, height: int, contract: Contract, label: str) -> None:
    """Refuse, before decoding, a size the contract's pixel budget does not allow."""
    if width < 1 or height < 1:
        raise ImageDecodeError(label, f"empty image ({width} x {height} pixels)")
    if width * height > contract.max_pixels:   # exact counts: "64.0 MP, the limit is 64 MP" read as a pass
        raise ImageDecodeError(label, f"too many pixels: {width} x {height} = {width * height:,} pixels, "
                                      f"the limit is {contract.max_pixels:,}")
    aspect = max(width, height) / min(width, height)
    if aspect > contract.max_aspect:
        ratio = f"{aspect:,.3f}".rstrip("0").rstrip(".")   # 1:8.002, not "1:8, the limit is 1:8"
        raise ImageDecodeError(label, f"too elongated to be a photo of skin: {width} x {height} "
                                      f"(sides 1:{ratio}, the limit is 1:{contract.max_aspect:g}); "
                                      "crop it to the skin")


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
        check_budget(source.shape[1], source.shape[0], contract, "<array>")
        return source
    label = _label(source)
    try:
        img = _open(source)
        # a PIL image the caller passed stays the caller's to close
        with contextlib.nullcontext(img) if img is source else img:
            if contract.decode == "jpeg_draft" and img.format == "JPEG":
                target = contract.draft_factor * contract.input_size
                img.draft("RGB", (target, target))
            check_budget(img.size[0], img.size[1], contract, label)
            frames = getattr(img, "n_frames", 1)
            if frames > 1 and img.format != "MPO":   # an MPO's first picture is the photo (the rest: depth, preview)
                log.warning("%s: %d frames (an animated or multi-page file); the first frame is scored", label, frames)
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
        raise ImageDecodeError(label, "not a photo in a supported format (" + ", ".join(DECODABLE_FORMATS)
                               + ")") from None
    except MemoryError:
        raise ImageDecodeError(label, "not enough memory to decode it") from None
    except (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError,
            struct.error, ZeroDivisionError) as exc:  # what Pillow's parsers raise on damaged files
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = f"truncated image data ({reason})"
        raise ImageDecodeError(label, reason) from None
