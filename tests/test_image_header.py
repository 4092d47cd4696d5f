"""Image sizes from file headers: what `picar read` checks before it decodes anything."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from picar.tools.image_header import image_size
from picar.tools.read import MAX_IMAGE_MEGAPIXELS, load_photo
from tests.test_read_cli import png_claiming

IMAGE = np.random.default_rng(0).integers(0, 255, (23, 37, 3), np.uint8)  # 37 wide, 23 high


@pytest.mark.parametrize(
    ("ext", "params"),
    [
        (".png", []),
        (".jpg", []),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        (".bmp", []),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),  # lossy (VP8)
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless (VP8L)
        (".tiff", []),
        (".ppm", []),
        (".gif", []),
    ],
)
def test_the_size_of_what_opencv_writes(tmp_path: Path, ext: str, params: list[int]) -> None:
    ok, buf = cv2.imencode(ext, IMAGE, params)
    assert ok
    path = tmp_path / f"img{ext}"
    path.write_bytes(buf.tobytes())
    assert image_size(path) == (37, 23)


def jpeg_claiming(width: int, height: int) -> bytes:
    """SOI, an APP1 and a COM segment to walk over, then a baseline SOF with the claimed size."""
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6) + b"Exif\0\0"
    com = b"\xff\xfe" + struct.pack(">H", 2 + 5) + b"hello"
    sof = b"\xff\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app1 + com + sof + b"\xff\xd9"


def test_crafted_headers_give_the_size_they_claim(tmp_path: Path) -> None:
    cases = {
        "a.png": png_claiming(100_000, 100_000),
        "b.jpg": jpeg_claiming(60_000, 50_000),
        "c.bmp": b"BM" + b"\0" * 12 + struct.pack("<Iii", 40, 30_000, -20_000) + b"\0" * 40,
        "d.gif": b"GIF89a" + struct.pack("<HH", 65_535, 65_535) + b"\0" * 30,
        "e.webp": b"RIFF\0\0\0\0WEBPVP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (2**24 - 1).to_bytes(3, "little") * 2,
        "f.ppm": b"P6\n# made by hand\n70000 70000\n255\n",
    }
    expected = [(100_000, 100_000), (60_000, 50_000), (30_000, 20_000), (65_535, 65_535), (2**24, 2**24),
                (70_000, 70_000)]  # fmt: skip
    for (name, data), size in zip(cases.items(), expected, strict=True):
        (tmp_path / name).write_bytes(data)
        assert image_size(tmp_path / name) == size, name
        refused = load_photo(tmp_path / name)
        assert refused == f"image too large: {size[0]}x{size[1]} pixels (limit {MAX_IMAGE_MEGAPIXELS} megapixels)"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, not an image",
        b"\x89PNG\r\n\x1a\n\0\0",  # cut short
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # a JPEG cut off before its frame header
        b"\xff\xd8\xff\xda\x00\x08",  # scan data before any frame header
        b"\xff\xd8" + b"\xff\xfe\x00\x02" * 5000,  # endless empty comments
        b"GIF89a\0\0\0\0",  # zero size
        b"P6 37",  # no height
        b"#?RADIANCE\n",  # a format OpenCV reads but whose size is not checked here
    ],
)
def test_no_size_from_junk_or_cut_headers(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.img"
    path.write_bytes(data)
    assert image_size(path) is None
    assert load_photo(path) == "not a readable image"


def test_a_photo_under_the_limit_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    cv2.imwrite(str(path), IMAGE)
    image = load_photo(path)
    assert isinstance(image, np.ndarray) and image.shape == (23, 37, 3)
    assert load_photo(tmp_path / "missing.png") == "file not found"
