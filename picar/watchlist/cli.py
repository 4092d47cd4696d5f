"""`picar watchlist ...` (on the car or a laptop) and `picar hq keygen|watchlist ...` (at HQ).

    picar watchlist import FILE [--format csv|ncic] --out SNAPSHOT.json [--version N] [--list-id ID] [--gzip]
    picar watchlist show  [--dir D | FILE] [--key PUB] [--limit N]
    picar watchlist stats [--dir D | FILE] [--key PUB]
    picar watchlist match TEXT... [--dir D | FILE] [--region R]
    picar watchlist apply FILE --dir D --key PUB [--allow-unsigned]
    picar hq keygen --out KEYBASE
    picar hq watchlist sign FILE --key KEY --out SIGNED
    picar hq watchlist publish FILE --key KEY --host H --port P [--vehicle ID] [--tls] [--ca CA]
                               [--cert C] [--keyfile K] [--credentials F] [--prefix picar/v1]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from picar.watchlist.index import MatchOptions, Watchlist, WatchlistBuilder, WatchlistError
from picar.watchlist.io import (
    WatchlistImportError,
    default_version,
    iter_ncic_layout,
    read_file,
    snapshot_payload,
)
from picar.watchlist.signing import (
    SignatureError,
    generate_keypair,
    is_envelope,
    load_private_key,
    load_public_key,
    open_envelope,
    sign,
)
from picar.watchlist.sync import UpdateError, WatchlistStore, parse_update


def _err(msg: str) -> int:
    print(f"picar: {msg}", file=sys.stderr)
    return 1


# --- car side -------------------------------------------------------------------------------------


def _load_list(args: argparse.Namespace) -> tuple[Watchlist, str]:
    """A Watchlist from --dir (the car's saved list) or a snapshot/signed FILE."""
    if args.dir is not None:
        store = WatchlistStore(Path(args.dir), None, require_signature=False)
        if not store.load():
            raise WatchlistError(f"{args.dir}: no saved watchlist")
        return store.current, f"saved list in {args.dir}"
    if args.file is None:
        raise WatchlistError("give --dir DIR or a FILE")
    data = Path(args.file).read_bytes()
    key = load_public_key(Path(args.key)) if args.key else None
    opened = open_envelope(data, key, require_signature=key is not None)
    upd = parse_update(opened.payload)
    if upd.kind != "snapshot":
        raise WatchlistError(f"{args.file}: a delta (v{upd.version} on v{upd.base_version}) has no full list")
    builder = WatchlistBuilder()
    for i, rec in enumerate(upd.entries):
        builder.add_record(rec, f"entries[{i}]")
    state = "signature verified" if opened.signed else ("signed, NOT verified (no --key)"
                                                        if is_envelope(data) else "unsigned")
    return builder.build(upd.version, upd.list_id), f"{args.file} ({state})"


def _cmd_import(args: argparse.Namespace) -> int:
    records = read_file(Path(args.file), args.format)
    version = args.version if args.version is not None else default_version()
    payload = snapshot_payload(records, version=version, list_id=args.list_id, compress=args.gzip)
    Path(args.out).write_bytes(payload)
    counts = Counter(r["list"] for r in records)
    print(f"{args.out}: snapshot version {version}, {len(records)} entries "
          f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}); unsigned: sign it with "
          "`picar hq watchlist sign`")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    wl, where = _load_list(args)
    print(f"{where}: version {wl.version}, list_id {wl.list_id or '-'}, {len(wl)} entries")
    for n, e in enumerate(wl.entries()):
        if n >= args.limit:
            print(f"... {len(wl) - n} more (--limit)")
            break
        flags = " covert" if e.covert else ""
        exp = f" expires {e.expires:%Y-%m-%d}" if e.expires else ""
        print(f"  {e.plate:<10} {e.region or '--':<3} {e.list:<15} p{e.priority}{flags}{exp}  "
              f"{e.description or e.reason}".rstrip())
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    wl, where = _load_list(args)
    now = datetime.now(UTC)
    regions: Counter[str] = Counter()
    expired = pending = covert = wild = 0
    for e in wl.entries():
        regions[e.region or "-"] += 1
        expired += bool(e.expires and e.expires <= now)
        pending += bool(e.effective and e.effective > now)
        covert += e.covert
        wild += ("*" in e.plate) or ("?" in e.plate)
    stats = {"source": where, "version": wl.version, "list_id": wl.list_id, "entries": len(wl),
             "lists": wl.counts(), "regions": dict(regions.most_common(20)), "expired": expired,
             "not_yet_effective": pending, "covert": covert, "wildcards": wild,
             "index_mb": round(wl.index_bytes() / 2**20, 2)}
    print(json.dumps(stats, indent=2))
    return 0


