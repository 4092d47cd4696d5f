"""One simulated car of the load generator (hw_sim/fleet_load.py), driven by a shared event loop, not a thread.

A car here is what the real one is to HQ: its own MQTT identity (username = vehicle id, its password, the
per-vehicle ACL of the broker), a persistent session, a retained online status with a last will, positions
at QoS 0, and every event first in its own on-disk outbox (`picar.link.outbox.Outbox`, the car's SQLite
file) then sent from it at QoS 1 with at most `max_inflight` in flight (`picar.link.window.SendWindow`,
the real link's window). An event leaves the backlog when HQ's end-to-end acknowledgement arrives
(`picar.link.hq_ack.HqAcks`, mode "on": the fleet talks to an acknowledging HQ), and what HQ has not
acknowledged is sent again on the real link's rules. The payloads are the car's own
(`picar.pipeline.events`): reads with position, hits with their crop and frame as image events, and the
officer's disposition of each hit a little later.

What differs from `picar.link.mqtt.HqLink` is only how it is driven: HqLink runs a paho network thread
and a sender thread per car, which a thousand cars on two cores cannot afford, so `SimCar` leaves the
socket to the caller's select loop (paho's `loop_read`/`loop_write`/`loop_misc`) and does the sender's
work in `service()`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from picar.hq.fill_reads import KM_PER_DEG_LAT
from picar.isotime import event_iso
from picar.link.connection import STATUS_ROOM, offline_status, online_status
from picar.link.hq_ack import HqAcks
from picar.link.outbox import Outbox
from picar.link.topics import ACK, COMMAND, DEFAULT_PREFIX, POSITION, STATUS, WATCHLIST, fleet_topic, vehicle_topic
from picar.link.window import SendWindow
from picar.pipeline.events import hit_payload, image_payload, read_payload
from picar.types import Fix, Hit, Match, PlateRead, WatchEntry

VERSION = "fleet-load"
RESEND_CHECK_S = 1.0  # how often a connected car asks its outbox what HQ has not acknowledged in time
RECONNECT_S = (1.0, 30.0)  # back-off between attempts, doubling (the real link's defaults are 1 .. 60 s)
CONNACK_TIMEOUT_S = 30.0  # a connection the broker has not accepted by then is dropped and tried again


@dataclass(frozen=True)
class Behaviour:
    """What every simulated car does. Defaults: a patrol car in town traffic (docs/scale.md)."""

    read_rate: float = 0.5  # reads a second (a Poisson process): city traffic past a front camera
    hit_share: float = 0.002  # of reads that hit the watchlist (1 in 500)
    position_every_s: float = 1.0
    status_every_s: float = 60.0  # picar.housekeeping.STATUS_INTERVAL_S
    max_inflight: int = 20  # the car's default (mqtt.max_inflight)
    keepalive_s: int = 30
    hq_ack_timeout_s: float = 60.0  # the car's default (mqtt.hq_ack_timeout_s)
    disposition_after_s: tuple[float, float] = (10.0, 60.0)  # the officer decides about a hit


@dataclass(frozen=True)
class Evidence:
    """The JPEG bytes every simulated hit sends: a plate crop and a context frame of realistic size."""

    crop: bytes
    frame: bytes


class PlateSource:
    """Plates to read: a population of the Moldovan region's series, read with skewed frequency."""

    def __init__(self, population: list[str], rank_offset: int = 1000) -> None:
        weights = 1.0 / (np.arange(len(population)) + rank_offset)
        self.population = population
        self.cumulative = np.cumsum(weights / weights.sum())

    def draw(self, rng: np.random.Generator) -> str:
        i = int(np.searchsorted(self.cumulative, rng.random()))
        return self.population[min(i, len(self.population) - 1)]


