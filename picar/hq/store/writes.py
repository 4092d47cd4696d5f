"""How ingest writes a batch of the fleet's messages: one transaction, every event stored at most once.

`store_batch` is the whole of it: the day partitions the batch needs, then `write_batch` in one
transaction, then `update_vehicles`; only after it returns may the caller acknowledge the batch (to the
broker, and to each car). Every insert is ON CONFLICT DO NOTHING on the event's unique key, so a resent
event is a no-op that is acknowledged again. Rows go in sorted by key so that two workers' batches lock in
the same order (no deadlock between them on duplicates). The cars' rows in `vehicles` (last seen, last
position, status) are derived state, updated after the commit in statements of their own: inside the batch
they would hold every worker's batch for the same cars behind one another. New hits, dispositions, heat
alarms and status changes are announced with NOTIFY on `picar_hq` for the console.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
from psycopg.types.json import Jsonb

from picar.hq.store.events import (
    DispositionEvent,
    Event,
    HeatEvent,
    HitEvent,
    ImageEvent,
    K9Event,
    PositionEvent,
    ReadEvent,
    StatusEvent,
)
from picar.hq.store.partitions import KnownPartitions, ensure

_Timed = TypeVar("_Timed", ReadEvent, PositionEvent)
CHANNEL = "picar_hq"  # LISTEN picar_hq: {"kind": "hit"|"image"|"disposition"|"heat"|"status", "vehicle", "event_id"}


@dataclass
class BatchResult:
    stored: Counter[str] = field(default_factory=Counter)  # new rows per kind
    duplicates: Counter[str] = field(default_factory=Counter)
    too_old: Counter[str] = field(default_factory=Counter)  # beyond retention on arrival: acknowledged, not kept

    def add(self, kind: str, new: int, total: int) -> None:
        if new:
            self.stored[kind] += new
        if total - new:
            self.duplicates[kind] += total - new


@dataclass(frozen=True)
class Rejected:
    vehicle: str
    kind: str
    event_id: str | None
    error: str
    payload: bytes


def partitions_for(conn: psycopg.Connection, events: Sequence[Event],
                   known: KnownPartitions | None = None) -> list[str]:
    """Create the day partitions the batch's reads and positions need (outside the batch's transaction);
    with ``known``, days a recent batch already ensured are not checked again (a writer's hot path)."""
    make = ensure if known is None else known.ensure
    created = make(conn, "reads", {e.time.astimezone(dt.UTC).date() for e in events if isinstance(e, ReadEvent)})
    created += make(conn, "positions",
                    {e.time.astimezone(dt.UTC).date() for e in events if isinstance(e, PositionEvent)})
    return created


def write_batch(conn: psycopg.Connection, events: Sequence[Event], rejected: Sequence[Rejected] = (),
                oldest: dict[str, dt.datetime] | None = None) -> BatchResult:
    """Store ``events`` (and keep ``rejected`` ones as received) in the caller's transaction.

    ``oldest`` maps "reads"/"positions" to the retention cutoff: older ones are acknowledged but not stored,
    and counted in the purge log (their partitions are gone or about to go).
    """
    res = BatchResult()
    cut = oldest or {}
    reads = _keep(res, "reads", [e for e in events if isinstance(e, ReadEvent)], cut.get("reads"))
    positions = _keep(res, "positions", [e for e in events if isinstance(e, PositionEvent)], cut.get("positions"))
    _new_vehicles(conn, events, rejected)
    _reads(conn, res, reads)
    _hits(conn, res, [e for e in events if isinstance(e, HitEvent)])
    _images(conn, res, [e for e in events if isinstance(e, ImageEvent)])
    _dispositions(conn, res, [e for e in events if isinstance(e, DispositionEvent)])
    _k9(conn, res, [e for e in events if isinstance(e, K9Event)])
    _heat(conn, res, [e for e in events if isinstance(e, HeatEvent)])
    _positions(conn, res, positions)
    _rejected(conn, res, rejected)
    for kind, n in res.too_old.items():
        conn.execute("INSERT INTO purge_log (kind, action, cutoff, rows, detail) VALUES (%s, %s, %s, %s, %s)",
                     (kind, "refused on arrival", cut[kind], n, "older than retention when it reached HQ"))
    return res


def _keep(res: BatchResult, kind: str, rows: list[_Timed], cutoff: dt.datetime | None) -> list[_Timed]:
    if cutoff is None:
        return rows
    kept = [r for r in rows if r.time >= cutoff]
    if len(kept) < len(rows):
        res.too_old[kind] += len(rows) - len(kept)
    return kept


def _insert(conn: psycopg.Connection, sql: str, rows: Sequence[Sequence[object]]) -> list[tuple[object, ...]]:
    """executemany with RETURNING: the rows actually inserted (a conflict returns nothing)."""
    if not rows:
        return []
    out: list[tuple[object, ...]] = []
    with conn.cursor() as cur:
        cur.executemany(sql, rows, returning=True)
        while True:
            out.extend(cur.fetchall())
            if not cur.nextset():
                break
    return out


def _notify(conn: psycopg.Connection, kind: str, rows: list[tuple[object, ...]]) -> None:
    for row in rows:
        body = {"kind": kind, "event_id": row[0], "vehicle": row[1]}
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(body)))


