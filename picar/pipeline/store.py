"""Local store: reads, hits and their images, the audit trail, and retention.

Reads of vehicles that hit nothing are kept `reads_days`; hits (and their reads and images) are
kept `hits_days`. Every purge is written to the audit trail. A full disk never stops the daemon:
the failure is logged and counted, and what was stored before stays intact.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from picar.types import Hit, PlateRead

log = logging.getLogger("picar.store")  # name kept from before the package move: the audit file hangs on it

SCHEMA = """
CREATE TABLE IF NOT EXISTS reads (
    event_id TEXT PRIMARY KEY,
    camera TEXT NOT NULL,
    text TEXT NOT NULL,
    confidence REAL NOT NULL,
    candidates TEXT NOT NULL,
    captured_at REAL NOT NULL,
    frames INTEGER NOT NULL,
    box TEXT NOT NULL,
    lat REAL, lon REAL, speed_kmh REAL, heading_deg REAL, fix TEXT,
    hit INTEGER NOT NULL DEFAULT 0,
    crop_path TEXT
);
CREATE INDEX IF NOT EXISTS reads_time ON reads(captured_at);
CREATE INDEX IF NOT EXISTS reads_text ON reads(text);
CREATE TABLE IF NOT EXISTS hits (
    event_id TEXT PRIMARY KEY,
    read_event_id TEXT NOT NULL,
    plate TEXT NOT NULL,
    list TEXT NOT NULL,
    priority INTEGER NOT NULL,
    covert INTEGER NOT NULL,
    match TEXT NOT NULL,
    entry TEXT NOT NULL,
    raised_at REAL NOT NULL,
    crop_path TEXT, frame_path TEXT,
    disposition TEXT, disposition_reason TEXT, disposition_note TEXT, disposition_at REAL
);
CREATE INDEX IF NOT EXISTS hits_time ON hits(raised_at);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class PurgeResult:
    reads: int
    hits: int
    files: int


