"""Every event the car sends goes through here: into the on-disk outbox (and on to HQ when the link is up).

When the outbox cannot take an event (disk full), the event waits in memory, bounded, and housekeeping
retries it in order: a full disk delays events instead of losing them.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any

from picar.link.outbox import Outbox, OutboxError
from picar.link.topics import vehicle_topic

if TYPE_CHECKING:
    from picar.link.mqtt import HqLink

log = logging.getLogger("picar")

MAX_WAITING = 10000  # events kept in memory while the outbox refuses them


class EventPublisher:
    """`publish(kind, payload)` from any thread; `retry_waiting()` from housekeeping."""

    def __init__(self, outbox: Outbox, hq: HqLink | None, topic_prefix: str, vehicle_id: str) -> None:
        self.outbox = outbox
        self.hq = hq
        self.topic_prefix = topic_prefix
        self.vehicle_id = vehicle_id
        self._waiting: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Events held in memory because the outbox refused them."""
        with self._lock:
            return len(self._waiting)

    def publish(self, kind: str, payload: dict[str, Any]) -> str:
        """Queue one event for HQ; returns its event id (given in the payload or made here).

        While events wait in memory a new one waits behind them, so HQ gets them in the order they
        happened. An outage is logged once when it starts and once when it ends, not per event.
        """
        event_id = str(payload.setdefault("event_id", str(uuid.uuid4())))
        with self._lock:
            behind = bool(self._waiting)
        if behind:
            self._wait(kind, payload)
            return event_id
        try:
            self._queue(kind, payload)
        except OutboxError as exc:
            self._wait(kind, payload)
            log.error("outbox: cannot store %s event %s (%s); it and the events after it wait in memory "
                      "and are stored when the outbox takes them again", kind, event_id, exc)
        return event_id

    def _wait(self, kind: str, payload: dict[str, Any]) -> None:
        with self._lock:
            if len(self._waiting) < MAX_WAITING:
                self._waiting.append((kind, payload))
                return
        log.critical("event %s (%s) lost: outbox unavailable and %d events already waiting",
                     payload["event_id"], kind, MAX_WAITING)

    def retry_waiting(self) -> None:
        """Store the events that waited in memory, oldest first, until the outbox refuses again."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for i, (kind, payload) in enumerate(waiting):
            try:
                self._queue(kind, payload)
            except OutboxError:
                with self._lock:
                    self._waiting[:0] = waiting[i:]
                return
        if waiting:
            log.info("outbox: %d waiting event(s) stored", len(waiting))

    def _queue(self, kind: str, payload: dict[str, Any]) -> None:
        if self.hq is not None:
            self.hq.publish_event(kind, payload, event_id=payload["event_id"])
        else:
            topic = vehicle_topic(self.topic_prefix, self.vehicle_id, kind)
            self.outbox.put(topic, payload, qos=1, event_id=payload["event_id"])
