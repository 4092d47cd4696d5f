"""`picar hq ...`: the tools an HQ operator runs on any machine that reaches the broker.

    picar hq keygen --out KEYBASE
    picar hq watchlist sign FILE --key KEY --out SIGNED
    picar hq watchlist publish FILE --key KEY --host H --port P [--vehicle ID] [--tls] [--ca CA]
                               [--cert C] [--keyfile K] [--credentials F] [--prefix picar/v1]
    picar hq monitor ...  (the live fleet console, picar.hq.monitor)
    picar hq db upgrade|current --dsn DSN  (HQ's database schema, picar.hq.store)
    picar hq ingest --config hq.toml | --dsn DSN --host H ...  (the fleet into the database, picar.hq.ingest)
    picar hq fill-reads --dsn DSN [--reads 10000000]  (made-up reads for the search benchmark)
    picar hq bench-search --dsn DSN [--queries 200]   (the console's search, timed: docs/scale.md)
    picar hq serve --config hq.toml  (the web console, picar.hq.console)
    picar hq account add|list|disable|enable|passwd ...  (the console's accounts)
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

from picar.link.topics import DEFAULT_PREFIX, WATCHLIST, fleet_topic, vehicle_topic
from picar.watchlist.builder import WatchlistBuilder
from picar.watchlist.entries import WatchlistError, key_of
from picar.watchlist.matching import MatchOptions
from picar.watchlist.signing import SignatureError, generate_keypair, is_envelope, load_private_key, sign
from picar.watchlist.update import UpdateError, parse_update


def _err(msg: str) -> int:
    print(f"picar: {msg}", file=sys.stderr)
    return 1


def _signed_bytes(path: Path, key: str | None) -> bytes:
    """The file as a signed envelope: signs a payload (after checking it parses), passes an envelope."""
    data = path.read_bytes()
    if is_envelope(data):
        return data
    if not key:
        raise SignatureError(f"{path} is not signed; give --key KEY to sign it")
    check_update(data)  # never sign something the cars would refuse
    return sign(data, load_private_key(Path(key)))


def check_update(data: bytes) -> None:
    """Refuse a payload the cars would refuse, with the car's own rules and messages: the format, each
    entry, and the whole list (a snapshot's entries, or a delta's additions as a list of their own).

    A delta can still be refused by a car whose list in force does not fit it (a different base
    version, or the merged list exceeding a limit); that depends on the car and is not known here.
    """
    upd = parse_update(data)
    builder = WatchlistBuilder(MatchOptions())
    names = builder.add_records(upd.entries, "entries" if upd.kind == "snapshot" else "add")
    builder.check(names)
    for i, rec in enumerate(upd.remove):
        key_of(rec, f"remove[{i}]")


def _cmd_keygen(args: argparse.Namespace) -> int:
    key, pub = generate_keypair(Path(args.out), overwrite=args.force)
    print(f"private key {key} (mode 0600, keep it at HQ)\npublic key  {pub} (install on every car)")
    return 0


def _cmd_sign(args: argparse.Namespace) -> int:
    env = _signed_bytes(Path(args.file), args.key)
    Path(args.out).write_bytes(env)
    print(f"{args.out}: signed envelope, {len(env)} bytes")
    return 0


def publish_retained(envelope: bytes, topic: str, host: str, port: int, *, tls: bool = False,
                     ca: str | None = None, cert: str | None = None, keyfile: str | None = None,
                     username: str | None = None, password: str | None = None,
                     timeout_s: float = 30.0) -> None:
    """Publish `envelope` at QoS 1, retained, and wait for the broker's PUBACK; raises on failure."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"picar-hq-publish-{int(time.time())}")
    if tls:
        client.tls_set(ca_certs=ca, certfile=cert, keyfile=keyfile)
    if username is not None:
        client.username_pw_set(username, password)
    connected = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        outcome["connect"] = reason
        connected.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise TimeoutError(f"no CONNACK from {host}:{port} within {timeout_s:.0f} s")
        if outcome["connect"].is_failure:
            raise ConnectionError(f"broker {host}:{port} refused the connection: {outcome['connect']}")
        info = client.publish(topic, envelope, qos=1, retain=True)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise TimeoutError(f"no PUBACK for {topic} within {timeout_s:.0f} s (rc {info.rc})")
    finally:
        client.disconnect()
        client.loop_stop()


