"""One car's credentials cannot read, replace, forge or command for another car (issue 20, item 1).

The broker is the one the demo and the simulator run (`hw_sim.sim.demo_broker`): TLS with one client
certificate per identity, a password per user and the per-vehicle ACL of docs/mqtt.md. Every client here
connects with its own certificate and password, as a stolen car's would.

Mosquitto 2 drops an unauthorised MQTT 3.1.1 publish silently (the PUBACK still comes), so each test
watches the receiver: a legitimate marker sent after the forged message must arrive (the test can see a
message there, so it can fail), and then the forged one must not have arrived before it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from hw_sim.broker import Mosquitto, Received, Subscriber
from hw_sim.sim import demo_broker
from picar.link.topics import broker_acl

ROOT = Path(__file__).resolve().parent.parent

PREFIX = "picar/v1"
USERS = {"car1": "car1-secret", "car2": "car2-secret", "hq": "hq-secret"}
FORGED = b"forged by car1"
WAIT_S = 20.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with demo_broker(tmp_path, USERS) as b:
        yield b


def client(broker: Mosquitto, who: str, topics: tuple[str, ...] = ()) -> Subscriber:
    """A client with `who`'s own certificate and password; `with` connects it."""
    return Subscriber(broker, topics, identity=who)


def arrived(sub: Subscriber, topic: str, payload: bytes) -> bool:
    return sub.wait_for(lambda msgs: any(m.topic == topic and m.payload == payload for m in msgs), WAIT_S)


def forged(msgs: list[Received]) -> list[Received]:
    return [m for m in msgs if m.payload == FORGED]


def test_a_car_cannot_read_another_cars_topics(broker: Mosquitto) -> None:
    with client(broker, "car2") as car2, client(broker, "hq") as hq:
        car2.publish(f"{PREFIX}/car2/status", b"car2 online", retain=True)
        hq.publish(f"{PREFIX}/car2/watchlist", b"car2's own list", retain=True)
        with client(broker, "car1", (f"{PREFIX}/car2/#", f"{PREFIX}/#", "#")) as car1:
            car2.publish(f"{PREFIX}/car2/hit", b"car2 hit")
            car2.publish(f"{PREFIX}/car2/position", b"car2 here", qos=0)
            hq.publish(f"{PREFIX}/car2/cmd", b"car2 command")
            hq.publish(f"{PREFIX}/fleet/watchlist", b"marker")  # car1 may read this, and it comes last
            assert arrived(car1, f"{PREFIX}/fleet/watchlist", b"marker")
            leaked = [m.topic for m in car1.messages if m.topic.startswith(f"{PREFIX}/car2/")]
            assert leaked == []


def test_a_car_cannot_replace_the_retained_fleet_watchlist(broker: Mosquitto) -> None:
    fleet = f"{PREFIX}/fleet/watchlist"
    with client(broker, "hq") as hq, client(broker, "car2", (fleet,)) as car2:
        hq.publish(fleet, b"signed list v1", retain=True)
        assert arrived(car2, fleet, b"signed list v1")
        with client(broker, "car1") as car1:
            car1.publish(fleet, FORGED, retain=True)  # acknowledged (MQTT 3.1.1), but dropped
        with client(broker, "car2", (fleet,)) as late:  # what a car that connects now is given
            assert late.wait_for(lambda msgs: len(msgs) >= 1, WAIT_S)
            assert [(m.payload, m.retain) for m in late.messages] == [(b"signed list v1", True)]
        hq.publish(fleet, b"signed list v2", retain=True)  # the legitimate replacement does get through
        assert arrived(car2, fleet, b"signed list v2")
        assert forged(car2.messages) == []
    with client(broker, "car1", (fleet,)) as after:
        assert after.wait_for(lambda msgs: len(msgs) >= 1, WAIT_S)
        assert [m.payload for m in after.messages] == [b"signed list v2"]


