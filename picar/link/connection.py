"""How the car's MQTT client is set up and what the broker keeps for it: the checked link settings, the
paho client (persistent session, TLS, manual acknowledgement of HQ's messages), the retained online and
offline status, and the technician-readable reasons a connection fails."""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from picar.link import MAX_INFLIGHT
from picar.link.topics import RESERVED_VEHICLE_IDS

LEVEL = re.compile(r"^[A-Za-z0-9_.-]+$")  # one topic level: a vehicle id or an event kind
STATUS_ROOM = 4  # in-flight room above the event window, so status is never queued behind events
CONNACK_HINTS = {
    132: "the broker does not speak MQTT 3.1.1",
    133: "the broker rejected the client id",
    134: "check username and password",
    135: "check username/password and the broker ACL for this vehicle",
    136: "the broker is unavailable",
}


def check_settings(vehicle_id: str, topic_prefix: str, port: int, keepalive_s: int, reconnect_min_s: float,
                   reconnect_max_s: float, max_inflight: int, tls: bool, ca_file: str | Path | None,
                   cert_file: str | Path | None, key_file: str | Path | None) -> str:
    """Raise ValueError naming the first bad setting; returns the topic prefix without outer slashes."""
    if not LEVEL.match(vehicle_id or ""):
        raise ValueError(f"hq vehicle_id {vehicle_id!r}: use letters, digits, '_', '-', '.' only")
    if vehicle_id in RESERVED_VEHICLE_IDS:
        reserved = ", ".join(sorted(RESERVED_VEHICLE_IDS))
        raise ValueError(f"hq vehicle_id {vehicle_id!r}: reserved in the topic tree and broker ACL ({reserved})")
    prefix = topic_prefix.strip("/")
    if not prefix or any(c in prefix for c in "+#") or "//" in prefix:
        raise ValueError(f"hq topic_prefix {topic_prefix!r}: must be a plain topic path without wildcards")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"hq port {port}: must be between 1 and 65535")
    if not 1 <= keepalive_s <= 65535:
        raise ValueError(f"hq keepalive_s {keepalive_s}: must be between 1 and 65535 seconds")
    if not 0 < reconnect_min_s <= reconnect_max_s:
        raise ValueError(
            f"hq reconnect_min_s {reconnect_min_s} / reconnect_max_s {reconnect_max_s}: need 0 < min <= max"
        )
    if not 1 <= max_inflight <= MAX_INFLIGHT:
        raise ValueError(f"hq max_inflight {max_inflight}: must be between 1 and {MAX_INFLIGHT}")
    if not tls and (ca_file or cert_file or key_file):
        raise ValueError("hq ca_file/cert_file/key_file given but tls is false")
    if (cert_file is None) != (key_file is None):
        raise ValueError("hq cert_file and key_file must be given together")
    return prefix


def make_client(client_id: str, max_inflight: int, reconnect_min_s: float, reconnect_max_s: float,
                username: str | None, password: str | None, tls: bool, ca_file: str | Path | None,
                cert_file: str | Path | None, key_file: str | Path | None) -> mqtt.Client:
    """The paho client for one car; callbacks and the last will are the link's to set."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,  # HQ's QoS 1 commands queued while we were away arrive on reconnect
        protocol=mqtt.MQTTv311,
        manual_ack=True,  # a command is acknowledged once handled (link/command_worker.py)
    )
    client.max_inflight_messages_set(max_inflight + STATUS_ROOM)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)  # type: ignore[arg-type]
    if username is not None:
        client.username_pw_set(username, password)
    if tls:
        try:
            client.tls_set(
                ca_certs=None if ca_file is None else str(ca_file),
                certfile=None if cert_file is None else str(cert_file),
                keyfile=None if key_file is None else str(key_file),
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"hq TLS files (ca_file={ca_file}, cert_file={cert_file}, key_file={key_file}): {exc}"
            ) from exc
    return client


def online_status(vehicle_id: str, version: str, time: str, backlog: int, extra: dict[str, Any]) -> str:
    """The retained status while connected; `extra` (the car's status summary) never overrides these."""
    body = {**extra, "state": "online", "vehicle": vehicle_id, "time": time, "version": version,
            "backlog": backlog}
    return json.dumps(body, separators=(",", ":"), default=str)


def provided_status(provider: Callable[[], dict[str, Any]] | None, log: logging.Logger) -> dict[str, Any]:
    """The status provider's fields; none (and the failure logged) if it fails."""
    if provider is None:
        return {}
    try:
        return dict(provider())
    except Exception:
        log.exception("HQ status provider failed; sending status without its fields")
        return {}


def offline_status(vehicle_id: str, version: str, reason: str, time: str) -> str:
    """The retained status after a clean stop, and the last will ("connection lost")."""
    body: dict[str, Any] = {"state": "offline", "vehicle": vehicle_id, "version": version, "reason": reason}
    if reason != "connection lost":  # the last will is fixed at connect time, so it carries no time
        body["time"] = time
    return json.dumps(body, separators=(",", ":"))


def describe_connect_error(exc: BaseException | None) -> tuple[str, int]:
    """A technician-readable reason for a failed TCP/TLS connect, and the log level it deserves."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate verification failed ({exc.verify_message}): check ca_file and that the "
            "broker certificate names this host",
            logging.ERROR,
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS handshake failed ({exc.reason or exc}): check ca_file, cert_file, key_file and the "
            "broker's TLS settings",
            logging.ERROR,
        )
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: broker not running or wrong port", logging.WARNING
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host name ({exc.strerror})", logging.WARNING
    if isinstance(exc, TimeoutError):
        return "connection timed out", logging.WARNING
    if exc is None:
        return "connection failed", logging.WARNING
    return f"connection failed: {type(exc).__name__}: {exc}", logging.WARNING


def describe_disconnect(vehicle_id: str, where: str, reason: object, stopping: bool, was_connected: bool,
                        inflight: int) -> tuple[str, int]:
    """What to log when the connection closes: a stop, a lost connection, or one refused before it began."""
    if stopping:
        return f"HQ link {vehicle_id} disconnected from {where}", logging.INFO
    if was_connected:
        return (f"HQ link {vehicle_id} lost connection to {where} ({reason}); reconnecting with back-off, "
                f"{inflight} events in flight"), logging.WARNING
    return (f"HQ broker {where} closed the connection before accepting it ({reason}): check the TLS client "
            "certificate and broker limits; retrying with back-off"), logging.ERROR


class ProblemLog:
    """A connection problem is logged loudly once, then quietly (debug) while it repeats."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._lock = threading.Lock()
        self.last: str | None = None
        self.failures = 0

    def report(self, text: str, level: int) -> None:
        with self._lock:
            repeated = text == self.last
            self.last = text
            self.failures += 1
            count = self.failures
        if repeated:
            self._log.debug("%s (attempt %d)", text, count)
        else:
            self._log.log(level, text)

    def clear(self) -> None:
        """Connected: the next problem is news again."""
        with self._lock:
            self.last = None
