"""What the console asks HQ's store: the fleet, hits with their evidence, the investigative search (always
with its audit entry), K9 reports, positions, heat alarms and published watchlists.

Every function takes an open psycopg connection (the caller owns it and its pool) and returns the
dataclasses of picar.hq.store.records. Writes run in `conn.transaction()`: committed on return when the
connection is in autocommit mode, a savepoint inside the caller's transaction otherwise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from picar.hq.store.plates import plate_pattern
from picar.hq.store.records import (
    Disposition,
    HeatAlarm,
    Hit,
    Image,
    ImageRef,
    K9Deployment,
    Position,
    Read,
    ReadQuery,
    SearchAuditEntry,
    Searcher,
    SearchResult,
    Vehicle,
    WatchlistVersion,
)

_HIT_COLUMNS = ("event_id, vehicle, camera, time, received_at, plate, read_text, read_top, confidence, list, "
                "region, priority, covert, reason, match_kind, match, lat, lon, repeat_of, recheck, acknowledged_at, "
                "acknowledged_by, payload")
_IMAGE_REF = "event_id, hit_event_id, role, content_type, bytes, time"


def fleet(conn: psycopg.Connection) -> list[Vehicle]:
    """Every car HQ has heard from, by id."""
    with conn.cursor(row_factory=class_row(Vehicle)) as cur:
        return cur.execute(
            "SELECT id, online, last_seen, status_time, watchlist_version, backlog, last_lat, last_lon, "
            "last_position_time, status FROM vehicles ORDER BY id").fetchall()


def vehicle(conn: psycopg.Connection, vehicle_id: str) -> Vehicle | None:
    """One car as `fleet` shows it."""
    with conn.cursor(row_factory=class_row(Vehicle)) as cur:
        return cur.execute(
            "SELECT id, online, last_seen, status_time, watchlist_version, backlog, last_lat, last_lon, "
            "last_position_time, status FROM vehicles WHERE id = %s", (vehicle_id,)).fetchone()


def seen_since(conn: psycopg.Connection, since: dt.datetime) -> list[Vehicle]:
    """The cars HQ heard from after `since` (by HQ's clock): the console asks every few seconds which cars
    moved, since positions are not announced one by one."""
    with conn.cursor(row_factory=class_row(Vehicle)) as cur:
        return cur.execute(
            "SELECT id, online, last_seen, status_time, watchlist_version, backlog, last_lat, last_lon, "
            "last_position_time, status FROM vehicles WHERE last_seen > %s ORDER BY id", (since,)).fetchall()


def recent_hits(conn: psycopg.Connection, limit: int = 50, *, since: dt.datetime | None = None,
                vehicle: str | None = None, unacknowledged: bool = False,
                priority: int | None = None) -> list[Hit]:
    """The newest hits by arrival at HQ (``since``: received after it; ``priority``: of that priority only),
    with image references and the last disposition of each."""
    where: list[str] = ["TRUE"]
    args: list[Any] = []
    if priority is not None:
        where.append("priority = %s")
        args.append(priority)
    if since is not None:
        where.append("received_at > %s")
        args.append(since)
    if vehicle is not None:
        where.append("vehicle = %s")
        args.append(vehicle)
    if unacknowledged:
        where.append("acknowledged_at IS NULL")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {_HIT_COLUMNS} FROM hits WHERE {' AND '.join(where)} "
                           "ORDER BY received_at DESC, event_id LIMIT %s", (*args, limit)).fetchall()
    return _with_evidence(conn, rows)


def hit(conn: psycopg.Connection, event_id: str) -> Hit | None:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {_HIT_COLUMNS} FROM hits WHERE event_id = %s", (event_id,)).fetchall()
    found = _with_evidence(conn, rows)
    return found[0] if found else None


def _with_evidence(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> list[Hit]:
    ids = [r["event_id"] for r in rows]
    images: dict[str, list[ImageRef]] = {}
    last: dict[str, Disposition] = {}
    if ids:
        with conn.cursor(row_factory=class_row(ImageRef)) as cur:
            for ref in cur.execute(f"SELECT {_IMAGE_REF} FROM images WHERE hit_event_id = ANY(%s) "
                                   "ORDER BY role, time", (ids,)):
                images.setdefault(ref.hit_event_id, []).append(ref)
        with conn.cursor(row_factory=class_row(Disposition)) as cur:
            for d in cur.execute("SELECT DISTINCT ON (hit_event_id) event_id, hit_event_id, vehicle, decision, "
                                 "reason, note, time FROM dispositions WHERE hit_event_id = ANY(%s) "
                                 "ORDER BY hit_event_id, time DESC, event_id", (ids,)):
                last[d.hit_event_id] = d
    return [Hit(**r, images=tuple(images.get(r["event_id"], ())), disposition=last.get(r["event_id"]))
            for r in rows]


def image(conn: psycopg.Connection, event_id: str) -> Image | None:
    """One evidence image with its bytes."""
    row = conn.execute(f"SELECT {_IMAGE_REF}, data FROM images WHERE event_id = %s", (event_id,)).fetchone()
    if row is None:
        return None
    return Image(ImageRef(*row[:6]), bytes(row[6]))


def acknowledge_hit(conn: psycopg.Connection, event_id: str, username: str) -> bool:
    """An operator acknowledged the hit's alarm; False if there is no such hit or it was acknowledged."""
    with conn.transaction():
        cur = conn.execute("UPDATE hits SET acknowledged_at = now(), acknowledged_by = %s "
                           "WHERE event_id = %s AND acknowledged_at IS NULL", (username, event_id))
    return cur.rowcount == 1


def heat_alarms(conn: psycopg.Connection, limit: int = 50, *, unacknowledged: bool = False) -> list[HeatAlarm]:
    where = "WHERE acknowledged_at IS NULL" if unacknowledged else ""
    with conn.cursor(row_factory=class_row(HeatAlarm)) as cur:
        return cur.execute(f"SELECT event_id, vehicle, state, temp_c, reason, time, received_at, acknowledged_at, "
                           f"acknowledged_by, payload FROM heat_alarms {where} ORDER BY received_at DESC LIMIT %s",
                           (limit,)).fetchall()


def heat_alarm(conn: psycopg.Connection, event_id: str) -> HeatAlarm | None:
    with conn.cursor(row_factory=class_row(HeatAlarm)) as cur:
        return cur.execute("SELECT event_id, vehicle, state, temp_c, reason, time, received_at, acknowledged_at, "
                           "acknowledged_by, payload FROM heat_alarms WHERE event_id = %s", (event_id,)).fetchone()


def disposition_hit(conn: psycopg.Connection, disposition_event_id: str) -> str | None:
    """The hit a disposition decides (its event id), or None for an unknown disposition."""
    row = conn.execute("SELECT hit_event_id FROM dispositions WHERE event_id = %s",
                       (disposition_event_id,)).fetchone()
    return None if row is None else str(row[0])


def acknowledge_heat(conn: psycopg.Connection, event_id: str, username: str) -> bool:
    with conn.transaction():
        cur = conn.execute("UPDATE heat_alarms SET acknowledged_at = now(), acknowledged_by = %s "
                           "WHERE event_id = %s AND acknowledged_at IS NULL", (username, event_id))
    return cur.rowcount == 1


def search_reads(conn: psycopg.Connection, query: ReadQuery, searcher: Searcher, *,
                 export: str | None = None) -> SearchResult:
    """Search the reads and write the audit entry (who, case, reason, query, how many) in one transaction:
    there is no search without its entry. ``export`` names the file the results leave HQ in ("csv"): the
    entry records it with the query."""
    where, args = _read_filter(query)
    with conn.transaction():
        with conn.cursor(row_factory=class_row(Read)) as cur:
            reads = cur.execute(
                "SELECT event_id, time, vehicle, camera, plate, confidence, region, lat, lon, series FROM reads "
                f"WHERE {' AND '.join(where)} ORDER BY time DESC, event_id LIMIT %s",
                (*args, query.limit + 1)).fetchall()
        truncated = len(reads) > query.limit
        reads = reads[:query.limit]
        row = conn.execute(
            "INSERT INTO search_audit (account_id, username, case_number, reason, query, result_count) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (searcher.account_id, searcher.username, searcher.case_number.strip(), searcher.reason.strip(),
             Jsonb({**query.as_json(), **({"export": export} if export else {})}), len(reads))).fetchone()
    assert row is not None
    return SearchResult(reads, int(row[0]), truncated)


