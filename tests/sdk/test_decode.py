"""Decoding: every EXIF orientation lands upright, every mode becomes 8-bit RGB, bad files get one typed error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES, gradient_image
from diqa_edge.contract import DEFAULT_CONTRACT as C
from diqa_edge.errors import ImageDecodeError
from diqa_edge.sdk.decode import decode_image

# How a camera stores an upright image for each EXIF orientation (TIFF/EXIF 2.3
# spec, written with numpy, independent of Pillow's exif_transpose table).
STORED_FROM_UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],                      # mirrored horizontally
    3: lambda a: a[::-1, ::-1],                   # rotated 180
    4: lambda a: a[::-1, :],                      # mirrored vertically
    5: lambda a: a.transpose(1, 0, 2),            # mirrored along the main diagonal
    6: lambda a: np.rot90(a, k=1),                # display needs 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # mirrored along the anti-diagonal
    8: lambda a: np.rot90(a, k=-1),               # display needs 90 degrees counter-clockwise
}


def _with_orientation(arr: np.ndarray, orientation: int, fmt: str) -> bytes:
    img = Image.fromarray(np.ascontiguousarray(arr))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format=fmt, exif=exif, **({"quality": 98} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_lands_the_same_pixels(orientation):
    upright = gradient_image(40, 24)
    stored = STORED_FROM_UPRIGHT[orientation](upright)
    got = decode_image(_with_orientation(stored, orientation, "PNG"), C)
    assert got.shape == upright.shape
    assert np.array_equal(got, upright)  # PNG is lossless: exactly the same pixels


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_on_jpeg(orientation):
    upright = gradient_image(64, 48, noise=0)  # smooth, so JPEG loss stays small
    got = decode_image(_with_orientation(STORED_FROM_UPRIGHT[orientation](upright), orientation, "JPEG"), C)
    assert got.shape == upright.shape
    error = np.abs(got.astype(int) - upright).mean()
    wrong = np.abs(got[::-1, ::-1].astype(int) - upright).mean()  # what a 180-degree mistake costs
    assert error < 3 and wrong > 40, (error, wrong)


def test_orientation_ignored_when_contract_says_so():
    upright = gradient_image(40, 24)
    blob = _with_orientation(np.rot90(upright, 1), 6, "PNG")
    got = decode_image(blob, C.replace(exif_orientation=False))
    assert got.shape == (40, 24, 3)


def _save(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_modes_become_8bit_rgb_with_alpha_on_white():
    # L: grey copies into three channels
    got = decode_image(_save(Image.new("L", (4, 3), 100)), C)
    assert got.dtype == np.uint8 and got.shape == (3, 4, 3) and (got == 100).all()
    # LA fully transparent: white background
    assert (decode_image(_save(Image.new("LA", (4, 3), (10, 0))), C) == 255).all()
    # RGBA half transparent: c * a + 255 * (1 - a), a = 128 / 255
    got = decode_image(_save(Image.new("RGBA", (4, 3), (200, 0, 40, 128))), C)
    expected = np.rint(np.array([200, 0, 40]) * 128 / 255 + 255 * (1 - 128 / 255))
    assert np.abs(got[0, 0].astype(int) - expected).max() <= 1
    # P with a palette
    p = Image.new("P", (4, 3), 1)
    p.putpalette([0, 0, 0, 12, 34, 56] + [0] * 762)
    assert (decode_image(_save(p), C)[0, 0] == [12, 34, 56]).all()
    # P with a transparent index: white
    p.info["transparency"] = 1
    assert (decode_image(_save(p, transparency=1), C) == 255).all()
    # CMYK: no ink is white
    assert (decode_image(_save(Image.new("CMYK", (4, 3), (0, 0, 0, 0)), "JPEG", quality=100), C) >= 254).all()
    # 16-bit grey: 25700 / 257 = 100 (scaled, not clipped to 255)
    i16 = Image.fromarray(np.full((3, 4), 25700, np.uint16))
    assert i16.mode == "I;16"
    assert (decode_image(_save(i16), C) == 100).all()
    # RGB untouched
    rgb = gradient_image(5, 4)
    assert np.array_equal(decode_image(_save(Image.fromarray(rgb)), C), rgb)


def test_alpha_background_comes_from_the_contract():
    blob = _save(Image.new("RGBA", (2, 2), (0, 0, 0, 0)))
    got = decode_image(blob, C.replace(alpha_background=(0, 128, 0)))
    assert (got[0, 0] == [0, 128, 0]).all()


@pytest.fixture()
def bad_files(tmp_path):
    good = (SAMPLES / "photo_coffee.jpg").read_bytes()
    files = {
        "zero-byte": tmp_path / "empty.jpg",
        "truncated": tmp_path / "truncated.jpg",
        "not an image": tmp_path / "notes.jpg",
        "missing": tmp_path / "missing.jpg",
        "directory": tmp_path / "folder.jpg",
    }
    files["zero-byte"].write_bytes(b"")
    files["truncated"].write_bytes(good[: len(good) // 3])
    files["not an image"].write_text("these are not pixels\n")
    files["directory"].mkdir()
    return files


@pytest.mark.parametrize("kind, reason", [
    ("zero-byte", "empty file"), ("truncated", "truncated"), ("not an image", "not a photo in a supported format"),
    ("missing", "not found"), ("directory", "directory")])
def test_bad_inputs_raise_one_typed_error_naming_the_file(bad_files, kind, reason):
    path = bad_files[kind]
    with pytest.raises(ImageDecodeError) as info:
        decode_image(path, C)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert reason in info.value.reason


def test_decompression_bomb_guard_stays_on(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # 90,000 px > 2 x limit
    with pytest.raises(ImageDecodeError, match="decompression bomb") as info:
        decode_image(path, C)
    assert info.value.path == str(path)


def test_arrays_pass_through_and_bad_arrays_are_refused():
    rgb = gradient_image(8, 6)
    assert decode_image(rgb, C) is rgb
    with pytest.raises(ImageDecodeError):
        decode_image(rgb.astype(np.float32), C)


def test_pixel_budget_refuses_before_decoding(tmp_path):
    """A 1 x 100,000 strip (476 bytes) used to ask for a 512 x 51,200,000 buffer; a 100 MP PNG of a few
    hundred bytes decoded at 1.7 GB. Both are refused from the header, with the contract's limit."""
    strip, huge = tmp_path / "strip.png", tmp_path / "huge.png"
    Image.new("RGB", (1, 100_000)).save(strip)
    Image.new("1", (10_000, 10_000)).save(huge)     # 100 MP, tiny on disk
    with pytest.raises(ImageDecodeError, match="too elongated.*1:8"):
        decode_image(strip, C)
    with pytest.raises(ImageDecodeError, match="too many pixels: 10000 x 10000 = 100,000,000 pixels, the limit is 64,000,000"):
        decode_image(huge, C)
    assert decode_image(huge, C.replace(max_pixels=100_000_000)).shape == (10_000, 10_000, 3)
    # issue 32: just past the limits read as within them ("64.0 MP, the limit is 64 MP", "1:8, the limit is 1:8")
    Image.new("1", (8001, 8000)).save(huge)
    with pytest.raises(ImageDecodeError, match="= 64,008,000 pixels, the limit is 64,000,000"):
        decode_image(huge, C)
    Image.new("RGB", (4097, 512)).save(strip)
    with pytest.raises(ImageDecodeError, match=r"sides 1:8\.002, the limit is 1:8\)"):
        decode_image(strip, C)


