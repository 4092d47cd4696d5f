"""gpsd as a GPS source: its JSON reports decoded into epochs, behind the same reconnecting reader as a
serial receiver (sources/gps.py)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from picar.sources.gps import READ_TIMEOUT_S, DeviceGone, ReconnectingSource
from picar.sources.nmea import Epoch
from picar.types import Fix

log = logging.getLogger("picar.gps")  # the GPS logger, whichever receiver

# -- gpsd ----------------------------------------------------------------------------------------------------


WATCH = b'?WATCH={"enable":true,"json":true}\n'
STATUS_SIMULATED = 8  # TPV "status": gpsd's STATUS_SIM, a fix from a simulator (NMEA mode S, GGA quality 8)


class GpsdDecoder:
    """gpsd JSON lines to epochs: TPV gives position and mode, SKY gives satellites and HDOP."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._sats: int | None = None
        self._hdop: float | None = None
        self.counters = {"messages": 0, "bad_json": 0, "ignored": 0, "epochs": 0, "fixes": 0}

    def feed_line(self, line: bytes | str) -> Epoch | None:
        """One gpsd report; returns an epoch for a TPV report, None otherwise."""
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        if not text.strip():
            return None
        try:
            msg = json.loads(text)
            if not isinstance(msg, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            self.counters["bad_json"] += 1
            log.warning("gpsd: bad JSON (%s): %r", e, text[:80])
            return None
        self.counters["messages"] += 1
        cls = msg.get("class")
        if cls == "SKY":
            self._sky(msg)
            return None
        if cls != "TPV":
            self.counters["ignored"] += 1
            return None
        return self._tpv(msg)

    def _sky(self, msg: dict[str, Any]) -> None:
        if isinstance(msg.get("uSat"), int):
            self._sats = msg["uSat"]
        elif isinstance(msg.get("satellites"), list):
            self._sats = sum(1 for s in msg["satellites"] if isinstance(s, dict) and s.get("used"))
        if _number(msg.get("hdop")):
            self._hdop = float(msg["hdop"])

    def _tpv(self, msg: dict[str, Any]) -> Epoch:
        received = self._monotonic()
        self.counters["epochs"] += 1
        when = None
        if isinstance(msg.get("time"), str):
            try:
                when = datetime.fromisoformat(msg["time"])
            except ValueError:
                log.warning("gpsd: TPV time %r is not ISO 8601", msg["time"])
        mode = msg.get("mode")
        if mode not in (2, 3) or not (_number(msg.get("lat")) and _number(msg.get("lon"))):
            return Epoch(when, None, self._sats, self._hdop, received)
        if msg.get("status") == STATUS_SIMULATED:
            return Epoch(when, None, self._sats, self._hdop, received)  # never the car's position
        if when is None or when.tzinfo is None:
            return Epoch(when, None, self._sats, self._hdop, received)
        lat, lon = float(msg["lat"]), float(msg["lon"])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            log.warning("gpsd: TPV position %r,%r out of range", lat, lon)
            return Epoch(when, None, self._sats, self._hdop, received)
        if lat == 0 and lon == 0:
            return Epoch(when, None, self._sats, self._hdop, received)  # a receiver's empty position, not a place
        alt = next((msg[k] for k in ("altMSL", "alt", "altHAE") if _number(msg.get(k))), None)
        fix = Fix(
            time=when,
            lat=lat,
            lon=lon,
            fix="3d" if mode == 3 else "2d",
            speed_kmh=float(msg["speed"]) * 3.6 if _number(msg.get("speed")) else None,
            heading_deg=float(msg["track"]) if _number(msg.get("track")) else None,
            sats=self._sats,
            hdop=self._hdop,
            alt_m=float(alt) if alt is not None and mode == 3 else None,
            received_monotonic=received,
        )
        self.counters["fixes"] += 1
        return Epoch(when, fix, self._sats, self._hdop, received)


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v


def open_gpsd(host: str, port: int) -> socket.socket:
    """Connect to gpsd and ask for JSON reports."""
    sock = socket.create_connection((host, port), timeout=5)
    sock.settimeout(READ_TIMEOUT_S)
    sock.sendall(WATCH)
    return sock


def pump_gpsd(
    sock: socket.socket,
    decoder: GpsdDecoder,
    emit: Callable[[Epoch], None],
    stop: threading.Event,
) -> None:
    """Read gpsd reports until stop; raises OSError when gpsd closes the connection."""
    buf = b""
    while not stop.is_set():
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        if not data:
            raise DeviceGone("gpsd closed the connection")
        buf += data
        *lines, buf = buf.split(b"\n")
        if len(buf) > 1 << 20:
            raise DeviceGone("gpsd sent over 1 MiB without a line end")
        for line in lines:
            epoch = decoder.feed_line(line)
            if epoch is not None:
                emit(epoch)


class GpsdGps(ReconnectingSource):
    """Positions from a gpsd daemon over TCP (its JSON protocol)."""

    kind = "gpsd"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2947,
        *,
        max_fix_age_s: float = 3.0,
        reopen_initial_s: float = 1.0,
        reopen_max_s: float = 30.0,
        on_fix: Callable[[Fix], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            max_fix_age_s=max_fix_age_s,
            reopen_initial_s=reopen_initial_s,
            reopen_max_s=reopen_max_s,
            on_fix=on_fix,
            monotonic=monotonic,
            wall=wall,
        )
        self.host = host
        self.port = port
        self.decoder = GpsdDecoder(monotonic=monotonic)

    def _where(self) -> str:
        return f"gpsd {self.host}:{self.port}"

    def _open(self) -> socket.socket:
        return open_gpsd(self.host, self.port)

    def _pump(self, conn: socket.socket) -> None:
        pump_gpsd(conn, self.decoder, self._epoch, self._stop)

    def _close(self, conn: socket.socket) -> None:
        conn.close()

    def _counters(self) -> dict[str, int]:
        return dict(self.decoder.counters)

    def _progress(self) -> int:
        return self.decoder.counters["messages"] + self.decoder.counters["bad_json"]
