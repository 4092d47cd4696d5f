"""Beyond one broker (issue 17 item 5, docs/scale.md): the car's link and HQ's ingest on NATS, a clustered broker
engine packaged in Debian that speaks MQTT, against one real node started here on free ports.

One test walks what the ingest needs from a broker, on NATS: QoS 1 with end-to-end acknowledgement (a car's
read, hit and image reach PostgreSQL, and the car lets go of them only on HQ's ack), a persistent session
(what a car sends while ingest is down is delivered to ingest when it is back, not resent by the car),
retained status through a wildcard subscription, the last will of a car that dies, and the per-vehicle
permissions (a car cannot read another's acks nor NATS's own delivery subjects).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from hw_sim.broker import Subscriber
from hw_sim.nats import NATS_SERVER, NatsServer
from picar.hq.config import parse_hq_config
from picar.hq.ingest.worker import IngestWorker
from picar.link.mqtt import HqLink
from picar.link.outbox import Outbox
from picar.pipeline.events import hit_payload, image_payload, read_payload
from picar.types import Fix, Hit, Match, PlateRead, WatchEntry
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)

# A car that connects with its last will, says it is online (retained) and waits to be killed.
DYING_CAR = """
import sys, time, json
import paho.mqtt.client as mqtt
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
topic = f"picar/v1/{user}/status"
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"picar-{user}", clean_session=False)
c.username_pw_set(user, password)
c.will_set(topic, json.dumps({"state": "offline", "vehicle": user, "reason": "connection lost"}), qos=1, retain=True)
c.connect(host, port, 30)
c.loop_start()
info = c.publish(topic, json.dumps({"state": "online", "vehicle": user, "time": "2026-01-01T00:00:00Z"}), qos=1,
                 retain=True)
