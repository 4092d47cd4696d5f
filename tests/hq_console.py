"""The HQ console for tests: the real app under real uvicorn (a thread, a free port) against a real PostgreSQL
(the `hq_dsn` fixture), with accounts of each role, and a Chromium logged in through the login form.

    def test_x(console: RunningConsole, chromium: Browser) -> None:
        page = login(chromium, console, "olga")          # an operator; "sam" supervisor, "ada" auditor
        page.wait_for("document.body.dataset.stream === 'open'")   # the live stream is up
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import pytest

from picar.hq.config import ConsoleSettings, DatabaseSettings, HqConfig, MqttSettings, WatchlistSettings
from picar.hq.console.app import create_app
from picar.hq.console.server import ConsoleThread
from picar.hq.store import accounts, connect
from picar.hq.store.events import parse
from picar.hq.store.writes import store_batch
from picar.isotime import event_iso
from picar.link.connection import offline_status, online_status
from picar.pipeline.events import hit_payload, image_payload
from picar.types import Fix, Hit, Match, PlateRead, WatchEntry
from tests.browser import Browser, BrowserError, Page
from tests.plate_images import draw_evidence
from tests.waiting import wait_until

# username -> (password, role, language)
ACCOUNTS: dict[str, tuple[str, str, str]] = {
    "olga": ("operator-pass-1", "operator", "ro"),
    "sam": ("supervisor-pass-1", "supervisor", "en"),
    "ada": ("auditor-pass-1", "auditor", "en"),
}


@dataclass
class RunningConsole:
    url: str
    dsn: str
    config: HqConfig
    served: ConsoleThread = field(repr=False)
    app: Any = field(repr=False)
    secret: bytes = field(default=b"", repr=False)  # signs its session cookies

    def stop(self) -> None:
        self.served.stop()


def start_console(dsn: str, tmp: Path, *, mqtt: MqttSettings | None = None,
                  watchlist: WatchlistSettings | None = None, **settings: Any) -> RunningConsole:
    """The console on 127.0.0.1 and a free port; `settings` override ConsoleSettings (tls files, tile_url ...);
    `mqtt` and `watchlist` are those tables of HQ's config (publishing watchlists)."""
    config = HqConfig(database=DatabaseSettings(dsn=dsn), mqtt=mqtt or MqttSettings(),
                      watchlist=watchlist or WatchlistSettings(),
                      console=ConsoleSettings(
        bind="127.0.0.1", port=0, session_secret_file=tmp / "session.key", **settings))
    secret = secrets.token_hex(32).encode()
    app = create_app(config, secret=secret, position_every_s=0.3)
    served = ConsoleThread(app, config)
    running_config = dataclasses.replace(config, console=dataclasses.replace(config.console, port=served.port))
    return RunningConsole(served.url, dsn, running_config, served, app, secret)


def add_accounts(dsn: str) -> None:
    with connect(dsn) as conn:
        for username, (password, role, language) in ACCOUNTS.items():
            accounts.create_account(conn, username, password, role, language)


@pytest.fixture
def console(hq_dsn: str, tmp_path: Path) -> Iterator[RunningConsole]:
    """A console with the three accounts of ACCOUNTS."""
    add_accounts(hq_dsn)
    running = start_console(hq_dsn, tmp_path)
    yield running
    running.stop()


def login(browser: Browser, console: RunningConsole, username: str, password: str | None = None,
          path: str | None = None) -> Page:
    """A fresh tab logged in as `username` through the login form (real typing and clicks); it lands on
    `path`, or on the account's home screen. The browser's other tabs are closed first: the tabs share the
    cookies, so one session at a time, and an old tab that polls would be sent to the login page once the
    cookies are cleared, renewing the form token under the new tab's form (refused, 403)."""
    browser.close_pages()
    browser.send("Storage.clearCookies")
    page = browser.new_page(f"{console.url}/login" + (f"?next={path}" if path else ""))
    submit_login(page, username, password if password is not None else ACCOUNTS[username][0])
    return page


def submit_login(page: Page, username: str, password: str) -> None:
    """Fill in and send the login form of the page open now; returns once the answer has loaded."""
    page.type("#username", username)
    page.type("#password", password)
    click_through(page, "#login-button", "location.pathname !== '/login' || !!document.getElementById('login-error')")


def click_through(page: Page, selector: str, condition: str, timeout: float = 30) -> None:
    """Click something that loads a new document, and wait until `condition` holds on that new one."""
    page.evaluate("window.picarLeft = true")  # marks this document: what we wait for is a new one
    page.click(selector)
    arrive(page, f"!window.picarLeft && ({condition})", timeout)


def arrive(page: Page, condition: str, timeout: float = 30) -> None:
    """Wait through a navigation until `condition` holds on the new document."""
    condition = f"document.readyState === 'complete' && ({condition})"
    assert wait_until(lambda: _quietly(page, condition), timeout), f"never: {condition}"


def _quietly(page: Page, condition: str) -> bool:
    """The condition's value; False while the page is between two documents."""
    try:
        return bool(page.evaluate(condition))
    except BrowserError:
        return False


