"""The console's connections to HQ's store: a few psycopg connections reused across requests, each query run
on Starlette's worker threads so the event loop never waits on PostgreSQL.

    fleet = await console.db.run(queries.fleet)            # queries.fleet(conn)
    hit = await console.db.run(queries.hit, event_id)
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import psycopg
from starlette.concurrency import run_in_threadpool

from picar.hq.store import connect

log = logging.getLogger("picar.hq.console")

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """At most `size` open connections (autocommit, UTC); a broken one is closed and replaced on next use."""

    def __init__(self, dsn: str, size: int = 8) -> None:
        self.dsn = dsn
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    def call(self, fn: Callable[Concatenate[psycopg.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """fn(conn, *args, **kwargs) on a pooled connection, on this thread."""
        if self._closed:
            raise RuntimeError("the console's database pool is closed")
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = connect(self.dsn, application_name="picar-hq-console")
            try:
                result = fn(conn, *args, **kwargs)
            except BaseException:
                if conn.broken or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.close()
                else:
                    self._idle.put(conn)
                raise
            self._idle.put(conn)
            return result

    async def run(self, fn: Callable[Concatenate[psycopg.Connection, P], T], *args: P.args,
                  **kwargs: P.kwargs) -> T:
        """fn(conn, *args, **kwargs) on a worker thread."""
        return await run_in_threadpool(functools.partial(self.call, fn, *args, **kwargs))

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