info.wait_for_publish(10)
print("online", flush=True)
time.sleep(600)
"""


def a_read(n: int) -> PlateRead:
    t = time.time() - 2
    return PlateRead(f"nats-read-{n}", "car1", "front", f"C{n:03d}AB", 0.93, ((f"C{n:03d}AB", 0.93),), t, t - 1, t,
                     5, (1, 2, 3, 4), Fix(time=dt.datetime.fromtimestamp(t, dt.UTC), lat=47.02, lon=28.83, fix="3d"),
                     region="md")


def rows(dsn: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def ingest(dsn: str, nats: NatsServer) -> IngestWorker:
    cfg = parse_hq_config({"database": {"dsn": dsn},
                           "mqtt": {"host": nats.host, "port": nats.port, "tls": False, "protocol": "3.1.1"},
                           "ingest": {"worker": 1, "batch_wait_s": 0.02}})
    worker = IngestWorker(cfg, **nats.credentials("hq"))
    worker.start()
    assert worker.wait_subscribed(20), "ingest did not subscribe on NATS"
    return worker


def suback_codes(nats: NatsServer, user: str, topics: list[str]) -> list[bool]:
    """Whether NATS granted each of ``topics`` to a client logged in as ``user`` (its own client id)."""
    codes: list[bool] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{user}", protocol=mqtt.MQTTv311)
    client.username_pw_set(**nats.credentials(user))
    client.on_subscribe = lambda c, u, mid, reasons, p: codes.extend(not r.is_failure for r in reasons)
    client.connect(nats.host, nats.port, 30)
    client.loop_start()
    try:
        for topic in topics:
            client.subscribe(topic, 1)
        assert wait_until(lambda: len(codes) == len(topics), 10)
    finally:
        client.disconnect()
        client.loop_stop()
    return codes


def test_a_car_and_hq_ingest_run_on_nats_with_everything_the_ingest_needs(hq_dsn: str, tmp_path: Path) -> None:
    assert Path(NATS_SERVER).exists(), "nats-server is not installed: apt-get install nats-server (test group)"
    with NatsServer(tmp_path, vehicles=["car1", "car2"]) as nats:
        worker = ingest(hq_dsn, nats)
        outbox = Outbox(tmp_path / "car1-outbox.db")
        # HQ acknowledges end to end; a long timeout so that nothing here is resent by the car itself.
        link = HqLink("car1", nats.host, nats.port, outbox, hq_ack="on", hq_ack_timeout_s=600,
                      reconnect_min_s=0.1, reconnect_max_s=0.5, **nats.credentials("car1"))
        link.start()
        try:
            assert link.wait_ready(20), "the car did not connect to NATS"
            # QoS 1 to the database, acknowledged end to end.
            read = a_read(1)
            hit = Hit("nats-hit-1", read, WatchEntry("C001AB", "stolen_vehicle", 1), Match("exact", "C001AB"),
                      time.time())
            for kind, payload in (("read", read_payload(read)), ("hit", hit_payload(hit)),
                                  ("image", image_payload(hit, "crop", b"\xff\xd8\xff\xe0crop"))):
                link.publish_event(kind, payload)
            assert wait_until(lambda: outbox.backlog() == 0, 30), f"HQ did not acknowledge: {link.stats()}"
            assert rows(hq_dsn, "SELECT event_id, vehicle, plate FROM reads") == [("nats-read-1", "car1", "C001AB")]
            assert rows(hq_dsn, "SELECT event_id, plate FROM hits") == [("nats-hit-1", "C001AB")]
            assert rows(hq_dsn, "SELECT event_id, role, data FROM images") == [
                ("nats-hit-1-crop", "crop", b"\xff\xd8\xff\xe0crop")]

            # The car's retained status reaches a subscriber of the wildcard that joins later.
            with Subscriber(nats, ["picar/v1/+/status"], identity="hq") as sub:  # type: ignore[arg-type]
                assert sub.wait_for(lambda m: any(x.retain and x.topic == "picar/v1/car1/status" for x in m), 10)
            assert rows(hq_dsn, "SELECT online FROM vehicles WHERE id = 'car1'") == [(True,)]

            # Persistent session: ingest goes away, the car's next read waits at the broker, not in the car.
            worker.stop()
            link.publish_event("read", read_payload(a_read(2)))
            assert wait_until(lambda: link.stats()["acked"] == 4, 20), "NATS did not take the read (PUBACK)"
            assert rows(hq_dsn, "SELECT count(*) FROM reads") == [(1,)]
            worker = ingest(hq_dsn, nats)
            assert wait_until(lambda: outbox.backlog() == 0, 30), f"the read kept by NATS never came: {link.stats()}"
            assert link.stats()["resent_unconfirmed"] == 0  # delivered from the broker's session, not resent
            assert rows(hq_dsn, "SELECT event_id FROM reads ORDER BY event_id") == [("nats-read-1",), ("nats-read-2",)]

            # Last will: car2 dies without a word; NATS says so for it, retained, and HQ marks it offline.
            dying = subprocess.Popen([sys.executable, "-c", DYING_CAR, nats.host, str(nats.port),
                                      *nats.credentials("car2").values()], stdout=subprocess.PIPE, text=True)
            try:
                assert dying.stdout is not None and dying.stdout.readline().strip() == "online"
                assert wait_until(lambda: rows(hq_dsn, "SELECT online FROM vehicles WHERE id = 'car2'") == [(True,)],
                                  20)
            finally:
                dying.kill()
                dying.wait(10)
            assert wait_until(lambda: rows(hq_dsn, "SELECT online FROM vehicles WHERE id = 'car2'") == [(False,)],
                              60), "car2's last will did not reach HQ"
            status = rows(hq_dsn, "SELECT status FROM vehicles WHERE id = 'car2'")[0][0]
            assert status["reason"] == "connection lost"

            # Permissions: car1 reads its own acks, not car2's, nor NATS's delivery subjects; HQ reads all.
            assert suback_codes(nats, "car1", ["picar/v1/car1/ack", "picar/v1/car2/ack", "$MQTT/sub/#",
                                               "picar/v1/+/read"]) == [True, False, False, False]
            assert suback_codes(nats, "hq", ["picar/v1/+/read"]) == [True]
            assert rows(hq_dsn, "SELECT count(*) FROM rejected_events") == [(0,)]
        finally:
            link.stop()
            worker.stop()
            outbox.close()