def _read_filter(query: ReadQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = ["TRUE"]
    args: list[Any] = []
    if query.plate is not None:
        pat = plate_pattern(query.plate, query.confusable)
        where.append(f"{pat.column} {pat.op} %s")  # column and op come from plate_pattern, never from input
        args.append(pat.value)
    if query.since is not None:
        where.append("time >= %s")
        args.append(query.since)
    if query.until is not None:
        where.append("time < %s")
        args.append(query.until)
    if query.vehicle is not None:
        where.append("vehicle = %s")
        args.append(query.vehicle)
    if query.area is not None:
        a = query.area
        where.append("lat IS NOT NULL AND lon IS NOT NULL AND point(lon, lat) <@ box(point(%s, %s), point(%s, %s))")
        args += [a.west, a.south, a.east, a.north]
    return where, args


def search_audit(conn: psycopg.Connection, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
                 username: str | None = None, case_number: str | None = None,
                 limit: int = 500) -> list[SearchAuditEntry]:
    """The audit trail of searches, newest first (the console shows it to auditors only)."""
    where: list[str] = ["TRUE"]
    args: list[Any] = []
    for column, op, value in (("at", ">=", since), ("at", "<", until), ("username", "=", username),
                              ("case_number", "=", case_number)):
        if value is not None:
            where.append(f"{column} {op} %s")
            args.append(value)
    with conn.cursor(row_factory=class_row(SearchAuditEntry)) as cur:
        return cur.execute("SELECT id, at, account_id, username, case_number, reason, query, result_count "
                           f"FROM search_audit WHERE {' AND '.join(where)} ORDER BY at DESC, id DESC LIMIT %s",
                           (*args, limit)).fetchall()


def k9_report(conn: psycopg.Connection, since: dt.datetime, until: dt.datetime, *, vehicle: str | None = None,
              dog: str | None = None, handler: str | None = None, with_track: bool = False) -> list[K9Deployment]:
    """The K9 deployments that started in [since, until), oldest first, optionally of one car, dog or handler."""
    where: list[str] = ["started_at >= %s", "started_at < %s"]
    args: list[Any] = [since, until]
    for column, value in (("vehicle", vehicle), ("dog", dog), ("handler", handler)):
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    track = "track" if with_track else "NULL AS track"
    with conn.cursor(row_factory=class_row(K9Deployment)) as cur:
        return cur.execute(
            "SELECT vehicle, deployment_id, dog, handler, type, case_number, notes, trigger, started_at, start_lat, "
            f"start_lon, ended_at, outcome, end_notes, duration_s, track_length_m, {track} FROM k9_deployments "
            f"WHERE {' AND '.join(where)} ORDER BY started_at, vehicle, deployment_id", args).fetchall()


def positions(conn: psycopg.Connection, vehicle: str, since: dt.datetime, until: dt.datetime,
              limit: int = 100_000) -> list[Position]:
    """A car's track between two times, oldest first."""
    with conn.cursor(row_factory=class_row(Position)) as cur:
        return cur.execute("SELECT vehicle, time, lat, lon, speed_kmh, heading_deg FROM positions WHERE vehicle = %s "
                           "AND time >= %s AND time < %s ORDER BY time LIMIT %s",
                           (vehicle, since, until, limit)).fetchall()


def record_watchlist(conn: psycopg.Connection, *, version: int, kind: str, entries: int, document: bytes,
                     published_by: str, target: str = "fleet", note: str | None = None) -> WatchlistVersion:
    """Record a watchlist HQ published (the signed document as sent); raises if ``target`` already has
    that version."""
    with conn.transaction(), conn.cursor(row_factory=class_row(WatchlistVersion)) as cur:
        row = cur.execute(
            "INSERT INTO watchlist_versions (version, target, kind, entries, sha256, document, published_by, note) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, version, target, kind, entries, sha256, "
            "published_at, published_by, note",
            (version, target, kind, entries, hashlib.sha256(document).hexdigest(), document, published_by,
             note)).fetchone()
    assert row is not None
    return row


def watchlist_versions(conn: psycopg.Connection, limit: int = 100,
                       targets: Sequence[str] | None = None) -> list[WatchlistVersion]:
    """Published watchlists, newest first."""
    where, args = ("WHERE target = ANY(%s)", [list(targets)]) if targets else ("", [])
    with conn.cursor(row_factory=class_row(WatchlistVersion)) as cur:
        return cur.execute("SELECT id, version, target, kind, entries, sha256, published_at, published_by, note "
                           f"FROM watchlist_versions {where} ORDER BY published_at DESC, id DESC LIMIT %s",
                           (*args, limit)).fetchall()


def watchlist_document(conn: psycopg.Connection, version_id: int) -> bytes | None:
    row = conn.execute("SELECT document FROM watchlist_versions WHERE id = %s", (version_id,)).fetchone()
    return None if row is None else bytes(row[0])
