"""The console's investigative search, its audit trail and the K9 reports, in real headless Chromium against
the real console (uvicorn) and a real PostgreSQL; test data goes in through the store's ingest path."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from picar.hq.exports import ANB_COLUMNS, BOM, K9_COLUMNS
from picar.hq.store import connect
from picar.hq.store.events import parse
from picar.hq.store.queries import search_audit
from picar.hq.store.writes import store_batch
from picar.pipeline.events import read_payload
from picar.types import Fix, PlateRead
from picar.vision.grammar import fits
from tests.browser import Browser, Page, chromium_binary
from tests.hq_console import RunningConsole, console, login
from tests.hq_pages import settle, shoot, submit

__all__ = ["console"]
pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed")

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
CHISINAU = (47.0245, 28.8322)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    b = Browser(1280, 860)
    yield b
    b.close()


def store(dsn: str, events: list[Any]) -> None:
    with connect(dsn) as conn:
        store_batch(conn, events)


def a_read(event_id: str, plate: str, t: dt.datetime, vehicle: str, lat: float, lon: float) -> Any:
    fix = Fix(time=t.timestamp(), lat=lat, lon=lon, fix="3d")
    r = PlateRead(event_id, vehicle, "front", plate, 0.93, ((plate, 0.93),), t.timestamp(), t.timestamp() - 0.4,
                  t.timestamp(), 5, (10, 20, 90, 22), fix, region="md", series=fits(plate, "md"))
    return parse(vehicle, "read", json.dumps(read_payload(r)).encode())


def some_reads(dsn: str) -> None:
    """A plate seen 30 times across Chisinau by two cars, a look-alike of it, and other traffic."""
    events = []
    for i in range(30):
        t = NOW - dt.timedelta(hours=2, minutes=3 * i)
        events.append(a_read(f"r{i}", "CBA123", t, f"car{1 + i % 2}", CHISINAU[0] + 0.002 * (i % 7),
                             CHISINAU[1] + 0.003 * (i % 5)))
    events.append(a_read("look", "C8A123", NOW - dt.timedelta(hours=1), "car1", 47.01, 28.85))
    events.append(a_read("far", "CBA123", NOW - dt.timedelta(hours=1), "car2", 46.35, 28.95))  # Cimislia
    events += [a_read(f"o{i}", f"XYZ{i:03d}", NOW - dt.timedelta(minutes=2 * i), "car1", 47.0, 28.8)
               for i in range(130)]
    store(dsn, events)


def drag(page: Page, selector: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A real mouse drag inside the element, between two points given as fractions of its size."""
    box = page.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                        " return [r.x, r.y, r.width, r.height]; })()")
    x0, y0, w, h = box
    points = [(x0 + w * (start[0] + (end[0] - start[0]) * k / 5), y0 + h * (start[1] + (end[1] - start[1]) * k / 5))
              for k in range(6)]
    page.send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": points[0][0], "y": points[0][1],
                                           "button": "left", "buttons": 1, "clickCount": 1})
    for x, y in points[1:]:
        page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "button": "left", "buttons": 1})
    page.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": points[-1][0], "y": points[-1][1],
                                           "button": "left", "buttons": 0, "clickCount": 1})


def post_json(page: Page, path: str, form: dict[str, str]) -> dict[str, Any]:
    """A form POST from inside the page (its session, its CSRF token): status and text of the answer."""
    return page.evaluate(f"""(async () => {{
        const body = new URLSearchParams({json.dumps(form)});
        body.set("csrf", document.querySelector('meta[name="csrf"]').content);
        const r = await fetch({json.dumps(path)}, {{method: "POST", body, credentials: "same-origin"}});
        return {{status: r.status, text: await r.text(), type: r.headers.get("content-type") || "",
                 audit: r.headers.get("x-audit-id")}};
    }})()""")


def audit_count(dsn: str) -> int:
    with connect(dsn) as conn:
        return len(search_audit(conn))


