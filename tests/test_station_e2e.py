"""The in-car page against the running daemon on the simulator, in real headless Chromium: a hit from
the demo drive appears with its image and the officer's decision reaches HQ; a K9 deployment started
on the page reaches HQ and the report; the kennel heat alarm fires from the simulated sensor.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hw_sim.heat_sensor import HeatSensorSim
from hw_sim.sim import SimOptions, Simulation, expected_hits
from picar.station.k9_cli import k9_main
from tests.browser import Browser, chromium_binary
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(chromium_binary() is None, reason="Chromium is not installed (scripts/test installs it)"),
]




def test_station_on_the_simulator(tmp_path: Path) -> None:
    sensor_clock = [0.0]  # the simulated kennel stays at 26 C until the test moves its clock on
    heat = HeatSensorSim(start_c=26.0, ramp_c_per_s=1.0, max_c=40.0, engine=False, ac=False, interval_s=0.2,
                         clock=lambda: sensor_clock[0])
    heat_dev = heat.start()
    alarm_flag = tmp_path / "alarm-ran"
    extra = f"""
[k9]
enabled = true
heat_device = {json.dumps(heat_dev)}
heat_warn_c = 30.0
heat_alarm_c = 33.0
alarm_command = {json.dumps(f"touch {alarm_flag}")}
dogs = ["Rex"]
handlers = ["Sgt Popescu"]
"""
    sim = Simulation(tmp_path / "sim", SimOptions(realtime=True, use_mjpeg=True, ui=True, extra_config=extra))
    sim.start_world()
    browser = Browser(1024, 600)
    try:
        hq = sim.subscriber(["picar/v1/+/hit", "picar/v1/+/disposition", "picar/v1/+/k9", "picar/v1/+/heat"])
        sim.publish_watchlist()
        sim.start_daemon()
        url = f"http://127.0.0.1:{sim.ui_port}/"
        assert wait_until(lambda: "in-car page at" in sim.daemon_log(), 60), sim.daemon_log()[-3000:]
        page = browser.new_page(url)
        page.wait_for("document.body.dataset.live === '1'", timeout=60)

        # A hit from the drive: on the page with its plate image once it has reached HQ.
        expected = set(expected_hits())
        assert wait_until(lambda: any(m.topic.endswith("/hit") and not m.json()["covert"]
                                      for m in hq.messages), 120), sim.daemon_log()[-4000:]
        first = next(m.json() for m in hq.messages if m.topic.endswith("/hit") and not m.json()["covert"])
        t_hq = time.monotonic()
        assert first["plate"] in expected
        page.wait_for("document.getElementById('hit-plate').textContent.length > 0"
                      " && document.getElementById('hit-crop').complete"
                      " && document.getElementById('hit-crop').naturalWidth > 0", timeout=60)
        print(f"hit on the page {time.monotonic() - t_hq:.2f} s after HQ had it (not asserted)")
        shown = page.evaluate("document.getElementById('hit-plate').textContent")
        assert shown in expected
        page.screenshot(tmp_path / "hit.png")
        page.click("#btn-accept")
        # With the accept sheet open the hit on screen stays there, whatever else arrives meanwhile.
        shown_id = page.evaluate("state.current")
        accepting = page.evaluate("document.getElementById('confirm-plate-text').textContent")
        page.click("#confirm-plate")
        page.click("#confirm-state")
        page.click("#btn-confirm-accept")
        assert wait_until(lambda: any(m.topic.endswith("/disposition") for m in hq.messages), 30)
        disp = next(m.json() for m in hq.messages if m.topic.endswith("/disposition"))
        assert disp["decision"] == "accept"
        hits = {m.json()["event_id"]: m.json()["plate"] for m in hq.messages if m.topic.endswith("/hit")}
        assert disp["hit_event_id"] == shown_id and hits[shown_id] == accepting, (disp, shown_id, accepting)

        # A new priority hit rightly takes the screen back to the alert view; let the drive's hits all
        # arrive first, so the K9 form below stays on screen while the test fills it in.
        assert wait_until(lambda: {m.json()["plate"] for m in hq.messages if m.topic.endswith("/hit")} >= expected,
                          120), sim.daemon_log()[-3000:]

        # K9: a deployment started on the page reaches HQ and the report.
        page.click("#tab-k9")
        page.type("#k9-dog", "Rex")
        page.type("#k9-handler", "Sgt Popescu")
        page.type("#k9-case", "CH-2026-118")
        page.click("[data-type='building_search']")
        page.click("#btn-k9-start")
        assert wait_until(lambda: any(m.topic.endswith("/k9") for m in hq.messages), 30), sim.daemon_log()[-3000:]
        k9 = next(m.json() for m in hq.messages if m.topic.endswith("/k9"))
        assert k9["dog"] == "Rex" and k9["type"] == "building_search" and k9["event"] == "k9_start"
        day = time.strftime("%Y-%m-%d", time.gmtime())
        report = tmp_path / "k9.html"
        assert k9_main(["report", "--db", str(sim.work / "data" / "k9.db"), "--from", day, "--to", day,
                        "--html", str(report)]) == 0
        assert "CH-2026-118" in report.read_text()

        # Kennel heat: the simulated sensor climbs past the alarm threshold.
        assert not any(m.topic.endswith("/heat") and m.json().get("state") == "alarm" for m in hq.messages)
        sensor_clock[0] = 10.0  # 36 C: engine off, no air conditioning
        assert wait_until(lambda: any(m.topic.endswith("/heat") and m.json().get("state") == "alarm"
                                      for m in hq.messages), 60), sim.daemon_log()[-3000:]
        try:
            page.wait_for("!document.getElementById('heat-banner').hidden", timeout=30)
        except Exception as exc:  # say what the page and the daemon knew, then fail
            seen = page.evaluate("fetch('/api/state').then(r => r.json()).then(s => JSON.stringify(s.heat))")
            raise AssertionError(f"heat banner not shown; /api/state heat: {seen}") from exc
        assert wait_until(alarm_flag.exists, 30)
    finally:
        browser.close()
        sim.stop()
        heat.stop()