def _new_vehicles(conn: psycopg.Connection, events: Sequence[Event], rejected: Sequence[Rejected]) -> None:
    # DO NOTHING takes no lock on a car already there.
    ids = sorted({e.vehicle for e in events} | {r.vehicle for r in rejected})
    if ids:
        conn.execute("INSERT INTO vehicles (id, last_seen) SELECT v, now() FROM unnest(%s::text[]) AS v "
                     "ON CONFLICT (id) DO NOTHING", (ids,))


def store_batch(conn: psycopg.Connection, events: Sequence[Event], rejected: Sequence[Rejected] = (),
                oldest: dict[str, dt.datetime] | None = None, known: KnownPartitions | None = None) -> BatchResult:
    """The batch stored: partitions, one transaction, then the cars' rows. ``conn`` in autocommit mode."""
    partitions_for(conn, events, known)
    with conn.transaction():
        res = write_batch(conn, events, rejected, oldest)
    update_vehicles(conn, res, events, rejected)
    return res


def update_vehicles(conn: psycopg.Connection, res: BatchResult, events: Sequence[Event],
                    rejected: Sequence[Rejected] = ()) -> None:
    """Last seen, last position and status of the batch's cars, each statement its own short transaction.
    Last seen is written at most once a second per car."""
    ids = sorted({e.vehicle for e in events} | {r.vehicle for r in rejected})
    if ids:
        conn.execute("UPDATE vehicles SET last_seen = now() WHERE id = ANY(%s) AND "
                     "(last_seen IS NULL OR last_seen < now() - interval '1 second')", (ids,))
    latest: dict[str, PositionEvent] = {}
    for p in events:
        if isinstance(p, PositionEvent) and (p.vehicle not in latest or p.time > latest[p.vehicle].time):
            latest[p.vehicle] = p
    if latest:
        # One statement for every car of the batch: a statement a car, each its own commit, was most of a
        # batch's time at a thousand cars. The rows are locked in id order, as every worker does: no deadlock.
        last = [latest[v] for v in sorted(latest)]
        conn.execute(
            "WITH u AS (SELECT * FROM unnest(%s::text[], %s::float8[], %s::float8[], %s::timestamptz[]) "
            "AS u(id, lat, lon, t)), "
            "locked AS (SELECT v.id FROM vehicles v JOIN u ON u.id = v.id WHERE v.last_position_time IS NULL "
            "OR v.last_position_time < u.t ORDER BY v.id FOR UPDATE OF v) "
            "UPDATE vehicles AS v SET last_lat = u.lat, last_lon = u.lon, last_position_time = u.t FROM u, locked "
            "WHERE v.id = u.id AND v.id = locked.id AND (v.last_position_time IS NULL OR v.last_position_time < u.t)",
            ([p.vehicle for p in last], [p.lat for p in last], [p.lon for p in last], [p.time for p in last]))
    _statuses(conn, res, [e for e in events if isinstance(e, StatusEvent)])


