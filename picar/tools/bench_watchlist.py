"""Watchlist benchmark: load time, memory and per-read match latency on a synthetic list.

    python -m picar.tools.bench_watchlist [--entries 1000000] [--reads 2000] [--json] [--seed 7]

The list and the reads are generated from a seeded RNG, so runs are comparable. Each read carries
`--candidates` OCR candidates (the first is the one being tested, the rest are noisy variants),
the way the OCR hands them over.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from picar.watchlist.builder import WatchlistBuilder
from picar.watchlist.entries import ALPHABET
from picar.watchlist.index import Watchlist
from picar.watchlist.matching import MatchOptions
from picar.watchlist.signing import sign
from picar.watchlist.sync import STATE_FILE, WatchlistStore
from picar.watchlist.update import snapshot_payload

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_DIGITS = "0123456789"
_FORMATS = ("LLLDDDD", "DLLLDDD", "LLDDLLL", "LLLDDD", "DDDLLL", "LDDDLLL")
_CONFUSE = {"0": "O", "O": "0", "1": "I", "I": "1", "2": "Z", "Z": "2", "5": "S", "S": "5",
            "8": "B", "B": "8", "6": "G", "G": "6", "D": "0", "Q": "0"}


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_mb() -> float:
    """Peak RSS of this process image in MiB (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_records(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """`n` distinct plates in several formats, spread over lists, some with regions and notes."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    lists = ("stolen_vehicle", "stolen_plate", "wanted", "amber", "bolo")
    while len(out) < n:
        fmt = rng.choice(_FORMATS)
        plate = "".join(rng.choice(_LETTERS) if f == "L" else rng.choice(_DIGITS) for f in fmt)
        if plate in seen:
            continue
        seen.add(plate)
        rec: dict[str, Any] = {"plate": plate, "list": lists[len(out) % 5]}
        if len(out) % 3 == 0:
            rec["region"] = "CA"
        if len(out) % 50 == 0:
            rec["description"] = "silver sedan"
        out.append(rec)
    return out


def _confusable(plate: str, rng: random.Random) -> str | None:
    spots = [i for i, ch in enumerate(plate) if ch in _CONFUSE]
    if not spots:
        return None
    i = rng.choice(spots)
    return plate[:i] + _CONFUSE[plate[i]] + plate[i + 1:]


def _edit(plate: str, rng: random.Random) -> str:
    i = rng.randrange(len(plate))
    ch = rng.choice([c for c in "ACEFHKMNPRTUVWXY3479" if c != plate[i]])
    return plate[:i] + ch + plate[i + 1:]


def _noise(text: str, rng: random.Random) -> str:
    i = rng.randrange(len(text))
    return text[:i] + rng.choice(ALPHABET) + text[i + 1:]


def make_reads(records: Sequence[dict[str, Any]], kind: str, count: int, n_cand: int,
               rng: random.Random) -> list[list[tuple[str, float]]]:
    """Reads whose first candidate hits by `kind` (exact, confusable, edit) or misses (miss)."""
    reads: list[list[tuple[str, float]]] = []
    while len(reads) < count:
        plate = rng.choice(records)["plate"]
        if kind == "exact":
            top: str | None = plate
        elif kind == "confusable":
            top = _confusable(plate, rng)
        elif kind == "edit":
            top = _edit(plate, rng)
        else:
            top = "".join(rng.choice(ALPHABET) for _ in range(8))  # 8 chars: no listed plate has 8
        if top is None:
            continue
        cands = [(top, 0.9)] + [(_noise(top, rng), 0.5 - 0.05 * k) for k in range(n_cand - 1)]
        reads.append(cands)
    return reads


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(entries: int, reads: int, n_cand: int, seed: int, store: bool = False) -> dict[str, Any]:
    """Build the list, time loading and matching; returns the numbers as a dict."""
    rng = random.Random(seed)
    records = synthetic_records(entries, rng)
    payload = json.dumps({"entries": records}).encode()
    batches = {kind: make_reads(records, kind, reads, n_cand, rng)
               for kind in ("exact", "confusable", "edit", "miss")}
    del records  # so the list being measured is the only large thing alive
    gc.collect()
    rss_before = rss_mb()
    t0 = time.perf_counter()
    parsed = json.loads(payload)["entries"]
    t1 = time.perf_counter()
    builder = WatchlistBuilder(MatchOptions(max_substitutions={"default": 1, "amber": 2}))
    for i, rec in enumerate(parsed):
        builder.add_record(rec, f"entries[{i}]")
    t2 = time.perf_counter()
    wl: Watchlist = builder.build(version=1)
    t3 = time.perf_counter()
    del parsed, builder
    gc.collect()
    rss_after = rss_mb()
    result: dict[str, Any] = {
        "entries": entries, "reads_per_path": reads, "candidates_per_read": n_cand,
        "load": {"json_parse_s": round(t1 - t0, 3), "validate_s": round(t2 - t1, 3),
                 "index_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3)},
        "rss_mb": {"before": round(rss_before, 1), "after": round(rss_after, 1),
                   "watchlist": round(rss_after - rss_before, 1),
                   "peak": round(peak_mb(), 1)},
        "index_mb": round(wl.index_bytes() / 2**20, 1),
        "match_ms": {},
    }
    at = datetime(2026, 6, 1, tzinfo=UTC)
    for kind, batch in batches.items():
        times, cpu, hits = [], [], 0
        for cands in batch:
            s, c = time.perf_counter(), time.thread_time()
            found = wl.match(cands, region=None, at=at)
            cpu.append((time.thread_time() - c) * 1000)
            times.append((time.perf_counter() - s) * 1000)
            hits += bool(found)
        result["match_ms"][kind] = {
            "p50": round(_pct(times, 0.50), 4), "p95": round(_pct(times, 0.95), 4),
            "p99": round(_pct(times, 0.99), 4), "mean": round(statistics.fmean(times), 4),
            "cpu_p50": round(_pct(cpu, 0.50), 4), "cpu_p99": round(_pct(cpu, 0.99), 4),
            "reads_with_hit": hits,
        }
    if store:
        result["store"] = _bench_store(payload)
    return result


def _bench_store(payload: bytes) -> dict[str, Any]:
    """Sign the snapshot and apply it through WatchlistStore (verify, parse, index, save) in a fresh
    process, measuring its memory; apply a newer one over it in another (the list in force is replaced,
    as on a car); then time a cold start that loads the saved list in a fresh process (the restart path).
    """
    with tempfile.TemporaryDirectory() as tmp:
        key = Ed25519PrivateKey.generate()
        pub = Path(tmp) / "hq.pub"
        pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
        body = json.loads(payload)
        for version in (1, 2):
            (Path(tmp) / f"v{version}.signed").write_bytes(sign(snapshot_payload(body["entries"], version), key))
        del body
        gc.collect()
        car = Path(tmp) / "car"
        first = _child("--apply-child", str(Path(tmp) / "v1.signed"), str(pub), str(car))
        replace = _child("--apply-child", str(Path(tmp) / "v2.signed"), str(pub), str(car))
        saved = (car / STATE_FILE).stat().st_size
        cold = _child("--load-dir", str(car))
    return {"signed_update_mb": first["update_mb"], "apply_signed_snapshot_s": first["apply_s"],
            "apply": first, "replace": replace, "saved_mb": round(saved / 2**20, 1), "cold_start": cold}


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "picar.tools.bench_watchlist", *args],
                         capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _apply_child(update: Path, pub: Path, car: Path) -> dict[str, Any]:
    """In a fresh process: load what `car` holds, then apply the signed `update` as the daemon does
    (the envelope's bytes held by the caller, as an MQTT message is). The peak is VmHWM, this process
    image's own high-water mark: ru_maxrss would carry over the parent's peak through vfork and exec."""
    store = WatchlistStore(car, pub)
    store.load()
    data = update.read_bytes()
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    res = store.apply_update(data, "bench")
    apply_s = time.perf_counter() - t0
    if not res.accepted:
        raise RuntimeError(res.reason)
    del data
    gc.collect()
    peak = peak_mb()
    return {"update_mb": round(update.stat().st_size / 2**20, 1), "entries_before": res.removed,
            "entries": res.entries, "apply_s": round(apply_s, 3), "rss_mb_before": round(before, 1),
            "peak_mb": round(peak, 1), "rss_mb_after": round(rss_mb(), 1)}


def _cold_load(path: Path) -> dict[str, Any]:
    rss0 = rss_mb()
    t0 = time.perf_counter()
    store = WatchlistStore(path, None, require_signature=False)
    if not store.load():
        raise RuntimeError(f"nothing saved in {path}")
    load_s = time.perf_counter() - t0
    gc.collect()
    return {"load_s": round(load_s, 3), "entries": len(store.current), "rss_mb_before": round(rss0, 1),
            "rss_mb_after": round(rss_mb(), 1),
            "peak_mb": round(peak_mb(), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m picar.tools.bench_watchlist", description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--no-store", action="store_true", help="skip the signed apply / cold start part")
    ap.add_argument("--load-dir", help=argparse.SUPPRESS)  # internal: the cold-start child process
    ap.add_argument("--apply-child", nargs=3, help=argparse.SUPPRESS)  # internal: UPDATE PUB CARDIR
    args = ap.parse_args(argv)
    if args.apply_child:
        print(json.dumps(_apply_child(*(Path(a) for a in args.apply_child))))
        return 0
    if args.load_dir:
        print(json.dumps(_cold_load(Path(args.load_dir))))
        return 0
    res = run(args.entries, args.reads, args.candidates, args.seed, store=not args.no_store)
    if args.json:
        print(json.dumps(res))
        return 0
    ld, mem = res["load"], res["rss_mb"]
    print(f"entries {res['entries']:,}  candidates/read {res['candidates_per_read']}")
    print(f"load: json {ld['json_parse_s']}s  validate {ld['validate_s']}s  index {ld['index_s']}s  "
          f"total {ld['total_s']}s")
    print(f"rss: +{mem['watchlist']} MiB for the list (now {mem['after']} MiB, peak {mem['peak']} MiB); "
          f"numpy columns+index {res['index_mb']} MiB")
    for kind, t in res["match_ms"].items():
        print(f"match {kind:<10} p50 {t['p50']:.3f} ms  p95 {t['p95']:.3f} ms  p99 {t['p99']:.3f} ms  "
              f"(cpu p50 {t['cpu_p50']:.3f} p99 {t['cpu_p99']:.3f})  "
              f"hits {t['reads_with_hit']}/{res['reads_per_path']}")
    st = res.get("store")
    if st:
        cold = st["cold_start"]
        print(f"store: signed update {st['signed_update_mb']} MiB applied in {st['apply_signed_snapshot_s']} s "
              f"(verify+parse+index+save), saved {st['saved_mb']} MiB")
        for name, a in (("apply to an empty store", st["apply"]),
                        (f"replace a list of {st['replace']['entries_before']:,}", st["replace"])):
            print(f"{name}: fresh process RSS {a['rss_mb_before']} MiB before (envelope held), peak "
                  f"{a['peak_mb']} MiB (VmHWM), {a['rss_mb_after']} MiB after; {a['apply_s']} s")
        print(f"cold start: load saved list {cold['load_s']} s, process RSS {cold['rss_mb_before']} -> "
              f"{cold['rss_mb_after']} MiB (peak {cold['peak_mb']} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
