"""The load generator: N simulated cars against a real broker, real ingest workers and a real PostgreSQL, then a
check that every event is in the database exactly once (docs/scale.md).

    python -m hw_sim.fleet_load --cars 1000 --minutes 10 --workers 2 --out runs/fleet-1000

Unless `--broker H:P` and `--dsn DSN` name running ones, it starts its own: PostgreSQL (hw_sim/postgres.py,
durable commits) and Mosquitto (hw_sim/broker.py: a password per car, the per-vehicle ACL, persistence), and
`--workers` ingest workers (`picar hq ingest`, each its own process, sharing the cars' messages through a
shared subscription); `--engine nats` starts a NATS node instead (one ingest worker, MQTT 3.1.1). `--nice
-10` gives every part of the run priority over the other work of a shared machine. The cars run in
`--processes` processes (hw_sim/fleet_process.py), each driving its share of them on one select loop; their
outboxes are real SQLite files, by default in /dev/shm: a real car has a storage card of its own, and a
thousand outboxes fsyncing on this machine's one disk would measure the disk of the simulator, not HQ.

Every 5 seconds it records the CPU time of each part (the generator's processes, the ingest
workers, the broker, all of PostgreSQL's processes), the machine's load and the fleet's backlog
(`timeline.jsonl`); at the end it writes `report.json` (and prints a summary): events produced and stored
by kind, lost and duplicated, ingest lag p50/p95/p99 (database and end to end), events/s, CPU cores used by
each part, and how late the generator ran its own schedule (if it is late, the figures measure the
generator, not HQ).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from hw_sim.fleet_car import Behaviour
from hw_sim.fleet_check import (
    check_database,
    lag_in_database,
    positions_stored,
    read_outboxes,
    summarise,
    table_sizes,
)
from picar.tools.stats import percentiles

PG_SETTINGS = {"shared_buffers": "512MB", "max_wal_size": "2GB", "checkpoint_timeout": "15min"}
CARS_PER_PROCESS = 500


@dataclass(frozen=True)
class Plan:
    cars: int
    minutes: float
    workers: int
    processes: int
    out: Path
    outbox_dir: Path
    behaviour: Behaviour
    drain_s: float = 180.0
    connect_spread_s: float = 20.0
    seed: int = 1
    population: int = 50_000  # plates each generator process draws its reads from
    engine: str = "mosquitto"  # the broker started when none is given: "mosquitto" or "nats" (MQTT 3.1.1 ingest)


def vehicles(count: int) -> list[str]:
    return [f"car{i:04d}" for i in range(1, count + 1)]


# ---- CPU of the parts --------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int, children_too: bool = False) -> float:
    """CPU seconds of ``pid`` (with its reaped children's if asked); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children_too else 0)
    return ticks / _TICK


def _children(ppid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == ppid:
                out.append(int(entry.name))
    return out


class ProcessCpu:
    """CPU seconds of a set of processes that never goes down when one of them exits (its last value stays)."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}

    def __call__(self, pids: list[int]) -> float:
        for pid in pids:
            now = _proc_cpu(pid)
            if now > 0:
                self.last[pid] = max(now, self.last.get(pid, 0.0))
        return sum(self.last.values())


def postgres_cpu(postmaster: int) -> float:
    """The whole PostgreSQL server: the postmaster with its reaped backends, and the live ones."""
    return _proc_cpu(postmaster, children_too=True) + sum(_proc_cpu(p) for p in _children(postmaster))


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (/proc/stat)."""
    parts = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts) - idle) / _TICK, sum(parts) / _TICK


def load_average() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


class Sampler:
    """Every ``every_s``: CPU seconds so far of each part, the machine's load, the fleet's last progress
    (and ``each`` is called, e.g. to give new PostgreSQL backends the run's priority)."""

    def __init__(self, parts: dict[str, Any], path: Path, every_s: float, each: Any = None) -> None:
        self.each = each
        self.parts = parts  # name -> callable returning cumulative CPU seconds
        self.path = path
        self.every_s = every_s
        self.samples: list[dict[str, Any]] = []
        self.progress: dict[int, dict[str, Any]] = {}  # fleet process -> its last progress line
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def sample(self) -> dict[str, Any]:
        busy, total = machine_busy()
        fleet = list(self.progress.values())
        row = {"t": round(time.time(), 3), "load": load_average(), "machine_busy_s": busy, "machine_total_s": total,
               "cpu_s": {name: round(f(), 3) for name, f in self.parts.items()},
               "backlog": sum(p.get("backlog", 0) for p in fleet), "produced": sum(p.get("produced", 0) for p in fleet),
               "connected": sum(p.get("connected", 0) for p in fleet),
               "late_p99_s": max((p.get("late_p99_s", 0.0) for p in fleet), default=0.0)}
        self.samples.append(row)
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        return row

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            if self.each is not None:
                self.each()
            self.sample()