class Drive:
    """A car driving around its town: 1 Hz positions of a random walk that turns back towards the centre."""

    def __init__(self, lat: float, lon: float, radius_km: float, rng: np.random.Generator) -> None:
        self.home = (lat, lon)
        self.radius_km = radius_km
        self.lat = lat + rng.normal(0, radius_km / 2) / KM_PER_DEG_LAT
        self.lon = lon + rng.normal(0, radius_km / 2) / (KM_PER_DEG_LAT * math.cos(math.radians(lat)))
        self.heading = float(rng.uniform(0, 360))
        self.speed = float(rng.uniform(20, 50))
        self.rng = rng

    def step(self, seconds: float) -> None:
        dy = (self.home[0] - self.lat) * KM_PER_DEG_LAT
        dx = (self.home[1] - self.lon) * KM_PER_DEG_LAT * math.cos(math.radians(self.lat))
        if math.hypot(dx, dy) > 2 * self.radius_km:  # too far out: head home
            self.heading = math.degrees(math.atan2(dx, dy)) % 360
        else:
            self.heading = (self.heading + float(self.rng.normal(0, 15))) % 360
        self.speed = float(np.clip(self.speed + self.rng.normal(0, 3), 0, 70))
        km = self.speed * seconds / 3600
        self.lat += km * math.cos(math.radians(self.heading)) / KM_PER_DEG_LAT
        self.lon += km * math.sin(math.radians(self.heading)) / (KM_PER_DEG_LAT * math.cos(math.radians(self.lat)))

    def fix(self, now: float) -> Fix:
        return Fix(time=dt.datetime.fromtimestamp(now, dt.UTC), lat=self.lat, lon=self.lon, fix="3d",
                   speed_kmh=self.speed, heading_deg=self.heading, sats=9, hdop=0.9)