def test_a_search_is_audited_and_the_trail_is_for_auditors_only(console: RunningConsole, chromium: Browser,
                                                               tmp_path: Path) -> None:
    some_reads(console.dsn)
    page = login(chromium, console, "olga", path="/search")  # an operator, in Romanian
    settle(page, "location.pathname === '/search' && document.getElementById('map').dataset.basemap_loaded")
    page.type("#plate", "CBA123")
    # an area drawn on the map fills the four sides; typed sides then replace them
    page.click("#draw-area")
    drag(page, "#map svg", (0.3, 0.3), (0.7, 0.6))
    drawn = page.evaluate("""['south', 'west', 'north', 'east'].map(n => Number(document.getElementById(n).value))
        .concat([document.querySelectorAll('#map .area-box').length, document.getElementById('draw-area')
        .getAttribute('aria-pressed')])""")
    south, west, north, east, boxes, pressed = drawn
    assert 40 < south < north < 55 and 20 < west < east < 35 and boxes == 1 and pressed == "false", drawn
    page.type("#north", "47.1")
    page.type("#west", "28.7")
    page.type("#east", "28.95")
    page.type("#south", "46.95")
    page.type("#case_number", "2026/417-MD")
    page.type("#reason", "furt auto, urmărire")
    submit(page, "#search-button", "document.getElementById('results')")
    found = page.evaluate("""({count: document.getElementById('results').dataset.count,
        rows: document.querySelectorAll('#reads tbody tr').length,
        shown: document.querySelectorAll('#reads tbody tr:not([hidden])').length,
        markers: document.querySelectorAll('#map .point-marker').length,
        area: document.querySelectorAll('#map .area-box').length,
        pages: document.querySelector('.pager-state').textContent,
        series: [...new Set([...document.querySelectorAll('#reads tbody tr td:nth-child(6)')]
            .map(td => td.textContent))],
        lang: document.documentElement.lang})""")
    # 30 in the area (the one in Cimislia is outside it); the look-alike only with look-alikes asked for
    assert found == {"count": "30", "rows": 30, "shown": 30, "markers": 30, "area": 1, "pages": "Pagina 1/1",
                     "series": ["md.current"], "lang": "ro"}, found  # the grammar series the car said each read fits
    shoot(page, tmp_path, "hq-search.png", 1500)
    (entry,) = _entries(console.dsn)
    assert (entry.username, entry.case_number, entry.reason, entry.result_count) == (
        "olga", "2026/417-MD", "furt auto, urmărire", 30)
    assert entry.query["plate"] == "CBA123" and entry.query["area"] == [46.95, 28.7, 47.1, 28.95]

    # a car's reads, more than the limit: truncated, and shown 50 a page
    page.evaluate("""(() => { const f = document.getElementById('search-form');
        for (const n of ['plate', 'south', 'west', 'north', 'east']) f.elements.namedItem(n).value = '';
        f.elements.namedItem('vehicle').value = 'car1'; f.elements.namedItem('limit').value = '100'; })()""")
    submit(page, "#search-button", "document.getElementById('results')")
    paged = page.evaluate("""({count: document.getElementById('results').dataset.count,
        truncated: !!document.getElementById('truncated'), pages: document.querySelector('.pager-state').textContent,
        shown: document.querySelectorAll('#reads tbody tr:not([hidden])').length})""")
    assert paged == {"count": "100", "truncated": True, "pages": "Pagina 1/2", "shown": 50}, paged
    page.click('.pager button[data-step="1"]')
    assert page.evaluate("""[document.querySelector('.pager-state').textContent, document.querySelector(
        '#reads tbody tr').hidden, document.querySelectorAll('#reads tbody tr:not([hidden])').length]""") == [
        "Pagina 2/2", True, 50]

    # look-alikes
    wide = {"plate": "CBA123", "confusable": "1", "limit": "100", "case_number": "2026/417-MD", "reason": "r"}
    answer = post_json(page, "/search", wide)
    assert answer["status"] == 200 and 'data-count="32"' in answer["text"] and 'data-truncated="0"' in answer["text"]

    # a search without a case number or reason is refused, and nothing is searched or recorded
    before = audit_count(console.dsn)
    for missing in ("case_number", "reason"):
        answer = post_json(page, "/search", {**wide, missing: " "})
        assert answer["status"] == 400 and 'id="search-error"' in answer["text"], answer["text"][:300]
        assert 'id="results"' not in answer["text"]
    assert audit_count(console.dsn) == before

    # the export: the file Analyst's Notebook imports, itself an audit entry
    answer = post_json(page, "/search/export", {"plate": "CBA123", "vehicle": "car2", "limit": "1000",
                                                "case_number": "2026/417-MD", "reason": "chart for the analyst"})
    assert answer["status"] == 200 and answer["type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer["text"].removeprefix(BOM))))
    assert tuple(rows[0]) == ANB_COLUMNS and len(rows) == 1 + 16  # car2: 15 in Chisinau and 1 in Cimislia
    assert {r[ANB_COLUMNS.index("Car")] for r in rows[1:]} == {"car2"}
    assert all(dt.datetime.fromisoformat(r[1]).tzinfo is not None for r in rows[1:])
    export = _entries(console.dsn)[0]
    assert str(export.id) == answer["audit"] and export.query["export"] == "csv" and export.result_count == 16

    # the trail: an auditor sees it (and lands on it); an operator may not open it, an auditor may not search
    assert page.evaluate("fetch('/audit').then(r => r.status)") == 403
    auditor = login(chromium, console, "ada", path="")  # no page asked for: an auditor lands on the trail
    settle(auditor, "location.pathname === '/audit' && document.querySelector('#audit tbody tr[data-audit]')")
    submit(auditor, 'form.lang button[value="ro"]', "document.querySelector('#audit tbody tr')")  # README: Romanian
    auditor.type("#case_number", "2026/417-MD")
    submit(auditor, "#filter-button", "location.search.includes('case_number')")
    trail = auditor.evaluate("""[...document.querySelectorAll('#audit tbody tr[data-audit]')].map(r =>
        [r.cells[1].textContent, r.querySelector('.case').textContent, r.cells[3].textContent, r.cells[5].textContent,
         r.querySelector('.query').textContent.includes('CSV')])""")
    assert trail[0] == ["olga", "2026/417-MD", "chart for the analyst", "16", True]
    assert ["olga", "2026/417-MD", "furt auto, urmărire", "30", False] in trail and len(trail) == 4
    assert auditor.evaluate("[...document.querySelectorAll('header nav a')].map(a => a.pathname)") == ["/audit"]
    shoot(auditor, tmp_path, "hq-audit.png")
    for path in ("/search", "/", "/hits", "/k9", "/watchlists"):
        assert auditor.evaluate(f"fetch('{path}').then(r => r.status)") == 403, path
    # nothing in the console edits the trail: no route takes anything but GET
    assert auditor.evaluate("fetch('/audit', {method: 'POST'}).then(r => r.status)") in (403, 405)


def _entries(dsn: str) -> list[Any]:
    with connect(dsn) as conn:
        return search_audit(conn)


def test_a_k9_report_per_unit_printable_and_as_csv(console: RunningConsole, chromium: Browser, tmp_path: Path) -> None:
    events = []
    for i, (dog, handler, outcome) in enumerate([("Rex", "Ion Popescu", "found"), ("Rex", "Ion Popescu", "not_found"),
                                                 ("Bara", "Ana Rusu", "apprehended")]):
        start = {"event_id": f"k9-d{i}-start", "event": "k9_start", "deployment_id": f"d{i}", "dog": dog,
                 "handler": handler, "type": "track", "case_number": f"C-{i}", "notes": "depozit, str. Uzinelor",
                 "trigger": "door", "started_at": (NOW - dt.timedelta(days=i, hours=3)).isoformat(),
                 "start_lat": 47.0, "start_lon": 28.8}
        end = {**start, "event_id": f"k9-d{i}-end", "event": "k9_end",
               "ended_at": (NOW - dt.timedelta(days=i, hours=2)).isoformat(), "outcome": outcome, "end_notes": "",
               "duration_s": 3600.0 - 600 * i, "track_length_m": 1200.0 + 100 * i}
        events += [parse(f"k9-car{1 + i // 2}", "k9", json.dumps(p).encode()) for p in (start, end)]
    store(console.dsn, events)
    page = login(chromium, console, "olga", path="/k9")
    settle(page, "location.pathname === '/k9' && document.getElementById('k9-summary')")
    assert page.evaluate("document.getElementById('k9-summary').dataset.count") == "3"
    page.type("#dog", "Rex")
    submit(page, "#report-button", "location.search.includes('dog=Rex')")
    report = page.evaluate("""({count: document.getElementById('k9-summary').dataset.count,
        rows: [...document.querySelectorAll('#k9 tbody tr[data-deployment]')].map(r => r.cells[3].textContent),
        csv: document.getElementById('k9-csv').getAttribute('href')})""")
    assert report["count"] == "2" and report["rows"] == ["Rex", "Rex"] and "dog=Rex" in report["csv"]
    shoot(page, tmp_path, "hq-k9.png")
    text = page.evaluate(f"fetch({json.dumps(report['csv'])}).then(r => r.text())")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix(BOM))))
    assert list(rows[0]) == list(K9_COLUMNS)
    assert sorted((r["Dog"], r["Handler"], r["Outcome"], r["Duration (s)"]) for r in rows) == [
        ("Rex", "Ion Popescu", "found", "3600"), ("Rex", "Ion Popescu", "not_found", "3000")]
    # a printed report has no header, nav or filter form
    page.send("Emulation.setEmulatedMedia", {"media": "print"})
    hidden = page.evaluate("['header.top', '#k9-filter'].map(s => getComputedStyle(document.querySelector(s)).display)")
    page.send("Emulation.setEmulatedMedia", {"media": ""})
    assert hidden == ["none", "none"]
