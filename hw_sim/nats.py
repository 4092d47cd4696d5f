"""A real NATS server speaking MQTT, for the test that runs a car and HQ's ingest on a clustered broker engine
(docs/scale.md, "Beyond one broker"), as hw_sim/broker.py is for Mosquitto.

``NatsServer`` writes its config into a temporary directory: one node with JetStream (where NATS keeps MQTT
sessions, QoS 1 messages in flight and retained messages, replicated across a cluster's nodes), an MQTT
listener and a NATS listener on free ports of 127.0.0.1, and the same identities and access rules as the
Mosquitto broker: a password per user (each car's username is its vehicle id, HQ's is ``hq``), no anonymous
access, and each car's permissions from `picar.link.topics.car_grants` (NATS has no `%u` in a plain config,
so every car gets its own entry; at fleet scale that list is generated, or NATS's operator mode with
templated permissions is used). MQTT topics become NATS subjects: ``/`` -> ``.``, ``+`` -> ``*``, ``#`` -> ``>``.

Two NATS specifics are in the config and explained where they are: a QoS 1 subscriber needs subscribe
permission on ``$MQTT.sub.>`` (the subjects NATS delivers its JetStream messages on), and the users may
connect only over MQTT, so that no car can take those subjects through the NATS protocol.

    from hw_sim.nats import NatsServer
    with NatsServer(tmp_path, vehicles=["car1"]) as nats:   # MQTT on nats.port; nats.credentials("car1")
        ...
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from hw_sim.broker import DEFAULT_VEHICLES, free_port
from picar.link.topics import DEFAULT_PREFIX, HQ_USER, car_grants, hq_grants

NATS_SERVER = shutil.which("nats-server") or "/usr/bin/nats-server"
DELIVERY = "$MQTT.sub.>"  # where NATS hands a QoS 1 subscription its messages (a subscriber must be allowed it)


def subject(topic: str) -> str:
    """An MQTT topic filter as the NATS subject it becomes."""
    return ".".join({"+": "*", "#": ">"}.get(level, level) for level in topic.split("/"))


class NatsServer:
    """One nats-server process owned by a test. Use as a context manager or call start()/stop()."""

    def __init__(self, workdir: Path, *, vehicles: Iterable[str] = DEFAULT_VEHICLES,
                 topic_prefix: str = DEFAULT_PREFIX, ack_wait_s: int = 60, max_ack_pending: int = 1000) -> None:
        self.workdir = Path(workdir) / f"nats-{os.getpid()}-{id(self):x}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()  # MQTT: what the cars and HQ connect to
        self.nats_port = free_port()  # the NATS protocol listener (the server wants one)
        self.tls = None  # plain MQTT on loopback (hw_sim.broker.Subscriber reads this)
        self.prefix = topic_prefix.strip("/")
        self.users = {u: f"{u}-password" for u in [*vehicles, HQ_USER]}
        self.ack_wait_s = ack_wait_s
        self.max_ack_pending = max_ack_pending
        self.config_path = self.workdir / "nats.conf"
        self.log_path = self.workdir / "nats.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def start(self, timeout: float = 20.0) -> NatsServer:
        """Start and return once the MQTT listener accepts connections."""
        if self.running:
            raise RuntimeError(f"nats-server already running on port {self.port}")
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen([NATS_SERVER, "-c", str(self.config_path)], stdout=log,
                                      stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                break
            if re.search(r"Server is ready", self.log_text()):
                return self
            time.sleep(0.05)  # the server says it is ready only in its log
        self.kill()
        raise RuntimeError(f"nats-server did not start on port {self.port}:\n{self.log_text()[-3000:]}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: a clean shutdown (JetStream flushes its store)."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        self._end(signal.SIGKILL, 10.0)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (to measure its CPU)."""
        return self._proc.pid if self.running and self._proc is not None else None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self._end(signal.SIGKILL if exc[0] is not None else signal.SIGTERM, 10.0)

    def credentials(self, identity: str) -> dict[str, str]:
        """username and password of ``identity`` (a vehicle id or "hq")."""
        if identity not in self.users:
            raise KeyError(f"nats-server has no user {identity!r}; users: {sorted(self.users)}")
        return {"username": identity, "password": self.users[identity]}

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self._proc = None

    def permissions(self, user: str) -> dict[str, object]:
        """The NATS permissions of ``user``, from the same grants as the Mosquitto ACL."""
        if user == HQ_USER:
            writes, reads = hq_grants(self.prefix)
        else:
            writes, reads = car_grants(self.prefix, user)
        return {"publish": {"allow": [subject(t) for t in writes]},
                "subscribe": {"allow": [*(subject(t) for t in reads), DELIVERY]}}

    def _write_config(self) -> None:
        # JSON is valid NATS config syntax, and json.dumps quotes every name and password safely.
        users = [{"user": u, "password": p, "permissions": self.permissions(u),
                  # Over MQTT only: through the NATS protocol a user allowed $MQTT.sub.> could read every
                  # session's deliveries; NATS refuses an MQTT client's subscription to its own $MQTT/...
                  # topics (tests/test_scale_nats.py checks that a car cannot).
                  "allowed_connection_types": ["MQTT"]} for u, p in self.users.items()]
        config = {
            "server_name": f"picar-nats-{self.port}",
            "listen": f"{self.host}:{self.nats_port}",
            "jetstream": {"store_dir": str(self.workdir / "jetstream"), "max_memory_store": 268435456,
                          "max_file_store": 2147483648},
            "mqtt": {"listen": f"{self.host}:{self.port}",
                     # Redelivery of a QoS 1 message the subscriber has not acknowledged: longer than HQ's
                     # slowest commit, or every slow batch comes back as duplicates.
                     "ack_wait": f"{self.ack_wait_s}s", "max_ack_pending": self.max_ack_pending},
            "authorization": {"users": users},
        }
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")
