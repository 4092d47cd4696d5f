"""How fast HQ's ingest drains the broker into PostgreSQL, with one or more workers (docs/hq.md, "Measured").

A real Mosquitto (persistence) and a real PostgreSQL (fsync on) on this machine. The workers (`picar hq ingest`
subprocesses) connect once to create their sessions and stop; the cars' reads are then published (QoS 1) and
queue at the broker for the workers' sessions, shared between them; the workers are started again and the
clock runs from their start until PostgreSQL holds every read. So the figure is ingest's alone (broker ->
worker -> database, acknowledgements to the broker and to the cars), not the publishers'.

    python -m hw_sim.ingest_bench --events 20000 --workers 2 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

from hw_sim.broker import Mosquitto
from hw_sim.postgres import Postgres

VEHICLES = tuple(f"car{i}" for i in range(1, 11))


def _worker(config: Path, log: Path, level: str = "warning") -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "picar.cli", "hq", "ingest", "--config", str(config),
                                 "--log-level", level], stdout=out, stderr=subprocess.STDOUT)


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(procs: list[subprocess.Popen[bytes]]) -> float:
    """Stop the workers; the CPU seconds they used."""
    cpu = sum(_cpu_s(p.pid) for p in procs if p.poll() is None)
    for p in procs:
        p.terminate()
        p.wait(30)
    return cpu


def _rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM reads").fetchone()
    return int(row[0]) if row else 0


def _span(dsn: str) -> float:
    """Seconds between the first and the last commit that stored a read (received_at is the commit's)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT extract(epoch FROM max(received_at) - min(received_at)) FROM reads").fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def _publish(broker: Mosquitto, events: int) -> None:
    """``events`` reads spread over the cars, each car one QoS 1 client, every PUBACK awaited."""
    now = time.time()
    per_car = -(-events // len(VEHICLES))
    sent = 0
    for vehicle in VEHICLES:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{vehicle}")
        client.username_pw_set(**broker.credentials(vehicle))
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect(broker.host, broker.port)
        client.loop_start()
        infos = []
        for i in range(min(per_car, events - sent)):
            t = now - 60 + i * 0.001
            plate = f"B{i % 1000:03d}XYZ"
            body = {"event_id": str(uuid.uuid4()), "vehicle": vehicle, "camera": "front", "plate": plate,
                    "confidence": 0.9, "candidates": [{"text": plate, "confidence": 0.9}],
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z",
                    "frames": 5, "box": [1, 2, 3, 4], "region": "md",
                    "position": {"lat": 47.0 + i * 1e-5, "lon": 28.8, "fix": "3d"}}
            infos.append(client.publish(f"{broker.topic_prefix}/{vehicle}/read", json.dumps(body), qos=1))
        for info in infos:
            info.wait_for_publish(120)
        sent += len(infos)
        client.disconnect()
        client.loop_stop()


def bench(events: int, workers: int, workdir: Path) -> dict[str, Any]:
    with Postgres() as pg, Mosquitto(workdir, persistence=True, vehicles=VEHICLES,
                                     extra_config=["max_queued_messages 0", "max_inflight_messages 0"]) as broker:
        dsn = pg.create_database("picar_hq")
        creds = workdir / "hq.credentials"
        creds.write_text("username=hq\npassword=hq-password\n")
        configs = []
        for n in range(1, workers + 1):
            config = workdir / f"hq-{n}.toml"
            config.write_text(f'[database]\ndsn = "{dsn}"\n[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
                              f'tls = false\ncredentials_file = "{creds}"\n[ingest]\nworker = {n}\n'
                              f"session_expiry_s = 3600\n")
            configs.append(config)
        procs = [_worker(c, workdir / f"worker-{n}.log", "info") for n, c in enumerate(configs, 1)]
        logs = [workdir / f"worker-{n}.log" for n in range(1, workers + 1)]
        _wait(lambda: all("subscribed" in log.read_text() for log in logs), 120, "the workers did not subscribe")
        startup_cpu = _stop(procs)  # what starting costs, to take off the measured run's CPU
        _publish(broker, events)
        started = time.monotonic()
        procs = [_worker(c, workdir / f"worker-{n}.log") for n, c in enumerate(configs, 1)]
        try:
            _wait(lambda: _rows(dsn) >= events, 1800, "ingest did not store every read")
            seconds = time.monotonic() - started
        finally:
            run_cpu = _stop(procs)
        stored = _rows(dsn)
        span = _span(dsn)
    # With the workers' start (process, imports, migration check, connect) and without it: first to last commit.
    return {"workers": workers, "events": events, "stored": stored, "seconds": round(seconds, 2),
            "events_per_s": round(events / seconds), "commit_span_s": round(span, 2),
            "events_per_s_draining": round(events / span) if span > 0 else None,
            "worker_cpu_ms_per_1000": round(max(0.0, run_cpu - startup_cpu) / events * 1e6)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw_sim.ingest_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="picar-ingest-bench-") as tmp:
        res = bench(args.events, args.workers, Path(tmp))
    print(json.dumps(res) if args.json else
          f"{res['workers']} worker(s): {res['stored']} of {res['events']} reads stored in {res['seconds']} s from "
          f"the workers' start ({res['events_per_s']}/s); first to last commit {res['commit_span_s']} s "
          f"({res['events_per_s_draining']} reads/s); the workers' CPU: {res['worker_cpu_ms_per_1000']} ms "
          "per 1000 reads")
    return 0 if res["stored"] == res["events"] else 1


if __name__ == "__main__":
    sys.exit(main())
