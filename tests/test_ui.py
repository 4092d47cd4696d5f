"""The station page in real headless Chromium against a real StationServer.

Screenshots go to the test's tmp dir (docs/screenshots/ holds copies for the README).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest

from hw_sim.heat_sensor import HeatSensorSim
from picar.pipeline.store import Store
from picar.station.actions import OfficerActions
from picar.station.heat import HeatMonitor
from picar.station.k9 import K9Log
from picar.station.k9_cli import k9_main
from picar.station.server import StationServer
from picar.status import StatusReport
from picar.types import Hit, Match, PlateRead, WatchEntry
from tests.browser import Browser, Page, chromium_binary
from tests.plate_images import draw_evidence
from tests.tinyfs import fill, tiny_tmpfs

pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="needs Debian's chromium (apt-get install chromium)")

TOKEN = "car-17-station-token"


class Calls:
    """Thread-safe record of callback calls with a wait."""

    def __init__(self, result: Any = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._cond = threading.Condition()
        self.result = result

    def __call__(self, *args: Any) -> Any:
        with self._cond:
            self.calls.append(args)
            self._cond.notify_all()
        return self.result(*args) if callable(self.result) else self.result

    def wait(self, n: int = 1, timeout: float = 30.0) -> list[tuple[Any, ...]]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.calls) >= n, timeout), f"{len(self.calls)} calls"
            return list(self.calls)


def status() -> dict[str, Any]:
    return {
        "cameras": [{"name": "front", "state": "streaming", "fps": 14.9},
                    {"name": "rear", "state": "streaming", "fps": 15.0}],
        "gps": {"fix": "3d", "lat": 52.37, "lon": 4.89, "age_s": 0.3},
        "hq": {"connected": True, "backlog": 0},
        "watchlist_version": "2026-11-23.2",
        "reads_per_min": 41.0,
    }


def write_images(image_dir: Path, plate: str) -> tuple[str, str]:
    """A plate crop and a context frame, drawn here; returns their paths relative to image_dir."""
    day = image_dir / "2026-11-23"
    day.mkdir(parents=True, exist_ok=True)
    crop, frame = draw_evidence(plate)
    cv2.imwrite(str(day / f"{plate}-crop.png"), crop)
    cv2.imwrite(str(day / f"{plate}-frame.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return f"2026-11-23/{plate}-crop.png", f"2026-11-23/{plate}-frame.jpg"


def hit_payload(image_dir: Path, event_id: str, plate: str, priority: int = 1) -> dict[str, Any]:
    crop, frame = write_images(image_dir, plate)
    return {
        "event_id": event_id, "plate": plate, "read_text": plate.replace("O", "0"), "confidence": 0.91,
        "list": "stolen_vehicle", "priority": priority, "reason": "Stolen 2026-11-21, do not approach alone",
        "description": "Blue Toyota Corolla hatchback", "match": "confusable (pos 3: read 0 listed O)",
        "lat": 52.370216, "lon": 4.895168, "time": time.time(), "camera": "front", "crop": crop, "frame": frame,
        "region": "NSW",
    }


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    b = Browser(1024, 600)
    yield b
    b.close()


@pytest.fixture()
def station(tmp_path: Path) -> Iterator[dict[str, Any]]:
    hq = Calls(result=lambda kind, payload: f"msg-{payload['deployment_id']}-{payload['event']}")
    k9 = K9Log(tmp_path / "k9.sqlite", hq, lambda: {"lat": 52.3702, "lon": 4.8951})
    # Answers the way App.dispose does: its own event_id is the disposition message's, not the hit's.
    dispositions = Calls(result=lambda eid, d, r, n: {"hit_event_id": eid, "decision": d, "reason": r, "note": n,
                                                      "event_id": f"disp-{eid}"})
    images = tmp_path / "images"
    images.mkdir()
    srv = StationServer("127.0.0.1", 0, TOKEN, status, dispositions, k9, images)
    url = srv.start()
    yield {"srv": srv, "url": url, "hq": hq, "k9": k9, "dispositions": dispositions, "images": images,
           "db": tmp_path / "k9.sqlite"}
    srv.stop()
    k9.close()


def open_page(chromium: Browser, url: str) -> Page:
    page = chromium.new_page(f"{url}/?token={TOKEN}")
    page.wait_for("document.body.dataset.live === '1'")
    return page


def test_hit_shows_with_image_and_accept_needs_confirmation(
    chromium: Browser, station: dict[str, Any], tmp_path: Path
) -> None:
    page = open_page(chromium, station["url"])
    assert page.evaluate("document.documentElement.dataset.theme") == "night"  # the default
    station["srv"].push("read", {"plate": "KLM442", "confidence": 0.88, "camera": "rear", "time": time.time()})
    hit = hit_payload(station["images"], "hit-0001", "ABC1O3")
    t0 = time.monotonic()
    station["srv"].push("hit", hit)
    page.wait_for("document.getElementById('hit-plate').textContent === 'ABC1O3'"
                  " && document.getElementById('hit-crop').complete"
                  " && document.getElementById('hit-crop').naturalWidth === 240"
                  " && document.getElementById('hit-frame').naturalWidth === 640")
    print(f"hit on the page with its images {time.monotonic() - t0:.2f} s after the push (not asserted)")
    facts = page.evaluate("Object.fromEntries([...document.querySelectorAll('.hit-facts dd')]"
                          ".map(e => [e.id, e.hidden ? null : e.textContent]))")
    assert facts["hit-reason"].startswith("Stolen") and facts["hit-notes"] is None
    assert facts["hit-match"] == "confusable (pos 3: read 0 listed O)" and "52.37022" in facts["hit-where"]
    page.screenshot(tmp_path / "night.png")

    page.click("#theme-toggle")
    assert page.evaluate("document.documentElement.dataset.theme") == "day"
    page.screenshot(tmp_path / "alert.png")

    page.click("#btn-accept")
    assert page.evaluate("document.getElementById('btn-confirm-accept').disabled") is True
    page.click("#confirm-plate")
    assert page.evaluate("document.getElementById('btn-confirm-accept').disabled") is True  # state not yet
    page.click("#confirm-state")
    page.click("#btn-confirm-accept")
    (call,) = station["dispositions"].wait(1)
    assert call == ("hit-0001", "accept", None, None)
    page.wait_for("document.getElementById('hit-done').textContent === 'ACCEPTED'")
    page.goto(station["url"] + "/")  # a reloaded page still knows the hit was decided
    page.wait_for("document.getElementById('hit-done').textContent === 'ACCEPTED'"
                  " && document.getElementById('hit-actions').hidden")
    page.click("#theme-toggle")  # back to night for the next test's page (stored in localStorage)
    page.close()


def test_reject_with_reason_and_note(chromium: Browser, station: dict[str, Any]) -> None:
    page = open_page(chromium, station["url"])
    hit = hit_payload(station["images"], "hit-0002", "XYZ789", priority=2)
    # The shape picar.pipeline.events.hit_payload gives: match as an object, HQ notes, a re-check flag.
    hit.update(match={"kind": "edit", "distance": 1, "differences": [{"position": 6, "read": "", "listed": "9"}],
                      "text": "edit (pos 6: read - listed 9)"},
               notes="Owner reports plates swapped", recheck=True, covert=False)
    station["srv"].push("hit", hit)
    page.wait_for("document.getElementById('hit-plate').textContent === 'XYZ789'")
    assert page.evaluate("document.getElementById('hit-match').textContent") == (
        "edit (pos 6: read - listed 9) · found on re-check of an earlier read")
    assert page.evaluate("document.getElementById('hit-notes').textContent") == "Owner reports plates swapped"
    page.click("#btn-reject")
    page.click("[data-reason='other']")
    # 'other' needs a note before it can be sent.
    assert page.evaluate("document.getElementById('btn-reject-send').disabled") is True
    page.type("#reject-note", "plate is on a trailer")
    page.click("[data-reason='wrong_state']")
    page.click("#btn-reject-send")
    (call,) = station["dispositions"].wait(1)
    assert call == ("hit-0002", "reject", "wrong_state", "plate is on a trailer")
    page.wait_for("document.getElementById('hit-done').textContent === 'REJECTED: WRONG STATE'")
    page.close()


def test_higher_priority_hit_and_sound_pattern(chromium: Browser, station: dict[str, Any]) -> None:
    page = open_page(chromium, station["url"])
    page.click("#sound-toggle")  # a real click: the gesture browsers need before audio
    page.wait_for("sound.on()")
    station["srv"].push("hit", hit_payload(station["images"], "hit-0003", "LOW333", priority=3))
    page.wait_for("document.getElementById('hit-plate').textContent === 'LOW333'"
                  " && document.body.dataset.alarm === 'p3'")
    station["srv"].push("hit", hit_payload(station["images"], "hit-0004", "TOP111", priority=1))
    page.wait_for("document.getElementById('hit-plate').textContent === 'TOP111'"
                  " && document.body.dataset.alarm === 'p1'")
    assert page.evaluate("document.getElementById('tab-alert-count').textContent") == "2"
    page.click("#btn-silence")
    # Silencing P1 leaves the other pending hit's (one-shot) pattern, never the siren.
    page.wait_for("document.body.dataset.alarm === 'p3'")
    page.close()


def test_k9_started_on_the_page_goes_to_hq_and_the_report(
    chromium: Browser, station: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = open_page(chromium, station["url"])
    page.click("#tab-k9")
    page.type("#k9-dog", "Rex")
    page.type("#k9-handler", "Sgt Jansen")
    page.type("#k9-case", "2026-4411")
    page.click("[data-type='area_search']")
    page.click("#btn-k9-start")
    (call,) = station["hq"].wait(1)
    kind, payload = call
    assert kind == "k9" and payload["event"] == "k9_start" and payload["dog"] == "Rex"
    assert payload["type"] == "area_search" and payload["case_number"] == "2026-4411"
    page.wait_for("document.querySelector('.k9-card .who')?.textContent === 'Rex · AREA SEARCH'")
    assert page.evaluate("document.getElementById('tab-k9-count').textContent") == "1"
    station["k9"].record_position()
    page.evaluate("document.querySelector('main').scrollTo(0, 0)")
    page.screenshot(tmp_path / "k9.png")

    page.click(".k9-card button")
    page.click("[data-outcome='not_found']")
    page.click("#btn-k9-end-send")
    calls = station["hq"].wait(2)
    assert calls[1][1]["event"] == "k9_end" and calls[1][1]["outcome"] == "not_found"
    page.wait_for("document.querySelectorAll('.k9-card').length === 0")
    page.close()

    out = tmp_path / "report.html"
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert k9_main(["report", "--db", str(station["db"]), "--from", day, "--to", day, "--html", str(out)]) == 0
    printed = capsys.readouterr().out
    assert payload["deployment_id"] in printed and "not_found" in printed
    assert "Sgt Jansen" in out.read_text() and "<polyline" in out.read_text()


def test_heat_alarm_from_the_simulated_sensor_reaches_the_page(
    chromium: Browser, station: dict[str, Any], tmp_path: Path
) -> None:
    page = open_page(chromium, station["url"])
    sim = HeatSensorSim(start_c=27.0, ramp_c_per_s=25.0, max_c=41.3, engine=False, ac=False, interval_s=0.05)
    monitor = HeatMonitor(sim.start(), 9600, 30.0, 35.0, lambda s: station["srv"].push("heat", s), None)
    monitor.start()
    try:
        page.wait_for("document.getElementById('heat-title').textContent === 'KENNEL HEAT ALARM'"
                      " && !document.getElementById('heat-banner').hidden", timeout=30)
    finally:
        monitor.stop()
        sim.stop()
    assert "engine OFF" in page.evaluate("document.getElementById('heat-detail').textContent")
    assert page.evaluate("document.getElementById('st-heat').className") == "chip bad"
    page.click("#sound-toggle")
    page.wait_for("document.body.dataset.alarm === 'heat_alarm'")
    page.screenshot(tmp_path / "heat.png")
    page.click("#heat-silence")
    page.wait_for("document.body.dataset.alarm !== 'heat_alarm'")
    page.close()


# Holds the page's next /api/state answer (already read in full from the server) until the test releases it.
HOLD_STATE = """
(() => {
  const realFetch = window.fetch;
  window.heldStates = 0;
  window.fetch = async (url, opts) => {
    const res = await realFetch(url, opts);
    if (!String(url).includes("/api/state")) return res;
    const body = await res.text();
    window.heldStates += 1;
    await new Promise((release) => { window.releaseState = release; });
    return new Response(body, { status: res.status, headers: res.headers });
  };
})()
"""


def test_an_older_state_never_hides_a_newer_heat_alarm(chromium: Browser, station: dict[str, Any]) -> None:
    """A snapshot the server took before an alarm was pushed, applied after it, must leave the alarm on screen."""
    page = open_page(chromium, station["url"])
    page.evaluate(HOLD_STATE)
    page.evaluate("window.refreshed = false; refreshState().then(() => { window.refreshed = true; }); 0")
    page.wait_for("window.heldStates === 1")  # the server has answered: no heat in that snapshot
    alarm = {"state": "alarm", "reason": "36.0 C", "temp_c": 36.0, "engine": False, "ac": False, "warn_c": 30.0,
             "alarm_c": 33.0, "since": time.time(), "reading_age_s": 0.0, "lines_bad": 0, "silent_s": None,
             "previous": "normal"}
    station["srv"].push("heat", alarm)
    page.wait_for("!document.getElementById('heat-banner').hidden")
    page.evaluate("window.releaseState(); 0")
    page.wait_for("window.refreshed === true")
    assert page.evaluate("document.getElementById('heat-banner').hidden") is False
    assert page.evaluate("document.getElementById('heat-title').textContent") == "KENNEL HEAT ALARM"
    # A snapshot taken after the alarm still replaces it (the monitor's next state comes the same way).
    station["srv"].push("heat", {**alarm, "state": "normal", "temp_c": 28.0, "previous": "alarm"})
    page.wait_for("document.getElementById('heat-banner').hidden")
    page.evaluate("window.refreshed = false; refreshState().then(() => { window.refreshed = true; }); 0")
    page.wait_for("window.heldStates === 2")
    page.evaluate("window.releaseState(); 0")
    page.wait_for("window.refreshed === true")
    assert page.evaluate("document.getElementById('heat-banner').hidden") is True
    page.close()


def test_page_reconnects_after_the_server_restarts(chromium: Browser, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    srv = StationServer("127.0.0.1", 0, TOKEN, status, Calls(), None, images)
    url = srv.start()
    page = open_page(chromium, url)
    port = srv.port
    srv.stop()
    page.wait_for("document.body.dataset.live === '0'")
    srv2 = StationServer("127.0.0.1", port, TOKEN, status, Calls(), None, images)
    srv2.start()
    try:
        page.wait_for("document.body.dataset.live === '1'", timeout=30)
        srv2.push("hit", hit_payload(images, "hit-0009", "NEW999"))
        page.wait_for("document.getElementById('hit-plate').textContent === 'NEW999'")
        page.click("#tab-k9")
        assert page.evaluate("document.getElementById('k9-off').hidden") is False
    finally:
        page.close()
        srv2.stop()


def test_a_full_disk_shows_a_banner_and_a_hit_can_still_be_accepted(chromium: Browser, tmp_path: Path) -> None:
    """Issue 20: the page says storage is full; the officer's decision on a hit kept in memory is taken
    (not a 404) and stored once space returns."""
    images = tmp_path / "images"
    images.mkdir()
    with tiny_tmpfs(tmp_path / "data", "1m") as data:
        store = Store(data, min_free_mb=0)
        officer = OfficerActions(store, lambda kind, payload: "msg-1", store.audit, "car1")
        report = StatusReport("car1", lambda: 3, store=store)
        srv = StationServer("127.0.0.1", 0, TOKEN, lambda: {**status(), **report.summary()}, officer.dispose,
                            None, images)
        url = srv.start()
        page = open_page(chromium, url)
        try:  # the first /api/state is in (else its older status could land after the pushes below)
            page.wait_for("state.status.storage && state.status.storage.full === false")
            assert page.evaluate("document.getElementById('storage-banner').hidden") is True
            filler = fill(data / "filler")
            t = time.time()
            read = PlateRead("r-full", "car1", "front", "FUL123", 0.93, (("FUL123", 0.93),), t, t, t, 3,
                             (1, 2, 3, 4), None)
            store.add_read(read)
            store.add_hit(Hit("hit-full", read, WatchEntry("FUL123", "stolen_vehicle", 1), Match("exact", "FUL123"),
                              t), None, None)
            srv.push("hit", hit_payload(images, "hit-full", "FUL123"))
            srv.push("status", {**status(), **report.summary()})
            page.wait_for("!document.getElementById('storage-banner').hidden"
                          " && document.getElementById('hit-plate').textContent === 'FUL123'")
            assert page.evaluate("document.getElementById('storage-detail').textContent") == (
                "Storage full: 3 records kept in memory")  # the read, the hit, the read's hit flag
            page.screenshot(tmp_path / "storage-full.png")
            page.click("#btn-accept")
            page.click("#confirm-plate")
            page.click("#confirm-state")
            page.click("#btn-confirm-accept")
            page.wait_for("document.getElementById('hit-done').textContent === 'ACCEPTED'"
                          " || !document.getElementById('accept-error').hidden")
            assert page.evaluate("document.getElementById('accept-error').textContent") == ""
            assert page.evaluate("document.getElementById('hit-done').textContent") == "ACCEPTED"
            filler.unlink()
            store.retry_pending()
            srv.push("status", {**status(), **report.summary()})
            page.wait_for("document.getElementById('storage-banner').hidden")
        finally:
            page.close()
            srv.stop()
            store.close()
        again = Store(data, min_free_mb=0)
        stored = again.hit("hit-full")
        again.close()
        assert stored is not None and stored["disposition"] == "accept"


def request(url: str, method: str, path: str, headers: dict[str, str] | None = None,
            body: Any = None) -> tuple[int, dict[str, str], bytes]:
    host = url.removeprefix("http://")
    conn = http.client.HTTPConnection(host, timeout=5)
    data = None if body is None else json.dumps(body).encode()
    hdrs = dict(headers or {})
    if data is not None:
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=hdrs)
    res = conn.getresponse()
    out = (res.status, {k.lower(): v for k, v in res.getheaders()}, res.read())
    conn.close()
    return out


def test_access_needs_the_token(station: dict[str, Any]) -> None:
    url = station["url"]
    assert request(url, "GET", "/")[0] == 401
    assert request(url, "GET", "/api/state", {"Authorization": "Bearer wrong-token"})[0] == 401
    status_, headers, _ = request(url, "GET", f"/?token={TOKEN}")
    assert status_ == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert request(url, "GET", "/api/state", {"Cookie": cookie.split(";")[0]})[0] == 200
    code, _, body = request(url, "GET", "/api/state", {"Authorization": f"Bearer {TOKEN}"})
    assert code == 200 and json.loads(body)["status"]["watchlist_version"] == "2026-11-23.2"


def test_no_token_means_loopback_only(tmp_path: Path) -> None:
    srv = StationServer("127.0.0.1", 0, None, status, Calls(), None, tmp_path)
    url = srv.start()
    try:
        assert request(url, "GET", "/api/state")[0] == 200
    finally:
        srv.stop()


def test_without_a_token_only_a_loopback_host_name_is_served(tmp_path: Path) -> None:
    """DNS rebinding: a page from evil.example that resolves to 127.0.0.1 reaches the loopback-only station
    with its own name in Host; it must read no hits and post no decisions."""
    srv = StationServer("127.0.0.1", 0, None, status, Calls(), None, tmp_path)
    url = srv.start()
    port = url.rstrip("/").rsplit(":", 1)[-1]
    try:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
            assert request(url, "GET", "/api/state", {"Host": host})[0] == 200, host
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
            code, _, body = request(url, "GET", "/api/state", {"Host": host})
            assert code == 403 and b"host" in body.lower(), host
            assert request(url, "POST", "/api/hits/hit-1/disposition", {"Host": host})[0] == 403, host
    finally:
        srv.stop()
    from picar.station.server import _is_loopback

    assert _is_loopback("::ffff:127.0.0.1") and not _is_loopback("192.0.2.7")


def test_images_refuse_traversal_and_bad_requests(station: dict[str, Any]) -> None:
    url, auth = station["url"], {"Authorization": f"Bearer {TOKEN}"}
    crop, _ = write_images(station["images"], "IMG001")
    (station["images"].parent / "secret.png").write_bytes(b"\x89PNG not for you")
    code, headers, body = request(url, "GET", f"/images/{crop}", auth)
    assert code == 200 and headers["content-type"] == "image/png" and body[:4] == b"\x89PNG"
    for path in ("/images/../secret.png", "/images/%2e%2e/secret.png", "/images/2026-11-23/..%2f..%2fsecret.png",
                 "/images//etc/passwd", "/images/2026-11-23/missing.png"):
        assert request(url, "GET", path, auth)[0] in (400, 404), path
    post = "/api/hits/hit-1/disposition"
    code, _, body = request(url, "POST", post, auth, {"decision": "reject", "reason": "bored"})
    assert code == 400 and "use one of: misread, wrong_state" in json.loads(body)["error"]
    code, _, body = request(url, "POST", post, auth, {"decision": "accept"})
    assert code == 400 and "confirmed" in json.loads(body)["error"]
    code, _, _ = request(url, "POST", post, {**auth, "Origin": "http://evil.example"},
                         {"decision": "reject", "reason": "misread"})
    assert code == 403
    code, _, body = request(url, "POST", "/api/k9/start", auth, {"dog": "Rex", "handler": "J", "type": "x"})
    assert code == 400 and "type 'x' is not allowed" in json.loads(body)["error"]
    assert station["dispositions"].calls == [] and station["hq"].calls == []
    with pytest.raises(ValueError, match="kind 'gossip'"):
        station["srv"].push("gossip", {})
    with pytest.raises(ValueError, match="covert hit h-9 must not be pushed"):
        station["srv"].push("hit", {"event_id": "h-9", "plate": "ABC123", "covert": True})
    assert station["srv"].state()["hits"] == []
    with pytest.raises(ValueError, match="hit event without an event_id"):
        station["srv"].push("hit", {"plate": "ABC123"})
    with pytest.raises(ValueError, match="station token must be"):
        StationServer("127.0.0.1", 0, "short", status, Calls(), None, station["images"])


def test_a_port_in_use_says_it_is_the_page_and_which_keys_move_it(tmp_path: Path) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OSError) as err:
            StationServer("127.0.0.1", port, None, status, Calls(), None, tmp_path).start()
        text = str(err.value)
        assert "in-car page" in text and f"127.0.0.1:{port}" in text and "ui.port" in text, text
    finally:
        taken.close()