# --- test data through the real ingest path: the car's own payload builders, parse, store_batch --------------


def ingest(dsn: str, vehicle: str, kind: str, payload: dict[str, Any]) -> None:
    """Store one car message as HQ's ingest does (store_batch: partitions, one transaction whose
    NOTIFYs reach the console at commit, then the car's row)."""
    events = [parse(vehicle, kind, json.dumps(payload).encode())]
    with connect(dsn) as conn:
        store_batch(conn, events)


def car_status(vehicle: str, *, online: bool = True, backlog: int = 0, watchlist_version: int | None = 7,
               lat: float = 47.0245, lon: float = 28.8323) -> dict[str, Any]:
    """The car's retained status as picar.link.connection makes it (online) or its last will (offline)."""
    if not online:
        return json.loads(offline_status(vehicle, "0.9.0", "connection lost", ""))  # type: ignore[no-any-return]
    summary = {"watchlist_version": watchlist_version, "watchlist_problem": None,
               "cameras": [{"name": "fata", "state": "streaming", "fps": 14.8},
                           {"name": "spate", "state": "reconnecting", "fps": 0.0}],
               "gps": {"fix": "3d", "lat": lat, "lon": lon, "age_s": 0.4},
               "storage": {"full": False, "pending": 0, "lost": 0}, "reads_per_min": 37.0}
    body = online_status(vehicle, "0.9.0", event_iso(time.time()), backlog, summary)
    return json.loads(body)  # type: ignore[no-any-return]


def car_position(lat: float, lon: float, at: float | None = None) -> dict[str, Any]:
    when = dt.datetime.fromtimestamp(time.time() if at is None else at, dt.UTC)
    return Fix(time=when, lat=lat, lon=lon, fix="3d", speed_kmh=42.0, heading_deg=90.0).to_json()


def evidence(plate: str) -> tuple[bytes, bytes]:
    """A plate crop (240x64) and a context frame (640x360) as JPEG, drawn here."""
    crop, frame = draw_evidence(plate, font_scale=1.4)
    return (cv2.imencode(".jpg", crop)[1].tobytes(), cv2.imencode(".jpg", frame)[1].tobytes())


def a_hit(vehicle: str, event_id: str, plate: str, priority: int, *, read_text: str | None = None,
          list_name: str = "stolen_vehicle", reason: str = "furat la 20.11.2026, Buiucani",
          lat: float = 47.0245, lon: float = 28.8323, covert: bool = False) -> Hit:
    """A hit as the car's matcher makes it (a confusable match when read_text differs from the plate)."""
    now = time.time()
    text = read_text or plate
    fix = Fix(time=dt.datetime.fromtimestamp(now - 2, dt.UTC), lat=lat, lon=lon, fix="3d")
    read = PlateRead(f"read-{event_id}", vehicle, "fata", text, 0.93, ((text, 0.93),), now - 2, now - 3, now - 2, 6,
                     (10, 20, 90, 22), fix, region="md")
    diffs = tuple((i, a, b) for i, (a, b) in enumerate(zip(text, plate, strict=False)) if a != b)
    match = Match("confusable" if diffs else "exact", text, len(diffs), diffs)
    entry = WatchEntry(plate, list_name, priority=priority, reason=reason, description="Dacia Logan", covert=covert)
    return Hit(event_id, read, entry, match, raised_at=now - 1.8)


def send_hit(dsn: str, hit: Hit, *, with_images: bool = True) -> None:
    """The hit, then its two evidence images, as the car sends them (separate messages)."""
    ingest(dsn, hit.read.vehicle_id, "hit", hit_payload(hit))
    if with_images:
        crop, frame = evidence(hit.entry.plate)
        for role, data in (("crop", crop), ("frame", frame)):
            ingest(dsn, hit.read.vehicle_id, "image", image_payload(hit, role, data))


def disposition(hit: Hit, decision: str, reason: str | None = None, note: str | None = None) -> dict[str, Any]:
    """The officer's decision as picar.station.actions.OfficerActions sends it."""
    return {"event_id": f"disp-{hit.event_id}", "hit_event_id": hit.event_id, "decision": decision, "reason": reason,
            "note": note, "vehicle": hit.read.vehicle_id, "time": event_iso(time.time())}


def heat(event_id: str, state: str = "alarm", temp_c: float = 31.5, engine: bool | None = False) -> dict[str, Any]:
    """A kennel heat event as the car publishes it (picar.station.heat.HeatMonitor's snapshot)."""
    limit = {"alarm": 30.0, "warning": 27.0}[state]
    return {"event_id": event_id, "state": state, "previous": "normal", "temp_c": temp_c, "engine": engine,
            "ac": None, "warn_c": 27.0, "alarm_c": 30.0, "since": time.time(), "reading_age_s": 0.4,
            "lines_bad": 0, "silent_s": None,
            "reason": f"{temp_c:.1f} °C ({state} at {limit:.1f} °C) engine {'OFF' if engine is False else 'on'}"}
