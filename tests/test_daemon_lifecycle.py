"""The daemon's life under systemd: READY only once serving, watchdog pings, SIGHUP reload, SIGTERM stop.
Real signals, a real notify socket, the real daemon process on the simulator.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from hw_sim.sim import SimOptions, Simulation

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_ready_watchdog_reload_and_clean_stop(tmp_path: Path) -> None:
    sim = Simulation(tmp_path / "sim", SimOptions(realtime=True, use_mjpeg=False, ui=False))
    sim.start_world()
    notify_path = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(notify_path)
    srv.settimeout(60)
    try:
        config = sim.write_config()
        t0 = time.monotonic()
        proc = sim.start_daemon(env_extra={"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "2000000"})
        first = srv.recv(4096).decode()
        ready_s = time.monotonic() - t0
        assert first.startswith("READY=1"), first
        assert "ready in" in sim.daemon_log()  # READY came after models, sources and the page were up
        print(f"start to READY: {ready_s:.2f} s (process start included)")
        pings = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pings < 2:
            if srv.recv(4096) == b"WATCHDOG=1":
                pings += 1
        assert pings >= 2, "the watchdog must be pinged at half of WatchdogSec while healthy"

        # SIGHUP: a bad edit is refused and the running config kept; a good edit is applied.
        text = config.read_text()
        config.write_text(text.replace("[tracker]", "[tracker]\nbogus = 1\n") if "[tracker]" in text
                          else text + "\n[tracker]\nbogus = 1\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "not reloaded" not in sim.daemon_log():
            time.sleep(0.1)
        assert "tracker.bogus" in sim.daemon_log()
        config.write_text(text + "\n[tracker]\ncooldown_s = 30.0\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "config and watchlist reloaded" not in sim.daemon_log():
            time.sleep(0.1)
        assert "config and watchlist reloaded" in sim.daemon_log()
        assert proc.poll() is None

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        out = sim.daemon_log()
        assert "stopping" in out and "events left in the outbox" in out or "stopped" in out
        msgs = []
        srv.settimeout(0.5)
        try:
            while True:
                msgs.append(srv.recv(4096).decode())
        except TimeoutError:
            pass
        assert any(m.startswith("STOPPING=1") for m in msgs), msgs
    finally:
        srv.close()
        sim.stop()
