"""The whole daemon on the simulator with its data directory on a small tmpfs that fills up mid-drive
(issue 20, Done-when "Disk full"): nothing the in-car page showed is lost locally, the officer can still
decide a hit while the disk is full, the decision is stored once space returns, and HQ gets every hit.

The database and the outbox share the full tmpfs, so while it is full the hits wait in memory (store and
publisher); HQ is only asserted to have them after the space has come back.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hw_sim.sim import SimOptions, Simulation
from tests.tinyfs import fill, tiny_tmpfs
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _api(port: int, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """GET (or POST `body` as the page does) on the station page's JSON API; (status, JSON answer)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_whole_daemon_on_a_full_disk(tmp_path: Path) -> None:
    work = tmp_path / "sim"
    with tiny_tmpfs(work / "data", "16m") as data_dir:  # the simulator's storage.data_dir is work/data
        sim = Simulation(work, SimOptions(realtime=True, use_mjpeg=False, ui=True, loop_gps=True,
                                          extra_config="\n[tracker]\ncooldown_s = 5.0\n"))
        sim.start_world()
        try:
            hq = sim.subscriber(["picar/v1/+/hit", "picar/v1/+/disposition"])
            sim.publish_watchlist()
            # The 25 s drive loops and hits come again each pass, so some surely come after the disk fills.
            config = sim.write_config()
            text = config.read_text()
            for old, new in (("reconnect_max_s = 2.0\n", "reconnect_max_s = 2.0\nloop = true\n"),
                             ("require_signature = true\n", "require_signature = true\nhit_cooldown_s = 5.0\n")):
                assert old in text
                text = text.replace(old, new, 1)
            config.write_text(text)
            sim.start_daemon()

            shown: dict[str, dict[str, Any]] = {}  # every hit the page showed: event id -> the page's hit
            last: dict[str, Any] = {}

            def poll() -> dict[str, Any]:
                status, state = _api(sim.ui_port, "/api/state")
                assert status == 200, state
                for h in state["hits"]:
                    shown.setdefault(h["event_id"], h)
                last.clear()
                last.update(state)
                return state

            def storage() -> dict[str, Any]:
                return dict(poll()["status"].get("storage") or {})

            assert wait_until(lambda: "in-car page at" in sim.daemon_log(), 120), sim.daemon_log()[-4000:]
            assert wait_until(lambda: poll()["status"].get("frames", 0) > 0, 60), sim.daemon_log()[-4000:]

            filler = fill(data_dir / "filler")
            assert wait_until(lambda: storage().get("full") is True, 120), (last.get("status"),
                                                                            sim.daemon_log()[-4000:])
            before_full = set(shown)

            # A hit the page shows while the database refuses writes: it waits in memory.
            def new_hit() -> str | None:
                st = storage()
                fresh = [eid for eid in shown if eid not in before_full]
                return fresh[0] if fresh and st.get("full") else None

            assert wait_until(new_hit, 120), (last.get("status"), sim.daemon_log()[-4000:])
            accepted = new_hit()
            assert accepted is not None
            code, answer = _api(sim.ui_port, f"/api/hits/{accepted}/disposition",
                                {"decision": "accept", "confirmed": True, "note": "disk full"})
            assert code == 200, (code, answer)
            assert answer["decision"] == "accept" and answer["event_id"] == accepted, answer
            assert storage()["lost"] == 0  # accepted while the disk was full, and nothing dropped

            # Space returns: everything waiting is written, nothing was lost.
            filler.unlink()
            assert wait_until(lambda: (s := storage()).get("full") is False and s.get("pending") == 0, 120), (
                last.get("status"), sim.daemon_log()[-4000:])
            assert storage()["lost"] == 0

            # HQ gets every hit the page showed (they waited in memory while the outbox could not take them)
            # and the decision.
            def hq_hits() -> set[str]:
                return {m.json()["event_id"] for m in hq.messages if m.topic.endswith("/hit")}

            expect_hq = set(shown)
            assert wait_until(lambda: hq_hits() >= expect_hq, 120), (expect_hq - hq_hits(), sim.daemon_log()[-4000:])
            assert wait_until(lambda: any(m.topic.endswith("/disposition") and m.json()["hit_event_id"] == accepted
                                          for m in hq.messages), 60), sim.daemon_log()[-4000:]
            poll()

            assert sim.stop_daemon() == 0, sim.daemon_log()[-4000:]
            log = sim.daemon_log()
            assert "LOST" not in log and "are lost at close" not in log, log[-4000:]
        finally:
            sim.stop()

        db = sqlite3.connect(f"file:{data_dir / 'picar.db'}?mode=ro", uri=True)
        try:
            rows = {r[0]: r[1:] for r in db.execute(
                "SELECT event_id, plate, disposition, disposition_note FROM hits")}
        finally:
            db.close()
    missing = set(shown) - set(rows)
    assert not missing, f"hits the page showed but the database lacks: {missing}"
    for eid, hit in shown.items():
        assert rows[eid][0] == hit["plate"], (eid, rows[eid], hit)
    assert rows[accepted][1:] == ("accept", "disk full"), rows[accepted]
    print(f"{len(shown)} hits shown ({len(shown) - len(before_full)} while the disk was full), all stored")
