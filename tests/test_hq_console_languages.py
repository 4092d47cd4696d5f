"""Every screen of HQ's console in Romanian, Russian and English, in real headless Chromium: the login page (its
language picked there) and a refused login, the live fleet with cars online, offline and in trouble, the
alarm bar with a P1 hit and a kennel heat alarm, the hits with their images and dispositions, one's account,
an error page. On each screen every text node and title, alt, aria-label and placeholder is read; in
Romanian and Russian none may hold English that the catalogue translates (tests/untranslated.py).
PICAR_SCREENSHOTS=1 copies the Romanian screens to docs/screenshots/hq-*.png and the English fleet and hits
to hq-en-*.png (README "HQ console", docs/hq.md).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from picar.hq.store import accounts, connect
from picar.i18n import LANGUAGES, Language, translator
from tests.browser import Browser, Page, chromium_binary
from tests.hq_console import (
    RunningConsole,
    a_hit,
    car_position,
    car_status,
    click_through,
    disposition,
    heat,
    ingest,
    send_hit,
    start_console,
    submit_login,
)
from tests.test_ui_languages import TEXTS_JS
from tests.untranslated import english_left

pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="needs Debian's chromium (apt-get install chromium)")

DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
PASSWORD = "language-test-1"
DOC_SHOTS = {"ro": None, "en": {"fleet", "hits"}}  # language -> screens copied to docs (None: all)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    b = Browser(1280, 800)
    yield b
    b.close()


@pytest.fixture
def hq(hq_dsn: str, tmp_path: Path) -> Iterator[RunningConsole]:
    """A console with one operator per language, three cars, alarms and hits, all through the ingest path."""
    with connect(hq_dsn) as conn:
        for lang in LANGUAGES:
            accounts.create_account(conn, f"op-{lang}", PASSWORD, "operator", lang)
    running = start_console(hq_dsn, tmp_path)
    dsn = running.dsn
    for car, lat, lon in (("MD-07", 47.0105, 28.8638), ("MD-12", 46.8403, 29.6433), ("K9-02", 47.7617, 27.9291)):
        version = None if car == "MD-12" else 41  # MD-12 has refused its first list
        ingest(dsn, car, "status", car_status(car, backlog=3, watchlist_version=version, lat=lat, lon=lon))
        ingest(dsn, car, "position", car_position(lat, lon))
    full = car_status("MD-12", backlog=1250, watchlist_version=None)
    full["storage"] = {"full": True, "pending": 1250, "lost": 0}
    full["watchlist_problem"] = "signature does not verify"
    ingest(dsn, "MD-12", "status", full)
    ingest(dsn, "K9-02", "status", car_status("K9-02", online=False))
    p1 = a_hit("MD-07", "h-1", "CDK418", 1, read_text="CDK41B")
    send_hit(dsn, p1)
    ingest(dsn, "MD-07", "disposition", disposition(p1, "accept", note="oprit pe str. Ismail"))
    p2 = a_hit("MD-12", "h-2", "PCW195", 2, list_name="insurance")
    send_hit(dsn, p2)
    ingest(dsn, "MD-12", "disposition", disposition(p2, "reject", "wrong_state", "alt stat"))
    send_hit(dsn, a_hit("MD-07", "h-3", "KLM442", 3, list_name="surveillance", covert=True), with_images=False)
    ingest(dsn, "K9-02", "heat", heat("heat-1", "alarm", 31.5))
    yield running
    running.stop()


class Screens:
    """Checks and photographs each screen in one language."""

    def __init__(self, page: Page, lang: Language, shots: Path) -> None:
        self.page, self.lang, self.shots = page, lang, shots
        self.tr = translator(lang)

    def check(self, name: str, *expected: str) -> None:
        texts: list[str] = self.page.evaluate(TEXTS_JS)
        body = "\n".join(texts)
        for want in expected:
            assert want in body, f"{self.lang} {name}: {want!r} not on the page:\n{body[:3000]}"
        if self.lang != "en":
            left = english_left(texts, self.lang)
            assert not left, f"{self.lang} {name}: English left on the page: " + "; ".join(
                f"{x.english!r} in {x.text!r} (msgid {x.msgid!r})" for x in left)
        path = self.page.screenshot(self.shots / f"hq-{self.lang}-{name}.png")
        wanted = DOC_SHOTS.get(self.lang, set())
        if os.environ.get("PICAR_SCREENSHOTS") == "1" and self.lang in DOC_SHOTS and (wanted is None or
                                                                                       name in wanted):
            DOCS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, DOCS / (f"hq-{name}.png" if self.lang == "ro" else f"hq-en-{name}.png"))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_console_screen_in_each_language_has_no_english_left(
    hq: RunningConsole, chromium: Browser, lang: Language, tmp_path: Path
) -> None:
    tr = translator(lang)
    _ = tr._
    chromium.send("Storage.clearCookies")
    page = chromium.new_page(f"{hq.url}/login")
    assert page.evaluate("document.documentElement.lang") == "ro"  # the console's default
    click_through(page, f"form.lang button[value='{lang}']", f"document.documentElement.lang === '{lang}'")
    s = Screens(page, lang, tmp_path)
    s.check("login", _("Log in"), _("Username"), _("Password"))

    submit_login(page, f"op-{lang}", "wrong-password-1")
    s.check("login-error", _("Wrong username or password, or the account is disabled."))

    submit_login(page, f"op-{lang}", PASSWORD)
    page.wait_for("document.body.dataset.stream === 'open' && document.querySelectorAll('.alarm').length === 2"
                  " && document.getElementById('map').dataset.cars === '3'")
    page.click("button[data-fit]")
    s.check("fleet", _("Fleet"), _("online"), _("offline"), _("connection lost"), _("storage full"),
            _("NO LIST"), _("update refused"), _("version {version}", version=41), tr.integer(1250),
            _("PRIORITY 1 HIT"), _("KENNEL HEAT: {state}", state=_("alarm")),
            _("{temp} (alarm at {limit})", temp=tr.celsius(31.5), limit=tr.celsius(30.0)), _("engine OFF"),
            _("Acknowledge"), _("Live"))

    click_through(page, "header nav a[href='/hits']", "location.pathname === '/hits'")
    page.wait_for("document.body.dataset.stream === 'open' && document.querySelectorAll('article[data-hit]').length"
                  " === 3 && [...document.querySelectorAll('article img')].every(i => i.complete && i.naturalWidth)")
    s.check("hits", _("Hits as they arrive"), tr._("stolen vehicle"), tr._("no valid insurance"),
            _("Accepted by the officer"), _("Rejected by the officer: {reason}", reason=_("wrong state")),
            _("covert: not shown in the car"), _("Images not received yet"), _("confusable"),
            _("pos {position}: read {read} listed {listed}", position=6, read="B", listed="8"),
            _("plate crop"), _("context frame"), tr.percent(0.93))

    click_through(page, "header .who a", "location.pathname === '/account'")
    s.check("account", _("My account"), _("Change password"), _("operator"))

    page.goto(f"{hq.url}/no-such-screen")
    s.check("error", _("There is no such page."), _("Back to the console"))
