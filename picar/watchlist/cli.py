"""`picar watchlist ...`: import, inspect and apply watchlists, on the car or a laptop (HQ's side: picar.hq.cli).

    picar watchlist import FILE [--format csv|ncic] --out SNAPSHOT.json [--version N] [--list-id ID] [--gzip]
    picar watchlist show  [--dir D | FILE] [--key PUB] [--limit N]
    picar watchlist stats [--dir D | FILE] [--key PUB]
    picar watchlist match TEXT... [--dir D | FILE] [--region R]
    picar watchlist apply FILE --dir D --key PUB [--allow-unsigned]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from picar.watchlist.entries import DEFAULT_LIST, WatchlistError
from picar.watchlist.index import Watchlist
from picar.watchlist.io import WatchlistImportError, iter_ncic_layout, read_file
from picar.watchlist.signing import SignatureError, is_envelope, load_public_key, open_envelope
from picar.watchlist.sync import WatchlistStore
from picar.watchlist.update import UpdateError, default_version, parse_update, snapshot_payload


def _err(msg: str) -> int:
    print(f"picar: {msg}", file=sys.stderr)
    return 1


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
    state = "signature verified" if opened.signed else ("signed, NOT verified (no --key)"
                                                        if is_envelope(data) else "unsigned")
    return Watchlist.from_records(upd.entries, None, upd.version, upd.list_id), f"{args.file} ({state})"


def _cmd_import(args: argparse.Namespace) -> int:
    records = read_file(Path(args.file), args.format)
    version = args.version if args.version is not None else default_version()
    payload = snapshot_payload(records, version=version, list_id=args.list_id, compress=args.gzip)
    Path(args.out).write_bytes(payload)
    counts = Counter(r.get("list", DEFAULT_LIST) for r in records)
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
