"""K9 deployment log: who was deployed, for what, where the dog went, how it ended.

Every start and end is stored in SQLite first and then sent to HQ through `publish('k9', payload)`.
A publish that fails (or is deferred, as the `picar k9` command line does: it has no HQ link) leaves
the row marked unpublished; the daemon sends those with `publish_pending()`.

The door-pop input (`DoorInput`) reads a serial line protocol, documented in docs/station.md:
``DOOR OPEN`` / ``DOOR CLOSED``, each optionally followed by ``*HH`` (XOR checksum as in NMEA).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from picar.i18n import N_, Message, TranslatableError
from picar.isotime import utc_iso
from picar.sources.serial_lines import LineError, SerialLines, checked_text
from picar.sqlite_files import connect, open_or_replace

log = logging.getLogger("picar.k9")  # name kept from before the package move: log lines carry it

KINDS = (
    "track",
    "area_search",
    "building_search",
    "apprehension",
    "narcotics",
    "explosives",
    "article_search",
    "missing_person",
    "officer_protection",
)
OUTCOMES = ("found", "not_found", "apprehended", "called_off", "handed_over", "other")
TRIGGERS = ("manual", "door")
MAX_TEXT = 2000
_START_KEYS = ("deployment_id", "dog", "handler", "type", "case_number", "notes", "trigger", "started_at",
               "started_ts", "start_lat", "start_lon")
TRACK_POINTS_TO_HQ = 200  # the end event carries a thinned copy of the track

Publish = Callable[[str, dict[str, Any]], str]
Position = Callable[[], dict[str, Any] | None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS k9_deployment (
    id TEXT PRIMARY KEY,
    dog TEXT NOT NULL,
    handler TEXT NOT NULL,
    kind TEXT NOT NULL,
    case_number TEXT,
    notes TEXT NOT NULL DEFAULT '',
    trigger TEXT NOT NULL,
    started_at REAL NOT NULL,
    start_lat REAL,
    start_lon REAL,
    ended_at REAL,
    outcome TEXT,
    end_notes TEXT NOT NULL DEFAULT '',
    start_message_id TEXT,
    end_message_id TEXT
);
CREATE INDEX IF NOT EXISTS k9_deployment_started ON k9_deployment(started_at);
CREATE TABLE IF NOT EXISTS k9_track (
    deployment_id TEXT NOT NULL REFERENCES k9_deployment(id),
    t REAL NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    PRIMARY KEY (deployment_id, t)
);
"""


# What a field is called in a message (translated with it); the API's own key where the two differ.
FIELD_NAMES = {
    "dog": N_("dog"), "handler": N_("handler"), "type": N_("type"), "case_number": N_("case number"),
    "notes": N_("notes"), "outcome": N_("outcome"), "trigger": N_("trigger"),
}


class K9Error(TranslatableError):
    """Bad input to the K9 log; the message names the field and the allowed values (translatable)."""


def _field(name: str) -> Message:
    return Message.of(FIELD_NAMES.get(name, name))


class PublishDeferred(Exception):
    """Raised by a publish callable that cannot reach HQ now; the event stays pending."""


def defer_publish(kind: str, payload: dict[str, Any]) -> str:
    """A publish for processes without an HQ link: everything stays pending for the daemon."""
    raise PublishDeferred(kind)


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with a Z, or None."""
    return None if ts is None else utc_iso(ts, "seconds")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


def track_length_m(points: list[dict[str, Any]]) -> float:
    """Total length of a track given as [{'lat','lon',...}, ...]."""
    return sum(
        distance_m(a["lat"], a["lon"], b["lat"], b["lon"]) for a, b in zip(points, points[1:], strict=False)
    )


def thin(points: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most `limit` points, evenly spaced, always keeping the first and the last."""
    if len(points) <= limit or limit < 2:
        return list(points)
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _text(field: str, value: object, *, required: bool, limit: int = MAX_TEXT) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise K9Error(N_("{field} must be text, got {value!r}"), field=_field(field), value=value)
    value = value.strip()
    if required and not value:
        raise K9Error(N_("{field} is required"), field=_field(field))
    if len(value) > limit:
        raise K9Error(N_("{field} is {length} characters, at most {limit} allowed"), field=_field(field),
                      length=len(value), limit=limit)
    return value