def _cmd_publish(args: argparse.Namespace) -> int:
    env = _signed_bytes(Path(args.file), args.key)
    prefix = args.prefix.strip("/")
    topic = vehicle_topic(prefix, args.vehicle, WATCHLIST) if args.vehicle else fleet_topic(prefix, WATCHLIST)
    user = password = None
    if args.credentials:
        from picar.config import ConfigError, read_credentials

        try:
            user, password = read_credentials(Path(args.credentials))
        except ConfigError as exc:
            raise WatchlistError(str(exc)) from None
    tls = args.tls or bool(args.ca or args.cert)
    publish_retained(env, topic, args.host, args.port, tls=tls, ca=args.ca, cert=args.cert, keyfile=args.keyfile,
                     username=user, password=password, timeout_s=args.timeout)
    print(f"published {len(env)} bytes to {topic} on {args.host}:{args.port} (QoS 1, retained)")
    return 0


def hq_main(argv: list[str]) -> int:
    """`picar hq keygen|watchlist sign|watchlist publish|monitor|db|ingest|serve|account|...`; the exit code."""
    if argv and argv[0] == "monitor":
        from picar.hq.monitor import monitor_main

        return monitor_main(argv[1:])
    if argv and argv[0] == "serve":
        from picar.hq.console.cli import serve_main

        return serve_main(argv[1:])
    if argv and argv[0] == "account":
        from picar.hq.console.cli import account_main

        return account_main(argv[1:])
    if argv and argv[0] == "db":
        from picar.hq.store.cli import db_main

        return db_main(argv[1:])
    if argv and argv[0] == "ingest":
        from picar.hq.ingest.cli import ingest_main

        return ingest_main(argv[1:])
    if argv and argv[0] == "fill-reads":
        from picar.hq.fill_reads import fill_main

        return fill_main(argv[1:])
    if argv and argv[0] == "bench-search":
        from picar.hq.bench_search import bench_main

        return bench_main(argv[1:])
    ap = argparse.ArgumentParser(prog="picar hq", description="HQ tools: signing keys and watchlist updates.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("keygen", help="new Ed25519 key pair: KEYBASE.key (0600) and KEYBASE.pub")
    p.add_argument("--out", required=True, metavar="KEYBASE")
    p.add_argument("--force", action="store_true", help="overwrite existing key files")
    w = sub.add_parser("watchlist", help="sign or publish a watchlist update").add_subparsers(
        dest="wcmd", required=True)
    p = w.add_parser("sign", help="sign a snapshot/delta payload file")
    p.add_argument("file")
    p.add_argument("--key", required=True, help="HQ private key (KEYBASE.key)")
    p.add_argument("--out", required=True)
    p = w.add_parser("publish", help="publish a (signed or to-be-signed) update, QoS 1 retained")
    p.add_argument("file")
    p.add_argument("--key", help="HQ private key, if FILE is not yet signed")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=None, help="default 8883 with --tls, else 1883")
    p.add_argument("--vehicle", help="one car's topic instead of the fleet topic")
    p.add_argument("--tls", action="store_true", help="TLS (implied by --ca or --cert)")
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--keyfile")
    p.add_argument("--credentials", help="file with username=... and password=... lines")
    p.add_argument("--prefix", default=DEFAULT_PREFIX)
    p.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "keygen":
            return _cmd_keygen(args)
        if args.wcmd == "sign":
            return _cmd_sign(args)
        if args.port is None:
            args.port = 8883 if args.tls else 1883
        return _cmd_publish(args)
    except (WatchlistError, SignatureError, UpdateError, OSError, TimeoutError, ConnectionError) as exc:
        return _err(str(exc))