def _reads(conn: psycopg.Connection, res: BatchResult, reads: list[ReadEvent]) -> None:
    rows = [(r.time, r.event_id, r.vehicle, r.camera, r.plate, r.plate_key, r.confidence,
             None if r.candidates is None else Jsonb(r.candidates), r.first_seen, r.frames, r.box, r.region,
             r.lat, r.lon, None if r.position is None else Jsonb(r.position), r.series)
            for r in sorted(reads, key=lambda r: (r.event_id, r.time))]
    new = _insert(conn, "INSERT INTO reads (time, event_id, vehicle, camera, plate, plate_key, confidence, "
                        "candidates, first_seen, frames, box, region, lat, lon, position, series) VALUES "
                        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING RETURNING event_id", rows)
    res.add("read", len(new), len(rows))


def _hits(conn: psycopg.Connection, res: BatchResult, hits: list[HitEvent]) -> None:
    rows = []
    for h in sorted(hits, key=lambda h: h.event_id):
        p = h.payload
        match = p.get("match") if isinstance(p.get("match"), dict) else None
        rows.append((h.event_id, _s(p.get("read_event_id")), h.vehicle, _s(p.get("camera")), h.time,
                     _time(p.get("raised_at")), h.plate, h.plate_key, _s(p.get("read_text")), _s(p.get("read_top")),
                     _f(p.get("confidence")), h.list, _s(p.get("region")), _i(p.get("priority")),
                     p.get("covert") is True, _s(p.get("reason")), _s(match.get("kind")) if match else None,
                     _i(match.get("distance")) if match else None, None if match is None else Jsonb(match),
                     _f(p.get("lat")), _f(p.get("lon")), _s(p.get("repeat_of")), p.get("recheck") is True,
                     Jsonb(p)))
    new = _insert(conn, "INSERT INTO hits (event_id, read_event_id, vehicle, camera, time, raised_at, plate, "
                        "plate_key, read_text, read_top, confidence, list, region, priority, covert, reason, "
                        "match_kind, match_distance, match, lat, lon, repeat_of, recheck, payload) VALUES "
                        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                        "%s, %s) ON CONFLICT DO NOTHING RETURNING event_id, vehicle", rows)
    res.add("hit", len(new), len(rows))
    _notify(conn, "hit", new)


def _images(conn: psycopg.Connection, res: BatchResult, images: list[ImageEvent]) -> None:
    rows = [(i.event_id, i.hit_event_id, i.vehicle, i.role, i.time, i.content_type, len(i.data), i.data)
            for i in sorted(images, key=lambda i: i.event_id)]
    new = _insert(conn, "INSERT INTO images (event_id, hit_event_id, vehicle, role, time, content_type, bytes, "
                        "data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING event_id, "
                        "vehicle, hit_event_id", rows)
    res.add("image", len(new), len(rows))
    for event_id, vehicle, hit_event_id in new:  # the console adds the image to its hit's card
        body = {"kind": "image", "event_id": event_id, "vehicle": vehicle, "hit_event_id": hit_event_id}
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(body)))


def _dispositions(conn: psycopg.Connection, res: BatchResult, items: list[DispositionEvent]) -> None:
    rows = [(d.event_id, d.hit_event_id, d.vehicle, d.decision, d.reason, d.note, d.time)
            for d in sorted(items, key=lambda d: d.event_id)]
    new = _insert(conn, "INSERT INTO dispositions (event_id, hit_event_id, vehicle, decision, reason, note, time) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING event_id, vehicle",
                  rows)
    res.add("disposition", len(new), len(rows))
    _notify(conn, "disposition", new)


_K9_START = ("dog", "handler", "type", "case_number", "notes", "trigger", "started_at", "start_lat", "start_lon")
_K9_END = ("ended_at", "outcome", "end_notes", "duration_s", "track_length_m", "track")


