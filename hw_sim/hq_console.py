"""HQ console for the simulator: watch the fleet's MQTT stream, one readable line per message.

    python -m hw_sim.hq_console --host 127.0.0.1 --port 1883
    python -m hw_sim.hq_console --host H --port P --json                 # one JSON object per line
    python -m hw_sim.hq_console --host H --port P --until-hits 3 --timeout 60   # exit 0 after 3 hits, 1 on timeout
    python -m hw_sim.hq_console --host H --port 8883 --ca ca.crt --cert hq.crt --keyfile hq.key --credentials hq.cred

Subscribes to ``{prefix}/+/#`` at QoS 1. Hits are counted by distinct event_id, so a hit redelivered after
a reconnect is printed (marked ``dup``) but counted once.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import paho.mqtt.client as mqtt

from picar.isotime import utc_iso
from picar.link.topics import DEFAULT_PREFIX, every_vehicle, levels


def _iso(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return utc_iso(float(value), "seconds")
    if isinstance(value, str) and value:
        return value
    return None


def _dig(payload: dict[str, Any], *paths: str) -> Any:
    """The first non-empty value among dotted paths (``read.fix.lat``)."""
    for path in paths:
        node: Any = payload
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node not in (None, ""):
            return node
    return None


def split_topic(topic: str, prefix: str) -> tuple[str, str]:
    """(vehicle, kind) from ``{prefix}/{vehicle}/{kind...}``; ('?', topic) for anything else."""
    parts = levels(topic, prefix.strip("/"))
    if parts is None:
        return "?", topic
    return parts[0], "/".join(parts[1:])


def format_line(topic: str, payload: bytes, prefix: str, received_at: float, dup: bool = False) -> str:
    """One human-readable line: time, vehicle, kind, plate, list, match, lat/lon, and what else matters."""
    vehicle, kind = split_topic(topic, prefix)
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        return f"{_iso(received_at)}  {vehicle:<10} {kind:<12} <{len(payload)} bytes, not a JSON object>"
    when = _iso(_dig(body, "time", "raised_at", "captured_at", "read.captured_at")) or _iso(received_at)
    cols = [f"{when}", f"{vehicle:<10}", f"{kind:<12}"]
    if kind == "status":
        cols.append(f"state={body.get('state', '?')}")
        extra = {k: v for k, v in body.items() if k not in ("state", "time", "vehicle")}
        cols.append(" ".join(f"{k}={v}" for k, v in extra.items()))
        return "  ".join(c for c in cols if c).rstrip()
    plate = _dig(body, "plate", "text", "read.text", "read.plate", "entry.plate")
    wlist = _dig(body, "list", "entry.list")
    match = _dig(body, "match.text", "match.describe", "match.kind", "match")
    lat = _dig(body, "lat", "fix.lat", "read.fix.lat", "position.lat")
    lon = _dig(body, "lon", "fix.lon", "read.fix.lon", "position.lon")
    if plate is not None:
        cols.append(f"{plate!s:<10}")
    if wlist is not None:
        cols.append(f"list={wlist}")
    if match is not None:
        cols.append(f"match={match if isinstance(match, str) else json.dumps(match, separators=(',', ':'))}")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        cols.append(f"{lat:.5f},{lon:.5f}")
    if kind == "position" and body.get("speed_kmh") is not None:
        cols.append(f"{body['speed_kmh']} km/h")
    event_id = body.get("event_id")
    if event_id:
        cols.append(f"id={str(event_id)[:8]}")
    if dup:
        cols.append("dup")
    return "  ".join(cols).rstrip()


def json_line(topic: str, payload: bytes, prefix: str, retain: bool) -> str:
    """The message as one JSON object: topic, vehicle, kind, retain and the payload (JSON or text)."""
    vehicle, kind = split_topic(topic, prefix)
    try:
        body: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = payload.decode("utf-8", errors="replace")
    return json.dumps(
        {"topic": topic, "vehicle": vehicle, "kind": kind, "retain": retain, "payload": body},
        separators=(",", ":"),
    )


class Console:
    """Prints messages and counts distinct hits; ``done`` is set when the hit target is reached."""

    def __init__(self, prefix: str, as_json: bool, until_hits: int | None, out: TextIO,
                 clock: Callable[[], float] = time.time) -> None:
        self.prefix = prefix
        self.as_json = as_json
        self.until_hits = until_hits
        self.out = out
        self.clock = clock
        self.hit_ids: set[str] = set()
        self.done = threading.Event()
        self._lock = threading.Lock()

    def handle(self, topic: str, payload: bytes, retain: bool) -> None:
        """Print one message and update the hit count."""
        _, kind = split_topic(topic, self.prefix)
        dup = False
        if kind == "hit":
            try:
                event_id = json.loads(payload).get("event_id")
            except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
                event_id = None
            with self._lock:
                if event_id is not None:
                    dup = event_id in self.hit_ids
                    self.hit_ids.add(str(event_id))
                reached = self.until_hits is not None and len(self.hit_ids) >= self.until_hits
            if reached:
                self.done.set()
        if self.as_json:
            line = json_line(topic, payload, self.prefix, retain)
        else:
            line = format_line(topic, payload, self.prefix, self.clock(), dup=dup)
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hw_sim.hq_console", description=__doc__.splitlines()[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--prefix", default=DEFAULT_PREFIX)
    p.add_argument("--tls", action="store_true", help="connect with TLS (implied by any of the files below)")
    # The short spellings match `picar hq watchlist publish`.
    p.add_argument("--ca-file", "--ca", dest="ca_file", help="CA certificate (PEM) that signed the broker's")
    p.add_argument("--cert-file", "--cert", dest="cert_file", help="client certificate (PEM)")
    p.add_argument("--key-file", "--keyfile", dest="key_file", help="client private key (PEM)")
    p.add_argument("--credentials", type=Path, help="file with username=... and password=... lines")
    p.add_argument("--username")
    p.add_argument("--password", help="prefer --credentials: a password here is visible in ps")
    p.add_argument("--client-id", default="", help="a fixed id gives a persistent session (queued messages)")
    p.add_argument("--json", action="store_true", help="print one JSON object per message")
    p.add_argument("--until-hits", type=int, metavar="N", help="exit 0 after N distinct hit event_ids")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="give up after S seconds: exit 1 if --until-hits was not reached, else 0")
    return p


def console_main(argv: list[str], out: TextIO | None = None) -> int:
    """Run the console; returns the process exit code (0 ok, 1 hit target not reached, 2 bad usage)."""
    args = _parser().parse_args(argv)
    if args.until_hits is not None and args.until_hits < 1:
        print(f"--until-hits {args.until_hits}: must be at least 1", file=sys.stderr)
        return 2
    if (args.cert_file is None) != (args.key_file is None):
        print("--cert-file and --key-file must be given together", file=sys.stderr)
        return 2
    username, password = args.username, args.password
    if args.credentials is not None:
        from picar.config import ConfigError, read_credentials

        try:
            username, password = read_credentials(args.credentials)
        except ConfigError as exc:
            print(f"hq_console: {exc}", file=sys.stderr)
            return 2
    use_tls = bool(args.tls or args.ca_file or args.cert_file)
    console = Console(args.prefix.strip("/"), args.json, args.until_hits, out or sys.stdout)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=args.client_id,
        clean_session=not args.client_id,
        protocol=mqtt.MQTTv311,
    )
    if username is not None:
        client.username_pw_set(username, password)
    if use_tls:
        try:
            client.tls_set(ca_certs=args.ca_file, certfile=args.cert_file, keyfile=args.key_file)
        except (OSError, ValueError) as exc:
            print(f"TLS files: {exc}", file=sys.stderr)
            return 2
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    where = f"{args.host}:{args.port}"
    last_error: list[str] = []

    def report(text: str) -> None:
        if not last_error or last_error[-1] != text:
            print(f"hq_console: {where}: {text}", file=sys.stderr, flush=True)
        last_error[:] = [text]

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            report(f"connection refused: {reason}")
            return
        last_error.clear()
        everything = every_vehicle(console.prefix)
        print(f"hq_console: connected to {where}, watching {everything}", file=sys.stderr, flush=True)
        c.subscribe(everything, qos=1)

    def on_connect_fail(c: mqtt.Client, userdata: Any) -> None:
        exc = sys.exc_info()[1]
        report(f"cannot connect ({type(exc).__name__}: {exc})" if exc else "cannot connect")

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            console.handle(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception as exc:  # a bad message must not stop the console
            print(f"hq_console: cannot show message on {msg.topic}: {exc}", file=sys.stderr, flush=True)

    client.on_connect = on_connect
    client.on_connect_fail = on_connect_fail
    client.on_message = on_message

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: console.done.set()) if in_main else None
    client.connect_async(args.host, args.port, keepalive=30)
    client.loop_start()
    try:
        console.done.wait(args.timeout)
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    if args.until_hits is not None and len(console.hit_ids) < args.until_hits:
        print(f"hq_console: only {len(console.hit_ids)} of {args.until_hits} hits", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    sys.exit(console_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
