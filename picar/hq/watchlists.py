"""Watchlists at HQ: import a file for review (every invalid row with its line), compare it with the list in
force, then sign, publish and record it as a snapshot for the fleet or one car.

The rules are the car's own: the importers (picar.watchlist.io, picar.watchlist.ncic) validate each entry
with the car's builder, and `check_update` (picar.hq.cli) refuses a payload any car would refuse, before it
is signed. Publishing records the signed document first and only commits once the broker has acknowledged
it (QoS 1, retained), so the record and what the cars receive cannot differ.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from picar.hq.cli import check_update, publish_retained
from picar.hq.store.drafts import close_draft, draft_records
from picar.hq.store.queries import record_watchlist, watchlist_document, watchlist_versions
from picar.hq.store.records import WatchlistVersion
from picar.link.topics import FLEET, WATCHLIST, fleet_topic, vehicle_topic
from picar.watchlist.entries import DEFAULT_LIST, WatchlistError
from picar.watchlist.io import WatchlistImportError, decode_text, read_csv
from picar.watchlist.ncic import read_ncic_any, shape
from picar.watchlist.signing import load_private_key, open_envelope, sign
from picar.watchlist.update import UpdateError, default_version, parse_update, snapshot_payload

FORMATS = ("csv", "ncic")
MAX_INVALID = 50  # invalid rows listed before an import is given up as the wrong file
Record = dict[str, Any]


@dataclass(frozen=True)
class InvalidRow:
    """A row the import refused: its line (None when the whole file is refused) and why."""

    line: int | None
    message: str


@dataclass(frozen=True)
class ImportReview:
    """What an import would publish, and what it left out."""

    filename: str
    format: str
    records: list[Record]
    invalid: list[InvalidRow]
    gave_up: bool = False  # more than MAX_INVALID invalid rows: the rest were not looked at

    @property
    def by_list(self) -> dict[str, int]:
        return dict(sorted(Counter(r.get("list", DEFAULT_LIST) for r in self.records).items()))

    @property
    def publishable(self) -> bool:
        return bool(self.records) and not self.gave_up and all(row.line is not None for row in self.invalid)


def _reader(fmt: str, filename: str) -> Callable[[bytes], list[Record]]:
    if fmt == "csv":
        return lambda data: read_csv(Path(filename), decode_text(data, filename, "utf-8"))
    if fmt == "ncic":
        return lambda data: read_ncic_any(Path(filename), data)
    raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")


def _header_line(data: bytes, fmt: str) -> int | None:
    """The line of a header row (csv, or a delimited NCIC export): an error there refuses the file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if fmt == "ncic" and shape(text) != "delimited":
        return None
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not (fmt == "ncic" and line.lstrip().startswith("#")):
            return n
    return None


def review_import(data: bytes, filename: str, fmt: str) -> ImportReview:
    """Import `data` as the importer would, but list every invalid row instead of stopping at the first.

    Each error names its line; that line is blanked (both importers skip blank lines, so every other
    line keeps its number) and the import runs again, up to MAX_INVALID times. An error without a line
    (an empty file, a bad header) refuses the whole file.
    """
    read = _reader(fmt, filename)
    pattern = re.compile(rf"^{re.escape(filename)} line (\d+)")
    header = _header_line(data, fmt)
    invalid: list[InvalidRow] = []
    while True:
        try:
            records = read(data)
        except (WatchlistImportError, WatchlistError) as exc:
            m = pattern.match(str(exc))
            line = int(m.group(1)) if m else None
            if line is None or line == header or not _line(data, line).strip():
                # the whole file (or a line the importer cannot get past by leaving it out)
                return ImportReview(filename, fmt, [], [*invalid, InvalidRow(None, str(exc))])
            invalid.append(InvalidRow(line, str(exc)))
            if len(invalid) >= MAX_INVALID:
                return ImportReview(filename, fmt, [], invalid, gave_up=True)
            data = _blank_line(data, line)
        else:
            return ImportReview(filename, fmt, records, sorted(invalid, key=lambda r: r.line or 0))


def _line(data: bytes, line: int) -> bytes:
    lines = data.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else b""


def _blank_line(data: bytes, line: int) -> bytes:
    lines = data.splitlines(keepends=True)
    text = lines[line - 1]
    lines[line - 1] = text[len(text.rstrip(b"\r\n")):]
    return b"".join(lines)


# --- the list in force and the difference -----------------------------------------------------------


def _key(rec: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(rec["plate"]), str(rec.get("list") or DEFAULT_LIST), str(rec.get("region") or ""))


