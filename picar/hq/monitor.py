"""`picar hq monitor`: a live fleet console for HQ operators.

Subscribes to the whole fleet stream and keeps, per vehicle: online or offline (the retained status
and last will), the watchlist version it holds, its last position, reads per minute, and its hits
with the officer's disposition. Redraws a table every couple of seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from picar.link.topics import ACK, COMMAND, DEFAULT_PREFIX, FLEET, WATCHLIST, every_vehicle, levels


@dataclass
class VehicleView:
    vehicle: str
    state: str = "unknown"
    watchlist_version: Any = None
    backlog: Any = None
    position: dict[str, Any] | None = None
    last_seen: float = 0.0
    reads: deque[float] = field(default_factory=lambda: deque(maxlen=10000))
    hits: list[dict[str, Any]] = field(default_factory=list)
    k9: list[dict[str, Any]] = field(default_factory=list)

    def reads_per_min(self, now: float) -> int:
        return sum(1 for t in self.reads if now - t <= 60)


class FleetView:
    """The fleet as seen from the stream; fed message by message (pure, testable)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix.rstrip("/")
        self.vehicles: dict[str, VehicleView] = {}
        self.dispositions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def feed(self, topic: str, payload: bytes, now: float | None = None) -> None:
        now = time.time() if now is None else now
        parts = levels(topic, self.prefix) or []
        if len(parts) != 2 or parts[0] == FLEET:
            return
        vehicle, kind = parts
        if kind in (ACK, COMMAND, WATCHLIST):  # HQ's own messages to the car: not a sign of the car
            return
        try:
            data = json.loads(payload) if payload else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if not isinstance(data, dict):
            return
        with self._lock:
            v = self.vehicles.setdefault(vehicle, VehicleView(vehicle))
            v.last_seen = now
            if kind == "status":
                v.state = str(data.get("state", v.state))
                v.watchlist_version = data.get("watchlist_version", v.watchlist_version)
                hq = data.get("hq")
                if isinstance(hq, dict):
                    v.backlog = hq.get("backlog", v.backlog)
            elif kind == "position":
                v.position = data
            elif kind == "read":
                v.reads.append(now)
                if data.get("position"):
                    v.position = data["position"]
            elif kind == "hit":
                if not any(h.get("event_id") == data.get("event_id") for h in v.hits):
                    v.hits.append(data)
            elif kind == "disposition":
                self.dispositions[str(data.get("hit_event_id"))] = data
            elif kind == "k9":
                v.k9.append(data)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        with self._lock:
            out = {}
            for name, v in sorted(self.vehicles.items()):
                out[name] = {
                    "state": v.state,
                    "watchlist_version": v.watchlist_version,
                    "backlog": v.backlog,
                    "position": v.position,
                    "reads_per_min": v.reads_per_min(now),
                    "hits": [
                        {"event_id": h.get("event_id"), "plate": h.get("plate"), "read_text": h.get("read_text"),
                         "list": h.get("list"), "match": (h.get("match") or {}).get("text"),
                         "time": h.get("time"), "covert": h.get("covert"),
                         "disposition": (self.dispositions.get(str(h.get("event_id"))) or {}).get("decision"),
                         "reason": (self.dispositions.get(str(h.get("event_id"))) or {}).get("reason")}
                        for h in v.hits
                    ],
                    "k9_events": len(v.k9),
                }
            return out

    def render(self, now: float | None = None) -> str:
        snap = self.snapshot(now)
        lines = [f"PiCAR fleet  {time.strftime('%Y-%m-%d %H:%M:%S')}  vehicles: {len(snap)}  "
                 f"online: {sum(1 for v in snap.values() if v['state'] == 'online')}",
                 f"{'vehicle':<16}{'state':<9}{'list v':>7}{'backlog':>8}{'reads/min':>10}  position"]
        for name, v in snap.items():
            p = v["position"] or {}
            pos = f"{p.get('lat'):.5f},{p.get('lon'):.5f}" if p.get("lat") is not None else "-"
            lines.append(f"{name:<16}{v['state']:<9}{v['watchlist_version']!s:>7}{v['backlog']!s:>8}"
                         f"{v['reads_per_min']:>10}  {pos}")
        lines.append("")
        lines.append("hits (newest last):")
        for name, v in snap.items():
            for h in v["hits"][-10:]:
                disp = h["disposition"] or "pending"
                if h["reason"]:
                    disp += f" ({h['reason']})"
                lines.append(f"  {h['time'] or '':<25}{name:<16}{h['plate'] or '':<9} read {h['read_text'] or '':<9}"
                             f"{h['list'] or '':<16}{h['match'] or '':<36}{disp}{'  covert' if h['covert'] else ''}")
        return "\n".join(lines)


def monitor_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="picar hq monitor", description="Live fleet console for HQ.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8883)
    ap.add_argument("--prefix", default=DEFAULT_PREFIX)
    ap.add_argument("--no-tls", action="store_true", help="plain MQTT (only for a broker on this machine)")
    ap.add_argument("--ca", type=Path)
    ap.add_argument("--cert", type=Path)
    ap.add_argument("--keyfile", type=Path)
    ap.add_argument("--credentials", type=Path, help="file with username= and password= lines")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between redraws")
    ap.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = until Ctrl-C)")
    ap.add_argument("--json", action="store_true", help="print the fleet state as one JSON object per redraw")
    args = ap.parse_args(argv)

    view = FleetView(args.prefix)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
    if args.credentials:
        from picar.config import read_credentials

        user, password = read_credentials(args.credentials)
        client.username_pw_set(user, password)
    if not args.no_tls:
        client.tls_set(ca_certs=str(args.ca) if args.ca else None, certfile=str(args.cert) if args.cert else None,
                       keyfile=str(args.keyfile) if args.keyfile else None)
    connected = threading.Event()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            print(f"picar hq monitor: broker {args.host}:{args.port} refused the connection: {rc}", file=sys.stderr)
            return
        c.subscribe(every_vehicle(args.prefix), qos=1)
        connected.set()

    client.on_connect = on_connect
    client.on_message = lambda _c, _u, m: view.feed(m.topic, bytes(m.payload))
    try:
        client.connect(args.host, args.port, keepalive=30)
    except OSError as exc:
        print(f"picar hq monitor: cannot reach {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    client.loop_start()
    start = time.monotonic()
    try:
        while args.duration <= 0 or time.monotonic() - start < args.duration:
            time.sleep(args.interval)
            if args.json:
                print(json.dumps(view.snapshot()), flush=True)
            else:
                if sys.stdout.isatty():
                    print("\033[2J\033[H", end="")
                print(view.render(), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0 if connected.is_set() else 1
