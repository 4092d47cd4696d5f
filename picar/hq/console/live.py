"""Live updates: what ingest announces on PostgreSQL's `picar_hq` channel, loaded once per console process and
handed to every open page's event stream.

One task LISTENs (picar.hq.store.writes.CHANNEL; the console's own acknowledgements are announced there too,
so every console drops an acknowledged alarm). Each announcement becomes a `Change` holding the record it
names (a Hit with its images and disposition, a Vehicle, a HeatAlarm), loaded by one query whatever the
number of pages. Positions are not announced one by one: a second task asks every POSITION_EVERY_S which
cars moved. After the listener (re)connects every page gets `resync` and re-reads what it shows, so a gap
in the stream loses nothing. Each page's queue is bounded; a page that falls behind is dropped and
reconnects (its EventSource does it) with a resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import psycopg

from picar.hq.console.db import Database
from picar.hq.store import queries
from picar.hq.store.writes import CHANNEL

log = logging.getLogger("picar.hq.console")

PAGE_QUEUE = 256
POSITION_EVERY_S = 2.0
POSITION_OVERLAP = dt.timedelta(seconds=10)
RECONNECT_S = (0.5, 1.0, 2.0, 5.0)
KEEPALIVE_S = 15.0
STREAM_MAX_S = 300.0  # then the page reconnects: its session's idle clock restarts, a revoked one ends


@dataclass(frozen=True)
class Change:
    """Something a page may show: `kind` (hit, image, disposition, heat, status, ack, resync), the record."""

    kind: str
    record: Any = None  # Hit, Vehicle or HeatAlarm; for "ack" {"what": "hit"|"heat", "event_id": ...}


class _Page:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue(PAGE_QUEUE)
        self.dropped = False

    def offer(self, change: Change | None) -> None:
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.dropped = True


class Live:
    """The listener, the position check and the pages listening; runs on the server's event loop."""

    def __init__(self, dsn: str, db: Database, position_every_s: float = POSITION_EVERY_S) -> None:
        self.dsn = dsn
        self.db = db
        self.position_every_s = position_every_s
        self.listening = asyncio.Event()
        self._pages: set[_Page] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.loop: asyncio.AbstractEventLoop | None = None

    # lifecycle

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._listen(), name="hq-console-listen"),
                       asyncio.create_task(self._positions(), name="hq-console-positions")]

    def close_streams(self) -> None:
        """End every page's stream now (the server is stopping: it need not wait for them)."""
        self._closing = True
        for page in list(self._pages):
            page.offer(None)

    def close_streams_threadsafe(self) -> None:
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                self.loop.call_soon_threadsafe(self.close_streams)

    async def stop(self) -> None:
        self.close_streams()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # pages

    async def changes(self, stop: asyncio.Event | None = None) -> AsyncGenerator[Change | None, None]:
        """One page's changes; None when idle for KEEPALIVE_S (the page gets a keep-alive); ends after
        STREAM_MAX_S, when `stop` is set, or when the page fell behind. The first item is a None as soon as
        the page is registered: whatever is published after it reaches the page."""
        page = _Page()
        self._pages.add(page)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_MAX_S
        try:
            yield None
            while not page.dropped and not self._closing and loop.time() < deadline and not (stop and stop.is_set()):
                try:
                    change = await asyncio.wait_for(page.queue.get(), min(KEEPALIVE_S, deadline - loop.time()))
                except TimeoutError:
                    yield None
                    continue
                if change is None:
                    return
                yield change
        finally:
            self._pages.discard(page)

    def publish(self, change: Change) -> None:
        for page in list(self._pages):
            page.offer(change)

    def page_count(self) -> int:
        return len(self._pages)

    # sources

    async def _listen(self) -> None:
        attempt = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True,
                                                                 application_name="picar-hq-console") as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    attempt = 0
                    self.listening.set()
                    self.publish(Change("resync"))
                    async for note in conn.notifies():
                        await self._announced(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening.clear()
                delay = RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)]
                attempt += 1
                log.warning("console: LISTEN %s lost (%s); again in %.1f s", CHANNEL, exc, delay)
                await asyncio.sleep(delay)

    async def _announced(self, payload: str) -> None:
        try:
            body = json.loads(payload)
            change = await self.load(str(body["kind"]), body)
        except Exception:
            log.exception("console: cannot show announcement %.200s", payload)
            return
        if change is not None:
            self.publish(change)

    async def load(self, kind: str, body: dict[str, Any]) -> Change | None:
        """The record an announcement names, as a Change; None when it is gone or of no interest."""
        event_id = body.get("event_id")
        if kind == "hit" and isinstance(event_id, str):
            record: Any = await self.db.run(queries.hit, event_id)
        elif kind == "image" and isinstance(body.get("hit_event_id"), str):
            record = await self.db.run(queries.hit, body["hit_event_id"])
        elif kind == "disposition" and isinstance(event_id, str):
            hit_id = await self.db.run(queries.disposition_hit, event_id)
            record = None if hit_id is None else await self.db.run(queries.hit, hit_id)
        elif kind == "heat" and isinstance(event_id, str):
            record = await self.db.run(queries.heat_alarm, event_id)
        elif kind == "status" and isinstance(body.get("vehicle"), str):
            record = await self.db.run(queries.vehicle, body["vehicle"])
        elif kind == "ack" and body.get("what") in ("hit", "heat") and isinstance(event_id, str):
            record = {"what": body["what"], "event_id": event_id, "by": body.get("by")}
        else:
            return None
        return None if record is None else Change(kind, record)

    async def _positions(self) -> None:
        shown: dict[str, tuple[Any, ...]] = {}
        since: dt.datetime | None = None
        while True:
            try:
                now = await self.db.run(_now)
                # A batch commits after its now(): look back a little and skip what is unchanged.
                for car in await self.db.run(queries.seen_since, (since or now) - POSITION_OVERLAP):
                    key = (car.last_lat, car.last_lon, car.last_position_time)
                    if shown.get(car.id) != key:
                        if car.id in shown or since is not None:
                            self.publish(Change("status", car))
                        shown[car.id] = key
                since = now
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("console: the position check failed (%s)", exc)
            await asyncio.sleep(self.position_every_s)


def _now(conn: psycopg.Connection) -> dt.datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: dt.datetime = row[0]
    return now


def announce(conn: psycopg.Connection, body: dict[str, Any]) -> None:
    """Tell every console (through the database, so every process hears it) about a change made here."""
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(body)))
