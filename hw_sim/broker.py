"""A real Mosquitto broker for the simulator, the demo and the tests, plus a collecting subscriber.

``Mosquitto`` writes its own config into a temporary directory, listens on a free port on 127.0.0.1 and
can be stopped, SIGKILLed and restarted on the same port. Like a fleet broker it has a password per user
(each car's username is its vehicle id; HQ's is ``hq``), no anonymous access and the per-vehicle ACL of
docs/mqtt.md (``picar.link.topics.broker_acl``). Options: persistence (retained messages and persistent
sessions survive a restart) and TLS with a generated CA and one client certificate per user
(``require_certificate true``). ``open_access=True`` is the exception: anonymous, no ACL.

    from hw_sim.broker import Mosquitto, Subscriber
    with Mosquitto(tmp_path, persistence=True, vehicles=["car1"]) as broker:
        with Subscriber(broker, ["picar/v1/#"]) as sub:         # HQ's identity unless identity= says
            ...
            assert sub.wait_for(lambda msgs: len(msgs) >= 3, timeout=5)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from picar.link.topics import DEFAULT_PREFIX, HQ_USER, broker_acl

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEFAULT_VEHICLES = ("car1", "car2")


@dataclass(frozen=True)
class ClientCert:
    """One identity's client certificate and key (PEM); the certificate's CN is the identity."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class TlsFiles:
    """PEM files generated for one test broker: a CA, the server's pair and one client pair per identity."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, ClientCert]

    def client(self, identity: str) -> ClientCert:
        """The certificate and key issued to ``identity`` (a vehicle id or "hq")."""
        try:
            return self.clients[identity]
        except KeyError:
            raise KeyError(f"no client certificate for {identity!r}; issued: {sorted(self.clients)}") from None


class Mosquitto:
    """One mosquitto process owned by a test. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        workdir: Path,
        *,
        persistence: bool = False,
        tls: bool = False,
        users: dict[str, str] | None = None,
        vehicles: Iterable[str] = DEFAULT_VEHICLES,
        topic_prefix: str = DEFAULT_PREFIX,
        open_access: bool = False,
        port: int | None = None,
        extra_config: Iterable[str] = (),
    ) -> None:
        """``users`` maps each username to its password (cars by vehicle id, and "hq"); left out, every id
        in ``vehicles`` and "hq" get the password ``{user}-password``. ``open_access=True`` (only for a test
        that needs an anonymous broker, and says why): no users, no ACL."""
        self.workdir = Path(workdir) / f"mosquitto-{os.getpid()}-{id(self):x}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._port_chosen = port is None  # ours to change if someone grabs it before the first start
        self._started_once = False
        self.persistence = persistence
        if open_access and users:
            raise ValueError("an open_access broker has no users")
        identities = list(users) if users is not None else [*vehicles, HQ_USER]
        self.open_access = open_access
        self.users: dict[str, str] = (
            {} if open_access else dict(users) if users is not None else {u: f"{u}-password" for u in identities}
        )
        self.topic_prefix = topic_prefix.strip("/")
        self.tls: TlsFiles | None = make_tls_files(self.workdir / "tls", clients=identities) if tls else None
        self.extra_config = list(extra_config)
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._log_lines: list[str] = []
        self._log_cond = threading.Condition()
        self._write_config()

    # ---- lifecycle -----------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker and return once it accepts connections on self.port (the same port on
        every restart)."""
        for _ in range(3):
            try:
                self._start_once(timeout)
            except RuntimeError:
                # Another process took the free port between choosing and binding: choose again.
                if self._started_once or not self._port_chosen or "Address already in use" not in self.log_text():
                    raise
                self.port = free_port()
                self._write_config()
                continue
            self._started_once = True
            return self
        raise RuntimeError(f"mosquitto could not find a free port:\n{self.log_text()[-3000:]}")

    def _start_once(self, timeout: float) -> None:
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError(f"mosquitto already running on port {self.port}")
        with self._log_cond:
            first_line = len(self._log_lines)
        self._proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        self._reader = threading.Thread(target=self._read_log, args=(self._proc,), daemon=True)
        self._reader.start()
        self.wait_for_log(r"mosquitto version \S+ running|^\[process exited", timeout=timeout, since=first_line)
        if not self.running or not self.wait_for_log(r"mosquitto version \S+ running", 0, since=first_line):
            self.kill()
            raise RuntimeError(f"mosquitto did not start on port {self.port}:\n{self.log_text()[-3000:]}")

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM): mosquitto saves its persistence database."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: nothing is saved, clients see the connection drop (last wills fire on restart only
        for sessions the broker persisted)."""
        self._end(signal.SIGKILL, 10.0)

    def pause(self) -> None:
        """SIGSTOP the broker: connections stay open but nothing is read or acknowledged."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)
        os.waitpid(self._proc.pid, os.WUNTRACED)  # returns once it is really stopped

    def resume(self) -> None:
        """SIGCONT after pause()."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)
        os.waitpid(self._proc.pid, os.WCONTINUED)

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or SIGKILL) and start again on the same port with the same config and data."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (to measure its CPU)."""
        return self._proc.pid if self.running and self._proc is not None else None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self._end(signal.SIGKILL if exc[0] is not None else signal.SIGTERM, 10.0)

    # ---- client-side helpers -------------------------------------------------------------------------

    def client_tls_kwargs(self, identity: str) -> dict[str, Any]:
        """ca_file, cert_file, key_file of ``identity`` for HqLink/console (empty without TLS)."""
        if self.tls is None:
            return {}
        mine = self.tls.client(identity)
        return {"ca_file": str(self.tls.ca_file), "cert_file": str(mine.cert_file), "key_file": str(mine.key_file)}

    def credentials(self, identity: str) -> dict[str, str]:
        """username and password of ``identity`` (empty for an open_access broker)."""
        if self.open_access:
            return {}
        if identity not in self.users:
            raise KeyError(f"broker has no user {identity!r}; users: {sorted(self.users)}")
        return {"username": identity, "password": self.users[identity]}

    def link_kwargs(self, identity: str) -> dict[str, Any]:
        """Everything HqLink needs to connect as ``identity``: tls, its TLS files, its credentials."""
        return {**({"tls": True} if self.tls else {}), **self.client_tls_kwargs(identity),
                **self.credentials(identity)}

    # ---- log -----------------------------------------------------------------------------------------

    def log_text(self) -> str:
        with self._log_cond:
            return "\n".join(self._log_lines)

    def log_count(self, pattern: str) -> int:
        """How many broker log lines so far match the regex."""
        rx = re.compile(pattern)
        with self._log_cond:
            return sum(1 for line in self._log_lines if rx.search(line))

    def wait_for_log(self, pattern: str, timeout: float, since: int = 0, count: int = 1) -> bool:
        """Wait until ``count`` log lines after line ``since`` match the regex (or the broker exits)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._log_cond:
            while True:
                if sum(1 for line in self._log_lines[since:] if rx.search(line)) >= count:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._log_cond.wait(remaining)

    def log_position(self) -> int:
        with self._log_cond:
            return len(self._log_lines)

    # ---- internals -----------------------------------------------------------------------------------

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            if sig == signal.SIGKILL:
                proc.kill()
            else:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        self._proc = None

    def _read_log(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with open(self.log_path, "ab") as log:
            for raw in proc.stdout:
                log.write(raw)
                log.flush()
                with self._log_cond:
                    self._log_lines.append(raw.decode(errors="replace").rstrip("\n"))
                    self._log_cond.notify_all()
        with self._log_cond:
            self._log_lines.append(f"[process exited rc={proc.wait()}]")
            self._log_cond.notify_all()

    def _write_config(self) -> None:
        lines = [
            "# written by hw_sim/broker.py",
            "log_dest stderr",  # unbuffered, unlike stdout into a pipe
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            # mosquitto started as root drops to user "mosquitto", which cannot read a private tmp dir.
            *(["user root"] if os.geteuid() == 0 else []),
            f"listener {self.port} {self.host}",
            # mosquitto loops over queued messages per client; the default cap (1000) is fine but explicit.
            "max_queued_messages 10000",
        ]
        if not self.open_access:
            passwd = self.workdir / "passwd"
            passwd.unlink(missing_ok=True)
            for i, (user, password) in enumerate(self.users.items()):
                flags = ["-b", "-c"] if i == 0 else ["-b"]
                subprocess.run(
                    [MOSQUITTO_PASSWD, *flags, str(passwd), user, password],
                    check=True,
                    capture_output=True,
                )
            acl = self.workdir / "acl"
            acl.write_text(broker_acl(self.topic_prefix))
            lines += ["allow_anonymous false", f"password_file {passwd}", f"acl_file {acl}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
                "require_certificate true",
                "tls_version tlsv1.2",
            ]
        if self.persistence:
            data = self.workdir / "data"
            data.mkdir(exist_ok=True)
            # autosave every second so even a SIGKILL loses at most about a second of broker state.
            lines += ["persistence true", f"persistence_location {data}/", "autosave_interval 1"]
        lines += self.extra_config
        self.config_path.write_text("\n".join(lines) + "\n")


def make_tls_files(directory: Path, hosts: Iterable[str] = ("127.0.0.1", "localhost"),
                   clients: Iterable[str] = (*DEFAULT_VEHICLES, HQ_USER)) -> TlsFiles:
    """Generate a CA, a server certificate for ``hosts`` and one client certificate per identity in
    ``clients`` (CN = the identity: a vehicle id or "hq"), all signed by the CA."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "picar test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, server: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if server:
            names: list[x509.GeneralName] = []
            for h in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(h)))
                except ValueError:
                    names.append(x509.DNSName(h))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    files = TlsFiles(
        ca_file=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        clients={name: ClientCert(directory / f"{name}.crt", directory / f"{name}.key") for name in clients},
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pairs = [(files.server_cert, files.server_key, leaf("127.0.0.1", server=True))]
    pairs += [(c.cert_file, c.key_file, leaf(name, server=False)) for name, c in files.clients.items()]
    for cert_path, key_path, (cert, key) in pairs:
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        key_path.chmod(0o600)
    return files


# ---- subscriber ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One message a Subscriber collected."""

    topic: str
    payload: bytes
    qos: int
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """An MQTT client that collects every message on its topics into a thread-safe list.

    ``client_id`` + ``clean_session=False`` gives a persistent session: QoS 1 messages published while it
    is disconnected (or while the broker restarts with persistence) are delivered when it is back.
    """

    def __init__(
        self,
        broker: Mosquitto,
        topics: Iterable[str],
        *,
        client_id: str = "",
        clean_session: bool = True,
        qos: int = 1,
        identity: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        """Connects as ``identity`` (default: ``username``, else "hq"): its certificate, and its username and
        password unless ``username``/``password`` say otherwise (to test a wrong password)."""
        self.topics = list(topics)
        self.qos = qos
        self._broker = broker
        self._cond = threading.Condition()
        self._messages: list[Received] = []
        self._connected = False
        self._subscribed = 0
        # Called on the network thread for every message, after it was collected (for timing probes).
        self.on_message_hook: Callable[[Received], None] | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        who = identity or username or HQ_USER
        creds = broker.credentials(who) if username is None else {"username": username, "password": password}
        if creds:
            self.client.username_pw_set(creds["username"], creds["password"])
        if broker.tls is not None:
            mine = broker.tls.client(who)
            self.client.tls_set(ca_certs=str(broker.tls.ca_file), certfile=str(mine.cert_file),
                                keyfile=str(mine.key_file))
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, timeout: float = 10.0) -> Subscriber:
        """Connect, subscribe and return once the broker confirmed the subscriptions."""
        self.client.connect_async(self._broker.host, self._broker.port, keepalive=10)
        self.client.loop_start()
        if not self.wait_subscribed(timeout):
            self.stop()
            raise TimeoutError(f"subscriber could not subscribe on port {self._broker.port}")
        return self

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait until connected and the current connection's SUBACK arrived."""
        with self._cond:
            return self._cond.wait_for(lambda: self._connected and self._subscribed > 0, timeout)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def messages(self) -> list[Received]:
        with self._cond:
            return list(self._messages)

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float) -> bool:
        """Wait until ``predicate(messages)`` holds; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._messages), timeout)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                timeout: float = 5.0) -> None:
        """Publish from this client and wait for the broker's acknowledgement."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"publish to {topic} not acknowledged within {timeout}s (rc={info.rc})")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            return
        with self._cond:
            self._connected = True
            self._subscribed = 0 if self.topics else 1  # a publish-only client is ready once connected
            self._cond.notify_all()
        if self.topics:
            client.subscribe([(t, self.qos) for t in self.topics])

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with self._cond:
            self._connected = False
            self._cond.notify_all()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        with self._cond:
            self._subscribed += 1
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        received = Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain))
        with self._cond:
            self._messages.append(received)
            self._cond.notify_all()
        if self.on_message_hook is not None:
            self.on_message_hook(received)
