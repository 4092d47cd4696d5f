"""`picar demo`: the whole system on the recorded-frame simulator.

Starts a local Mosquitto (TLS, client certificates, passwords) and HQ (its own PostgreSQL and an ingest
worker), signs and publishes the demo watchlist as HQ would, starts the virtual GPS on a pseudo-terminal and
the MJPEG camera replay of the demo drive, then runs the real daemon against them and shows the hits
arriving at HQ with their positions, and what HQ's database stored. The hits come from the shipped models
reading the rendered plates.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hw_sim.sim import SimOptions, Simulation, expected_hits
from picar.link.topics import DEFAULT_PREFIX, every_vehicle
from picar.paths import DEMO_DIR

if TYPE_CHECKING:
    from picar.hq.console.server import ConsoleThread

# `--fast`: the drive at this multiple of its recorded pace. Served as fast as the stream is read, a busy
# machine's daemon dropped the frames it could not keep up with and could miss a plate; at twice the pace
# (30 frames/s of 1280x720) it keeps up on a loaded 2-core machine.
FAST_SPEED = 2.0


def _say(line: str) -> None:
    print(line, flush=True)


def _hit_line(hit: dict[str, Any]) -> str:
    pos = hit.get("position") or {}
    where = f"{pos['lat']:.5f},{pos['lon']:.5f}" if pos.get("lat") is not None else "no GPS fix"
    tag = " (covert: HQ only)" if hit.get("covert") else ""
    return (f"  HIT {hit['plate']:<9} read {hit['read_text']:<9} {hit['list']:<16} priority {hit['priority']}  "
            f"{hit['match']['text']}  at {where}  {hit['time']}{tag}")


def _start_hq(sim: Simulation, work: Path) -> str | None:
    """HQ's PostgreSQL and ingest; None (and why) where the `hq` extra is not installed."""
    try:
        import psycopg  # noqa: F401  (the hq extra: psycopg, alembic)
    except ImportError:
        _say("demo: HQ's database skipped: `pip install picar[hq]` (./scripts/demo installs it)")
        return None
    dsn = sim.start_hq()
    _say(f"demo: HQ's PostgreSQL at {sim.postgres.host}:{sim.postgres.port} (database picar_hq), ingest worker "
         f"{sim.ingest.client_id} storing what the car sends (config {work / 'hq.toml'})")
    return dsn


def _hq_stored(dsn: str, hits: set[str], timeout: float) -> dict[str, int]:
    """What HQ's database holds, once it has every hit HQ saw go by (or after ``timeout``)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            have = {r[0] for r in conn.execute("SELECT event_id FROM hits")}
            if hits <= have or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        counts = {table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
                  for table in ("reads", "hits", "images")}
    return counts


def demo_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="picar demo", description="Replay the demo drive through the whole system.")
    ap.add_argument("--demo-dir", type=Path, default=DEMO_DIR, help="drive, track, watchlist (default: shipped)")
    ap.add_argument("--fast", action="store_true", help=f"replay the drive at {FAST_SPEED:g} times its recorded pace")
    ap.add_argument("--timeout", type=float, default=180.0, help="give up after this many seconds")
    ap.add_argument("--workdir", type=Path, help="keep the run here (default: a temporary folder, removed)")
    ap.add_argument("--json", action="store_true", help="print the hits received at HQ as JSON lines")
    ap.add_argument("--detector", type=Path, help="another detector model (default: the shipped one)")
    ap.add_argument("--ocr", type=Path, help="another OCR model (default: the shipped one)")
    args = ap.parse_args(argv)
    models = "".join(f"{k} = {json.dumps(str(v.resolve()))}\n" for k, v in (("detector", args.detector),
                                                                          ("ocr", args.ocr)) if v)

    for name in ("drive.mp4", "track.csv", "watchlist.csv", "expected.json"):
        if not (args.demo_dir / name).is_file():
            print(f"picar demo: {args.demo_dir / name} is missing", file=sys.stderr)
            return 2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="picar-demo-"))
    # A Moldovan patrol car: the page in Romanian (issue 19), though its cameras read every region's plates.
    sim = Simulation(work, SimOptions(demo_dir=args.demo_dir, realtime=not args.fast, language="ro",
                                      replay_speed=FAST_SPEED if args.fast else None,
                                      extra_config=f"\n[models]\n{models}" if models else ""))
    console: ConsoleThread | None = None
    try:
        _say(f"demo: working in {work}")
        sim.start_world()
        _say(f"demo: broker on 127.0.0.1:{sim.broker.port} (TLS, a certificate and user for the car and for HQ, "
             "per-vehicle ACL)")
        dsn = _start_hq(sim, work)
        if dsn:
            from hw_sim.hq_web import start_console

            console, user, password = start_console(dsn, work)
            _say(f"demo: HQ console {console.url} (login {user} / {password}; the operator's screens in Romanian)")
        hq = sim.subscriber([every_vehicle(DEFAULT_PREFIX, "hit"), every_vehicle(DEFAULT_PREFIX, "read")])
        sim.publish_watchlist()
        _say("demo: HQ signed the demo watchlist (Ed25519) and published it as version 1")
        _say(f"demo: virtual GPS on {sim.gps_device}, camera replay at {sim.camera_source}")
        daemon = sim.start_daemon()
        _say(f"demo: daemon pid {daemon.pid}, log {sim.log_path}, in-car page http://127.0.0.1:{sim.ui_port}/")
        _say("demo: hits as they reach HQ:")
        seen: dict[str, dict[str, Any]] = {}
        reads = printed = 0
        deadline = time.monotonic() + args.timeout
        grace_until: float | None = None
        while time.monotonic() < deadline:
            msgs = hq.messages
            for m in msgs[printed:]:
                if m.topic.endswith("/read"):
                    reads += 1
                elif m.topic.endswith("/hit"):
                    hit = m.json()
                    if hit["event_id"] not in seen:
                        seen[hit["event_id"]] = hit
                        _say(json.dumps(hit) if args.json else _hit_line(hit))
            printed = len(msgs)
            if daemon.poll() is not None:
                _say(f"demo: the daemon exited with code {daemon.returncode}; see {sim.log_path}")
                break
            if sim.replay is not None and sim.replay.finished.is_set():
                grace_until = grace_until or time.monotonic() + 5.0  # let the last tracks be voted and sent
                if time.monotonic() > grace_until:
                    break
            time.sleep(0.2)
        hq.stop()
        stored = _hq_stored(dsn, set(seen), args.timeout) if dsn else {"hits": len(seen)}
        if dsn:
            _say(f"demo: HQ stored {stored['reads']} read(s) and {stored['hits']} hit(s) with {stored['images']} "
                 "evidence image(s) in PostgreSQL, each confirmed back to the car")
        expected = expected_hits(args.demo_dir)
        listed = {h["plate"] for h in seen.values()}
        missing = sorted(p for p in expected if p not in listed)
        _say(f"demo: {reads} read(s) and {len(seen)} hit(s) reached HQ; expected hits on "
             f"{', '.join(sorted(expected)) or 'nothing'}")
        if missing:
            _say(f"demo: MISSING hits on {', '.join(missing)}")
        no_fix = [h["plate"] for h in seen.values() if (h.get("position") or {}).get("lat") is None]
        if no_fix:
            _say(f"demo: hits without a GPS position: {', '.join(no_fix)}")
        if stored["hits"] < len(seen):
            _say(f"demo: HQ's database is MISSING {len(seen) - stored['hits']} hit(s)")
        return 0 if seen and not missing and stored["hits"] >= len(seen) else 1
    finally:
        if console is not None:
            console.stop()
        sim.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