class Store:
    """SQLite database and image folder under the data directory. Thread-safe."""

    def __init__(self, data_dir: Path, min_free_mb: int = 200, clock: Any = time.time) -> None:
        self.data_dir = data_dir
        self.image_dir = data_dir / "images"
        self.min_free_mb = min_free_mb
        self._clock = clock
        self._lock = threading.Lock()
        self.write_errors = 0
        self.images_skipped = 0
        data_dir.mkdir(parents=True, exist_ok=True)
        self.image_dir.mkdir(exist_ok=True)
        self._db = sqlite3.connect(str(data_dir / "picar.db"), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")  # a purged read's plate and position are overwritten
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writes -------------------------------------------------------------------------------

    def _write(self, sql: str, args: tuple[Any, ...]) -> bool:
        try:
            with self._lock:
                self._db.execute(sql, args)
            return True
        except sqlite3.OperationalError as exc:
            self.write_errors += 1
            log.error("store: cannot write to %s: %s (the daemon keeps running)", self.data_dir, exc)
            return False

    def add_read(self, read: PlateRead, crop_path: str | None = None) -> bool:
        f = read.fix
        return self._write(
            "INSERT OR IGNORE INTO reads VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,0,?)",
            (
                read.event_id, read.camera, read.text, read.confidence, json.dumps(read.candidates),
                read.captured_at, read.frames, json.dumps(read.box),
                f.lat if f else None, f.lon if f else None, f.speed_kmh if f else None,
                f.heading_deg if f else None, f.fix if f else None, crop_path,
            ),
        )

    def add_hit(self, hit: Hit, crop_path: str | None, frame_path: str | None) -> bool:
        e = hit.entry
        entry = {
            "plate": e.plate, "list": e.list, "region": e.region, "priority": e.priority,
            "covert": e.covert, "description": e.description, "reason": e.reason, "source": e.source,
        }
        ok = self._write(
            "INSERT OR IGNORE INTO hits (event_id, read_event_id, plate, list, priority, covert, match, "
            "entry, raised_at, crop_path, frame_path) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                hit.event_id, hit.read.event_id, e.plate, e.list, e.priority, int(e.covert),
                hit.match.describe(), json.dumps(entry), hit.raised_at, crop_path, frame_path,
            ),
        )
        self._write("UPDATE reads SET hit = 1 WHERE event_id = ?", (hit.read.event_id,))
        return ok

    def set_disposition(self, hit_event_id: str, decision: str, reason: str | None, note: str | None) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE hits SET disposition=?, disposition_reason=?, disposition_note=?, disposition_at=? "
                "WHERE event_id=?",
                (decision, reason, note, self._clock(), hit_event_id),
            )
        return cur.rowcount == 1

    def audit(self, actor: str, action: str, detail: dict[str, Any] | str) -> None:
        text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True)
        if self._write("INSERT INTO audit (at, actor, action, detail) VALUES (?,?,?,?)",
                       (self._clock(), actor, action, text)):
            log.info("audit: %s %s %s", actor, action, text)

    # --- images -------------------------------------------------------------------------------

    def disk_ok(self) -> bool:
        free_mb = shutil.disk_usage(self.data_dir).free / 1e6
        return free_mb >= self.min_free_mb

    def save_image(self, image: np.ndarray | None, name: str, quality: int = 85) -> str | None:
        """Write a JPEG under images/YYYY-MM-DD/; returns the path relative to the image dir."""
        if image is None or image.size == 0:
            return None
        if not self.disk_ok():
            self.images_skipped += 1
            log.warning("store: less than %d MB free under %s, image %s not saved", self.min_free_mb,
                        self.data_dir, name)
            return None
        day = time.strftime("%Y-%m-%d", time.gmtime(self._clock()))
        rel = Path(day) / f"{name}.jpg"
        path = self.image_dir / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise OSError("JPEG encoding failed")
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(buf.tobytes())
            tmp.replace(path)
        except OSError as exc:
            self.write_errors += 1
            log.error("store: cannot save image %s: %s", path, exc)
            return None
        return str(rel)

    # --- queries ------------------------------------------------------------------------------

    def recent_reads(self, since: float, limit: int = 100000) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, camera, text, confidence, candidates, captured_at, lat, lon FROM reads "
                "WHERE captured_at >= ? ORDER BY captured_at LIMIT ?", (since, limit)
            ).fetchall()
        return [
            {"event_id": r[0], "camera": r[1], "text": r[2], "confidence": r[3],
             "candidates": [tuple(c) for c in json.loads(r[4])], "captured_at": r[5],
             "lat": r[6], "lon": r[7]}
            for r in rows
        ]

    def hit(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            cur = self._db.execute("SELECT * FROM hits WHERE event_id = ?", (event_id,))
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return dict(zip(names, row, strict=True)) if row else None

    def has_hit(self, read_event_id: str, plate: str, list_name: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM hits WHERE read_event_id=? AND plate=? AND list=?",
                                   (read_event_id, plate, list_name)).fetchone()
        return row is not None

    def counts(self) -> dict[str, int]:
        with self._lock:
            reads = self._db.execute("SELECT COUNT(*) FROM reads").fetchone()[0]
            hits = self._db.execute("SELECT COUNT(*) FROM hits").fetchone()[0]
        return {"reads": reads, "hits": hits}

    def audit_entries(self, limit: int = 1000) -> list[tuple[float, str, str, str]]:
        with self._lock:
            return self._db.execute(
                "SELECT at, actor, action, detail FROM audit ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()

    # --- retention ----------------------------------------------------------------------------

    def purge(self, reads_days: float, hits_days: float) -> PurgeResult:
        """Delete reads that hit nothing older than reads_days, hits older than hits_days."""
        now = self._clock()
        read_cut = now - reads_days * 86400
        hit_cut = now - hits_days * 86400
        with self._lock:
            files = [r[0] for r in self._db.execute(
                "SELECT crop_path FROM reads WHERE hit = 0 AND captured_at < ? AND crop_path IS NOT NULL",
                (read_cut,))]
            hit_rows = self._db.execute(
                "SELECT read_event_id, crop_path, frame_path FROM hits WHERE raised_at < ?", (hit_cut,)
            ).fetchall()
            for _, crop, frame in hit_rows:
                files += [p for p in (crop, frame) if p]
            self._db.execute("BEGIN")
            n_reads = self._db.execute(
                "DELETE FROM reads WHERE hit = 0 AND captured_at < ?", (read_cut,)).rowcount
            n_hits = self._db.execute("DELETE FROM hits WHERE raised_at < ?", (hit_cut,)).rowcount
            orphaned = "hit = 1 AND captured_at < ? AND event_id NOT IN (SELECT read_event_id FROM hits)"
            files += [r[0] for r in self._db.execute(  # a hit's read crop goes with its read
                f"SELECT crop_path FROM reads WHERE {orphaned} AND crop_path IS NOT NULL", (hit_cut,))]
            n_reads += self._db.execute(f"DELETE FROM reads WHERE {orphaned}", (hit_cut,)).rowcount
            self._db.execute("COMMIT")
            if n_reads or n_hits:  # the write-ahead log still holds the old pages until it is reset
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        removed = 0
        for rel in files:
            try:
                (self.image_dir / rel).unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("retention: cannot delete %s: %s", rel, exc)
        result = PurgeResult(n_reads, n_hits, removed)
        if n_reads or n_hits or removed:
            self.audit("retention", "purge", {"reads": n_reads, "hits": n_hits, "files": removed,
                                              "reads_days": reads_days, "hits_days": hits_days})
        return result