class SimCar:
    """One car. The owner's loop calls `connect()`, then `loop_read`/`loop_write` on its socket (`client`),
    `tick(now)` when `due` has come, and `service()` after any network activity."""

    def __init__(self, vehicle: str, host: str, port: int, password: str, outbox_path: Path, behaviour: Behaviour,
                 plates: PlateSource, evidence: Evidence, drive: Drive, rng: np.random.Generator,
                 prefix: str = DEFAULT_PREFIX, start: float | None = None) -> None:
        self.vehicle = vehicle
        self.host, self.port = host, port
        self.b = behaviour
        self.plates, self.evidence, self.drive, self.rng = plates, evidence, drive, rng
        self.prefix = prefix
        self.outbox = Outbox(outbox_path)
        self.acks = HqAcks(self.outbox, "on", behaviour.hq_ack_timeout_s)
        self.window = SendWindow()
        self.counts: Counter[str] = Counter()
        self.status_topic = vehicle_topic(prefix, vehicle, STATUS)
        self.ack_topic = vehicle_topic(prefix, vehicle, ACK)
        self.topics = [fleet_topic(prefix, WATCHLIST), vehicle_topic(prefix, vehicle, WATCHLIST),
                       vehicle_topic(prefix, vehicle, COMMAND), self.ack_topic]
        self.client = self._make_client(password)
        self.connected = False
        self.ever_connected = False
        self.ready = False  # the SUBACK of this connection arrived (paho has retransmitted by then)
        self._sub_mid: int | None = None
        self._cursor = 0
        self._dirty = True  # there may be something new to send
        now = time.time() if start is None else start
        self.next_connect = now
        self._backoff = RECONNECT_S[0]
        self.next_read = now + self._gap()
        self.next_position = now + float(rng.uniform(0, behaviour.position_every_s))
        self.next_status = now + behaviour.status_every_s
        self.next_resend = now + RESEND_CHECK_S
        self.dispositions: list[tuple[float, str]] = []
        self.producing = True

    # ---- the MQTT client -----------------------------------------------------------------------------

    def _make_client(self, password: str) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"picar-{self.vehicle}",
                             clean_session=False, protocol=mqtt.MQTTv311, manual_ack=True)
        client.max_inflight_messages_set(self.b.max_inflight + STATUS_ROOM)
        client.max_queued_messages_set(0)
        client.username_pw_set(self.vehicle, password)
        client.will_set(self.status_topic, offline_status(self.vehicle, VERSION, "connection lost", ""), qos=1,
                        retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def connect(self, now: float) -> int | None:
        """Open the connection (blocking TCP connect: loopback); the socket's fd, or None to retry later."""
        try:
            if self.ever_connected:
                self.client.reconnect()
            else:
                self.client.connect(self.host, self.port, self.b.keepalive_s)
        except OSError:
            self.counts["connect_failures"] += 1
            self.next_connect = now + self._backoff
            self._backoff = min(self._backoff * 2, RECONNECT_S[1])
            return None
        self.ever_connected = True
        self.next_connect = now + CONNACK_TIMEOUT_S
        sock = self.client.socket()
        return None if sock is None else sock.fileno()

    def lost(self, now: float) -> None:
        """The owner saw the socket fail (or the broker not accept it in time): try again after the back-off."""
        if self.connected:
            self.counts["disconnects"] += 1
            self.acks.connection_lost()
        self.connected = self.ready = False
        self.next_connect = now + self._backoff
        self._backoff = min(self._backoff * 2, RECONNECT_S[1])

    def abort(self) -> None:
        """Give up a connection the broker has not accepted (paho closes the socket once DISCONNECT is out)."""
        self.client.disconnect()
        self.client.loop_write()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.counts["refused"] += 1
            return
        self.connected, self.ready = True, False
        self._backoff = RECONNECT_S[0]
        self.counts["connects"] += 1
        self.acks.connected()
        self._sub_mid = client.subscribe([(t, 1) for t in self.topics])[1]

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        if mid == self._sub_mid:
            self.ready = True
            self._cursor = 0
            self._dirty = True
            self._publish_status()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if self.connected:
            self.counts["disconnects"] += 1
            self.acks.connection_lost()
        self.connected = self.ready = False

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        event_id = self.window.on_puback(mid, failed=reason.is_failure)
        if event_id is not None:
            self.counts["rejected" if reason.is_failure else "pubacks"] += 1

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.ack_topic:
            self.acks.on_message(client, msg)
            self.counts["ack_messages"] += 1
        elif msg.qos > 0:  # a watchlist or command: this simulated car has nothing to do with it
            client.ack(msg.mid, msg.qos)

    def _publish_status(self) -> None:
        body = online_status(self.vehicle, VERSION, event_iso(time.time()), self.outbox.backlog(), {})
        self.client.publish(self.status_topic, body, qos=1, retain=True)

    # ---- what the car does ---------------------------------------------------------------------------

    @property
    def due(self) -> float:
        times = [self.next_position]
        if self.producing:
            times.append(self.next_read)
        if self.dispositions:
            times.append(self.dispositions[0][0])
        if not self.connected:
            times.append(self.next_connect)
        else:
            times.append(self.next_resend)
        return min(times)

    def _gap(self) -> float:
        return float(self.rng.exponential(1.0 / self.b.read_rate)) if self.b.read_rate > 0 else math.inf

    def tick(self, now: float) -> None:
        """Do what is due at ``now``: reads (and hits), dispositions, the position, the status; then send."""
        while self.producing and self.next_read <= now:
            self._read(self.next_read)
            self.next_read += self._gap()
        while self.dispositions and self.dispositions[0][0] <= now:
            _, hit_id = self.dispositions.pop(0)
            self._put("disposition", {"hit_event_id": hit_id, "decision": "accept", "reason": None, "note": None,
                                      "vehicle": self.vehicle, "time": event_iso(now)})
        if self.next_position <= now:
            self.drive.step(self.b.position_every_s)
            self.next_position += self.b.position_every_s
            if self.next_position <= now:  # the loop ran late: the missed positions are skipped, as in the car
                self.counts["positions_skipped"] += 1
                self.next_position = now + self.b.position_every_s
            if self.connected:
                fix = self.drive.fix(now).to_json()
                info = self.client.publish(vehicle_topic(self.prefix, self.vehicle, POSITION),
                                           _json(fix), qos=0)
                self.counts["positions_sent" if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS else
                            "positions_dropped"] += 1
                self.client.loop_misc()  # keep-alive
            else:
                self.counts["positions_dropped"] += 1
        if self.ready and self.next_status <= now:
            self.next_status = now + self.b.status_every_s
            self._publish_status()
        if self.next_resend <= now:
            self.next_resend = now + RESEND_CHECK_S
            if self.ready and self.acks.resend_due():
                self._cursor, self._dirty = 0, True
                self.counts["resent_unconfirmed"] = self.acks.resent
        self.service()

    def _read(self, when: float) -> None:
        text = self.plates.draw(self.rng)
        conf = float(np.clip(self.rng.beta(18, 1.5), 0.5, 0.999))
        read = PlateRead(event_id=str(uuid.uuid4()), vehicle_id=self.vehicle, camera="front", text=text,
                         confidence=round(conf, 4), candidates=((text, conf),), captured_at=when,
                         first_seen=when - 0.8, last_seen=when, frames=6, box=(412, 630, 188, 44),
                         fix=self.drive.fix(when), region="md")
        self._put("read", read_payload(read))
        if self.rng.random() < self.b.hit_share:
            entry = WatchEntry(plate=text, list="stolen_vehicle", priority=int(self.rng.integers(1, 4)),
                               reason="reported stolen")
            hit = Hit(event_id=str(uuid.uuid4()), read=read, entry=entry, match=Match("exact", text),
                      raised_at=when)
            self._put("hit", hit_payload(hit, "crop.jpg", "frame.jpg"))
            self._put("image", image_payload(hit, "crop", self.evidence.crop))
            self._put("image", image_payload(hit, "frame", self.evidence.frame))
            low, high = self.b.disposition_after_s
            self.dispositions.append((when + float(self.rng.uniform(low, high)), hit.event_id))
            self.dispositions.sort()

    def _put(self, kind: str, payload: dict[str, Any]) -> None:
        payload.setdefault("event_id", str(uuid.uuid4()))
        self.outbox.put(vehicle_topic(self.prefix, self.vehicle, kind), payload, qos=1)
        self.counts[kind] += 1
        self._dirty = True

    def service(self) -> None:
        """The sender's work (HqLink._run_sender): record acknowledgements, then send what the window allows."""
        self.acks.flush()
        acked = self.window.take_acked()
        if acked:
            self.outbox.mark_acked_many(acked)
        if self.ready and self._dirty and len(self.window) < self.b.max_inflight:
            self._send_some()

    def _send_some(self) -> None:
        room = self.b.max_inflight - len(self.window)
        held = self.window.held()
        limit = room + len(held)
        items = self.outbox.pending(limit=limit, after_seq=self._cursor)
        sent: list[str] = []
        for item in items:
            if room <= 0:
                break
            self._cursor = item.seq
            if item.event_id in held:
                continue
            self.window.begin_publish()
            info = self.client.publish(item.topic, item.payload, qos=item.qos)
            queued = info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)
            if self.window.end_publish(info.mid, item.event_id, queued):
                self.counts["pubacks"] += 1
            if not queued:
                break
            sent.append(item.event_id)
            room -= 1
        if sent:
            self.outbox.mark_sent(sent)
            self.counts["published"] += len(sent)
        # Reached the end of the backlog with room to spare: nothing more until a new event or a reconnect.
        self._dirty = room <= 0 or len(items) >= limit

    def backlog(self) -> int:
        return self.outbox.backlog()

    def close(self) -> None:
        self.acks.flush()
        acked = self.window.take_acked()
        if acked:
            self.outbox.mark_acked_many(acked)
        self.outbox.close()


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def evidence_from_clip(clip: Path) -> Evidence:
    """A crop and a frame JPEG cut from a frame of ``clip`` (the demo drive), at the car's JPEG qualities."""
    import cv2

    cap = cv2.VideoCapture(str(clip))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok:
        raise RuntimeError(f"cannot read a frame of {clip}")
    h, w = frame.shape[:2]
    crop = frame[h // 2: h // 2 + 60, w // 2: w // 2 + 220]
    ok1, crop_jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 92])
    ok2, frame_jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not (ok1 and ok2):
        raise RuntimeError("JPEG encoding failed")
    return Evidence(crop_jpeg.tobytes(), frame_jpeg.tobytes())