def _cmd_match(args: argparse.Namespace) -> int:
    wl, where = _load_list(args)
    cands = [(t, 1.0 - 0.01 * i) for i, t in enumerate(args.text)]
    found = wl.match(cands, region=args.region)
    for e, m in found:
        print(f"{e.plate} [{e.list} p{e.priority}{' covert' if e.covert else ''}] via {m.read_text}: "
              f"{m.describe()}")
    if not found:
        print(f"no match in {where}")
    return 0 if found else 3


def _cmd_apply(args: argparse.Namespace) -> int:
    store = WatchlistStore(Path(args.dir), Path(args.key) if args.key else None,
                           require_signature=not args.allow_unsigned)
    store.load()
    result = store.apply_update(Path(args.file).read_bytes(), origin=f"file:{args.file}")
    state = "accepted" if result.accepted else "REJECTED"
    print(f"{state}: {result.reason}; version in force {result.version}, {result.entries} entries")
    return 0 if result.accepted else 1


def watchlist_main(argv: list[str]) -> int:
    """`picar watchlist import|show|stats|match|apply`; returns the process exit code."""
    ap = argparse.ArgumentParser(prog="picar watchlist", description="Import, inspect and apply watchlists.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="NCIC-style fixed-width columns:\n" + "\n".join(iter_ncic_layout()))
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("import", help="CSV or NCIC-style extract -> unsigned snapshot JSON")
    p.add_argument("file")
    p.add_argument("--format", choices=("csv", "ncic"), help="default: by extension (.csv, else ncic)")
    p.add_argument("--out", required=True)
    p.add_argument("--version", type=int, help="default: seconds since 2020-01-01 UTC (always increases)")
    p.add_argument("--list-id", default="", help="fleet or list name carried in the snapshot")
    p.add_argument("--gzip", action="store_true", help="gzip the payload")
    for name, helptext in (("show", "list the entries"), ("stats", "counts as JSON"),
                           ("match", "match plate text(s) like a read")):
        p = sub.add_parser(name, help=helptext)
        if name == "match":
            p.add_argument("text", nargs="+", help="OCR candidates, best first")
            p.add_argument("--file", help="snapshot or signed update file")
            p.add_argument("--region")
        else:
            p.add_argument("file", nargs="?", help="snapshot or signed update file")
        p.add_argument("--dir", help="the car's watchlist directory")
        p.add_argument("--key", help="public key to verify a signed FILE")
        p.add_argument("--limit", type=int, default=50)
    p = sub.add_parser("apply", help="apply a signed update file to a car's list (no link needed)")
    p.add_argument("file")
    p.add_argument("--dir", required=True)
    p.add_argument("--key", help="HQ public key (required unless --allow-unsigned)")
    p.add_argument("--allow-unsigned", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "apply" and not args.key and not args.allow_unsigned:
        ap.error("apply needs --key PUB (or --allow-unsigned)")
    handlers = {"import": _cmd_import, "show": _cmd_show, "stats": _cmd_stats, "match": _cmd_match,
                "apply": _cmd_apply}
    try:
        return handlers[args.cmd](args)
    except (WatchlistImportError, WatchlistError, SignatureError, UpdateError, OSError) as exc:
        return _err(str(exc))


# --- HQ side --------------------------------------------------------------------------------------


def _signed_bytes(path: Path, key: str | None) -> bytes:
    """The file as a signed envelope: signs a payload (after checking it parses), passes an envelope."""
    data = path.read_bytes()
    if is_envelope(data):
        return data
    if not key:
        raise SignatureError(f"{path} is not signed; give --key KEY to sign it")
    upd = parse_update(data)  # never sign something the cars would reject as malformed
    builder = WatchlistBuilder(MatchOptions())
    for i, rec in enumerate(upd.entries):
        builder.parse_record(rec, f"{'entries' if upd.kind == 'snapshot' else 'add'}[{i}]")
    return sign(data, load_private_key(Path(key)))


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
    topic = f"{prefix}/{args.vehicle}/watchlist" if args.vehicle else f"{prefix}/fleet/watchlist"
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
    """`picar hq keygen` and `picar hq watchlist sign|publish`; returns the process exit code."""
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
    p.add_argument("--prefix", default="picar/v1")
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
