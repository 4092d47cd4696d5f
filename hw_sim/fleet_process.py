"""One process of the load generator: hundreds of simulated cars (hw_sim/fleet_car.py) on one select loop.

`python -m hw_sim.fleet_process SPEC.json` (hw_sim/fleet_load.py writes the spec and starts one per share of
the fleet). A thousand paho clients with a network thread each, plus a sender thread each as in the real
link, would be 2,000 threads fighting for two cores; here each process owns its cars' sockets in one
`selectors` loop and calls paho's `loop_read`/`loop_write`/`loop_misc` itself, and a heap orders the cars
by when each next has something to do (a read, a position, a resend check).

The loop measures itself so that a saturated generator cannot pass for a slow HQ: how late each car's
scheduled work ran (lateness) and the CPU seconds the process used. It prints one JSON line every
`report_every_s` ("kind": "progress") and one at the end ("kind": "final").
"""

from __future__ import annotations

import heapq
import json
import resource
import selectors
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from paho.mqtt.enums import MQTTErrorCode

from hw_sim.fleet_car import Behaviour, Drive, Evidence, PlateSource, SimCar, evidence_from_clip
from picar.hq.fill_reads import TOWNS, plate_population
from picar.isotime import event_iso
from picar.link.connection import offline_status
from picar.link.topics import DEFAULT_PREFIX
from picar.paths import DEMO_DIR
from picar.tools.stats import percentiles


