"""`picar demo`: the whole system on the recorded-frame simulator.

Starts a local Mosquitto (TLS, client certificates, passwords), signs and publishes the demo
watchlist as HQ would, starts the virtual GPS on a pseudo-terminal and the MJPEG camera replay of
the demo drive, then runs the real daemon against them and shows the hits arriving at HQ with their
positions. The hits come from the shipped models reading the rendered plates.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from picar.paths import DEMO_DIR

CAR_USER, CAR_PASSWORD = "demo-car-1", "car-demo-password"
HQ_USER, HQ_PASSWORD = "hq", "hq-demo-password"


def _toml_str(p: Path | str) -> str:
    return json.dumps(str(p))


def write_config(path: Path, *, camera: str, gps_device: str, broker: Any, creds: Path, pubkey: Path,
                 data_dir: Path, ui_port: int, realtime: bool) -> None:
    tls = broker.tls
    path.write_text(f"""# Written by `picar demo` for one run of the simulator.
[vehicle]
id = "demo-car-1"
description = "simulator"

[[cameras]]
name = "front"
source = {_toml_str(camera)}
realtime = {str(realtime).lower()}
reconnect_initial_s = 0.2
reconnect_max_s = 2.0
region = "auto"

[gps]
source = "serial"
device = {_toml_str(gps_device)}
baud = 9600
max_fix_age_s = 5.0
reopen_initial_s = 0.2
reopen_max_s = 2.0

[tracker]
cooldown_s = 60.0

[watchlist]
public_key = {_toml_str(pubkey)}
require_signature = true

[mqtt]
host = "127.0.0.1"
port = {broker.port}
tls = true
ca_file = {_toml_str(tls.ca_file)}
cert_file = {_toml_str(tls.client_cert)}
key_file = {_toml_str(tls.client_key)}
credentials_file = {_toml_str(creds)}
position_interval_s = 2.0

[storage]
data_dir = {_toml_str(data_dir)}
min_free_mb = 50

[ui]
enabled = true
bind = "127.0.0.1"
port = {ui_port}

