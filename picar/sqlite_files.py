"""The car's SQLite files (picar.db, outbox.db, k9.db) when one is damaged: set aside for inspection, with
its journal, and a new one started, so the car goes on reading plates and says loudly what happened."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger("picar")

_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def is_damaged(exc: sqlite3.Error) -> bool:
    """True when SQLite says the file is not a database or is corrupt (not for a full disk or a lock)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in _DAMAGED or "file is not a database" in str(exc) or "malformed" in str(exc)


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
