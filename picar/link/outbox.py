"""Durable on-disk queue of events for HQ: nothing accepted here is lost, even across SIGKILL or power cut.

The HQ link writes every event here first and sends from here; an event leaves the backlog once the broker
acknowledged it (PUBACK) and, when HQ confirms events end to end, once HQ acknowledged that its database
committed it (`hq_acked_at`; from the seq kept in `meta` on, see picar/link/hq_ack.py). SQLite in WAL
mode with ``synchronous=FULL``: in WAL mode NORMAL only survives an application crash, and a patrol car
loses power (ignition off, flat battery) far more often than a server does, so every commit is fsynced
before ``put`` returns.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from picar.sqlite_files import open_or_replace

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT NOT NULL UNIQUE,
    topic      TEXT NOT NULL,
    payload    BLOB NOT NULL,
    qos        INTEGER NOT NULL,
    created_at REAL NOT NULL,
    sent_at    REAL,
    acked_at   REAL
);
CREATE INDEX IF NOT EXISTS events_unacked ON events (seq) WHERE acked_at IS NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Added for HQ's end-to-end acknowledgements; an outbox written by an older PiCAR gains them when opened.
_ADDED_COLUMNS = {"hq_acked_at": "REAL", "resends": "INTEGER NOT NULL DEFAULT 0"}
_ADDED_INDEX = "CREATE INDEX IF NOT EXISTS events_unconfirmed ON events (seq) WHERE hq_acked_at IS NULL"
HQ_ACK_FROM = "hq_ack_from_seq"  # meta key: events from this seq on wait for HQ's acknowledgement
_NEVER = 1 << 62  # a seq no event reaches: "HQ's acknowledgements are not awaited"

_COLUMNS = "seq, event_id, topic, payload, qos, created_at, sent_at, acked_at, hq_acked_at, resends"


class OutboxError(RuntimeError):
    """The outbox could not store or update an event."""


class OutboxFullError(OutboxError):
    """The disk (or the configured size cap) is full: the event was NOT stored; what was stored is intact."""


@dataclass(frozen=True)
class OutboxItem:
    """One stored event as it will be (re)sent to HQ."""

    seq: int
    event_id: str
    topic: str
    payload: bytes
    qos: int
    created_at: float
    sent_at: float | None
    acked_at: float | None  # the broker's PUBACK
    hq_acked_at: float | None = None  # HQ's acknowledgement that its database committed the event
    resends: int = 0  # times sent again because HQ had not acknowledged it


class Outbox:
    """SQLite-backed FIFO of events; thread-safe (one connection guarded by a lock).

    ``max_size_bytes`` caps the database file (SQLite ``max_page_count``) so a runaway backlog cannot fill
    the SD card that the rest of the system needs; hitting the cap behaves exactly like a full disk.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_size_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A damaged file's events cannot be read back: it is set aside and the car goes on.
        open_or_replace(self.path, lambda _p: self._open(max_size_bytes))

    def _open(self, max_size_bytes: int | None) -> None:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so every write is one explicit transaction.
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(f"outbox {self.path}: cannot enable WAL journal (got {mode!r})")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA secure_delete=ON")  # a purged event's plate and position are overwritten
            self._db.executescript(_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in have:
                    self._db.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}")
            self._db.execute(_ADDED_INDEX)
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (HQ_ACK_FROM,)).fetchone()
            self._hq_from = _NEVER if row is None else int(row[0])
            if max_size_bytes is not None:
                page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
                pages = max(1, max_size_bytes // page_size)
                self._db.execute(f"PRAGMA max_page_count={pages}")
        except sqlite3.Error as exc:
            self._db.close()
            raise _translate(exc, f"open outbox {self.path}") from exc

    # ---- writing -------------------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes | dict, qos: int = 1, event_id: str | None = None) -> str:
        """Store one event durably and return its event_id (a new uuid4 when none is given).

        A dict payload is JSON-encoded with the event_id inside as ``"event_id"``. Putting the same
        event_id twice with the same content is a no-op (safe to retry); with different content it is an
        error, because HQ de-duplicates by event_id and would silently drop the second one.
        """
        if not topic or any(c in topic for c in "+#\0"):
            raise ValueError(f"outbox topic {topic!r}: must be non-empty without '+', '#' or NUL")
        if qos not in (0, 1, 2):
            raise ValueError(f"outbox qos {qos!r}: must be 0, 1 or 2")
        event_id, body = _encode(payload, event_id)
        now = self._clock()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO events (event_id, topic, payload, qos, created_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (event_id, topic, body, qos, now),
                    )
                    if cur.rowcount == 0:
                        row = self._db.execute(
                            "SELECT topic, payload FROM events WHERE event_id = ?", (event_id,)
                        ).fetchone()
                        if row is not None and (row[0], bytes(row[1])) != (topic, body):
                            raise ValueError(
                                f"outbox event_id {event_id!r} already stored with a different topic/payload"
                            )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                raise _translate(exc, f"store event {event_id} in {self.path}") from exc
        return event_id

    def mark_sent(self, event_ids: Iterable[str]) -> None:
        """Record the first time these events were handed to the network (for latency and audit)."""
        self._update("UPDATE events SET sent_at = ? WHERE event_id = ? AND sent_at IS NULL", event_ids)

    def mark_acked(self, event_id: str) -> None:
        """Record that the broker acknowledged this event; it leaves the backlog."""
        self.mark_acked_many([event_id])

    def mark_acked_many(self, event_ids: Iterable[str]) -> None:
        """Acknowledge several events in one transaction (one fsync instead of one per event)."""
        self._update("UPDATE events SET acked_at = ? WHERE event_id = ? AND acked_at IS NULL", event_ids)

    def mark_hq_acked(self, event_ids: Iterable[str]) -> None:
        """HQ committed these events to its database: they are delivered, whatever the broker does next."""
        self._update("UPDATE events SET hq_acked_at = ? WHERE event_id = ? AND hq_acked_at IS NULL", event_ids)

    # ---- HQ's end-to-end acknowledgements ---------------------------------------------------------------

    def hq_acks_from(self) -> int | None:
        """The first seq that waits for HQ's acknowledgement, or None while they are not awaited."""
        with self._lock:
            return None if self._hq_from == _NEVER else self._hq_from

    def await_hq_acks(self, from_seq: int | None) -> None:
        """Events from ``from_seq`` on stay in the backlog until HQ acknowledges them (None: never wait)."""
        with self._lock:
            try:
                if from_seq is None:
                    self._db.execute("DELETE FROM meta WHERE key = ?", (HQ_ACK_FROM,))
                else:
                    self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                     (HQ_ACK_FROM, str(int(from_seq))))
            except sqlite3.Error as exc:
                raise _translate(exc, f"record HQ acknowledgements in {self.path}") from exc
            self._hq_from = _NEVER if from_seq is None else int(from_seq)

    def next_seq(self) -> int:
        """The seq the next stored event will get at the earliest."""
        return int(self._query("SELECT COALESCE(MAX(seq), 0) + 1 FROM events", ())[0][0])

    def first_unconfirmed(self, broker_acked_since: float, event_ids: Iterable[str] = ()) -> int:
        """The lowest seq HQ has not acknowledged among events not yet sent, acknowledged by the broker at or
        after ``broker_acked_since``, or in ``event_ids``; ``next_seq()`` if none."""
        ids = list(event_ids)
        marks = ",".join("?" * len(ids))
        rows = self._query(
            "SELECT MIN(seq) FROM events WHERE hq_acked_at IS NULL AND (acked_at IS NULL OR acked_at >= ?"
            + (f" OR event_id IN ({marks}))" if ids else ")"), (broker_acked_since, *ids))
        return int(rows[0][0]) if rows and rows[0][0] is not None else self.next_seq()

    def resend_unconfirmed(self, base_s: float, max_s: float, broker_acked_since: float | None = None) -> int:
        """Put back in the send queue the events HQ has not acknowledged: those the broker acknowledged at or
        after ``broker_acked_since`` (it may have lost them), and those whose wait ran out (``base_s`` after
        the broker's acknowledgement, doubling with each resend up to ``max_s``). Returns how many."""
        now = self._clock()
        since = now + 1e9 if broker_acked_since is None else broker_acked_since
        with self._lock:
            if self._hq_from == _NEVER:
                return 0
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    cur = self._db.execute(
                        "UPDATE events SET acked_at = NULL, resends = resends + 1 WHERE hq_acked_at IS NULL "
                        "AND acked_at IS NOT NULL AND seq >= ? AND (acked_at >= ? OR "
                        "acked_at < ? - MIN(? * (1 << MIN(resends, 20)), ?))",
                        (self._hq_from, since, now, base_s, max_s))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                raise _translate(exc, f"queue unconfirmed events again in {self.path}") from exc
        return int(cur.rowcount)

    def awaiting_hq(self) -> int:
        """Events the broker acknowledged that still wait for HQ's acknowledgement."""
        with self._lock:
            start = self._hq_from
        return int(self._query("SELECT COUNT(*) FROM events WHERE hq_acked_at IS NULL AND acked_at IS NOT NULL "
                               "AND seq >= ?", (start,))[0][0])

    def purge_acked(self, older_than_s: float) -> int:
        """Delete delivered events acknowledged more than ``older_than_s`` seconds ago; return how many.
        While HQ's acknowledgements are awaited, an event HQ has not acknowledged is not delivered."""
        cutoff = self._clock() - older_than_s
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    cur = self._db.execute(
                        "DELETE FROM events WHERE COALESCE(hq_acked_at, acked_at) < ? AND (hq_acked_at IS NOT NULL "
                        "OR (acked_at IS NOT NULL AND seq < ?))", (cutoff, self._hq_from)
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
                if cur.rowcount:  # the write-ahead log still holds the old pages until it is reset
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise _translate(exc, f"purge acked events from {self.path}") from exc
        return int(cur.rowcount)

    # ---- reading -------------------------------------------------------------------------------------

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[OutboxItem]:
        """Events to send (neither the broker nor HQ acknowledged them) with seq > ``after_seq``, oldest first,
        at most ``limit``."""
        if limit <= 0:
            return []
        rows = self._query(
            f"SELECT {_COLUMNS} FROM events WHERE acked_at IS NULL AND hq_acked_at IS NULL AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [_item(r) for r in rows]

    def get(self, event_id: str) -> OutboxItem | None:
        """The stored event with this id, acknowledged or not."""
        rows = self._query(f"SELECT {_COLUMNS} FROM events WHERE event_id = ?", (event_id,))
        return _item(rows[0]) if rows else None

    def backlog(self) -> int:
        """How many events are not yet delivered: not acknowledged by the broker, or (while HQ's
        acknowledgements are awaited) not by HQ."""
        with self._lock:
            start = self._hq_from
        return int(self._query("SELECT COUNT(*) FROM events WHERE hq_acked_at IS NULL AND (acked_at IS NULL "
                               "OR seq >= ?)", (start,))[0][0])

    def close(self) -> None:
        """Close the database; further calls fail."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals -----------------------------------------------------------------------------------

    def _update(self, sql: str, event_ids: Iterable[str]) -> None:
        ids = list(event_ids)
        if not ids:
            return
        now = self._clock()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(sql, [(now, e) for e in ids])
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                raise _translate(exc, f"update {len(ids)} events in {self.path}") from exc

    def _query(self, sql: str, args: tuple[object, ...]) -> list[tuple]:
        with self._lock:
            try:
                return list(self._db.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise _translate(exc, f"read {self.path}") from exc

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


def _encode(payload: bytes | dict, event_id: str | None) -> tuple[str, bytes]:
    if isinstance(payload, dict):
        inner = payload.get("event_id")
        if inner is not None and event_id is not None and inner != event_id:
            raise ValueError(f"payload event_id {inner!r} differs from event_id argument {event_id!r}")
        event_id = event_id or (str(inner) if inner is not None else str(uuid.uuid4()))
        try:
            body = json.dumps({**payload, "event_id": event_id}, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"event {event_id}: payload is not JSON-serialisable: {exc}") from exc
        return event_id, body.encode()
    if isinstance(payload, bytes | bytearray | memoryview):
        return event_id or str(uuid.uuid4()), bytes(payload)
    raise TypeError(f"outbox payload must be bytes or dict, not {type(payload).__name__}")


def _item(row: tuple) -> OutboxItem:
    return OutboxItem(
        seq=int(row[0]),
        event_id=str(row[1]),
        topic=str(row[2]),
        payload=bytes(row[3]),
        qos=int(row[4]),
        created_at=float(row[5]),
        sent_at=None if row[6] is None else float(row[6]),
        acked_at=None if row[7] is None else float(row[7]),
        hq_acked_at=None if row[8] is None else float(row[8]),
        resends=int(row[9]),
    )


def _translate(exc: sqlite3.Error, doing: str) -> OutboxError:
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc):
        return OutboxFullError(f"cannot {doing}: database or disk is full (nothing new was stored)")
    return OutboxError(f"cannot {doing}: {exc}")
