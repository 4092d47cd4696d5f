"""HQ's console in real headless Chromium, against a real PostgreSQL and the real ingest path: login (and what is
refused: a bad password, a POST without its CSRF token or from another origin, too many failures), the roles,
the live fleet on the map, a hit with its images and the officer's disposition, a P1 hit and a heat alarm
that sound and stay until acknowledged, escaping, the operator's tile server. Screenshots go to the test's tmp
dir; PICAR_SCREENSHOTS=1 copies the alarm screen to docs/screenshots/hq-alarm.png (docs/hq.md).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import cv2
import numpy as np
import pytest

from picar.hq.store import connect
from tests.browser import Browser, Page, chromium_binary
from tests.hq_console import (
    ACCOUNTS,
    RunningConsole,
    a_hit,
    add_accounts,
    car_position,
    car_status,
    click_through,
    console,
    disposition,
    heat,
    ingest,
    login,
    send_hit,
    start_console,
)
from tests.waiting import wait_until

__all__ = ["console"]  # the fixture, imported for pytest

pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="needs Debian's chromium (apt-get install chromium)")

DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    b = Browser(1280, 800)
    yield b
    b.close()


def shot(page: Page, tmp_path: Path, name: str, docs: bool = False) -> None:
    """A screenshot in the test's folder; with `docs`, and PICAR_SCREENSHOTS=1, also docs/screenshots/hq-NAME.png
    (the other screens' pictures come from tests/test_hq_console_languages.py)."""
    path = page.screenshot(tmp_path / f"hq-{name}.png")
    if docs and os.environ.get("PICAR_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS / path.name)


def live(page: Page) -> None:
    page.wait_for("document.body.dataset.stream === 'open'", 20)


class Http:
    """Plain HTTP to the console, keeping its cookies, for what a browser will not send (a POST without a token)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        sent = {"Host": f"{self.host}:{self.port}", "Accept": "text/html", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body, sent)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        for value in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";")[0]
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text

    def csrf(self, path: str = "/login") -> str:
        _, _, page = self.request("GET", path)
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, page[:500]
        return found.group(1)


# --- login and what is refused ---------------------------------------------------------------------------------


def test_login_refuses_a_bad_password_then_lets_the_right_one_in(console: RunningConsole, chromium: Browser,
                                                                 tmp_path: Path) -> None:
    page = login(chromium, console, "olga", "not-her-password")
    assert page.evaluate("location.pathname") == "/login"
    assert page.evaluate("document.getElementById('login-error').textContent.trim()") == \
        "Nume de utilizator sau parolă greșite, sau contul este dezactivat."  # the console's default: Romanian
    shot(page, tmp_path, "login")
    page = login(chromium, console, "olga")
    live(page)
    assert page.evaluate("location.pathname") == "/"
    cookie = next(c for c in chromium.send("Storage.getCookies")["cookies"] if c["name"] == "picar_hq")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # Logging out ends the session: the old cookie no longer opens a page.
    click_through(page, "#logout", "location.pathname === '/login'")
    old = Http(console.url)
    old.cookies["picar_hq"] = cookie["value"]
    status, headers, _ = old.request("GET", "/")
    assert status == 303 and headers["location"].startswith("/login")


def test_a_post_without_its_csrf_token_or_from_another_origin_is_refused(console: RunningConsole) -> None:
    http = Http(console.url)
    token = http.csrf()
    origin = {"Origin": console.url}
    password = ACCOUNTS["olga"][0]
    status, _, _ = http.request("POST", "/login", {"username": "olga", "password": password}, origin)
    assert status == 403
    status, headers, _ = http.request("GET", "/")
    assert status == 303 and headers["location"].startswith("/login")  # not logged in
    status, _, _ = http.request("POST", "/login", {"username": "olga", "password": password, "csrf": token},
                                {"Origin": "http://evil.example"})
    assert status == 403
    status, _, _ = http.request("POST", "/login", {"username": "olga", "password": password, "csrf": token})
    assert status == 403  # no Origin at all
    status, headers, _ = http.request("POST", "/login", {"username": "olga", "password": password, "csrf": token},
                                      origin)
    assert status == 303 and headers["location"] == "/"
    # Logged in, an action still needs the token (the session's new one, not the login page's).
    hit = a_hit("MD-07", "h-csrf", "ABC123", 1)
    send_hit(console.dsn, hit, with_images=False)
    status, _, _ = http.request("POST", "/alarms/hit/h-csrf/ack", {}, origin)
    assert status == 403
    status, _, _ = http.request("POST", "/alarms/hit/h-csrf/ack", {"csrf": token}, origin)
    assert status == 403
    with connect(console.dsn) as conn:
        assert conn.execute("SELECT acknowledged_by FROM hits").fetchall() == [(None,)]
    status, _, _ = http.request("POST", "/alarms/hit/h-csrf/ack", {"csrf": http.csrf("/")}, origin)
    assert status == 303
    with connect(console.dsn) as conn:
        assert conn.execute("SELECT acknowledged_by FROM hits").fetchall() == [("olga",)]
    # Every answer carries the CSP.
    _, headers, _ = http.request("GET", "/login")
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"


def test_too_many_failed_logins_are_refused_even_with_the_right_password(console: RunningConsole) -> None:
    http = Http(console.url)
    origin = {"Origin": console.url}
    attempts = console.config.console.login_attempts
    for i in range(attempts):
        status, _, _ = http.request("POST", "/login", {"username": "sam", "password": f"guess-{i}-wrong",
                                                       "csrf": http.csrf()}, origin)
        assert status == 401
    status, _, _ = http.request("POST", "/login", {"username": "sam", "password": ACCOUNTS["sam"][0],
                                                   "csrf": http.csrf()}, origin)
    assert status == 429
    status, headers, _ = http.request("GET", "/")
    assert status == 303 and headers["location"].startswith("/login")
    # The address that failed is held back for other accounts too.
    status, _, _ = http.request("POST", "/login", {"username": "olga", "password": ACCOUNTS["olga"][0],
                                                   "csrf": http.csrf()}, origin)
    assert status == 429


def test_each_role_sees_only_its_screens(console: RunningConsole, chromium: Browser) -> None:
    page = login(chromium, console, "ada")  # an auditor: the search audit trail only
    assert page.evaluate("location.pathname") != "/"
    nav = page.evaluate("[...document.querySelectorAll('header nav a')].map(a => a.getAttribute('href'))")
    assert "/" not in nav and "/hits" not in nav
    assert page.evaluate("document.body.dataset.live") == "0"  # no live stream, no alarms
    for path in ("/", "/hits", "/alarms", "/events", "/fleet/rows", "/images/x", "/basemap/countries.geojson"):
        page.goto(f"{console.url}{path}")
        assert page.evaluate("document.title").startswith("403"), path
    page = login(chromium, console, "sam")  # a supervisor sees the fleet
    live(page)
    assert page.evaluate("location.pathname") == "/"


# --- the live fleet ----------------------------------------------------------------------------------------------


def test_the_live_fleet_shows_each_car_its_state_and_position(console: RunningConsole, chromium: Browser,
                                                              tmp_path: Path) -> None:
    page = login(chromium, console, "olga")
    live(page)
    page.wait_for("document.getElementById('map').dataset.basemap_loaded === '1'")
    assert page.evaluate("document.querySelectorAll('#map path.country').length") > 100  # Natural Earth outlines
    ingest(console.dsn, "MD-07", "status", car_status("MD-07", backlog=12, watchlist_version=41))
    row = "document.querySelector('tr[data-car=\"MD-07\"]')"
    page.wait_for(f"{row} && {row}.dataset.online === '1'")
    text = page.evaluate(f"{row}.innerText")
    assert "online" in text.lower() or "conectat" in text.lower()
    assert "41" in text and "12" in text
    # Its position: through the position messages, read by the console's own check (no NOTIFY for positions).
    ingest(console.dsn, "MD-07", "position", car_position(47.0105, 28.8638))
    page.wait_for(f"{row}.dataset.lat === '47.0105'")
    ingest(console.dsn, "MD-12", "status", car_status("MD-12", lat=46.84, lon=29.6))
    ingest(console.dsn, "MD-12", "position", car_position(46.8403, 29.6433))
    ingest(console.dsn, "MD-03", "status", car_status("MD-03", lat=47.76, lon=27.93))
    ingest(console.dsn, "MD-03", "position", car_position(47.7617, 27.9291))
    ingest(console.dsn, "MD-03", "status", car_status("MD-03", online=False))
    page.wait_for("document.querySelectorAll('#map .car-marker').length === 3")
    page.wait_for("document.querySelector('tr[data-car=\"MD-03\"]').dataset.online === '0'")
    assert page.evaluate("document.querySelector('#map .car-marker[data-car=\"MD-03\"]').classList"
                         ".contains('offline')")
    page.click("button[data-fit]")
    # Each marker is drawn inside the map where its row says.
    inside = page.evaluate("""(() => { const m = document.getElementById('map').getBoundingClientRect();
        return [...document.querySelectorAll('#map .car-marker')].every(g => {
          const r = g.querySelector('circle').getBoundingClientRect();
          return r.left >= m.left && r.right <= m.right && r.top >= m.top && r.bottom <= m.bottom; }); })()""")
    assert inside
    shot(page, tmp_path, "fleet")
    # A moved car moves on the map.
    before = page.evaluate("document.querySelector('#map .car-marker[data-car=\"MD-07\"]').getAttribute('transform')")
    ingest(console.dsn, "MD-07", "position", car_position(47.0300, 28.9000))
    page.wait_for(f"{row}.dataset.lat === '47.03'")
    after = page.evaluate("document.querySelector('#map .car-marker[data-car=\"MD-07\"]').getAttribute('transform')")
    assert before != after


# --- hits ----------------------------------------------------------------------------------------------------------


def test_a_hit_arrives_with_its_images_and_then_the_officers_decision(console: RunningConsole, chromium: Browser,
                                                                      tmp_path: Path) -> None:
    page = login(chromium, console, "sam", path="/hits")  # English
    live(page)
    hit = a_hit("MD-07", "h-0042", "CDK418", 2, read_text="CDK41B")
    ingest(console.dsn, "MD-07", "hit", {**hit_payload_of(hit)})
    card = "document.querySelector('article[data-hit=\"h-0042\"]')"
    page.wait_for(f"{card}")
    text = page.evaluate(f"{card}.innerText")
    assert "CDK418" in text and "stolen vehicle" in text and "P2" in text and "MD-07" in text
    assert "confusable" in text and "pos 6: read B listed 8" in text
    assert page.evaluate(f"{card}.querySelectorAll('img').length") == 0  # the images follow the hit
    send_hit(console.dsn, hit)  # again (stored once) with its two images
    page.wait_for(f"[...{card}.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length === 2")
    assert page.evaluate(f"[...{card}.querySelectorAll('img')].map(i => i.naturalWidth)") == [240, 640]
    assert page.evaluate("document.querySelectorAll('article[data-hit]').length") == 1
    ingest(console.dsn, "MD-07", "disposition", disposition(hit, "accept", note="oprit pe str. Ismail"))
    page.wait_for(f"{card}.querySelector('.decision') && {card}.querySelector('.decision').dataset.decision === "
                  "'accept'")
    assert "Accepted by the officer" in page.evaluate(f"{card}.innerText")
    assert "oprit pe str. Ismail" in page.evaluate(f"{card}.innerText")
    shot(page, tmp_path, "hits")
    # The images need a session: without one they are refused.
    src = page.evaluate(f"{card}.querySelector('img').getAttribute('src')")
    status, _, _ = Http(console.url).request("GET", src, headers={"Accept": "image/*"})
    assert status == 401


def hit_payload_of(hit: object) -> dict[str, object]:
    from picar.pipeline.events import hit_payload

    return hit_payload(hit)  # type: ignore[arg-type]


def test_what_a_car_sends_is_shown_as_text_never_as_markup(console: RunningConsole, chromium: Browser) -> None:
    page = login(chromium, console, "sam", path="/hits")
    live(page)
    evil = '<img src=x onerror="document.body.dataset.owned=1">'
    hit = a_hit("MD-07", "h-evil", "XSS001", 2, reason=evil)
    ingest(console.dsn, "MD-07", "hit", hit_payload_of(hit))
    page.wait_for("document.querySelector('article[data-hit=\"h-evil\"]')")
    assert evil in page.evaluate("document.querySelector('article[data-hit=\"h-evil\"]').innerText")
    assert page.evaluate("document.querySelector('article[data-hit=\"h-evil\"] img[src=x]')") is None
    page.goto(f"{console.url}/hits")  # rendered by the server this time, not by the stream
    assert evil in page.evaluate("document.querySelector('article[data-hit=\"h-evil\"]').innerText")
    assert page.evaluate("document.body.dataset.owned") is None


# Holds the answers to the page's re-reads of its hit list (`/hits/cards`) until the test lets them through. The
# requests go out at once, so what comes back was rendered before anything the test does next.
HOLD_REREAD = """
(() => {
  const real = window.fetch.bind(window);
  const waiting = [];
  window.__letRereadsThrough = () => { window.__free = true; waiting.splice(0).forEach((go) => go()); };
  window.fetch = (url, opts) => {
    const answer = real(url, opts);
    if (window.__free || !String(url).includes("/hits/cards")) return answer;
    return new Promise((resolve, reject) => waiting.push(() => answer.then(resolve, reject)));
  };
  document.addEventListener("picar:refreshed", () => { window.__reread = (window.__reread || 0) + 1; });
})();
"""


def test_a_hit_announced_while_the_list_is_reread_stays_shown(console: RunningConsole, chromium: Browser) -> None:
    """The stream opening re-reads the hit list; a hit announced while that answer was on its way was put in
    the list and then wiped by the older answer (a CI run failed on it). Live events now wait for the re-read
    and go on top of it."""
    page = login(chromium, console, "sam", path="/hits")
    page.send("Page.addScriptToEvaluateOnNewDocument", {"source": HOLD_REREAD})
    page.goto(f"{console.url}/hits")
    live(page)
    ingest(console.dsn, "MD-07", "hit", hit_payload_of(a_hit("MD-07", "h-race", "RACE001", 2)))
    card = "document.querySelector('article[data-hit=\"h-race\"]')"
    page.wait_for(f"{card} || Number(document.body.dataset.held) >= 1", 10)  # shown, or held for the re-read
    page.evaluate("window.__letRereadsThrough()")
    page.wait_for("window.__reread >= 1", 10)
    page.wait_for(card, 10)  # on top of the older answer, not wiped by it
    assert page.evaluate("document.body.dataset.held") == "0"


# --- alarms --------------------------------------------------------------------------------------------------------


def test_a_p1_hit_sounds_and_stays_on_every_screen_until_acknowledged(console: RunningConsole, chromium: Browser,
                                                                     tmp_path: Path) -> None:
    for car, lat, lon in (("MD-07", 47.0105, 28.8638), ("MD-12", 46.8403, 29.6433)):
        ingest(console.dsn, car, "status", car_status(car, lat=lat, lon=lon))
        ingest(console.dsn, car, "position", car_position(lat, lon))
    page = login(chromium, console, "olga")
    live(page)
    page.click("main")  # the operator has touched the page: the browser lets it play sound
    page.wait_for("document.body.dataset.sound === 'on'")
    send_hit(console.dsn, a_hit("MD-07", "h-p3", "PCW195", 3))  # a P3: listed, no alarm
    send_hit(console.dsn, a_hit("MD-12", "h-p1", "KLM442", 1, list_name="wanted"))
    alarm = "document.querySelector('.alarm[data-key=\"hit:h-p1\"]')"
    page.wait_for(alarm)
    assert page.evaluate("document.querySelectorAll('.alarm').length") == 1
    beeps = page.evaluate("window.picarBeeps")
    page.wait_for(f"window.picarBeeps >= {beeps + 2}", 10)  # it keeps sounding
    assert page.evaluate("document.body.dataset.beeping") == "1"
    shot(page, tmp_path, "alarm", docs=True)
    # Still there after a reload and on another screen, and in a second console. A new page may sound only
    # once the operator touches it (the browser's rule): until then it says so.
    page.goto(f"{console.url}/hits")
    live(page)
    page.wait_for(alarm)
    assert page.evaluate("document.body.dataset.sound") == "off"
    page.click("#sound-on")
    page.wait_for("document.body.dataset.sound === 'on' && window.picarBeeps >= 1", 10)
    other = chromium.new_page(f"{console.url}/")
    live(other)
    other.wait_for(alarm)
    page.click(".alarm[data-key='hit:h-p1'] .ack-button")
    page.wait_for(f"!{alarm} && document.body.dataset.alarms === '0'")
    other.wait_for(f"!{alarm} && document.body.dataset.alarms === '0'")  # told through PostgreSQL
    with connect(console.dsn) as conn:
        (by, at), = conn.execute("SELECT acknowledged_by, acknowledged_at FROM hits WHERE event_id = 'h-p1'")
    assert by == "olga" and at is not None
    # It stopped sounding, and a fresh page has no alarm.
    assert page.evaluate("document.body.dataset.beeping") == "0"
    page.goto(f"{console.url}/")
    live(page)
    assert page.evaluate("document.querySelectorAll('.alarm').length") == 0


def test_a_kennel_heat_alarm_stays_until_acknowledged(console: RunningConsole, chromium: Browser,
                                                     tmp_path: Path) -> None:
    ingest(console.dsn, "K9-02", "heat", heat("heat-1", "alarm", 33.4))  # before the page opens
    page = login(chromium, console, "olga")
    live(page)
    alarm = "document.querySelector('.alarm[data-key=\"heat:heat-1\"]')"
    page.wait_for(alarm)
    assert "33,4" in page.evaluate(f"{alarm}.innerText")  # Romanian decimal comma
    ingest(console.dsn, "K9-02", "heat", heat("heat-2", "warning", 29.0))
    page.wait_for("document.querySelectorAll('.alarm').length === 2")
    page.click(".alarm[data-key='heat:heat-1'] .ack-button")
    page.wait_for(f"!{alarm} && document.querySelectorAll('.alarm').length === 1")
    with connect(console.dsn) as conn:
        rows = conn.execute("SELECT event_id, acknowledged_by FROM heat_alarms ORDER BY event_id").fetchall()
    assert rows == [("heat-1", "olga"), ("heat-2", None)]


# --- the operator's tile server ------------------------------------------------------------------------------


class TileServer:
    """A tile server on loopback: a 256x256 PNG for every /{z}/{x}/{y}.png, each request recorded."""

    def __init__(self) -> None:
        tile = cv2.imencode(".png", np.full((256, 256, 3), (40, 90, 60), np.uint8))[1].tobytes()
        asked: list[str] = []
        self.asked = asked

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                asked.append(self.path)
                ok = re.fullmatch(r"/\d+/\d+/\d+\.png", self.path) is not None
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                if ok:
                    self.wfile.write(tile)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_map_draws_the_operators_tile_server_when_configured(hq_dsn: str, tmp_path: Path,
                                                                 chromium: Browser) -> None:
    tiles = TileServer()
    add_accounts(hq_dsn)
    running = start_console(hq_dsn, tmp_path, tile_url=tiles.url + "/{z}/{x}/{y}.png")
    try:
        status, headers, _ = Http(running.url).request("GET", "/login")
        assert f"img-src 'self' data: {tiles.url};" in headers["content-security-policy"]
        page = login(chromium, running, "olga")
        live(page)
        page.wait_for("[...document.querySelectorAll('#map image')].length > 0")
        assert wait_until(lambda: any(p.startswith("/7/") for p in tiles.asked), 20), tiles.asked
        # Moldova at zoom 7 lies in tile x=74, y=45 (Web Mercator): the map asked for it.
        assert "/7/74/45.png" in tiles.asked
        shot(page, tmp_path, "tiles")
    finally:
        running.stop()
        tiles.close()
