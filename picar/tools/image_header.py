"""An image's size from its file header, read before anything is decoded.

`picar read` asks this first so that an image too large to decode within bounded memory is refused
without decoding it: a PNG of a few hundred bytes can claim 100000x100000 pixels, and a decoder
allocates what the header claims. Only the header is read (a few bytes, or a walk over JPEG segment
and TIFF directory headers by seeking), never the pixel data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_MAX_STEPS = 4096  # JPEG segments or TIFF entries walked before giving up on a header

Size = tuple[int, int]


def image_size(path: Path) -> Size | None:
    """(width, height) from the header of a JPEG, PNG, BMP, WebP, TIFF, GIF or PNM file; None when the
    file is none of these or its header is cut short or makes no sense. Raises OSError if unreadable."""
    with path.open("rb") as fh:
        head = fh.read(32)
        for magic, reader in _READERS:
            if head.startswith(magic):
                try:
                    size = reader(fh, head)
                except (struct.error, ValueError):
                    return None
                return size if size is not None and size[0] > 0 and size[1] > 0 else None
    return None


def _png(fh: BinaryIO, head: bytes) -> Size | None:
    if head[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", head[16:24])
    return w, h


def _gif(fh: BinaryIO, head: bytes) -> Size | None:
    w, h = struct.unpack("<HH", head[6:10])
    return w, h


def _bmp(fh: BinaryIO, head: bytes) -> Size | None:
    (dib,) = struct.unpack("<I", head[14:18])
    if dib == 12:  # BITMAPCOREHEADER: 16-bit sizes
        w, h = struct.unpack("<HH", head[18:22])
        return w, h
    w, h = struct.unpack("<ii", head[18:26])
    return w, abs(h)  # a negative height is a top-down bitmap


def _webp(fh: BinaryIO, head: bytes) -> Size | None:
    if head[8:12] != b"WEBP":
        return None
    kind = head[12:16]
    if kind == b"VP8X":  # extended: the canvas, 24-bit sizes minus one
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    if kind == b"VP8L":  # lossless: 14-bit sizes minus one after the 0x2f signature
        if head[20:21] != b"\x2f":
            return None
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 ":  # lossy: the key frame's start code, then 14-bit sizes
        if head[23:26] != b"\x9d\x01\x2a":
            return None
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


# JPEG start-of-frame markers: baseline, extended, progressive, lossless, hierarchical, arithmetic.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn stand alone


def _jpeg(fh: BinaryIO, head: bytes) -> Size | None:
    fh.seek(2)
    for _ in range(_MAX_STEPS):
        byte = fh.read(1)
        if byte != b"\xff":
            return None
        marker = fh.read(1)
        while marker == b"\xff":  # fill bytes
            marker = fh.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in _NO_LENGTH:
            continue
        if code in (0xD8, 0xD9, 0xDA):  # SOI again, EOI or start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", fh.read(2))
        if code in _SOF:
            h, w = struct.unpack(">xHH", fh.read(5))
            return w, h
        if length < 2:
            return None
        fh.seek(length - 2, 1)
    return None


def _tiff(fh: BinaryIO, head: bytes) -> Size | None:
    order = "<" if head[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", head[4:8])
    fh.seek(offset)
    (count,) = struct.unpack(order + "H", fh.read(2))
    found: dict[int, int] = {}
    for _ in range(min(count, _MAX_STEPS)):
        tag, kind, _n, value = struct.unpack(order + "HHI4s", fh.read(12))
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG, held in the entry itself
            if kind == 3:
                found[tag] = struct.unpack(order + "H", value[:2])[0]
            elif kind == 4:
                found[tag] = struct.unpack(order + "I", value)[0]
    if 256 not in found or 257 not in found:
        return None
    return found[256], found[257]


def _pnm(fh: BinaryIO, head: bytes) -> Size | None:
    fh.seek(2)
    numbers: list[int] = []
    token = b""
    for _ in range(_MAX_STEPS):  # whitespace-separated width and height; '#' starts a comment line
        c = fh.read(1)
        if c == b"#" and not token:
            fh.readline(_MAX_STEPS)
            continue
        if c and c.isdigit():
            token += c
            continue
        if token:
            numbers.append(int(token))
            token = b""
            if len(numbers) == 2:
                return numbers[0], numbers[1]
        if not c or not c.isspace():
            return None
    return None


_READERS: tuple[tuple[bytes, Callable[[BinaryIO, bytes], Size | None]], ...] = (
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"\xff\xd8", _jpeg),
    (b"BM", _bmp),
    (b"RIFF", _webp),
    (b"II*\x00", _tiff),
    (b"MM\x00*", _tiff),
    (b"GIF87a", _gif),
    (b"GIF89a", _gif),
    *((b"P" + bytes([ord("1") + i]), _pnm) for i in range(6)),
)
