"""Writes the car's database refused (disk full), kept in memory in order until they can be written.

A record shown to the officer must never be lost to a full disk: the store keeps each refused write here,
retries them oldest first, and still answers for what they hold (a waiting hit is still a hit). The queue
is bounded; a write beyond the bound is lost, counted and logged as critical by the store.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

MAX_PENDING = 100_000  # records kept in memory while the database refuses them


@dataclass(frozen=True)
class Unwritten:
    """One refused write: `kind` is read, hit, read hit flag, disposition or audit; `key` its event id."""

    kind: str
    key: str
    sql: str
    args: tuple[Any, ...]


class PendingWrites:
    """The refused writes, oldest first, and the reads and hits they hold. Not thread-safe: the store locks."""

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self.limit = limit
        self.lost = 0
        self._queue: deque[Unwritten] = deque()
        self.hits: dict[str, dict[str, Any]] = {}  # hit event id -> its row as `Store.hit` answers it
        self.reads: dict[str, dict[str, Any]] = {}  # read event id -> its row as `Store.recent_reads` answers it
        self.dispositions: dict[str, dict[str, Any]] = {}  # hit event id -> disposition columns not yet written

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, item: Unwritten, row: dict[str, Any] | None = None) -> bool:
        """Keep a write; False (and counted in `lost`) when the queue is at its bound."""
        if len(self._queue) >= self.limit:
            self.lost += 1
            return False
        self._queue.append(item)
        if item.kind == "hit" and row is not None:
            self.hits[item.key] = row
        elif item.kind == "read" and row is not None:
            self.reads[item.key] = row
        elif item.kind == "disposition" and row is not None:
            self.dispositions[item.key] = row
            if item.key in self.hits:
                self.hits[item.key].update(row)
        return True

    def head(self, n: int) -> list[Unwritten]:
        """The `n` oldest writes, still kept."""
        return [self._queue[i] for i in range(min(n, len(self._queue)))]

    def written(self, n: int) -> None:
        """The `n` oldest writes are in the database now: forget them."""
        for _ in range(n):
            item = self._queue.popleft()
            if item.kind == "hit":
                self.hits.pop(item.key, None)
            elif item.kind == "read":
                self.reads.pop(item.key, None)
            elif item.kind == "disposition" and not any(
                    w.kind == "disposition" and w.key == item.key for w in self._queue):
                self.dispositions.pop(item.key, None)

    def counts(self) -> dict[str, int]:
        """How many writes of each kind wait, and how many were lost over the bound."""
        counts = {"reads": 0, "hits": 0, "dispositions": 0, "audit": 0}
        names = {"read": "reads", "hit": "hits", "disposition": "dispositions", "audit": "audit"}
        for item in self._queue:
            if item.kind in names:
                counts[names[item.kind]] += 1
        return {**counts, "total": len(self._queue), "lost": self.lost}