[logging]
level = "info"
""")


def _print(line: str) -> None:
    print(line, flush=True)


def _expected_hits(demo_dir: Path) -> dict[str, dict[str, Any]]:
    expected = json.loads((demo_dir / "expected.json").read_text())
    out: dict[str, dict[str, Any]] = {}
    for v in expected.get("vehicles", []):
        hit = v.get("hit") or v.get("watchlist")
        if hit:
            listed = hit.get("plate") if isinstance(hit, dict) else str(hit)
            out[str(listed)] = {"plate": v.get("plate") or v.get("text"), **(hit if isinstance(hit, dict) else {})}
    return out


def demo_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="picar demo", description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--demo-dir", type=Path, default=DEMO_DIR, help="drive, track, watchlist (default: shipped)")
    ap.add_argument("--fast", action="store_true", help="replay the drive as fast as the daemon reads it")
    ap.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    ap.add_argument("--workdir", type=Path, help="keep the run here (default: a temporary folder, removed)")
    ap.add_argument("--json", action="store_true", help="print the hits received at HQ as JSON lines")
    args = ap.parse_args(argv)

    from hw_sim.broker import Mosquitto, Subscriber, free_port
    from hw_sim.camera_replay import MjpegReplay
    from hw_sim.track import load_track
    from hw_sim.virtual_gps import VirtualGps

    demo_dir: Path = args.demo_dir
    for name in ("drive.mp4", "track.csv", "watchlist.csv", "expected.json"):
        if not (demo_dir / name).is_file():
            print(f"picar demo: {demo_dir / name} is missing", file=sys.stderr)
            return 2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="picar-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    broker = gps = replay = daemon = sub = None
    try:
        _print(f"demo: working in {work}")
        broker = Mosquitto(work, persistence=True, tls=True, users={CAR_USER: CAR_PASSWORD, HQ_USER: HQ_PASSWORD})
        broker.start()
        _print(f"demo: broker on 127.0.0.1:{broker.port} (TLS, client certificates, passwords)")
        creds = work / "car.credentials"
        creds.write_text(f"username={CAR_USER}\npassword={CAR_PASSWORD}\n")
        creds.chmod(0o600)
        hq_creds = work / "hq.credentials"
        hq_creds.write_text(f"username={HQ_USER}\npassword={HQ_PASSWORD}\n")
        hq_creds.chmod(0o600)

        expected = _expected_hits(demo_dir)
        sub = Subscriber(broker, ["picar/v1/+/hit", "picar/v1/+/read", "picar/v1/+/status"],
                         username=HQ_USER, password=HQ_PASSWORD)
        sub.start()

        # HQ signs the watchlist and publishes it (retained) before the car is even on.
        from picar.watchlist_cli import hq_main, watchlist_main

        key = work / "hq-signing"
        snapshot = work / "watchlist.json"
        if hq_main(["keygen", "--out", str(key)]) != 0:
            return 1
        if watchlist_main(["import", str(demo_dir / "watchlist.csv"), "--format", "csv", "--out", str(snapshot),
                           "--version", "1"]) != 0:
            return 1
        tls = broker.tls
        assert tls is not None
        if hq_main(["watchlist", "publish", str(snapshot), "--key", f"{key}.key", "--host", "127.0.0.1",
                    "--port", str(broker.port), "--ca", str(tls.ca_file), "--cert", str(tls.client_cert),
                    "--keyfile", str(tls.client_key), "--credentials", str(hq_creds)]) != 0:
            return 1
        _print("demo: HQ signed and published watchlist version 1")

        gps = VirtualGps(load_track(demo_dir / "track.csv"), realtime=True, loop=True,
                         link=work / "gps", wait_for_reader=False)
        gps_path = gps.start()
        replay = MjpegReplay(demo_dir / "drive.mp4", realtime=not args.fast, loop=False, wait_for_client=True)
        replay.start()
        _print(f"demo: virtual GPS on {gps_path}, camera replay at {replay.url}")

        config = work / "picar.toml"
        write_config(config, camera=replay.url, gps_device=gps_path, broker=broker, creds=creds,
                     pubkey=Path(f"{key}.pub"), data_dir=work / "data", ui_port=free_port(),
                     realtime=not args.fast)
        log_path = work / "daemon.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(log_path, "wb") as log_file:
            daemon = subprocess.Popen([sys.executable, "-m", "picar.cli", "run", "--config", str(config)],
                                      stdout=log_file, stderr=subprocess.STDOUT, env=env)
        _print(f"demo: daemon pid {daemon.pid}, log {log_path}")
        _print("demo: HQ console (hits as they reach HQ):")

        seen: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + args.timeout
        reads = 0
        printed = 0
        grace_until: float | None = None
        while time.monotonic() < deadline:
            msgs = sub.messages
            for m in msgs[printed:]:
                if m.topic.endswith("/read"):
                    reads += 1
                    continue
                if not m.topic.endswith("/hit"):
                    continue
                hit = m.json()
                if hit["event_id"] in seen:
                    continue
                seen[hit["event_id"]] = hit
                pos = hit.get("position") or {}
                where = f"{pos.get('lat'):.5f},{pos.get('lon'):.5f}" if pos.get("lat") is not None else "no GPS fix"
                if args.json:
                    _print(json.dumps(hit))
                else:
                    _print(f"  HIT {hit['plate']:<9} read {hit['read_text']:<9} {hit['list']:<16} "
                           f"priority {hit['priority']}  {hit['match']['text']:<40} at {where}  {hit['time']}")
            printed = len(msgs)
            if daemon.poll() is not None:
                _print(f"demo: the daemon exited with code {daemon.returncode}; see {log_path}")
                break
            if replay.finished.is_set():
                # The drive is over: give the loop a moment to vote the last tracks and HQ to receive them.
                grace_until = grace_until or time.monotonic() + 4.0
                if time.monotonic() > grace_until:
                    break
            time.sleep(0.2)
        listed = {h["plate"] for h in seen.values()}
        missing = [p for p in expected if p not in listed]
        _print(f"demo: {reads} read(s) and {len(seen)} hit(s) reached HQ; expected hits on "
               f"{', '.join(sorted(expected)) or 'nothing'}")
        if missing:
            _print(f"demo: MISSING hits on {', '.join(missing)}")
        if any((h.get("position") or {}).get("lat") is None for h in seen.values()):
            _print("demo: some hits had no GPS position")
        return 0 if not missing and seen else 1
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
        for part in (replay, gps, sub, broker):
            if part is not None:
                try:
                    part.stop()
                except Exception as exc:  # best effort on the way out
                    print(f"demo: stopping {type(part).__name__}: {exc}", file=sys.stderr)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
