"""The car's link to HQ over MQTT: events are written to the on-disk outbox first, then sent from it.

Delivery rule: an event leaves the outbox backlog when the broker acknowledged it (PUBACK for its message
id) and, once HQ acknowledges events end to end, when HQ's database has it (link/hq_ack.py). A sender
thread drains the outbox in seq order with at most ``max_inflight`` unacknowledged publishes. While the
connection is down nothing is lost: paho retransmits what was in flight when it reconnects, and every
reconnect rescans the outbox for anything else not acknowledged; a restarted process replays the whole
backlog. Duplicates are therefore possible; HQ recognises them by event_id.
Topic tree and payloads: docs/mqtt.md.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from picar import __version__ as _PICAR_VERSION
from picar.isotime import event_iso
from picar.link.command_worker import CommandWorker, Message
from picar.link.connection import (
    CONNACK_HINTS,
    ProblemLog,
    check_settings,
    describe_connect_error,
    describe_disconnect,
    make_client,
    offline_status,
    online_status,
    provided_status,
)
from picar.link.hq_ack import HqAcks
from picar.link.outbox import Outbox
from picar.link.topics import (
    ACK,
    COMMAND,
    DEFAULT_PREFIX,
    EVENT_KINDS,
    POSITION,
    STATUS,
    WATCHLIST,
    fleet_topic,
    vehicle_topic,
)
from picar.link.window import SendWindow

_OK = MQTTErrorCode.MQTT_ERR_SUCCESS


class HqLink:
    """MQTT client for one vehicle. Call start(); publish_event() never blocks on the network.

    ``status_provider()`` adds fields to the retained online status. ``on_command(topic, payload)``
    receives HQ->car messages (watchlists, commands) on the command worker; each is acknowledged to the
    broker once handled. ``reconnect_min_s`` doubles up to ``reconnect_max_s`` between failed attempts.
    Acknowledged events stay in the outbox for its owner's retention (the daemon's housekeeping).
    """

    def __init__(
        self,
        vehicle_id: str,
        host: str,
        port: int,
        outbox: Outbox,
        *,
        tls: bool = False,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        username: str | None = None,
        password: str | None = None,
        keepalive_s: int = 30,
        topic_prefix: str = DEFAULT_PREFIX,
        client_id: str | None = None,
        max_inflight: int = 20,
        status_provider: Callable[[], dict[str, Any]] | None = None,
        on_command: Callable[[str, bytes], None] | None = None,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
        version: str = _PICAR_VERSION,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        ready_timeout_s: float = 5.0,
        hq_ack: str = "auto",
        hq_ack_timeout_s: float = 60.0,
        hq_ack_max_s: float = 900.0,
    ) -> None:
        prefix = check_settings(vehicle_id, topic_prefix, port, keepalive_s, reconnect_min_s, reconnect_max_s,
                                max_inflight, tls, ca_file, cert_file, key_file)
        self.vehicle_id = vehicle_id
        self.host = host
        self.port = int(port)
        self.outbox = outbox
        self.prefix = prefix
        self.client_id = client_id or f"picar-{vehicle_id}"
        self.max_inflight = max_inflight
        self.keepalive_s = keepalive_s
        self.version = version
        self._status_provider = status_provider
        self._clock = clock
        self._log = logger or logging.getLogger("picar.hq")
        self._ready_timeout_s = ready_timeout_s
        self.status_topic = self.topic(STATUS)
        self.position_topic = self.topic(POSITION)
        self.command_topics = (
            fleet_topic(self.prefix, WATCHLIST),
            self.topic(WATCHLIST),
            self.topic(COMMAND),
        )
        self.ack_topic = self.topic(ACK)
        self._acks = HqAcks(outbox, hq_ack, hq_ack_timeout_s, hq_ack_max_s, clock)
        self._subscriptions = (*self.command_topics, *((self.ack_topic,) if self._acks.listening else ()))

        self._cond = threading.Condition()
        self._connected = False
        self._epoch = 0  # successful connections so far
        self._ready_epoch = 0  # connection whose SUBACK arrived (paho has retransmitted by then)
        self._connected_mono = 0.0
        self._connected_since: float | None = None
        self._sub_mid: int | None = None
        self._window = SendWindow()  # what paho holds and what the broker acknowledged
        self._flush_lock = threading.Lock()
        self._put_gen = 0  # bumped by every publish_event: there may be new work
        self._idle = False  # the sender found nothing more to send in the current connection
        self._stopping = False
        self._started = False
        self._problems = ProblemLog(self._log)
        self._stats = {
            "sent": 0, "acked": 0, "rejected": 0, "positions_sent": 0, "positions_dropped": 0,
            "commands": 0, "connects": 0, "disconnects": 0,
        }
        self._sender: threading.Thread | None = None

        self._client = make_client(self.client_id, max_inflight, reconnect_min_s, reconnect_max_s, username,
                                   password, tls, ca_file, cert_file, key_file)
        self._commands = None if on_command is None else CommandWorker(
            on_command, self._client.ack, f"hq-commands-{vehicle_id}", self._log)
        self._client.will_set(self.status_topic, self._offline_payload("connection lost"), qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

    def topic(self, kind: str) -> str:
        """The topic this vehicle uses for ``kind`` (``{prefix}/{vehicle}/{kind}``)."""
        return vehicle_topic(self.prefix, self.vehicle_id, kind)

    def start(self) -> None:
        """Start connecting in the background; returns at once even when the broker is unreachable."""
        with self._cond:
            if self._started:
                raise RuntimeError("HqLink already started")
            self._started = True
        self._log.info(
            "HQ link %s: connecting to %s:%d as %s (backlog %d)",
            self.vehicle_id, self.host, self.port, self.client_id, self.outbox.backlog(),
        )
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
        self._client.loop_start()
        self._sender = threading.Thread(target=self._run_sender, name=f"hq-sender-{self.vehicle_id}", daemon=True)
        self._sender.start()
        if self._commands is not None:
            self._commands.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Drain what can be sent within ``timeout`` (and wait for HQ's acknowledgements when they are awaited),
        publish the retained offline status, disconnect. What is not delivered stays in the outbox."""
        with self._cond:
            if not self._started or self._stopping:
                return
            # Offline there is nothing to drain into; do not hold up shutdown waiting for a reconnect.
            end = time.monotonic() + timeout
            self._cond.wait_for(lambda: self._drained() or not self._connected, timeout)
            while self._connected and self.outbox.awaiting_hq() and time.monotonic() < end:  # HQ's last acks
                self._cond.wait(min(0.1, end - time.monotonic()))
            self._stopping = True
            connected = self._connected
            self._cond.notify_all()
        deadline = time.monotonic() + max(timeout, 0.5)
        if self._commands is not None:
            self._commands.stop(max(0.1, deadline - time.monotonic()))
        if self._sender is not None:
            self._sender.join(max(0.1, deadline - time.monotonic()))
        if connected:
            info = self._client.publish(self.status_topic, self._offline_payload("shutdown"), qos=1, retain=True)
            try:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:  # the connection dropped meanwhile: the will covers it
                self._log.warning("HQ offline status not sent: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self._flush_acks()
        self._log.info("HQ link %s stopped; %d events left in the outbox", self.vehicle_id, self.backlog)

    def publish_event(self, kind: str, payload: dict[str, Any], event_id: str | None = None) -> str:
        """Store an event durably in the outbox, then queue it for HQ (QoS 1). Returns its event_id.

        Raises OutboxFullError when the outbox cannot store it: the caller must know it was not kept.
        """
        if kind not in EVENT_KINDS:
            raise ValueError(f"hq event kind {kind!r}: must be one of {', '.join(EVENT_KINDS)} (the kinds the "
                             "broker ACL lets a car write; it drops any other without telling the car)")
        eid = self.outbox.put(self.topic(kind), payload, qos=1, event_id=event_id)
        with self._cond:
            self._put_gen += 1
            self._idle = False
            self._cond.notify_all()
        return eid

    def publish_position(self, fix_json: dict[str, Any]) -> bool:
        """Send a position (QoS 0, not stored). Dropped and counted while offline; True if handed to MQTT."""
        body = json.dumps(fix_json, separators=(",", ":"))
        ok = self.connected and self._client.publish(self.position_topic, body, qos=0).rc == _OK
        with self._cond:
            self._stats["positions_sent" if ok else "positions_dropped"] += 1
        return ok

    def publish_status(self) -> mqtt.MQTTMessageInfo | None:
        """Publish the retained online status now; None while offline (it is sent on every connect anyway,
        so a stale one is never queued)."""
        if not self.connected:
            return None
        return self._client.publish(self.status_topic, self._online_payload(), qos=1, retain=True)

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    @property
    def backlog(self) -> int:
        """Events stored but not yet delivered (acknowledged by the broker and, when awaited, by HQ)."""
        return self.outbox.backlog()

    def stats(self) -> dict[str, Any]:
        """Counters and state for health reporting."""
        with self._cond:
            since = None if self._connected_since is None else event_iso(self._connected_since)
            out: dict[str, Any] = dict(self._stats, connected=self._connected, inflight=len(self._window),
                                       connected_since=since, last_problem=self._problems.last,
                                       connect_failures=self._problems.failures)
        return dict(out, backlog=self.outbox.backlog(), awaiting_hq=self.outbox.awaiting_hq(),
                    hq_acked=self._acks.acked, resent_unconfirmed=self._acks.resent)

    def flush_acks(self) -> None:
        """Write the broker's and HQ's acknowledgements received so far to the outbox now (the sender does
        this anyway)."""
        self._flush_acks()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until connected and the broker confirmed the HQ->car subscriptions."""
        with self._cond:
            return self._cond.wait_for(lambda: self._connected and self._ready_epoch == self._epoch, timeout)

    def wait_drained(self, timeout: float) -> bool:
        """Wait until everything in the outbox has been sent and acknowledged by the broker (HQ's
        acknowledgements may follow: `outbox.backlog()` counts what still waits for them)."""
        with self._cond:
            return self._cond.wait_for(self._drained, timeout)

    def _online_payload(self) -> str:
        extra = provided_status(self._status_provider, self._log)
        return online_status(self.vehicle_id, self.version, event_iso(self._clock()), self.outbox.backlog(), extra)

    def _offline_payload(self, reason: str) -> str:
        return offline_status(self.vehicle_id, self.version, reason, event_iso(self._clock()))

    # ---- sender thread -------------------------------------------------------------------------------

    def _drained(self) -> bool:
        # Caller holds self._cond.
        return self._connected and self._idle and self._window.empty()

    def _ready(self) -> bool:
        # After on_connect paho retransmits what was in flight, and only then processes the SUBACK; waiting
        # for it keeps new events behind the retransmissions (order preserved). The timeout covers a broker
        # that never answers the SUBSCRIBE.
        if not self._connected:
            return False
        return self._ready_epoch == self._epoch or (
            time.monotonic() - self._connected_mono > self._ready_timeout_s
        )

    def _has_work(self, epoch_seen: int, seen_gen: int) -> bool:
        # Caller holds self._cond.
        return (
            self._stopping
            or bool(self._window.acked)
            or self._acks.pending()
            or (self._ready() and self._epoch != epoch_seen)
            or (self._ready() and seen_gen != self._put_gen and len(self._window) < self.max_inflight)
        )

    def _run_sender(self) -> None:
        epoch_seen = 0
        cursor = 0  # highest seq handed to paho in this connection
        seen_gen = -1
        while True:
            with self._cond:
                self._cond.wait_for(functools.partial(self._has_work, epoch_seen, seen_gen), timeout=0.5)
                if self._stopping:
                    break
                new_connection = self._ready() and self._epoch != epoch_seen
                if new_connection:
                    epoch_seen = self._epoch
                    cursor = 0
                    self._idle = False
                can_send = self._ready() and len(self._window) < self.max_inflight
                gen = self._put_gen
                ready = self._ready()
            try:
                self._flush_acks()
                if ready and self._acks.resend_due():  # HQ has not acknowledged some: they are pending again
                    cursor, seen_gen = 0, -1
                if new_connection:
                    self.publish_status()
                if can_send and (seen_gen != gen or new_connection):
                    cursor, finished = self._send_some(cursor)
                    if finished:
                        seen_gen = gen
                        with self._cond:
                            self._idle = self._put_gen == gen
                            self._cond.notify_all()
            except Exception:
                # The outbox or paho failed unexpectedly: keep the thread alive, everything stays stored.
                self._log.exception("HQ sender error; will retry")
                with self._cond:
                    self._cond.wait(1.0)
        self._flush_acks()

    def _send_some(self, cursor: int) -> tuple[int, bool]:
        """Hand the next unacknowledged events to paho. Returns the new cursor and whether the end of the
        backlog was reached."""
        with self._cond:
            room = self.max_inflight - len(self._window)
            held = self._window.held()
        limit = room + len(held)
        items = self.outbox.pending(limit=limit, after_seq=cursor)
        sent: list[str] = []
        for item in items:
            if room <= 0:
                break
            if item.event_id in held:  # paho still holds it (and retransmits it itself), or it is acked
                cursor = item.seq
                continue
            with self._cond:
                self._window.begin_publish()
            try:
                info = self._client.publish(item.topic, item.payload, qos=item.qos)
            except BaseException:
                with self._cond:
                    self._window.abort_publish()
                raise
            queued = info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)
            with self._cond:  # one section with the flag reset, so no PUBACK can slip between them
                if self._window.end_publish(info.mid, item.event_id, queued):
                    self._stats["acked"] += 1
                    self._cond.notify_all()
            if not queued:
                # Not queued by paho (NO_CONN is: paho sends it after reconnecting). Retry later.
                self._log.warning("HQ publish of %s refused by client: %s", item.event_id, mqtt.error_string(info.rc))
                self._mark_sent(sent)
                with self._cond:  # back off instead of spinning on a refusal
                    self._cond.wait_for(lambda: self._stopping, 1.0)
                return cursor, False
            with self._cond:
                self._stats["sent"] += 1
            sent.append(item.event_id)
            cursor = item.seq
            room -= 1
        self._mark_sent(sent)
        if room <= 0:
            self._log.debug("HQ send window full: %d events in flight", self.max_inflight)
            return cursor, False
        return cursor, len(items) < limit

    def _mark_sent(self, event_ids: list[str]) -> None:
        if event_ids:
            self.outbox.mark_sent(event_ids)

    def _flush_acks(self) -> None:
        # The flush lock makes a caller wait for a concurrent flush, so "flushed" means written.
        with self._flush_lock:
            self._acks.flush()
            with self._cond:
                acked = self._window.take_acked()
            if not acked:
                return
            try:
                self.outbox.mark_acked_many(acked)
            except Exception:
                with self._cond:  # keep them; the events would only be re-sent, never lost
                    self._window.give_back(acked)
                raise
        with self._cond:
            self._cond.notify_all()

    # ---- paho callbacks (network thread: keep short, never raise) -------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            hint = CONNACK_HINTS.get(int(reason.value), "")
            self._problems.report(
                f"HQ broker {self.host}:{self.port} refused the connection: {reason}"
                + (f" ({hint})" if hint else "") + "; retrying with back-off",
                logging.ERROR,
            )
            return
        with self._cond:
            self._connected = True
            self._epoch += 1
            self._connected_mono = time.monotonic()
            self._connected_since = self._clock()
            self._stats["connects"] += 1
            self._problems.clear()
            inflight = len(self._window)
        self._acks.connected()
        self._log.info(
            "HQ link %s connected to %s:%d (session present: %s, %d in flight to resend)",
            self.vehicle_id, self.host, self.port, flags.session_present, inflight,
        )
        _, mid = client.subscribe([(t, 1) for t in self._subscriptions])
        with self._cond:
            self._sub_mid = mid
            self._cond.notify_all()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError:` block, so the active exception is the cause.
        text, level = describe_connect_error(sys.exc_info()[1])
        self._problems.report(f"HQ broker {self.host}:{self.port}: {text}; retrying with back-off", level)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with self._cond:
            was_connected = self._connected
            self._connected = False
            self._connected_since = None
            stopping = self._stopping
            inflight = len(self._window)
            quiet = self._problems.last is not None
            if was_connected:
                self._stats["disconnects"] += 1
            self._cond.notify_all()
        if was_connected:
            self._acks.connection_lost()
        text, level = describe_disconnect(self.vehicle_id, f"{self.host}:{self.port}", reason, stopping,
                                          was_connected, inflight)
        if stopping or was_connected:
            self._log.log(level, text)
        elif not quiet:
            self._problems.report(text, level)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        refused = [t for t, c in zip(self._subscriptions, codes, strict=False) if c.is_failure]
        if refused:
            self._log.error("HQ broker %s:%d refused subscriptions %s", self.host, self.port, refused)
        with self._cond:
            if mid == self._sub_mid:
                self._ready_epoch = self._epoch
                self._cond.notify_all()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._cond:
            # None: a status/position message, or an event's PUBACK that arrived before publish() returned.
            event_id = self._window.on_puback(mid, failed=reason.is_failure)
            if event_id is None:
                return
            if reason.is_failure:  # left unacknowledged: it is sent again after the next reconnect
                self._stats["rejected"] += 1
                self._log.error("HQ broker rejected event %s: %s", event_id, reason)
            else:
                self._stats["acked"] += 1
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # The handler runs on the command worker; the PUBACK follows it (manual_ack), so a command is not
        # lost if the car dies while handling it, and a slow one (a national list) does not stall the link.
        if msg.topic == self.ack_topic:
            self._acks.on_message(client, msg)
            with self._cond:
                self._cond.notify_all()
            return
        with self._cond:
            self._stats["commands"] += 1
        if self._commands is None:
            if msg.qos > 0:
                client.ack(msg.mid, msg.qos)
            return
        self._commands.submit(Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos))
