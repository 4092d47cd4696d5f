"""Local store: reads, hits and their images, the audit trail, and retention.

Reads of vehicles that hit nothing are kept `reads_days`; hits (and their reads and images) are
kept `hits_days`. Every purge is written to the audit trail. A full disk never stops the daemon and
never loses a read, a hit, a disposition or an audit entry: a write the database refuses waits in memory
(pending.py), in order, and housekeeping retries it until it is written; a waiting hit is still found by
`hit()` and can still be decided. What was stored before stays intact.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from picar.pipeline.pending import MAX_PENDING, PendingWrites, Unwritten
from picar.sqlite_files import connect, open_or_replace
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


HIT_COLUMNS = ("event_id", "read_event_id", "plate", "list", "priority", "covert", "match", "entry", "raised_at",
               "crop_path", "frame_path", "disposition", "disposition_reason", "disposition_note", "disposition_at")
REFUSED = (sqlite3.Error, OSError)  # a full disk (SQLITE_FULL), I/O errors, a locked database: tried again later
NEVER_WRITABLE = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError, sqlite3.ProgrammingError)
RETRY_BATCH = 500  # waiting writes per transaction when they are retried


@dataclass(frozen=True)
class PurgeResult:
    reads: int
    hits: int
    files: int


class Store:
    """SQLite database and image folder under the data directory. Thread-safe."""

    def __init__(self, data_dir: Path, min_free_mb: int = 200, clock: Any = time.time,
                 max_pending: int = MAX_PENDING) -> None:
        self.data_dir = data_dir
        self.image_dir = data_dir / "images"
        self.min_free_mb = min_free_mb
        self._clock = clock
        self._lock = threading.Lock()
        self._pending = PendingWrites(max_pending)
        self._closed = False
        self.write_errors = 0
        self.images_skipped = 0
        data_dir.mkdir(parents=True, exist_ok=True)
        self.image_dir.mkdir(exist_ok=True)
        # secure_delete: a purged read's plate and position are overwritten, not left in free pages.
        self._db = open_or_replace(data_dir / "picar.db", lambda p: connect(
            p, ("journal_mode=WAL", "synchronous=NORMAL", "secure_delete=ON"), SCHEMA))

    def close(self) -> None:
        """Write what waits in memory if the disk lets us, then close; what cannot be written is logged."""
        self.retry_pending()
        with self._lock:
            left = len(self._pending)
            self._closed = True
            self._db.close()
        if left:
            log.critical("store: %d record(s) waiting for disk space under %s are lost at close: %s", left,
                         self.data_dir, self._pending.counts())

    # --- writes -------------------------------------------------------------------------------

    def _write(self, kind: str, key: str, sql: str, args: tuple[Any, ...],
               row: dict[str, Any] | None = None) -> bool:
        """Write now, or keep the write in memory (behind any already waiting, so order holds).

        True when it is in the database, False when it waits; it is lost only beyond the bound (critical).
        """
        item = Unwritten(kind, key, sql, args)
        with self._lock:
            if not self._pending:
                try:
                    self._db.execute(sql, args)
                    return True
                except NEVER_WRITABLE:
                    raise
                except REFUSED as exc:
                    self._refused(exc)
            self._keep(item, row)
            return False

    def _refused(self, exc: BaseException) -> None:
        """The first refused write: said once, then quiet until what waits has been written."""
        self.write_errors += 1
        log.error("store: cannot write to %s: %s; records are kept in memory (up to %d) and written when "
                  "space returns", self.data_dir, exc, self._pending.limit)

    def _keep(self, item: Unwritten, row: dict[str, Any] | None) -> None:
        if self._pending.add(item, row):
            return
        lost = self._pending.lost
        if lost == 1 or lost % 1000 == 0:  # critical, but not one line per record on a full disk
            log.critical("store: %s %s LOST: %d records already wait in memory for disk space under %s "
                         "(%d lost so far)", item.kind, item.key or "entry", self._pending.limit, self.data_dir, lost)

    @property
    def storage_full(self) -> bool:
        """The database refuses writes: records wait in memory."""
        with self._lock:
            return bool(self._pending)

    @property
    def pending(self) -> int:
        """How many writes wait in memory for disk space."""
        with self._lock:
            return len(self._pending)

    def pending_counts(self) -> dict[str, int]:
        """Waiting writes by kind (reads, hits, dispositions, audit), their total, and how many were lost."""
        with self._lock:
            return self._pending.counts()

    def retry_pending(self) -> int:
        """Write the waiting records, oldest first, until the database refuses again; returns how many.

        Called by housekeeping. Each batch is one transaction: a refused batch stays waiting as a whole.
        """
        written = 0
        batch = RETRY_BATCH
        while True:
            with self._lock:
                items = self._pending.head(batch)
                if not items or self._closed:
                    break
                try:
                    self._db.execute("BEGIN")
                    for it in items:
                        self._db.execute(it.sql, it.args)
                    self._db.execute("COMMIT")
                except REFUSED as exc:  # NEVER_WRITABLE included
                    with suppress(sqlite3.Error):  # SQLite may have rolled back already
                        self._db.execute("ROLLBACK")
                    if batch > 1:  # find the one record at fault, or use what little room there is
                        batch = 1
                        continue
                    if not isinstance(exc, NEVER_WRITABLE):
                        break
                    self._pending.written(1)
                    self._pending.lost += 1
                    log.critical("store: %s %s LOST: the database can never take it: %s", items[0].kind,
                                 items[0].key, exc)
                    continue
                self._pending.written(len(items))
                written += len(items)
        if written:
            log.warning("store: %d record(s) kept in memory written to %s; %d still waiting", written,
                        self.data_dir, self.pending)
        return written

    def add_read(self, read: PlateRead, crop_path: str | None = None) -> bool:
        f = read.fix
        row = {"event_id": read.event_id, "camera": read.camera, "text": read.text, "confidence": read.confidence,
               "candidates": [tuple(c) for c in read.candidates], "captured_at": read.captured_at,
               "lat": f.lat if f else None, "lon": f.lon if f else None}
        return self._write(
            "read", read.event_id,
            "INSERT OR IGNORE INTO reads VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,0,?)",
            (
                read.event_id, read.camera, read.text, read.confidence, json.dumps(read.candidates),
                read.captured_at, read.frames, json.dumps(read.box),
                f.lat if f else None, f.lon if f else None, f.speed_kmh if f else None,
                f.heading_deg if f else None, f.fix if f else None, crop_path,
            ),
            row,
        )

    def add_hit(self, hit: Hit, crop_path: str | None, frame_path: str | None) -> bool:
        e = hit.entry
        entry = {
            "plate": e.plate, "list": e.list, "region": e.region, "priority": e.priority,
            "covert": e.covert, "description": e.description, "reason": e.reason, "source": e.source,
        }
        args = (hit.event_id, hit.read.event_id, e.plate, e.list, e.priority, int(e.covert),
                hit.match.describe(), json.dumps(entry), hit.raised_at, crop_path, frame_path)
        row = dict(zip(HIT_COLUMNS, (*args, None, None, None, None), strict=True))
        ok = self._write(
            "hit", hit.event_id,
            "INSERT OR IGNORE INTO hits (event_id, read_event_id, plate, list, priority, covert, match, "
            "entry, raised_at, crop_path, frame_path) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            args, row,
        )
        self._write("read hit flag", hit.read.event_id, "UPDATE reads SET hit = 1 WHERE event_id = ?",
                    (hit.read.event_id,))
        return ok

    def set_disposition(self, hit_event_id: str, decision: str, reason: str | None, note: str | None) -> bool:
        """Store the officer's decision; False for an unknown hit. A hit that waits in memory, or a disk that
        refuses the update, keeps the decision in memory until it can be written (still True)."""
        at = self._clock()
        sql = ("UPDATE hits SET disposition=?, disposition_reason=?, disposition_note=?, disposition_at=? "
               "WHERE event_id=?")
        args = (decision, reason, note, at, hit_event_id)
        row = {"disposition": decision, "disposition_reason": reason, "disposition_note": note,
               "disposition_at": at}
        with self._lock:
            if not self._pending:
                try:
                    return self._db.execute(sql, args).rowcount == 1
                except NEVER_WRITABLE:
                    raise
                except REFUSED as exc:
                    self._refused(exc)
            if hit_event_id not in self._pending.hits and not self._hit_stored(hit_event_id):
                return False
            self._keep(Unwritten("disposition", hit_event_id, sql, args), row)
            return True

    def _hit_stored(self, event_id: str) -> bool:
        """Under the lock. A database that cannot even be read is taken to hold the hit: a decision is kept."""
        try:
            return self._db.execute("SELECT 1 FROM hits WHERE event_id = ?", (event_id,)).fetchone() is not None
        except sqlite3.Error:
            return True

    def audit(self, actor: str, action: str, detail: dict[str, Any] | str) -> None:
        text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True)
        self._write("audit", "", "INSERT INTO audit (at, actor, action, detail) VALUES (?,?,?,?)",
                    (self._clock(), actor, action, text))
        log.info("audit: %s %s %s", actor, action, text)  # written now or waiting in memory: never dropped

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
        """Reads captured since `since`, oldest first, those waiting in memory included."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, camera, text, confidence, candidates, captured_at, lat, lon FROM reads "
                "WHERE captured_at >= ? ORDER BY captured_at LIMIT ?", (since, limit)
            ).fetchall()
            waiting = [dict(r) for r in self._pending.reads.values() if r["captured_at"] >= since]
        stored = [
            {"event_id": r[0], "camera": r[1], "text": r[2], "confidence": r[3],
             "candidates": [tuple(c) for c in json.loads(r[4])], "captured_at": r[5],
             "lat": r[6], "lon": r[7]}
            for r in rows
        ]
        if not waiting:
            return stored
        seen = {r["event_id"] for r in stored}
        both = stored + [r for r in waiting if r["event_id"] not in seen]
        return sorted(both, key=lambda r: r["captured_at"])[:limit]

    def hit(self, event_id: str) -> dict[str, Any] | None:
        """The hit's row; a hit (or a decision on it) waiting in memory for disk space is answered too."""
        with self._lock:
            waiting = self._pending.hits.get(event_id)
            if waiting is not None:
                return dict(waiting)
            cur = self._db.execute("SELECT * FROM hits WHERE event_id = ?", (event_id,))
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
            decision = self._pending.dispositions.get(event_id)
        if not row:
            return None
        return {**dict(zip(names, row, strict=True)), **(decision or {})}

    def has_hit(self, read_event_id: str, plate: str, list_name: str) -> bool:
        with self._lock:
            if any(h["read_event_id"] == read_event_id and h["plate"] == plate and h["list"] == list_name
                   for h in self._pending.hits.values()):
                return True
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