def cpu_between(samples: list[dict[str, Any]], since: float, until: float) -> dict[str, Any]:
    """Cores each part used between the samples nearest to ``since`` and ``until``; the machine's busy share."""
    first = min(samples, key=lambda s: abs(s["t"] - since))
    last = min(samples, key=lambda s: abs(s["t"] - until))
    wall = max(last["t"] - first["t"], 1e-9)
    cores = {name: round((last["cpu_s"][name] - first["cpu_s"][name]) / wall, 3) for name in last["cpu_s"]}
    busy = (last["machine_busy_s"] - first["machine_busy_s"]) / max(last["machine_total_s"] - first["machine_total_s"],
                                                                     1e-9)
    return {"wall_s": round(wall, 1), "cores": cores, "machine_busy_share": round(busy, 3),
            "machine_cores": os.cpu_count()}


# ---- the parts -----------------------------------------------------------------------------------------------

def start_ingest(k: int, dsn: str, host: str, port: int, credentials: Path, log: Path,
                 protocol: str = "5") -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "picar.cli", "hq", "ingest", "--dsn", dsn, "--host", host, "--port", str(port),
           "--no-tls", "--credentials", str(credentials), "--worker", str(k), "--protocol", protocol]
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)


def wait_for_text(path: Path, text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and text in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)  # polling a log file another process writes: no event to wait on
    return False