def _k9(conn: psycopg.Connection, res: BatchResult, items: list[K9Event]) -> None:
    for e in sorted(items, key=lambda e: (e.vehicle, e.deployment_id, e.end)):
        p = e.payload
        # The end event repeats the start's fields; either may arrive first, and each fills only its own.
        cols = list(_K9_START) + (list(_K9_END) if e.end else [])
        values = [_k9_value(c, p.get(c)) for c in cols]
        id_col = "end_event_id" if e.end else "start_event_id"
        updates = ", ".join(f"{c} = COALESCE(k9_deployments.{c}, EXCLUDED.{c})" for c in _K9_START)
        if e.end:
            updates += ", " + ", ".join(f"{c} = EXCLUDED.{c}" for c in _K9_END)
        sql = (f"INSERT INTO k9_deployments (vehicle, deployment_id, {id_col}, {', '.join(cols)}) VALUES "
               f"(%s, %s, %s{', %s' * len(cols)}) ON CONFLICT (vehicle, deployment_id) DO UPDATE SET "
               f"{id_col} = EXCLUDED.{id_col}, {updates} WHERE k9_deployments.{id_col} IS NULL RETURNING 1")
        new = conn.execute(sql, (e.vehicle, e.deployment_id, e.event_id, *values)).fetchall()
        res.add("k9", len(new), 1)


def _k9_value(column: str, value: object) -> object:
    if column in ("started_at", "ended_at"):
        return _time(value)
    if column == "track":
        return None if value is None else Jsonb(value)
    if column in ("start_lat", "start_lon", "duration_s", "track_length_m"):
        return _f(value)
    return _s(value)


def _heat(conn: psycopg.Connection, res: BatchResult, items: list[HeatEvent]) -> None:
    rows = [(h.event_id, h.vehicle, h.state, h.temp_c, h.reason, h.time, Jsonb(h.payload))
            for h in sorted(items, key=lambda h: h.event_id)]
    new = _insert(conn, "INSERT INTO heat_alarms (event_id, vehicle, state, temp_c, reason, time, payload) VALUES "
                        "(%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING event_id, vehicle", rows)
    res.add("heat", len(new), len(rows))
    _notify(conn, "heat", new)


def _positions(conn: psycopg.Connection, res: BatchResult, items: list[PositionEvent]) -> None:
    rows = [(p.vehicle, p.time, p.lat, p.lon, p.fix, p.speed_kmh, p.heading_deg, p.sats, p.hdop)
            for p in sorted(items, key=lambda p: (p.vehicle, p.time))]
    new = _insert(conn, "INSERT INTO positions (vehicle, time, lat, lon, fix, speed_kmh, heading_deg, sats, hdop) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING vehicle",
                  rows)
    res.add("position", len(new), len(rows))


def _statuses(conn: psycopg.Connection, res: BatchResult, items: list[StatusEvent]) -> None:
    # In arrival order: the last status a car sent wins (a car's messages reach one worker in order).
    for s in items:
        conn.execute(
            "UPDATE vehicles SET online = %s, status = %s, status_time = COALESCE(%s, status_time), "
            "watchlist_version = COALESCE(%s, watchlist_version), backlog = COALESCE(%s, backlog) WHERE id = %s",
            (s.online, Jsonb(s.payload), s.time, s.watchlist_version, s.backlog, s.vehicle))
        res.add("status", 1, 1)
        _notify(conn, "status", [(None, s.vehicle)])


def _rejected(conn: psycopg.Connection, res: BatchResult, items: Sequence[Rejected]) -> None:
    rows = [(r.vehicle, r.kind, r.event_id, r.error, r.payload) for r in items]
    new = _insert(conn, "INSERT INTO rejected_events (vehicle, kind, event_id, error, payload) VALUES "
                        "(%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id", rows)
    res.add("rejected", len(new), len(rows))


def _s(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _f(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _i(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None
