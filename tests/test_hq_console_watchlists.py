"""Watchlists in the console, in real headless Chromium: a supervisor imports a CSV (an invalid row listed with
its line), reviews it, signs it with HQ's key and publishes it over a real Mosquitto (TLS, per-vehicle ACL, HQ
user `hq`) to a real car, the daemon, which applies the signed list; its status then reports the new version
and the console shows that car holding it. NCIC imports list their errors by line and field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from hw_sim.sim import HQ_PASSWORD, HQ_USER, VEHICLE_ID, SimOptions, Simulation
from picar.hq.config import DatabaseSettings, HqConfig, MqttSettings, WatchlistSettings
from picar.hq.ingest.worker import IngestWorker
from picar.hq.store import connect
from picar.hq.store.queries import watchlist_versions
from tests.browser import Browser, Page, chromium_binary
from tests.hq_console import RunningConsole, add_accounts, console, login, start_console
from tests.hq_pages import choose_file, settle, shoot, submit
from tests.waiting import wait_until

__all__ = ["console"]
pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed")

LIST_CSV = ("plate,list,priority,description,reason\n"
            "ABC123,stolen_vehicle,1,Dacia Logan albastră,furt 2026-11-20\n"
            "MD 777 AAA,wanted,1,Лада Приора синяя,розыск\n"
            "B@D1,stolen_vehicle,,,\n"
            "XYZ987,bolo,3,VW Golf,\n")

INVALID_ROWS = ("[...document.querySelectorAll('#invalid tr[data-line]')]"
                ".map(r => [r.dataset.line, r.cells[1].textContent])")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    b = Browser(1280, 860)
    yield b
    b.close()


def import_file(page: Page, path: Path, fmt: str) -> None:
    page.goto(page.evaluate("location.origin") + "/watchlists")
    choose_file(page, "#import-file", path)
    page.click(f'input[name="format"][value="{fmt}"]')
    submit(page, "#import-button", "location.pathname.startsWith('/watchlists/drafts/') && "
           "document.getElementById('counts')")


def in_romanian(page: Page) -> None:
    submit(page, 'form.lang button[value="ro"]', "document.documentElement.lang === 'ro'")


class StatusIngest:
    """HQ's ingest worker (the real one, on the simulator's broker, as HQ's user) storing what the cars send,
    and a watch on the cars' status messages (which watchlist version each says it holds)."""

    def __init__(self, sim: Simulation, dsn: str, mqtt: MqttSettings) -> None:
        self.sub = sim.subscriber(["picar/v1/+/status"])
        self.dsn = dsn
        self.worker = IngestWorker(HqConfig(database=DatabaseSettings(dsn=dsn), mqtt=mqtt), username=HQ_USER,
                                   password=HQ_PASSWORD)
        self.worker.start()

    def stored_status(self) -> bool:
        with connect(self.dsn) as conn:
            return conn.execute("SELECT count(*) FROM vehicles WHERE status_time IS NOT NULL").fetchone() != (0,)

    def versions(self) -> list[int | None]:
        return [m.json().get("watchlist_version") for m in self.sub.messages]

    def close(self) -> None:
        self.worker.stop()
        self.sub.stop()


@pytest.fixture
def world(tmp_path: Path, hq_dsn: str) -> Iterator[tuple[Simulation, RunningConsole, StatusIngest]]:
    """The simulator's broker and car (the real daemon, camera on one still frame), HQ's console configured to
    publish with HQ's MQTT user and signing key, and HQ's ingest storing what the car sends."""
    add_accounts(hq_dsn)
    sim = Simulation(tmp_path / "sim", SimOptions(realtime=False, use_mjpeg=False, ui=False))
    sim.start_world()
    ingest: StatusIngest | None = None
    running: RunningConsole | None = None
    try:
        frames = tmp_path / "frames"
        frames.mkdir()
        cv2.imwrite(str(frames / "0001.jpg"), np.full((480, 640, 3), 90, np.uint8))
        sim.camera_source = str(frames)
        tls, key = sim.broker.tls, Path(f"{sim.key}.key")
        hq = tls.client(HQ_USER)
        mqtt = MqttSettings(host="127.0.0.1", port=sim.broker.port, tls=True, ca_file=tls.ca_file,
                            cert_file=hq.cert_file, key_file=hq.key_file, credentials_file=sim.work / "hq.credentials")
        ingest = StatusIngest(sim, hq_dsn, mqtt)
        sim.start_daemon()
        running = start_console(hq_dsn, tmp_path, mqtt=mqtt,
                                watchlist=WatchlistSettings(signing_key_file=key, list_id="md-police"))
        assert wait_until(lambda: ingest is not None and ingest.stored_status(), 60), sim.daemon_log()[-3000:]
        yield sim, running, ingest
    finally:
        if running is not None:
            running.stop()
        if ingest is not None:
            ingest.close()
        sim.stop()


