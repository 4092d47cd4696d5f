"""The car's SQLite files (picar.db, outbox.db, k9.db): opened one way, and when one is damaged, set aside
for inspection with its journal and a new one started, so the car goes on reading plates and says loudly
what happened."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

log = logging.getLogger("picar")

T = TypeVar("T")
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def connect(path: Path, pragmas: Sequence[str], schema: str, *, timeout: float = 5.0,
            rows: type | None = None) -> sqlite3.Connection:
    """A connection in autocommit mode (callers BEGIN/COMMIT themselves) with `pragmas` and `schema` applied."""
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=timeout)
    try:
        if rows is not None:
            db.row_factory = rows
        for pragma in pragmas:
            db.execute(f"PRAGMA {pragma}")
        db.executescript(schema)
    except sqlite3.Error:
        db.close()
        raise
    return db


def is_damaged(exc: BaseException) -> bool:
    """True when SQLite says the file is not a database or is corrupt (not for a full disk or a lock).

    Looks through one wrapping exception (`raise OutboxError(...) from exc`).
    """
    err = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
    if not isinstance(err, sqlite3.DatabaseError):
        return False
    code = getattr(err, "sqlite_errorcode", None)
    return code in _DAMAGED or "file is not a database" in str(err) or "malformed" in str(err)


def set_aside(path: Path, why: str) -> Path:
    """Rename `path` (and its -wal/-shm) to `path.damaged-<UTC time>`; returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(kept)
    for side in ("-wal", "-shm"):
        extra = path.with_name(path.name + side)
        if extra.exists():
            extra.rename(kept.with_name(kept.name + side))
    log.critical("%s is damaged (%s): kept as %s for inspection; starting a new one", path, why, kept)
    return kept


def open_or_replace(path: Path, open_file: Callable[[Path], T]) -> T:
    """`open_file(path)`; when the file is damaged, set it aside and open a new one in its place."""
    try:
        return open_file(path)
    except Exception as exc:
        if not is_damaged(exc):
            raise
        set_aside(path, str(exc.__cause__ or exc))
        return open_file(path)