def start_fleet(plan: Plan, host: str, port: int, password_format: str) -> list[
        tuple[subprocess.Popen[str], Path]]:
    ids = vehicles(plan.cars)
    share = math.ceil(len(ids) / plan.processes)
    procs = []
    for k in range(plan.processes):
        mine = ids[k * share:(k + 1) * share]
        if not mine:
            continue
        spec = {"vehicles": mine, "host": host, "port": port, "outbox_dir": str(plan.outbox_dir),
                "load_s": plan.minutes * 60, "drain_s": plan.drain_s,
                "connect_spread_s": plan.connect_spread_s, "password_format": password_format,
                "seed": plan.seed * 1000 + k, "population": plan.population, "behaviour": asdict(plan.behaviour)}
        path = plan.out / f"fleet-{k}.json"
        path.write_text(json.dumps(spec))
        log = plan.out / f"fleet-{k}.log"
        proc = subprocess.Popen([sys.executable, "-m", "hw_sim.fleet_process", str(path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log.open("ab"), text=True)
        procs.append((proc, log))
    return procs


def _follow(k: int, stream: IO[str], sampler: Sampler, finals: dict[int, dict[str, Any]],
            ready: threading.Semaphore) -> None:
    for line in stream:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("kind") == "progress":
            sampler.progress[k] = msg
        elif msg.get("kind") == "final":
            finals[k] = msg
        elif msg.get("kind") == "ready":
            ready.release()


# ---- one run -------------------------------------------------------------------------------------------------

def prioritise(pid: int, nice: int) -> None:
    """Run ``pid`` (and what it starts) at ``nice``. With the kernel's session autogroups on, CPU is shared
    between sessions first and nice counts only inside one, so the session's autogroup gets it too."""
    os.setpriority(os.PRIO_PROCESS, pid, nice)
    autogroup = Path(f"/proc/{pid}/autogroup")
    if autogroup.exists():
        try:
            autogroup.write_text(str(nice))
        except OSError:  # not allowed (not root): the process nice still applies within the session
            pass


def prioritise_backends(postmaster: int, nice: int, done: set[int]) -> None:
    """PostgreSQL starts each backend in a session (autogroup) of its own: give each the run's priority."""
    for pid in _children(postmaster):
        if pid not in done:
            try:
                prioritise(pid, nice)
            except OSError:  # gone meanwhile
                continue
            done.add(pid)


def run(plan: Plan, broker: tuple[str, int] | None = None, dsn: str | None = None,
        password_format: str = "{vehicle}-password", hq_password: str = "hq-password",
        sample_s: float = 5.0, nice: int = 0) -> dict[str, Any]:
    from picar.hq.store import connect, migrate

    plan.out.mkdir(parents=True, exist_ok=True)
    plan.outbox_dir.mkdir(parents=True, exist_ok=True)
    ids = vehicles(plan.cars)
    machine_start = {"load": load_average(), "uptime": subprocess.run(["uptime"], capture_output=True,
                                                                       text=True).stdout.strip()}
    parts: dict[str, Any] = {}
    tune: Any = None
    with ExitStack() as stack:
        if dsn is None:
            from hw_sim.postgres import Postgres

            pg = stack.enter_context(Postgres(settings=PG_SETTINGS))
            dsn = pg.create_database("picar_hq")
            postmaster = int((pg.datadir / "postmaster.pid").read_text().split()[0])
            if nice:  # the postmaster and each of its backends run in sessions of their own
                prioritise(postmaster, nice)
                backends: set[int] = set()
                tune = lambda: prioritise_backends(postmaster, nice, backends)  # noqa: E731
            parts["postgres"] = lambda: postgres_cpu(postmaster)
        migrate.upgrade(dsn)
        protocol = "5"
        if broker is None and plan.engine == "nats":
            from hw_sim.nats import NatsServer

            nats = stack.enter_context(NatsServer(plan.out, vehicles=ids))
            broker, broker_pid, protocol = (nats.host, nats.port), nats.pid, "3.1.1"
        elif broker is None:
            from hw_sim.broker import Mosquitto

            mosq = stack.enter_context(Mosquitto(
                plan.out, persistence=True, vehicles=ids,
                extra_config=["autosave_interval 60", "max_queued_messages 200000"]))
            broker, broker_pid = (mosq.host, mosq.port), mosq.pid
        else:
            broker_pid = None
        if broker_pid is not None:
            parts["broker"] = lambda: _proc_cpu(broker_pid)
        host, port = broker
        creds = plan.out / "hq.credentials"
        creds.write_text(f"username=hq\npassword={hq_password}\n")
        creds.chmod(0o600)
        workers = []
        for k in range(1, plan.workers + 1):
            log = plan.out / f"ingest-{k}.log"
            worker = start_ingest(k, dsn, host, port, creds, log, protocol)
            stack.callback(_stop, worker)
            workers.append(worker)
            if not wait_for_text(log, "connected (session present", 60):
                raise RuntimeError(f"ingest worker {k} did not connect: see {log}")
        ingest_cpu, generator_cpu = ProcessCpu(), ProcessCpu()
        parts["ingest"] = lambda: ingest_cpu([p.pid for p in workers])
        fleet = start_fleet(plan, host, port, password_format)
        for fleet_proc, _ in fleet:
            stack.callback(_stop, fleet_proc)
        parts["generator"] = lambda: generator_cpu([p.pid for p, _ in fleet])
        if tune is not None:
            tune()
        sampler = Sampler(parts, plan.out / "timeline.jsonl", sample_s, tune)
        finals: dict[int, dict[str, Any]] = {}
        ready = threading.Semaphore(0)
        followers = [threading.Thread(target=_follow, args=(k, p.stdout, sampler, finals, ready), daemon=True)
                     for k, (p, _) in enumerate(fleet)]
        for t in followers:
            t.start()
        for _ in fleet:
            if not ready.acquire(timeout=300):
                raise RuntimeError(f"the fleet processes did not get ready: see {plan.out}/fleet-*.log")
        # Every process has its plates and evidence: the cars connect over the spread, then read together.
        start_at = time.time() + plan.connect_spread_s + 2
        for fleet_proc, _ in fleet:
            assert fleet_proc.stdin is not None
            fleet_proc.stdin.write(f"{start_at}\n")
            fleet_proc.stdin.flush()
        sampler.start()
        load_end = start_at + plan.minutes * 60
        for fleet_proc, log in fleet:
            fleet_proc.wait(timeout=plan.connect_spread_s + plan.minutes * 60 + plan.drain_s + 120)
            if fleet_proc.returncode != 0:
                raise RuntimeError(f"a fleet process failed (rc {fleet_proc.returncode}): see {log}")
        for t in followers:
            t.join(10)
        sampler.stop()
        since = dt.datetime.fromtimestamp(start_at - 60, dt.UTC)
        produced = read_outboxes(plan.outbox_dir, start_at, load_end)
        with connect(dsn) as conn:
            checks = check_database(conn, produced, ids, since)
            lag = lag_in_database(conn, ids, dt.datetime.fromtimestamp(start_at, dt.UTC),
                                  dt.datetime.fromtimestamp(load_end, dt.UTC))
            positions = positions_stored(conn, ids, since)
            conn.execute("ANALYZE reads")
            conn.execute("ANALYZE positions")
            sizes = table_sizes(conn)
    total = summarise(checks)
    counts: dict[str, int] = {}
    for f in finals.values():
        for key, v in f["counts"].items():
            counts[key] = counts.get(key, 0) + v
    load_cpu = cpu_between(sampler.samples, start_at, load_end)
    lateness = [f["lateness_s"] for f in finals.values()]
    report = {
        "plan": {**asdict(plan), "out": str(plan.out), "outbox_dir": str(plan.outbox_dir)},
        "machine": {"cores": os.cpu_count(), "nice": os.getpriority(os.PRIO_PROCESS, 0), "at_start": machine_start,
                    "at_end": {"load": load_average(),
                               "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}},
        "events": {"by_kind": [c.as_json() for c in checks], **total,
                   "outbox_duplicates": produced.duplicates_in_outbox,
                   "never_acknowledged": produced.unacknowledged},
        "events_per_s": round(total["produced"] / (plan.minutes * 60), 1),
        "messages_per_s": round((total["produced"] + sum(f.get("positions_in_load", 0) for f in finals.values()))
                                / (plan.minutes * 60), 1),
        "positions": {"sent": counts.get("positions_sent", 0), "dropped_offline": counts.get("positions_dropped", 0),
                      "stored": positions},
        "lag_db_s": lag, "lag_e2e_s": percentiles(produced.e2e_lag_s, 3),
        "cpu_during_load": load_cpu,
        "generator": {"lateness_s": lateness, "late_max_s": max((f["late_max_s"] for f in finals.values()),
                                                              default=None),
                      "counts": counts,
                      "drained_after_s": [f["drained_after_s"] for f in finals.values()]},
        "backlog": backlog_trend(sampler.samples, start_at, load_end),
        "tables": sizes,
    }
    (plan.out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def backlog_trend(samples: list[dict[str, Any]], since: float, until: float) -> dict[str, Any]:
    """The fleet's backlog over the load: its mean in each half and its maximum (growing = HQ falls behind)."""
    during = [s for s in samples if since <= s["t"] <= until]
    if not during:
        return {}
    half = since + (until - since) / 2
    first = [s["backlog"] for s in during if s["t"] < half] or [0]
    second = [s["backlog"] for s in during if s["t"] >= half] or [0]
    return {"mean_first_half": round(sum(first) / len(first), 1), "mean_second_half": round(sum(second) / len(second),
                                                                                            1),
            "max": max(s["backlog"] for s in during), "end": during[-1]["backlog"]}


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def summary_lines(r: dict[str, Any]) -> list[str]:
    e, lag, cpu = r["events"], r["lag_db_s"]["reads"], r["cpu_during_load"]
    p = r["plan"]
    gen = r["generator"]
    lines = [
        f"{p['cars']} cars, {p['minutes']} min, {p['workers']} ingest worker(s), {p['processes']} generator "
        f"process(es); machine {r['machine']['cores']} cores, load at start {r['machine']['at_start']['load']}",
        f"events produced {e['produced']:,} ({r['events_per_s']}/s; with positions {r['messages_per_s']} msg/s), "
        f"stored {e['stored']:,}, lost {e['lost']}, duplicated {e['duplicated']}, foreign {e['foreign']}, "
        f"never acknowledged {e['never_acknowledged']}",
        f"ingest lag (db, reads) p50 {lag['p50']} s, p95 {lag['p95']} s, p99 {lag['p99']} s; end to end "
        f"p50 {r['lag_e2e_s']['p50']} s, p95 {r['lag_e2e_s']['p95']} s, p99 {r['lag_e2e_s']['p99']} s",
        f"cores used during the load: {cpu['cores']}; machine busy {cpu['machine_busy_share']:.0%}",
        f"backlog {r['backlog']}; generator lateness {gen['lateness_s']}, drained after {gen['drained_after_s']} s",
        f"positions sent {r['positions']['sent']:,}, stored {r['positions']['stored']:,}",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw_sim.fleet_load", description=__doc__.split("\n\n")[0])
    b = Behaviour()
    ap.add_argument("--cars", type=int, required=True)
    ap.add_argument("--minutes", type=float, required=True, help="how long the cars read")
    ap.add_argument("--workers", type=int, default=1, help="ingest workers (default 1)")
    ap.add_argument("--processes", type=int, help=f"generator processes (default one per {CARS_PER_PROCESS} cars)")
    ap.add_argument("--read-rate", type=float, default=b.read_rate, help=f"reads/s per car (default {b.read_rate})")
    ap.add_argument("--hit-share", type=float, default=b.hit_share, help=f"share of reads that hit ({b.hit_share})")
    ap.add_argument("--position-s", type=float, default=b.position_every_s, help="seconds between positions (1)")
    ap.add_argument("--drain-s", type=float, default=180.0, help="after the load, wait this long at most for HQ")
    ap.add_argument("--broker", help="H:P of a running broker (default: start one, see --engine)")
    ap.add_argument("--engine", choices=["mosquitto", "nats"], default="mosquitto",
                    help="the broker to start: Mosquitto (MQTT 5, shared subscription) or NATS (MQTT 3.1.1: one "
                         "ingest worker)")
    ap.add_argument("--password-format", default="{vehicle}-password", help="each car's password")
    ap.add_argument("--hq-password", default="hq-password")
    ap.add_argument("--dsn", help="a running HQ database (default: start PostgreSQL)")
    ap.add_argument("--out", type=Path, help="run directory (default runs/fleet-N-TIME)")
    ap.add_argument("--outbox-dir", type=Path, help="the cars' outboxes (default a new folder in /dev/shm)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nice", type=int, default=0,
                    help="scheduling priority of everything the run starts (-20..19; below 0 needs root): on a "
                         "machine shared with other work, a negative value keeps that work from setting the pace")
    args = ap.parse_args(argv)
    if args.cars < 1 or args.minutes <= 0 or args.workers < 1:
        ap.error("--cars, --minutes and --workers must be positive")
    if args.engine == "nats" and args.workers != 1:
        ap.error("--engine nats: one ingest worker (MQTT 3.1.1 has no shared subscription; every worker would get "
                 "every message)")
    out = args.out or Path("runs") / f"fleet-{args.cars}-{time.strftime('%Y%m%d-%H%M%S')}"
    outbox_dir = args.outbox_dir or Path(tempfile.mkdtemp(prefix="picar-fleet-", dir="/dev/shm"))
    plan = Plan(cars=args.cars, minutes=args.minutes, workers=args.workers,
                processes=args.processes or max(1, math.ceil(args.cars / CARS_PER_PROCESS)), out=out.resolve(),
                outbox_dir=outbox_dir.resolve(),
                behaviour=Behaviour(read_rate=args.read_rate, hit_share=args.hit_share,
                                    position_every_s=args.position_s),
                drain_s=args.drain_s, seed=args.seed, engine=args.engine)
    broker = None
    if args.broker:
        host, _, port = args.broker.rpartition(":")
        broker = (host or "127.0.0.1", int(port))
    if args.nice:
        prioritise(os.getpid(), args.nice)  # inherited by the broker, PostgreSQL, ingest, the cars
    try:
        report = run(plan, broker, args.dsn, args.password_format, args.hq_password, nice=args.nice)
    finally:
        if args.outbox_dir is None:  # ours, in memory: checked already (the report says what they held)
            shutil.rmtree(outbox_dir, ignore_errors=True)
    print("\n".join(summary_lines(report)))
    print(f"report: {plan.out / 'report.json'}")
    e = report["events"]
    return 0 if e["lost"] == 0 and e["duplicated"] == 0 and e["foreign"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