def _choice(field: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise K9Error(N_("{field} {value!r} is not allowed; use one of: {allowed}"), field=_field(field), value=value,
                      allowed=", ".join(allowed))
    return str(value)


def _valid_position(pos: dict[str, Any] | None) -> tuple[float, float] | None:
    if not pos:
        return None
    lat, lon = pos.get("lat"), pos.get("lon")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return float(lat), float(lon)


class K9Log:
    """SQLite-backed K9 deployment log, safe to call from several threads."""

    def __init__(
        self,
        db_path: Path,
        publish: Publish,
        position: Position,
        clock: Callable[[], float] = time.time,
        *,
        min_track_interval_s: float = 1.0,
    ) -> None:
        self._publish = publish
        self._position = position
        self._clock = clock
        self._min_interval = min_track_interval_s
        self._lock = threading.RLock()
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        db_path = Path(db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_or_replace(db_path, lambda p: connect(
            p, ("journal_mode=WAL", "busy_timeout=10000"), _SCHEMA, timeout=10.0, rows=sqlite3.Row))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """Call `fn(deployment)` after every start and end (the station page uses it)."""
        self._listeners.append(fn)

    def start(
        self,
        dog: str,
        handler: str,
        kind: str,
        case_number: str | None = None,
        notes: str = "",
        trigger: str = "manual",
    ) -> dict[str, Any]:
        """Record the start of a deployment and send it to HQ; returns the deployment."""
        dog = _text("dog", dog, required=True, limit=100)
        handler = _text("handler", handler, required=True, limit=100)
        kind = _choice("type", kind, KINDS)
        case = _text("case_number", case_number, required=False, limit=100) or None
        notes = _text("notes", notes, required=False)
        trigger = _choice("trigger", trigger, TRIGGERS)
        dep_id = uuid.uuid4().hex[:12]
        now = self._clock()
        pos = _valid_position(self._safe_position())
        with self._lock:
            self._db.execute(
                "INSERT INTO k9_deployment (id, dog, handler, kind, case_number, notes, trigger, started_at,"
                " start_lat, start_lon) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (dep_id, dog, handler, kind, case, notes, trigger, now,
                 pos[0] if pos else None, pos[1] if pos else None),
            )
            if pos:
                self._db.execute(
                    "INSERT OR IGNORE INTO k9_track VALUES (?,?,?,?)", (dep_id, now, pos[0], pos[1])
                )
        log.info("K9 deployment %s started: %s with %s, %s (%s)", dep_id, dog, handler, kind, trigger)
        self._send(dep_id, "start")
        return self._changed(dep_id)

    def end(self, deployment_id: str, outcome: str, notes: str = "") -> dict[str, Any]:
        """Record the end of an active deployment and send it to HQ; returns the deployment."""
        outcome = _choice("outcome", outcome, OUTCOMES)
        notes = _text("notes", notes, required=False)
        with self._lock:
            row = self._db.execute(
                "SELECT ended_at FROM k9_deployment WHERE id=?", (deployment_id,)
            ).fetchone()
            if row is None:
                raise KeyError(Message.of(N_("no K9 deployment {deployment_id!r}"), deployment_id=deployment_id))
            if row["ended_at"] is not None:
                raise K9Error(N_("K9 deployment {deployment_id} already ended at {ended}"),
                              deployment_id=deployment_id, ended=iso(row["ended_at"]))
            self._append_position(deployment_id, force=True)
            self._db.execute(
                "UPDATE k9_deployment SET ended_at=?, outcome=?, end_notes=? WHERE id=?",
                (self._clock(), outcome, notes, deployment_id),
            )
        log.info("K9 deployment %s ended: %s", deployment_id, outcome)
        self._send(deployment_id, "end")
        return self._changed(deployment_id)

    def active(self) -> list[dict[str, Any]]:
        """Deployments started and not yet ended, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM k9_deployment WHERE ended_at IS NULL ORDER BY started_at"
            ).fetchall()
            return [self.get(r["id"], with_track=False) for r in rows]

    def get(self, deployment_id: str, with_track: bool = True) -> dict[str, Any]:
        """One deployment as a dict (times as ISO 8601 UTC and epoch seconds)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM k9_deployment WHERE id=?", (deployment_id,)).fetchone()
            if row is None:
                raise KeyError(Message.of(N_("no K9 deployment {deployment_id!r}"), deployment_id=deployment_id))
            track = self._track(deployment_id)
        return self._as_dict(row, track, with_track)

    def record_position(self) -> int:
        """Add the current GPS position to the track of every active deployment; returns points added."""
        with self._lock:
            ids = [r["id"] for r in self._db.execute("SELECT id FROM k9_deployment WHERE ended_at IS NULL")]
            return sum(self._append_position(i, force=False) for i in ids)

    def report(self, since: float, until: float) -> list[dict[str, Any]]:
        """Deployments that overlap [since, until) in epoch seconds, each with its full track."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM k9_deployment WHERE started_at < ? AND (ended_at IS NULL OR ended_at >= ?)"
                " ORDER BY started_at",
                (until, since),
            ).fetchall()
            return [self._as_dict(r, self._track(r["id"]), True) for r in rows]

    def purge(self, older_than_days: float) -> int:
        """Delete deployments that ended more than `older_than_days` ago, with their tracks (retention.k9_days).

        A deployment whose end HQ has not been sent yet is kept: retention never loses what HQ lacks.
        """
        cutoff = self._clock() - older_than_days * 86400
        with self._lock:
            ids = [r["id"] for r in self._db.execute(
                "SELECT id FROM k9_deployment WHERE ended_at IS NOT NULL AND ended_at < ?"
                " AND end_message_id IS NOT NULL", (cutoff,))]
            if not ids:
                return 0
            marks = ",".join("?" * len(ids))
            self._db.execute("BEGIN")
            self._db.execute(f"DELETE FROM k9_track WHERE deployment_id IN ({marks})", ids)
            self._db.execute(f"DELETE FROM k9_deployment WHERE id IN ({marks})", ids)
            self._db.execute("COMMIT")
        log.info("K9 retention: %d deployment(s) ended more than %.0f days ago deleted", len(ids), older_than_days)
        return len(ids)

    def publish_pending(self) -> int:
        """Send start/end events that could not be sent before; returns how many went out."""
        with self._lock:
            starts = [r["id"] for r in self._db.execute(
                "SELECT id FROM k9_deployment WHERE start_message_id IS NULL ORDER BY started_at")]
            ends = [r["id"] for r in self._db.execute(
                "SELECT id FROM k9_deployment WHERE ended_at IS NOT NULL AND end_message_id IS NULL"
                " ORDER BY ended_at")]
        sent = sum(self._send(i, "start") for i in starts)
        return sent + sum(self._send(i, "end") for i in ends)

    # internals

    def _safe_position(self) -> dict[str, Any] | None:
        try:
            return self._position()
        except Exception:
            log.exception("K9: position source failed")
            return None

    def _append_position(self, deployment_id: str, *, force: bool) -> int:
        pos = _valid_position(self._safe_position())
        if pos is None:
            return 0
        now = self._clock()
        last = self._db.execute(
            "SELECT t, lat, lon FROM k9_track WHERE deployment_id=? ORDER BY t DESC LIMIT 1", (deployment_id,)
        ).fetchone()
        if last is not None:
            if now - last["t"] < self._min_interval and not force:
                return 0
            if (last["lat"], last["lon"]) == pos and not force:
                return 0
        cur = self._db.execute(
            "INSERT OR IGNORE INTO k9_track VALUES (?,?,?,?)", (deployment_id, now, pos[0], pos[1])
        )
        return cur.rowcount

    def _track(self, deployment_id: str) -> list[dict[str, Any]]:
        return [
            {"t": r["t"], "time": iso(r["t"]), "lat": r["lat"], "lon": r["lon"]}
            for r in self._db.execute(
                "SELECT t, lat, lon FROM k9_track WHERE deployment_id=? ORDER BY t", (deployment_id,)
            )
        ]

    @staticmethod
    def _as_dict(row: sqlite3.Row, track: list[dict[str, Any]], with_track: bool) -> dict[str, Any]:
        ended = row["ended_at"]
        d: dict[str, Any] = {
            "deployment_id": row["id"],
            "dog": row["dog"],
            "handler": row["handler"],
            "type": row["kind"],
            "case_number": row["case_number"],
            "notes": row["notes"],
            "trigger": row["trigger"],
            "started_at": iso(row["started_at"]),
            "started_ts": row["started_at"],
            "start_lat": row["start_lat"],
            "start_lon": row["start_lon"],
            "ended_at": iso(ended),
            "ended_ts": ended,
            "outcome": row["outcome"],
            "end_notes": row["end_notes"],
            "duration_s": None if ended is None else round(ended - row["started_at"], 1),
            "active": ended is None,
            "track_points": len(track),
            "track_length_m": round(track_length_m(track), 1),
            "published": row["start_message_id"] is not None
            and (ended is None or row["end_message_id"] is not None),
        }
        if with_track:
            d["track"] = track
        return d

    def _send(self, deployment_id: str, event: str) -> int:
        dep = self.get(deployment_id, with_track=event == "end")
        # The same event always has the same id and content, so a retry is a no-op in the outbox and
        # HQ can de-duplicate. A start carries only what was known at the start.
        keys = _START_KEYS if event == "start" else [k for k in dep if k not in ("published", "active", "track")]
        payload = {k: dep[k] for k in keys}
        payload["event"] = f"k9_{event}"
        payload["event_id"] = f"k9-{deployment_id}-{event}"
        if event == "end":
            payload["track"] = [
                {"time": p["time"], "lat": p["lat"], "lon": p["lon"]}
                for p in thin(dep["track"], TRACK_POINTS_TO_HQ)
            ]
        try:
            message_id = self._publish("k9", payload)
        except PublishDeferred:
            log.info("K9 %s of %s kept for the daemon to send to HQ", event, deployment_id)
            return 0
        except Exception:
            log.exception("K9 %s of %s not sent to HQ; kept as pending", event, deployment_id)
            return 0
        column = "start_message_id" if event == "start" else "end_message_id"
        with self._lock:
            self._db.execute(
                f"UPDATE k9_deployment SET {column}=? WHERE id=?", (str(message_id or "sent"), deployment_id)
            )
        return 1

    def _changed(self, deployment_id: str) -> dict[str, Any]:
        dep = self.get(deployment_id, with_track=False)
        for fn in self._listeners:
            try:
                fn(dep)
            except Exception:
                log.exception("K9 listener failed")
        return dep


class DoorInput:
    """Remote door-pop input: ``DOOR OPEN`` while no deployment is active starts one (trigger 'door').

    Only the edge counts: repeated ``DOOR OPEN`` lines without a ``DOOR CLOSED`` between them start
    nothing more. Bad lines are counted and logged with the line.
    """

    def __init__(
        self,
        device: str,
        baud: int,
        k9: K9Log,
        dog: str,
        handler: str,
        kind: str = "officer_protection",
    ) -> None:
        self._k9 = k9
        self.dog = _text("dog", dog, required=True, limit=100)
        self.handler = _text("handler", handler, required=True, limit=100)
        self.kind = _choice("type", kind, KINDS)
        self.state: str | None = None  # "OPEN" / "CLOSED" once heard
        self.lines_bad = 0
        self._reader = SerialLines(device, baud, self.feed, name="k9-door")

    def start(self) -> None:
        """Start reading the door line."""
        self._reader.start()

    def stop(self) -> None:
        """Stop reading the door line."""
        self._reader.stop()

    def feed(self, raw: bytes) -> dict[str, Any] | None:
        """Handle one line; returns the deployment it started, if any."""
        try:
            text = checked_text(raw)
        except LineError as exc:
            self.lines_bad += 1
            log.warning("k9 door: bad line #%d ignored: %s", self.lines_bad, exc)
            return None
        words = text.upper().split()
        if len(words) != 2 or words[0] != "DOOR" or words[1] not in ("OPEN", "CLOSED"):
            self.lines_bad += 1
            log.warning("k9 door: bad line #%d ignored: %r is not DOOR OPEN or DOOR CLOSED",
                        self.lines_bad, text)
            return None
        previous, self.state = self.state, words[1]
        if self.state != "OPEN" or previous == "OPEN":
            return None
        if self._k9.active():
            log.info("k9 door opened during an active deployment: nothing started")
            return None
        return self._k9.start(self.dog, self.handler, self.kind, trigger="door",
                              notes="started by the remote door release")
