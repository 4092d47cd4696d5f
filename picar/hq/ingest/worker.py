"""One ingest worker: the fleet's messages from the broker into HQ's database, each event once, nothing lost.

The worker is an MQTT 5 client with a persistent session (`picar-ingest-<n>`, clean_start false) that
subscribes to the cars' events and positions through a shared subscription (`$share/<group>/<prefix>/+/<kind>`),
so N workers compete for the messages and more workers ingest more. Status is retained, and a broker does not
deliver retained messages to shared subscriptions, so each worker also takes `<prefix>/+/status` itself
(writing a status twice is harmless). The kinds are listed, not `+/#`: HQ's own acks, watchlists and
commands live in the same tree.

A writer thread takes batches off the queue and commits each in one transaction (picar.hq.store.writes).
Only then does it acknowledge the batch's messages to the broker (manual acknowledgement: a worker that dies
before its commit gets them again, from the broker, when it reconnects, or the broker gives them to nobody
and the car sends them again) and publish to each car the ids of its events now in the database
(`<prefix>/<vehicle>/ack`, picar.link.hq_ack), so that the car can let go of them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from picar.hq.config import HqConfig
from picar.hq.store import connect, migrate, partitions
from picar.hq.store.events import BadEvent, Event, parse
from picar.hq.store.retention import oldest_kept, purge
from picar.hq.store.writes import BatchResult, Rejected, store_batch
from picar.link.hq_ack import MAX_ACK_IDS, ack_payload
from picar.link.topics import ACK, EVENT_KINDS, POSITION, STATUS, levels, vehicle_topic

log = logging.getLogger("picar.hq")

RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)  # between attempts at a batch the database refused for a passing reason
_TRANSIENT = (psycopg.OperationalError, psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
_PURGE_LOCK = 0x5049_4341_5250_5552  # advisory lock: one worker purges at a time
HOUSEKEEPING_S = 60.0


@dataclass(frozen=True)
class Message:
    vehicle: str
    kind: str
    payload: bytes
    mid: int
    qos: int
    epoch: int  # the connection it came on: an acknowledgement is only valid on that connection


def client_id(worker: int) -> str:
    return f"picar-ingest-{worker}"


def subscriptions(prefix: str, group: str | None) -> list[str]:
    """The topics a worker takes: the cars' events and positions shared (unless ``group`` is None: MQTT 3.1.1,
    no shared subscription), their status each for itself."""
    mine = [f"{prefix}/+/{kind}" for kind in (*EVENT_KINDS, POSITION)]
    shared = mine if group is None else [f"$share/{group}/{topic}" for topic in mine]
    return [*shared, f"{prefix}/+/{STATUS}"]


class IngestWorker:
    """`start()`, then messages flow into the database until `stop()`. Thread-safe `stats()`."""

    def __init__(self, cfg: HqConfig, *, username: str | None = None, password: str | None = None) -> None:
        self.cfg = cfg
        self.prefix = cfg.mqtt.topic_prefix
        self.client_id = client_id(cfg.ingest.worker)
        self._v5 = cfg.mqtt.protocol == "5"
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=cfg.ingest.receive_maximum + 10_000)
        self._stop = threading.Event()
        self._lock = threading.Lock()  # epoch and connection state, taken around every acknowledgement
        self._epoch = 0
        self._connected = False
        self._subscribed = threading.Event()
        self._counts: Counter[str] = Counter()
        self._threads: list[threading.Thread] = []
        self._db: psycopg.Connection | None = None
        self._partitions = partitions.KnownPartitions()
        self._client = self._make_client(username, password)

    # ---- lifecycle -----------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Migrate the schema, open the database, connect to the broker; returns once subscribed (or after
        ``timeout``, still connecting in the background)."""
        revision = migrate.upgrade(self.cfg.database.dsn)
        self._db = connect(self.cfg.database.dsn, application_name=self.client_id)
        partitions.ensure_ahead(self._db, dt.datetime.now(dt.UTC).date())
        log.info("ingest %s: database at schema %s; connecting to %s:%d", self.client_id, revision,
                 self.cfg.mqtt.host, self.cfg.mqtt.port)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.ingest.session_expiry_s
        props.ReceiveMaximum = self.cfg.ingest.receive_maximum
        if self._v5:
            self._client.connect_async(self.cfg.mqtt.host, int(self.cfg.mqtt.port or 0), self.cfg.mqtt.keepalive_s,
                                       clean_start=False, properties=props)
        else:  # MQTT 3.1.1: a persistent session (clean_session false), the broker's own in-flight limit
            self._client.connect_async(self.cfg.mqtt.host, int(self.cfg.mqtt.port or 0), self.cfg.mqtt.keepalive_s)
        self._client.loop_start()
        for name, target in (("writer", self._run_writer), ("housekeeping", self._run_housekeeping)):
            t = threading.Thread(target=target, name=f"{self.client_id}-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        if not self._subscribed.wait(timeout):
            log.warning("ingest %s: not subscribed after %.0f s; still trying", self.client_id, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Commit and acknowledge what was received, then disconnect. What is not committed stays with the
        broker (persistent session) or the cars."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        if self._db is not None:
            self._db.close()
        log.info("ingest %s stopped: %s", self.client_id, dict(self._counts))

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._counts, queued=self._queue.qsize(), connected=self._connected)

    # ---- MQTT (network thread) -------------------------------------------------------------------------

    def _make_client(self, username: str | None, password: str | None) -> mqtt.Client:
        m = self.cfg.mqtt
        if self._v5:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5,
                                 manual_ack=True)
        else:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False,
                                 protocol=mqtt.MQTTv311, manual_ack=True)
        client.max_inflight_messages_set(1000)  # our acknowledgements to the cars
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if username is not None:
            client.username_pw_set(username, password)
        if m.tls:
            client.tls_set(ca_certs=None if m.ca_file is None else str(m.ca_file),
                           certfile=None if m.cert_file is None else str(m.cert_file),
                           keyfile=None if m.key_file is None else str(m.key_file))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("ingest %s: broker %s:%s refused the connection: %s", self.client_id, self.cfg.mqtt.host,
                      self.cfg.mqtt.port, reason)
            return
        with self._lock:
            self._epoch += 1
            self._connected = True
            self._counts["connects"] += 1
        log.info("ingest %s: connected (session present: %s)", self.client_id, flags.session_present)
        topics = subscriptions(self.prefix, self.cfg.mqtt.share_group if self._v5 else None)
        if self._v5:
            client.subscribe([(t, SubscribeOptions(qos=1)) for t in topics])
        else:
            client.subscribe([(t, 1) for t in topics])

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with self._lock:
            self._connected = False
        self._subscribed.clear()
        if not self._stop.is_set():
            log.warning("ingest %s: lost the broker (%s); reconnecting", self.client_id, reason)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        refused = [c for c in codes if c.is_failure]
        if refused:
            log.error("ingest %s: the broker refused %d subscription(s): %s", self.client_id, len(refused), refused)
        else:
            log.info("ingest %s: subscribed (group %s)", self.client_id, self.cfg.mqtt.share_group)
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = levels(msg.topic, self.prefix)
        with self._lock:
            epoch = self._epoch
        if parts is None or len(parts) != 2:
            log.warning("ingest %s: message on %s ignored (not a car's topic)", self.client_id, msg.topic)
            self._ack(Message("", "", b"", msg.mid, msg.qos, epoch))
            return
        # Blocks the network thread when the writer is far behind: the broker then holds the rest.
        self._queue.put(Message(parts[0], parts[1], bytes(msg.payload), msg.mid, msg.qos, epoch))

    def _ack(self, m: Message) -> None:
        with self._lock:
            if m.qos > 0 and m.epoch == self._epoch and self._connected:
                self._client.ack(m.mid, m.qos)

    # ---- the writer --------------------------------------------------------------------------------------

    def _take(self) -> list[Message]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.cfg.ingest.batch_wait_s
        while len(batch) < self.cfg.ingest.batch_max:
            left = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run_writer(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if batch:
                self._commit(batch)
        while True:  # stopping: what was received is committed and acknowledged; later ones stay with the broker
            batch = []
            while len(batch) < self.cfg.ingest.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if not batch:
                return
            self._commit(batch)

    def _commit(self, batch: list[Message]) -> None:
        parsed, rejected, acks = self._parse(batch)
        events = [ev for _, ev in parsed]
        attempt = 0
        singly = False
        while True:
            try:
                res = self._one_by_one(parsed, rejected) if singly else self._write(events, rejected)
                break
            except _TRANSIENT as exc:  # the database is away or busy: nothing is acknowledged until it is back
                delay = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                log.warning("ingest %s: database: %s; batch of %d retried in %.1f s", self.client_id,
                            str(exc).strip(), len(batch), delay)
                attempt += 1
                if self._stop.is_set() and attempt > 3:  # stopping: leave the batch with the broker and the cars
                    log.error("ingest %s: stopping with %d messages not committed; the broker keeps them",
                              self.client_id, len(batch))
                    return
                self._reconnect_db(delay)
            except psycopg.Error as exc:  # one bad message must not hold up the rest
                log.error("ingest %s: batch of %d refused (%s); storing its messages one by one", self.client_id,
                          len(batch), str(exc).strip())
                singly = True
        for m in batch:
            self._ack(m)
        self._send_acks(acks)
        with self._lock:
            self._counts["messages"] += len(batch)
            self._counts["batches"] += 1
            self._counts.update({f"stored_{k}": n for k, n in res.stored.items()})
            self._counts.update({f"duplicate_{k}": n for k, n in res.duplicates.items()})

    def _parse(self, batch: list[Message]) -> tuple[list[tuple[Message, Event]], list[Rejected],
                                                     dict[str, list[str]]]:
        events: list[tuple[Message, Event]] = []
        rejected: list[Rejected] = []
        acks: dict[str, list[str]] = {}
        for m in batch:
            eid: str | None
            try:
                ev = parse(m.vehicle, m.kind, m.payload)
                events.append((m, ev))
                eid = getattr(ev, "event_id", None)
            except BadEvent as exc:
                eid = _event_id_of(m.payload)
                rejected.append(Rejected(m.vehicle, m.kind, eid, str(exc), m.payload))
                log.warning("ingest %s: kept in rejected_events: %s", self.client_id, exc)
            if m.kind in EVENT_KINDS and eid is not None:
                acks.setdefault(m.vehicle, []).append(eid)
        return events, rejected, acks

    def _write(self, events: list[Event], rejected: list[Rejected]) -> BatchResult:
        return store_batch(self._conn(), events, rejected, oldest_kept(self.cfg.retention.policy()),
                           self._partitions)

    def _one_by_one(self, events: list[tuple[Message, Event]], rejected: list[Rejected]) -> BatchResult:
        total = BatchResult()
        for m, ev in events:
            try:
                res = self._write([ev], [])
            except _TRANSIENT:
                raise
            except psycopg.Error as exc:
                error = f"the database refused it: {str(exc).strip()}"
                res = self._write([], [Rejected(m.vehicle, m.kind, getattr(ev, "event_id", None), error, m.payload)])
            total.stored.update(res.stored)
            total.duplicates.update(res.duplicates)
        if rejected:
            res = self._write([], rejected)
            total.stored.update(res.stored)
        return total

    def _send_acks(self, acks: dict[str, list[str]]) -> None:
        for vehicle, ids in acks.items():
            topic = vehicle_topic(self.prefix, vehicle, ACK)
            for i in range(0, len(ids), MAX_ACK_IDS):
                self._client.publish(topic, ack_payload(ids[i:i + MAX_ACK_IDS]), qos=1)
        with self._lock:
            self._counts["acked_events"] += sum(len(v) for v in acks.values())

    def _conn(self) -> psycopg.Connection:
        if self._db is None or self._db.closed:
            self._db = connect(self.cfg.database.dsn, application_name=self.client_id)
        return self._db

    def _reconnect_db(self, delay: float) -> None:
        self._stop.wait(delay)
        if self._db is not None and (self._db.closed or self._db.broken):
            self._db.close()
            self._db = None

    # ---- housekeeping: partitions ahead, retention ------------------------------------------------------

    def _run_housekeeping(self) -> None:
        next_purge = 0.0
        conn: psycopg.Connection | None = None
        while not self._stop.wait(0 if conn is None else HOUSEKEEPING_S):
            try:
                conn = conn if conn is not None and not conn.closed else connect(
                    self.cfg.database.dsn, application_name=f"{self.client_id}-housekeeping")
                partitions.ensure_ahead(conn, dt.datetime.now(dt.UTC).date())
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + self.cfg.retention.purge_interval_s
                    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_PURGE_LOCK,)).fetchone()
                    if got and got[0]:
                        try:
                            purge(conn, self.cfg.retention.policy())
                        finally:
                            conn.execute("SELECT pg_advisory_unlock(%s)", (_PURGE_LOCK,))
            except psycopg.Error as exc:
                log.error("ingest %s: housekeeping: %s", self.client_id, str(exc).strip())
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(5.0)
        if conn is not None:
            conn.close()


def _event_id_of(payload: bytes) -> str | None:
    """The event id of a payload that could not be parsed as its kind, if it has one (to acknowledge it)."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    eid = body.get("event_id") if isinstance(body, dict) else None
    return eid if isinstance(eid, str) and 0 < len(eid) <= 128 else None