def test_a_car_cannot_forge_another_cars_hits(broker: Mosquitto) -> None:
    with client(broker, "hq", (f"{PREFIX}/+/hit",)) as hq, client(broker, "car1") as car1, \
            client(broker, "car2") as car2:
        car1.publish(f"{PREFIX}/car2/hit", FORGED)
        car1.publish(f"{PREFIX}/car1/hit", b"car1's own hit")
        car2.publish(f"{PREFIX}/car2/hit", b"car2's real hit")
        assert arrived(hq, f"{PREFIX}/car1/hit", b"car1's own hit")
        assert arrived(hq, f"{PREFIX}/car2/hit", b"car2's real hit")
        assert forged(hq.messages) == []


def test_a_car_cannot_send_another_car_commands_watchlists_or_acks(broker: Mosquitto) -> None:
    topics = (f"{PREFIX}/car2/cmd", f"{PREFIX}/car2/watchlist", f"{PREFIX}/car2/ack")
    with client(broker, "car2", topics) as car2, client(broker, "car1") as car1, client(broker, "hq") as hq:
        for topic in topics:
            car1.publish(topic, FORGED)
        for topic in topics:
            hq.publish(topic, b"from hq")
        assert all(arrived(car2, topic, b"from hq") for topic in topics)
        assert forged(car2.messages) == []


def test_a_car_cannot_write_its_own_commands_watchlist_or_acks(broker: Mosquitto) -> None:
    # A forged acknowledgement would make the car let go of events HQ never stored.
    topics = (f"{PREFIX}/car1/cmd", f"{PREFIX}/car1/watchlist", f"{PREFIX}/car1/ack")
    with client(broker, "car1", topics) as car1, client(broker, "hq") as hq:
        for topic in topics:
            car1.publish(topic, FORGED, retain=True)
            hq.publish(topic, b"from hq")
        assert all(arrived(car1, topic, b"from hq") for topic in topics)
        assert forged(car1.messages) == []


def test_hq_writes_only_watchlists_commands_and_acks(broker: Mosquitto) -> None:
    with client(broker, "hq", (f"{PREFIX}/#",)) as hq, client(broker, "car2") as car2:
        hq.publish(f"{PREFIX}/car2/hit", FORGED)  # HQ reads every car's events but writes none
        hq.publish(f"{PREFIX}/car2/status", FORGED, retain=True)
        car2.publish(f"{PREFIX}/car2/hit", b"marker")
        assert arrived(hq, f"{PREFIX}/car2/hit", b"marker")
        assert forged(hq.messages) == []


def connack(broker: Mosquitto, who: str, username: str | None, password: str | None) -> mqtt.ReasonCode:
    """The broker's answer to a connect with `who`'s certificate and these credentials."""
    assert broker.tls is not None
    answer: list[mqtt.ReasonCode] = []
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: mqtt.ReasonCode, _p: Any) -> None:
        answer.append(reason)
        done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if username is not None:
        c.username_pw_set(username, password)
    mine = broker.tls.client(who)
    c.tls_set(ca_certs=str(broker.tls.ca_file), certfile=str(mine.cert_file), keyfile=str(mine.key_file))
    c.on_connect = on_connect
    c.connect_async(broker.host, broker.port)
    c.loop_start()
    try:
        assert done.wait(WAIT_S), "no CONNACK"
    finally:
        c.disconnect()
        c.loop_stop()
    return answer[0]


def test_no_anonymous_access_and_one_cars_password_is_not_anothers(broker: Mosquitto) -> None:
    assert connack(broker, "car1", None, None).is_failure
    assert connack(broker, "car1", "car2", USERS["car1"]).is_failure
    assert not connack(broker, "car1", "car1", USERS["car1"]).is_failure


def test_each_identity_has_its_own_client_certificate(broker: Mosquitto) -> None:
    assert broker.tls is not None
    names = {}
    for who in USERS:
        cert = x509.load_pem_x509_certificate(broker.tls.client(who).cert_file.read_bytes())
        names[who] = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert names == {who: who for who in USERS}
    assert len({broker.tls.client(who).key_file.read_bytes() for who in USERS}) == len(USERS)


def test_the_documented_acl_is_the_one_every_broker_runs(broker: Mosquitto) -> None:
    doc = (ROOT / "docs" / "mqtt.md").read_text()
    documented = doc.split("# /etc/mosquitto/acl\n", 1)[1].split("```", 1)[0]
    assert documented == broker_acl(PREFIX)
    assert (broker.workdir / "acl").read_text() == broker_acl(PREFIX)