def test_a_list_published_from_the_console_reaches_the_car(world: tuple[Simulation, RunningConsole, StatusIngest],
                                                            chromium: Browser, tmp_path: Path) -> None:
    sim, running, ingest = world
    csv_file = tmp_path / "lista-2026-11-23.csv"
    csv_file.write_text(LIST_CSV, encoding="utf-8")

    # an operator may import and review, not publish
    olga = login(chromium, running, "olga", path="/watchlists")
    import_file(olga, csv_file, "csv")
    draft_path = olga.evaluate("location.pathname")
    assert olga.evaluate("document.getElementById('publish-button')") is None
    assert "/publish" not in olga.evaluate("document.body.innerHTML")
    status = olga.evaluate(f"""(async () => {{
        const body = new URLSearchParams({{csrf: document.querySelector('meta[name="csrf"]').content}});
        return (await fetch('{draft_path}/publish', {{method: 'POST', body}})).status; }})()""")
    assert status == 403

    # a supervisor reviews it: three entries, the invalid row named by its line
    sam = login(chromium, running, "sam", path=draft_path)
    settle(sam, "document.getElementById('counts')")
    in_romanian(sam)
    review = sam.evaluate("""({entries: document.getElementById('counts').dataset.entries,
        invalid: """ + INVALID_ROWS + """,
        lists: [...document.querySelectorAll('#counts tr[data-list]')].map(r => r.dataset.list)})""")
    assert review["entries"] == "3" and review["lists"] == ["bolo", "stolen_vehicle", "wanted"]
    ((line, problem),) = review["invalid"]
    assert line == "4" and "lista-2026-11-23.csv line 4, field 'plate'" in problem and "B@D1" in problem
    shoot(sam, tmp_path, "hq-watchlist-review.png")

    # ... signs and publishes it to the fleet
    sam.type("#publish-note", "lista săptămânală")
    submit(sam, "#publish-button", "location.pathname === '/watchlists' && document.getElementById('published')")
    version = int(sam.evaluate("new URLSearchParams(location.search).get('published')"))
    (recorded,) = _versions(running.dsn)
    assert (recorded.version, recorded.target, recorded.entries, recorded.published_by, recorded.note) == (
        version, "fleet", 3, "sam", "lista săptămânală")

    # the car (the daemon) verifies and applies it, and says so in its status; the console shows it holding it
    assert wait_until(lambda: version in ingest.versions(), 60), (ingest.versions()[-3:], sim.daemon_log()[-3000:])
    assert f"accepted snapshot v{version}" in sim.daemon_log()
    row = f"#car-list-rows tr[data-car-list='{VEHICLE_ID}']"
    settle(sam, f"document.querySelector(\"{row}\") && document.querySelector(\"{row}\").dataset.version === "
                f"'{version}' && document.querySelector(\"{row}\").dataset.state === 'current'", 30)
    shoot(sam, tmp_path, "hq-watchlists.png")
    # a second look at the review: the draft is closed, and a new import is compared with the list in force
    sam.goto(running.url + draft_path)
    assert sam.evaluate("document.getElementById('publish-button')") is None
    csv_file.write_text(LIST_CSV.replace("XYZ987,bolo,3", "XYZ988,bolo,3"), encoding="utf-8")
    import_file(sam, csv_file, "csv")
    diff = sam.evaluate("""['diff-added', 'diff-removed', 'diff-changed', 'diff-unchanged'].map(
        id => document.getElementById(id).textContent.trim())""")
    assert [d.split()[0] for d in diff] == ["1", "1", "0", "2"], diff


def _versions(dsn: str) -> list[Any]:
    with connect(dsn) as conn:
        return watchlist_versions(conn)


def test_ncic_import_errors_name_the_line_and_the_field(console: RunningConsole, chromium: Browser,
                                                        tmp_path: Path) -> None:
    export = tmp_path / "ncic-hotlist.txt"
    export.write_text("# NCIC hotlist export\n"
                      "MKE/STOLEN VEHICLE.ORI/MD1012600.LIC/ABC123.LIS/MD.LIY/2027.LIT/PC.VMA/DACI.OCA/2026-0457\n"
                      "MKE/STOLEN VEHICLE.LIC/UNK.LIS/MD\n"
                      "MKE/FELONY VEHICLE.LIC/XY987.LIS/MDA\n"
                      "MKE/STOLEN PLATE.LIC/KLM42.DOT/20261340\n"
                      "MKE/STOLEN PLATE.LIC/KLM43.LIY/NX\n", encoding="ascii")
    page = login(chromium, console, "olga", path="/watchlists")
    import_file(page, export, "ncic")
    review = page.evaluate("""({entries: document.getElementById('counts').dataset.entries,
        invalid: """ + INVALID_ROWS + "})")
    assert review["entries"] == "2"
    assert [(line, problem.split(":")[0]) for line, problem in review["invalid"]] == [
        ("3", "ncic-hotlist.txt line 3, field LIC"), ("4", "ncic-hotlist.txt line 4, field LIS"),
        ("5", "ncic-hotlist.txt line 5, field DOT")]
    # a file refused as a whole (not an NCIC export at all, nor a list) can't be published
    junk = tmp_path / "junk.txt"
    junk.write_text("\n".join(str(i) for i in range(100)))
    import_file(page, junk, "ncic")
    assert page.evaluate("document.getElementById('counts').dataset.entries") == "0"
    assert json.loads(page.evaluate("JSON.stringify(document.getElementById('invalid').textContent.length > 0)"))