def _canonical(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A record without its defaults spelt out, so that two spellings of one entry compare equal."""
    out = {k: v for k, v in rec.items() if v not in (None, "", False)}
    out["list"] = out.get("list") or DEFAULT_LIST
    if out.get("priority") == 2:
        del out["priority"]
    return out


@dataclass(frozen=True)
class Diff:
    """What publishing `new` changes against `old`, entry by entry (identity: plate, list, region)."""

    added: list[Record] = field(default_factory=list)
    removed: list[Record] = field(default_factory=list)
    changed: list[tuple[Record, Record]] = field(default_factory=list)  # (old, new)
    unchanged: int = 0


def diff(old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]) -> Diff:
    before = {_key(r): _canonical(r) for r in old}
    after = {_key(r): _canonical(r) for r in new}
    added = [after[k] for k in after if k not in before]
    removed = [before[k] for k in before if k not in after]
    changed = [(before[k], after[k]) for k in after if k in before and before[k] != after[k]]
    unchanged = sum(1 for k in after if k in before and before[k] == after[k])
    return Diff(sorted(added, key=_key), sorted(removed, key=_key), sorted(changed, key=lambda p: _key(p[1])),
                unchanged)


@dataclass(frozen=True)
class InForce:
    """The newest list published to a target (a car also takes the fleet's) and its entries."""

    version: WatchlistVersion
    records: list[Record] | None  # None for a delta: its entries alone are not the list


def in_force(conn: psycopg.Connection, target: str = FLEET) -> InForce | None:
    """The newest snapshot or delta published to `target` (for a car: to it or to the fleet)."""
    newest = watchlist_versions(conn, 1, [FLEET] if target == FLEET else [FLEET, target])
    if not newest:
        return None
    document = watchlist_document(conn, newest[0].id)
    assert document is not None
    update = parse_update(open_envelope(document, None, require_signature=False).payload)
    records = [dict(r) for r in update.entries] if update.kind == "snapshot" else None
    return InForce(newest[0], records)


def next_version(conn: psycopg.Connection, now: dt.datetime | None = None) -> int:
    """A version above every version published to any target: a car compares its own list's versions and
    the fleet's on one scale, and takes only a newer one."""
    row = conn.execute("SELECT max(version) FROM watchlist_versions").fetchone()
    newest = int(row[0]) if row and row[0] is not None else 0
    return max(default_version(now), newest + 1)


# --- signing and publishing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Broker:
    """How HQ reaches the broker to publish (as its `hq` user)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    keyfile: str | None = None
    prefix: str = "picar/v1"
    timeout_s: float = 30.0


class PublishError(RuntimeError):
    """The list was not published (and not recorded); the message says why."""


def publish_snapshot(conn: psycopg.Connection, records: list[Record], *, key: Path, broker: Broker,
                     published_by: str, target: str = FLEET, list_id: str = "", note: str | None = None,
                     now: dt.datetime | None = None) -> WatchlistVersion:
    """Sign `records` as a snapshot for `target` (FLEET or a vehicle id), publish it retained at QoS 1 and
    record it; nothing is recorded unless the broker acknowledged it."""
    prefix = broker.prefix.strip("/")
    topic = fleet_topic(prefix, WATCHLIST) if target == FLEET else vehicle_topic(prefix, target, WATCHLIST)
    try:
        private = load_private_key(key)
    except (OSError, ValueError) as exc:
        raise PublishError(f"HQ signing key {key}: {exc}") from None
    with conn.transaction():
        # One publisher at a time: two could otherwise take the same version for two targets.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('picar_hq_watchlist_publish'))")
        version = next_version(conn, now)
        payload = snapshot_payload(records, version, list_id, compress=True)
        try:
            check_update(payload)  # never sign what a car would refuse
        except (WatchlistError, UpdateError) as exc:
            raise PublishError(f"the cars would refuse this list: {exc}") from None
        envelope = sign(payload, private)
        recorded = record_watchlist(conn, version=version, kind="snapshot", entries=len(records),
                                    document=envelope, published_by=published_by, target=target, note=note)
        try:
            publish_retained(envelope, topic, broker.host, broker.port, tls=broker.tls, ca=broker.ca,
                             cert=broker.cert, keyfile=broker.keyfile, username=broker.username,
                             password=broker.password, timeout_s=broker.timeout_s)
        except (OSError, TimeoutError, ConnectionError) as exc:
            raise PublishError(f"broker {broker.host}:{broker.port}: {exc}") from None
    return recorded


def publish_draft(conn: psycopg.Connection, draft_id: int, *, key: Path, broker: Broker, published_by: str,
                  target: str = FLEET, note: str | None = None) -> WatchlistVersion:
    """Publish a reviewed import (picar.hq.store.drafts) once: the draft is locked, published, then closed
    in one transaction, so a second click finds it closed."""
    with conn.transaction():
        row = conn.execute("SELECT published_id, discarded_at, gave_up, invalid FROM watchlist_drafts WHERE id = %s "
                           "FOR UPDATE", (draft_id,)).fetchone()
        if row is None:
            raise PublishError(f"no import {draft_id}")
        if row[0] is not None or row[1] is not None:
            raise PublishError(f"import {draft_id} was already published or discarded")
        if row[2] or any(item.get("line") is None for item in row[3]):
            raise PublishError(f"import {draft_id} was refused as a whole; import a corrected file")
        records = draft_records(conn, draft_id)
        if not records:
            raise PublishError(f"import {draft_id} has no entries")
        version = publish_snapshot(conn, records, key=key, broker=broker, published_by=published_by,
                                   target=target, note=note)
        close_draft(conn, draft_id, published_id=version.id)
    return version
