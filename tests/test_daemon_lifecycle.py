"""The daemon's life under systemd: READY only once serving, watchdog pings, SIGHUP reload, SIGTERM stop.
Real signals, a real notify socket, the real daemon process on the simulator.
"""

from __future__ import annotations

import re
import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from hw_sim.sim import SimOptions, Simulation
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def notifications(srv: socket.socket, wanted: str, count: int, limit: int = 200) -> list[str]:
    """Datagrams from the notify socket until `count` of them equal `wanted` (the socket's timeout bounds
    each wait); returns everything received."""
    got: list[str] = []
    while sum(m == wanted for m in got) < count and len(got) < limit:
        got.append(srv.recv(4096).decode())
    return got


def unacknowledged(outbox_db: Path) -> int:
    """Events the outbox database still holds for HQ, counted with SQL of our own."""
    db = sqlite3.connect(outbox_db)
    try:
        return int(db.execute("SELECT COUNT(*) FROM events WHERE acked_at IS NULL").fetchone()[0])
    finally:
        db.close()


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
        # The watchdog is pinged again and again while the daemon is healthy (every WatchdogSec / 2; the
        # interval itself is not timed here: a loaded machine may stretch it).
        after_ready = notifications(srv, "WATCHDOG=1", 2)
        assert after_ready.count("WATCHDOG=1") >= 2, after_ready

        # SIGHUP: a bad edit is refused and the running config kept; a good edit is applied.
        text = config.read_text()
        config.write_text(text.replace("[tracker]", "[tracker]\nbogus = 1\n") if "[tracker]" in text
                          else text + "\n[tracker]\nbogus = 1\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "not reloaded" in sim.daemon_log(), 60), sim.daemon_log()[-3000:]
        assert "tracker.bogus" in sim.daemon_log()
        assert "config and watchlist reloaded" not in sim.daemon_log()
        config.write_text(text + "\n[tracker]\ncooldown_s = 30.0\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "config and watchlist reloaded" in sim.daemon_log(), 60), sim.daemon_log()[-3000:]
        assert proc.poll() is None

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        out = sim.daemon_log()
        # What the daemon says on the way out: "stopping", then the HQ link's last word with the number of
        # events HQ has not acknowledged, which must be what the outbox on disk really holds.
        stopping = re.search(r"^\S+ \S+ INFO picar: stopping$", out, re.MULTILINE)
        stopped = re.search(r"HQ link demo-car-1 stopped; (\d+) events left in the outbox$", out, re.MULTILINE)
        assert stopping is not None and stopped is not None, out[-3000:]
        assert stopping.start() < stopped.start(), out[-3000:]
        left = int(stopped.group(1))
        assert left == unacknowledged(sim.work / "data" / "outbox.db"), out[-3000:]
        kept = re.search(r"(\d+) event\(s\) not yet acknowledged by HQ stay in the outbox", out)
        assert (int(kept.group(1)) if kept else 0) == left, out[-3000:]
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