@dataclass
class Spec:
    """What one process drives: written as JSON by fleet_load (the start time comes on stdin once ready)."""

    vehicles: list[str]
    host: str
    port: int
    outbox_dir: str
    load_s: float  # how long they read
    drain_s: float  # then how long to wait, at most, until HQ has acknowledged every event
    connect_spread_s: float = 10.0  # connections spread over this long before start_at
    password_format: str = "{vehicle}-password"
    prefix: str = DEFAULT_PREFIX
    seed: int = 1
    population: int = 50_000
    report_every_s: float = 5.0
    behaviour: dict[str, Any] = field(default_factory=dict)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class FleetLoop:
    """The cars of one spec, from ``start_at`` (wall time, the same for every process) on."""

    def __init__(self, spec: Spec, plates: PlateSource, evidence: Evidence, start_at: float) -> None:
        self.spec = spec
        self.start_at = start_at
        given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.behaviour.items()}
        self.behaviour = Behaviour(**given)
        rng = np.random.default_rng(spec.seed)
        self.plates = plates
        self.evidence = evidence
        shares = np.array([t.share for t in TOWNS])
        towns = rng.choice(len(TOWNS), size=len(spec.vehicles), p=shares / shares.sum())
        out = Path(spec.outbox_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.cars: list[SimCar] = []
        for i, vehicle in enumerate(spec.vehicles):
            town = TOWNS[int(towns[i])]
            car_rng = np.random.default_rng([spec.seed, i])
            car = SimCar(vehicle, spec.host, spec.port, spec.password_format.format(vehicle=vehicle),
                         out / f"{vehicle}.sqlite", self.behaviour, self.plates, self.evidence,
                         Drive(town.lat, town.lon, town.radius_km, car_rng), car_rng, spec.prefix,
                         start=start_at)
            car.next_connect = start_at - spec.connect_spread_s * (1 - i / max(1, len(spec.vehicles)))
            self.cars.append(car)
        self.sel = selectors.DefaultSelector()
        self.fds: dict[int, int] = {}  # car index -> registered fd
        self.writing: set[int] = set()  # cars registered for write readiness
        self.scheduled: list[float] = [0.0] * len(self.cars)
        self.heap: list[tuple[float, int]] = []
        self.lateness = array("d")  # seconds each scheduled tick ran after its time, during the load
        self.late_since_report = array("d")

    # ---- the loop --------------------------------------------------------------------------------------

    def _schedule(self, i: int) -> None:
        due = self.cars[i].due
        if due != self.scheduled[i]:
            self.scheduled[i] = due
            heapq.heappush(self.heap, (due, i))

    def _after_io(self, i: int) -> None:
        car = self.cars[i]
        if i not in self.fds:
            return
        if car.client.socket() is None:  # paho closed it (keep-alive timeout): forget the fd before it is reused
            self._lost(i)
            return
        if car.client.want_write() and car.client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._lost(i)
            return
        want = car.client.want_write()
        if want and i not in self.writing:
            self.sel.modify(self.fds[i], selectors.EVENT_READ | selectors.EVENT_WRITE, i)
            self.writing.add(i)
        elif not want and i in self.writing:
            self.sel.modify(self.fds[i], selectors.EVENT_READ, i)
            self.writing.discard(i)

    def _lost(self, i: int) -> None:
        fd = self.fds.pop(i, None)
        self.writing.discard(i)
        if fd is not None:
            try:
                self.sel.unregister(fd)
            except (KeyError, ValueError, OSError):
                pass
        self.cars[i].lost(time.time())
        self._schedule(i)

    def _connect(self, i: int, now: float) -> None:
        fd = self.cars[i].connect(now)
        if fd is not None:
            self.fds[i] = fd
            self.sel.register(fd, selectors.EVENT_READ, i)
            self._after_io(i)

    def run(self) -> dict[str, Any]:
        spec = self.spec
        for i in range(len(self.cars)):
            self.scheduled[i] = self.cars[i].next_connect
            heapq.heappush(self.heap, (self.cars[i].next_connect, i))
        load_end = self.start_at + spec.load_s
        cpu_start: float | None = None
        cpu_load = 0.0
        positions_in_load = 0
        next_report = self.start_at
        stopped = False
        drained_at: float | None = None
        while True:
            now = time.time()
            timeout = min(0.2, max(0.0, self.heap[0][0] - now)) if self.heap else 0.2
            touched: set[int] = set()
            for key, mask in self.sel.select(timeout):
                i = key.data
                if i not in self.fds:
                    continue
                car = self.cars[i]
                rc = MQTTErrorCode.MQTT_ERR_SUCCESS
                if mask & selectors.EVENT_READ:
                    rc = car.client.loop_read(max_packets=50)
                if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mask & selectors.EVENT_WRITE:
                    rc = car.client.loop_write()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    self._lost(i)
                else:
                    touched.add(i)
            now = time.time()
            if cpu_start is None and now >= self.start_at:
                cpu_start = cpu_seconds()
            if not stopped and now >= load_end:
                stopped = True
                cpu_load = cpu_seconds() - (cpu_start or cpu_seconds())
                positions_in_load = sum(car.counts["positions_sent"] for car in self.cars)
                for car in self.cars:
                    car.producing = False
            while self.heap and self.heap[0][0] <= now:
                due, i = heapq.heappop(self.heap)
                if due != self.scheduled[i]:
                    continue  # superseded
                self.scheduled[i] = 0.0
                car = self.cars[i]
                if self.start_at <= due < load_end:
                    late = now - due
                    self.lateness.append(late)
                    self.late_since_report.append(late)
                if not car.connected and car.next_connect <= now:
                    if i in self.fds:  # the broker did not accept the connection in time
                        car.abort()
                        self._lost(i)
                    else:
                        self._connect(i, now)
                car.tick(now)
                self._after_io(i)  # at once: a socket paho closed in tick must be forgotten before any connect
                touched.add(i)
                self._schedule(i)
            for i in touched:
                self.cars[i].service()
                self._after_io(i)
                self._schedule(i)
            if now >= next_report:
                next_report += spec.report_every_s
                backlog = self._report("progress", now)
                if stopped and backlog == 0 and drained_at is None:
                    drained_at = now
                    break
            if stopped and now >= load_end + spec.drain_s:
                break
        final = self._summary(cpu_load, drained_at)
        final["positions_in_load"] = positions_in_load
        self._close()
        return final

    # ---- reports -----------------------------------------------------------------------------------------

    def _report(self, kind: str, now: float) -> int:
        backlog = sum(car.backlog() for car in self.cars)
        late = percentiles(list(self.late_since_report) or [0.0], 3)
        self.late_since_report = array("d")
        line = {"kind": kind, "t": round(now, 3), "cars": len(self.cars),
                "connected": sum(car.connected for car in self.cars), "backlog": backlog,
                "produced": sum(car.counts["read"] + car.counts["hit"] + car.counts["image"]
                                + car.counts["disposition"] for car in self.cars),
                "hq_acked": sum(car.acks.acked for car in self.cars), "cpu_s": round(cpu_seconds(), 3),
                "late_p99_s": late["p99"]}
        print(json.dumps(line), flush=True)
        return backlog

    def _summary(self, cpu_load: float, drained_at: float | None) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for car in self.cars:
            for k, v in car.counts.items():
                counts[k] = counts.get(k, 0) + v
        return {"kind": "final", "cars": len(self.cars), "counts": counts, "cpu_load_s": round(cpu_load, 3),
                "cpu_total_s": round(cpu_seconds(), 3), "load_s": self.spec.load_s,
                "lateness_s": percentiles(list(self.lateness) or [0.0], 3),
                "late_max_s": round(max(self.lateness, default=0.0), 3),
                "backlog": sum(car.backlog() for car in self.cars),
                "drained_after_s": None if drained_at is None else round(drained_at - self.start_at
                                                                         - self.spec.load_s, 1)}

    def _close(self) -> None:
        """A clean stop, as the real link does it: a retained offline status, then DISCONNECT."""
        for i, car in enumerate(self.cars):
            if i in self.fds and car.connected:
                car.client.publish(car.status_topic, offline_status(car.vehicle, "fleet-load", "shutdown",
                                                                    event_iso(time.time())), qos=1, retain=True)
                car.client.loop_write()
                car.client.disconnect()
                car.client.loop_write()
            car.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m hw_sim.fleet_process SPEC.json", file=sys.stderr)
        return 2
    spec = Spec(**json.loads(Path(args[0]).read_text()))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket and three SQLite files a car
    rng = np.random.default_rng([spec.seed, 0])
    plates = PlateSource(plate_population(spec.population, rng))
    evidence = evidence_from_clip(DEMO_DIR / "drive.mp4")
    # Ready: the slow part is done. The parent answers with the moment every process starts together.
    print(json.dumps({"kind": "ready", "t": time.time(), "cars": len(spec.vehicles)}), flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        return 1
    loop = FleetLoop(spec, plates, evidence, float(line))
    print(json.dumps(loop.run()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

