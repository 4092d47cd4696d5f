"""The console's search, audit, watchlist and K9 screens in each language, in real headless Chromium: every text
of the screen's main part and every title, aria-label and placeholder is read, and in Romanian and Russian none
may hold English that the catalogue translates (tests/untranslated.py). The header belongs to the console's own
language test (tests/test_hq_console.py); an importer's message quoting a line stays as the importer wrote it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest

from picar.hq.store import connect
from picar.hq.store.drafts import save_draft
from picar.hq.store.events import parse
from picar.hq.watchlists import review_import
from picar.i18n import LANGUAGES
from tests.browser import Browser, Page, chromium_binary
from tests.hq_console import RunningConsole, console, ingest, login
from tests.hq_pages import MAIN_TEXTS_JS, submit
from tests.test_hq_console_search import some_reads, store
from tests.untranslated import english_left

__all__ = ["console"]
pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed")

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    b = Browser(1280, 860)
    yield b
    b.close()


def some_data(dsn: str) -> int:
    """Reads, a K9 deployment, a car's status and an import awaiting review (with an invalid row); the draft's id."""
    some_reads(dsn)
    start = {"event_id": "k9-a-start", "event": "k9_start", "deployment_id": "a", "dog": "Rex", "handler": "Ion",
             "type": "building_search", "case_number": "C-1", "notes": None, "trigger": "manual",
             "started_at": (NOW - dt.timedelta(hours=3)).isoformat(), "start_lat": 47.0, "start_lon": 28.8}
    end = {**start, "event_id": "k9-a-end", "event": "k9_end", "ended_at": (NOW - dt.timedelta(hours=2)).isoformat(),
           "outcome": "found", "end_notes": "", "duration_s": 3600.0, "track_length_m": 800.0}
    store(dsn, [parse("car1", "k9", json.dumps(p).encode()) for p in (start, end)])
    ingest(dsn, "car1", "status", {"state": "online", "time": NOW.isoformat(), "watchlist_version": 5})
    review = review_import(b"plate,list\nAB123CD,stolen_vehicle\nB@D,wanted\n", "lista.csv", "csv")
    with connect(dsn) as conn:
        draft = save_draft(conn, created_by="sam", filename="lista.csv", format="csv", records=review.records,
                           invalid=[{"line": r.line, "message": r.message} for r in review.invalid], gave_up=False)
    return draft.id


def switch_to(page: Page, lang: str) -> None:
    submit(page, f'form.lang button[value="{lang}"]', f"document.documentElement.lang === '{lang}'")


def texts(page: Page) -> list[str]:
    return list(page.evaluate(MAIN_TEXTS_JS))


def test_every_screen_speaks_the_operators_language(console: RunningConsole, chromium: Browser) -> None:
    draft_id = some_data(console.dsn)
    shown: dict[tuple[str, str], list[str]] = {}
    sam = login(chromium, console, "sam", path="/search")
    for lang in LANGUAGES:
        switch_to(sam, lang)
        sam.goto(f"{console.url}/search")
        sam.type("#plate", "A$")
        sam.type("#case_number", "C-1")
        sam.type("#reason", "verificare")
        submit(sam, "#search-button", "document.getElementById('search-error')")
        shown[lang, "search refused"] = texts(sam)
        sam.type("#plate", "CBA123")
        submit(sam, "#search-button", "document.getElementById('results')")
        shown[lang, "search results"] = texts(sam)
        for name, path in (("watchlists", "/watchlists"), ("review", f"/watchlists/drafts/{draft_id}"),
                           ("k9", "/k9")):
            sam.goto(console.url + path)
            shown[lang, name] = texts(sam)
        assert sam.evaluate("document.documentElement.lang") == lang
        assert any("CBA123" in t for t in shown[lang, "search results"]) and any("Rex" in t for t in shown[lang, "k9"])
    ada = login(chromium, console, "ada")  # closes sam's tab, which keeps polling (`login`)
    for lang in LANGUAGES:
        switch_to(ada, lang)
        ada.goto(f"{console.url}/audit")
        shown[lang, "audit"] = texts(ada)
        assert any("C-1" in t for t in shown[lang, "audit"])
    left = {(lang, name): [(x.english, x.text) for x in english_left(found, lang)]
            for (lang, name), found in shown.items() if lang != "en"}
    assert not any(left.values()), f"English left: { {k: v for k, v in left.items() if v} }"