def test_a_pipe_or_a_device_is_not_called_an_empty_file(tmp_path):
    """Issue 32: FIFOs and /dev/zero were reported as "empty file (0 bytes)"."""
    import os

    os.mkfifo(tmp_path / "photo.jpg")
    for path in (tmp_path / "photo.jpg", "/dev/zero"):
        with pytest.raises(ImageDecodeError, match="not a regular file"):
            decode_image(path, C)


def test_empty_inputs_are_typed_errors():
    with pytest.raises(ImageDecodeError, match="empty image"):
        decode_image(np.zeros((0, 0, 3), np.uint8), C)
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"", C)


def test_a_callers_pil_image_stays_open():
    img = Image.fromarray(gradient_image(40, 30))
    decode_image(img, C)
    assert img.getpixel((0, 0)) is not None     # a closed image raises here


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("orientation", [1, 6])
def test_heic_and_avif_decode_upright(fmt, orientation):
    """iPhones save HEIC by default; AVIF is the web's. Both decode upright: an iPhone stores the turn
    as the container's rotation (with the same EXIF tag), which pillow-heif writes from ``info['exif']``
    and applies on reading."""
    upright = gradient_image(96, 64, noise=0)
    img = Image.fromarray(np.ascontiguousarray(STORED_FROM_UPRIGHT[orientation](upright)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.info["exif"] = exif.tobytes()
    buf = io.BytesIO()
    img.save(buf, format=fmt, exif=exif.tobytes(), quality=95)
    blob = buf.getvalue()
    assert Image.open(io.BytesIO(blob)).format == fmt
    got = decode_image(blob, C)
    assert got.shape == upright.shape
    assert np.abs(got.astype(int) - upright.astype(int)).mean() < 6    # lossy, but the same picture


@pytest.mark.parametrize("fmt", ["XBM", "ICO", "SGI", "QOI", "EPS", "PCX", "TGA"])
def test_only_the_documented_formats_are_decoded_by_content(fmt):
    """Issue 32: every Pillow decoder ran on whatever a file was called (an EPS named .jpg went to
    Ghostscript; XBM, QOI, SGI and ICO were scored); now the documented formats only, by content."""
    import io

    from diqa_edge.contract import DEFAULT_CONTRACT
    from diqa_edge.errors import ImageDecodeError
    from diqa_edge.sdk.decode import decode_image

    buf = io.BytesIO()
    Image.new("1" if fmt == "XBM" else "RGB", (300, 300)).save(buf, format=fmt)
    with pytest.raises(ImageDecodeError, match=r"not a photo in a supported format \(JPEG, PNG, WEBP"):
        decode_image(buf.getvalue(), DEFAULT_CONTRACT)


def test_browser_and_old_jpeg_names_are_scored_in_a_folder(tmp_path):
    """.jfif (a JPEG saved from a browser on Windows), .jpe and .apng were skipped 'not an image by name'."""
    from diqa_edge.sdk.cli import collect_images

    for name in ("a.jfif", "b.jpe", "c.apng"):
        Image.new("RGB", (300, 300), (180, 120, 110)).save(tmp_path / name, format="PNG" if name.endswith("png") else "JPEG")
    files, failures, skipped = collect_images([str(tmp_path)])
    assert sorted(p.name for p in files) == ["a.jfif", "b.jpe", "c.apng"] and not skipped and not failures
    assert all(decode_image(p, C).shape == (300, 300, 3) for p in files)


def test_a_32_bit_integer_tiff_is_read_by_the_range_its_values_use(tmp_path):
    """Issue 32: a 32-bit integer TIFF (mode I) holding 0-255 was read with the 16-bit rule (v / 257): black."""
    values = np.tile(np.arange(0, 256, 1, dtype=np.int32), (300, 2))[:, :300]
    Image.fromarray(values, mode="I").save(tmp_path / "eight.tif")
    Image.fromarray(values * 257, mode="I").save(tmp_path / "sixteen.tif")
    for name in ("eight.tif", "sixteen.tif"):
        rgb = decode_image(tmp_path / name, C)
        assert np.array_equal(rgb[..., 0], values.astype(np.uint8)), name


def test_an_animated_or_multi_page_file_says_which_frame_is_scored(tmp_path, caplog):
    """Issue 32: an animated GIF or a multi-page TIFF was scored on its first frame without a word."""
    frames = [Image.new("RGB", (300, 300), (v, v, v)) for v in (40, 200)]
    frames[0].save(tmp_path / "two.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "two.tif", save_all=True, append_images=frames[1:])
    for name in ("two.gif", "two.tif"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="diqa_edge"):
            rgb = decode_image(tmp_path / name, C)
        assert abs(int(rgb.mean()) - 40) <= 2                      # the first frame
        assert "2 frames (an animated or multi-page file); the first frame is scored" in caplog.text, name
