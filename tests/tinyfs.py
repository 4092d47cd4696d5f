"""A really small filesystem for full-disk tests: a tmpfs mounted under the test's folder, and a filler file
that takes every byte left on it (deleting the filler gives the space back)."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tiny_tmpfs(mnt: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of `size` (``256k``) at `mnt` (needs root / CAP_SYS_ADMIN; skips the test if refused)."""
    mnt.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(path: Path) -> Path:
    """Write `path` until the filesystem has no byte left; returns it (unlink it to free the space)."""
    chunk = b"\0" * 4096
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        with contextlib.suppress(OSError):  # the last few bytes of a block
            while True:
                f.write(b"\0")
    return path
