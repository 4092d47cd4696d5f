"""HQ's end-to-end acknowledgements: an event is delivered when HQ's database has committed it, not when the
broker has acknowledged it (docs/mqtt.md, "Delivery guarantees").

HQ's ingest publishes ``{"events": [event_id, ...]}`` on ``{prefix}/{vehicle}/ack`` (QoS 1) after each
commit, for new events and repeats alike. The car marks them in the outbox (`hq_acked_at`). An event the
broker acknowledged but HQ has not is sent again: at once (after a short settle for queued acks) when the
connection comes back, if the broker acknowledged it in the last ``timeout_s`` before the connection
dropped (a crashed broker may have lost it); otherwise ``timeout_s`` after the broker's acknowledgement,
doubling with each resend up to ``max_s``. HQ stores each event once, so a resend costs only bandwidth.

Modes (config ``mqtt.hq_ack``): ``on`` waits for HQ's acknowledgement for every event stored from now on;
``off`` never waits (the broker's PUBACK delivers, as before end-to-end acks); ``auto`` (the default) starts
waiting when the first acknowledgement from HQ arrives, so a car talking to an HQ without acknowledging
ingest keeps working as before. Once waiting, the outbox remembers it across restarts (``off`` clears it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence

import paho.mqtt.client as mqtt

from picar.link.outbox import Outbox

HQ_ACK_MODES = ("auto", "on", "off")
SETTLE_S = 2.0  # after a connect, HQ's acks queued for the car arrive before anything is resent
CHECK_EVERY_S = 1.0
MAX_ACK_IDS = 10_000  # one acknowledgement lists at most this many events (HQ splits larger batches)

log = logging.getLogger("picar.hq")


def ack_payload(event_ids: Sequence[str]) -> bytes:
    """The acknowledgement HQ sends a car: the event ids its database committed (new or repeated)."""
    if len(event_ids) > MAX_ACK_IDS:
        raise ValueError(f"an acknowledgement lists at most {MAX_ACK_IDS} events, not {len(event_ids)}")
    return json.dumps({"events": list(event_ids)}, separators=(",", ":")).encode()


def parse_ack(payload: bytes) -> list[str]:
    """The event ids of an acknowledgement; ValueError saying what is wrong with it."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"HQ acknowledgement is not JSON: {exc}") from None
    ids = body.get("events") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(e, str) and e for e in ids) or len(ids) > MAX_ACK_IDS:
        raise ValueError(f'HQ acknowledgement must be {{"events": [up to {MAX_ACK_IDS} event ids]}}')
    return ids


class HqAcks:
    """The car's side: collects HQ's acknowledgements (network thread), writes them to the outbox and
    decides what to send again (the link's sender thread)."""

    def __init__(self, outbox: Outbox, mode: str = "auto", timeout_s: float = 60.0, max_s: float = 900.0,
                 clock: Callable[[], float] = time.time) -> None:
        if mode not in HQ_ACK_MODES:
            raise ValueError(f"hq_ack {mode!r}: one of {', '.join(HQ_ACK_MODES)}")
        if not 0 < timeout_s <= max_s:
            raise ValueError(f"hq_ack_timeout_s {timeout_s} / hq_ack_max_s {max_s}: need 0 < timeout <= max")
        self.outbox = outbox
        self.mode = mode
        self.timeout_s = timeout_s
        self.max_s = max_s
        self._clock = clock
        self._lock = threading.Lock()
        self._received: list[str] = []
        self._lost_at: float | None = None  # wall clock, when the last connection dropped
        self._after_reconnect: float | None = None  # resend what the broker acknowledged since then
        self._settle_until = 0.0
        self._next_check = 0.0
        self.acked = 0  # acknowledgements received (events)
        self.resent = 0  # events queued again because HQ had not acknowledged them
        if mode == "on" and outbox.hq_acks_from() is None:
            outbox.await_hq_acks(outbox.next_seq())
        elif mode == "off" and outbox.hq_acks_from() is not None:
            outbox.await_hq_acks(None)

    @property
    def listening(self) -> bool:
        """Whether the link subscribes to HQ's acknowledgements."""
        return self.mode != "off"

    def received(self, payload: bytes) -> int:
        """An acknowledgement arrived (network thread: only parses and queues); returns its event count."""
        ids = parse_ack(payload)
        with self._lock:
            self._received.extend(ids)
        return len(ids)

    def on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        """paho's handler for the ack topic. Acknowledged to the broker at once: a lost acknowledgement from
        HQ only makes the car send the event again."""
        try:
            self.received(bytes(msg.payload))
        except ValueError as exc:
            log.error("%s; ignored", exc)
        if msg.qos > 0:
            client.ack(msg.mid, msg.qos)

    def pending(self) -> bool:
        with self._lock:
            return bool(self._received)

    def flush(self) -> int:
        """Write the acknowledgements received so far to the outbox; returns how many events."""
        with self._lock:
            ids, self._received = self._received, []
        if not ids:
            return 0
        try:
            if self.mode == "auto" and self.outbox.hq_acks_from() is None:
                start = self.outbox.first_unconfirmed(self._clock() - self.timeout_s, ids)
                self.outbox.await_hq_acks(start)
                log.info("HQ acknowledges events end to end: from event %d on, an event stays in the outbox "
                         "until HQ's database has it", start)
            self.outbox.mark_hq_acked(ids)
        except Exception:
            with self._lock:  # kept to be written again; at worst the events would be resent
                self._received[:0] = ids
            raise
        self.acked += len(ids)
        return len(ids)

    def connection_lost(self) -> None:
        with self._lock:
            self._lost_at = self._clock()

    def connected(self) -> None:
        with self._lock:
            if self._lost_at is not None:
                self._after_reconnect = self._lost_at - self.timeout_s
            self._settle_until = time.monotonic() + SETTLE_S

    def resend_due(self) -> int:
        """Queue again what HQ has not acknowledged and is due (call while connected); returns how many."""
        now = time.monotonic()
        with self._lock:
            if now < self._settle_until or (now < self._next_check and self._after_reconnect is None):
                return 0
            self._next_check = now + CHECK_EVERY_S
            since, self._after_reconnect = self._after_reconnect, None
        n = self.outbox.resend_unconfirmed(self.timeout_s, self.max_s, since)
        if n:
            self.resent += n
            log.info("HQ link: %d event(s) sent again: HQ has not acknowledged them%s", n,
                     " (the connection dropped after the broker acknowledged them)" if since is not None else "")
        return n
