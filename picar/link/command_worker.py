"""HQ's messages to the car are handled off the MQTT network thread, one at a time, in arrival order, and
acknowledged only once handled: a message whose handling did not finish (the car stopped or died) has no
PUBACK, so the broker delivers it again with the persistent session."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

MAX_WAITING = 64  # messages waiting for the handler; beyond that the broker keeps them unacknowledged

Handler = Callable[[str, bytes], None]
Ack = Callable[[int, int], object]  # (mid, qos): send the PUBACK


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int


class CommandWorker:
    def __init__(self, handler: Handler, ack: Ack, name: str, log: logging.Logger) -> None:
        self._handler = handler
        self._ack = ack
        self._log = log
        self._queue: queue.Queue[Message | None] = queue.Queue(MAX_WAITING)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, message: Message) -> bool:
        """Queue one message (never blocks the network thread); False when full (left unacknowledged)."""
        try:
            self._queue.put_nowait(message)
            return True
        except queue.Full:
            self._log.error("HQ message on %s not handled now: %d already waiting; the broker keeps it",
                            message.topic, MAX_WAITING)
            return False

    def stop(self, timeout: float) -> None:
        """Finish the message in hand (up to `timeout`); the rest stay unacknowledged for the next start."""
        self._stopping.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            message = self._queue.get()
            if message is None or self._stopping.is_set():
                return
            try:
                self._handler(message.topic, message.payload)
            except Exception:
                self._log.exception("HQ command handler failed for a message on %s", message.topic)
            if not self._stopping.is_set() and message.qos > 0:
                self._ack(message.mid, message.qos)
