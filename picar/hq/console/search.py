"""Investigative search of the reads: by plate (exact, `*`/`?` wildcards, OCR look-alikes), time range, area
(typed or drawn on the map) and car. Every search and every export needs a case number and a reason and
is written to the audit trail in the same transaction as the search (picar.hq.store.queries.search_reads);
the audit trail itself is audit.py's page, for auditors only.

Results: the newest `limit` reads in a table (paged in the browser) and on the map, "truncated" when there
were more; the CSV export (picar.hq.exports.reads_csv) is the file i2 Analyst's Notebook imports.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from picar.hq.console.page import NavEntry, Page, console_of, render
from picar.hq.console.security import WATCH, require_role
from picar.hq.exports import reads_csv
from picar.hq.store import queries
from picar.hq.store.plates import plate_pattern
from picar.hq.store.records import Account, Area, ReadQuery, Searcher, SearchResult
from picar.i18n import N_

LIMITS = (100, 500, 1000, 5000)
DEFAULT_LIMIT = 1000
FIELDS = ("plate", "confusable", "since", "until", "south", "west", "north", "east", "vehicle", "limit",
          "case_number", "reason")
MAX_TEXT = 500  # case number and reason: the audit keeps them whole


class FormError(ValueError):
    """A field the operator must correct: a msgid and its parameters, shown translated above the form."""

    def __init__(self, field: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.field, self.message, self.params = field, message, params


@dataclass(frozen=True)
class Search:
    query: ReadQuery
    searcher: Searcher


def form_values(form: dict[str, str]) -> dict[str, str]:
    """The search fields as typed (to show the form again), nothing else."""
    return {name: form.get(name, "").strip() for name in FIELDS}


def parse_time(value: str, name: str, zone: ZoneInfo) -> dt.datetime | None:
    """A `datetime-local` value (the console's zone) as an aware time; blank is None."""
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise FormError(name, N_("{value} is not a date and time."), value=value) from None
    return t if t.tzinfo else t.replace(tzinfo=zone)


def _area(values: dict[str, str]) -> Area | None:
    corners = [values[k] for k in ("south", "west", "north", "east")]
    if not any(corners):
        return None
    if not all(corners):
        raise FormError("south", N_("Give all four sides of the area (south, west, north, east), or none."))
    try:
        s, w, n, e = (float(c.replace(",", ".")) for c in corners)
        return Area(s, w, n, e)
    except ValueError:
        raise FormError("south", N_("The area needs south ≤ north between -90 and 90 and west ≤ east between "
                                    "-180 and 180 (degrees).")) from None


def parse_search(values: dict[str, str], account: Account, zone: ZoneInfo) -> Search:
    """The form as a query and its searcher; FormError names the field to correct."""
    case_number, reason = values["case_number"], values["reason"]
    if not case_number:
        raise FormError("case_number", N_("A case number is required for every search."))
    if not reason:
        raise FormError("reason", N_("A reason is required for every search."))
    if len(case_number) > MAX_TEXT or len(reason) > MAX_TEXT:
        raise FormError("reason", N_("The case number and the reason take at most {n} characters."), n=MAX_TEXT)
    plate = values["plate"] or None
    confusable = values["confusable"] in ("1", "on", "true")
    if plate is not None:
        try:
            plate_pattern(plate, confusable)
        except ValueError:
            raise FormError("plate", N_("Plate {plate}: use letters and digits, * for any run of characters and "
                                        "? for one."), plate=plate) from None
    since, until = parse_time(values["since"], "since", zone), parse_time(values["until"], "until", zone)
    if since and until and since >= until:
        raise FormError("until", N_("The end of the time range must come after its start."))
    try:
        limit = int(values["limit"] or DEFAULT_LIMIT)
    except ValueError:
        limit = 0
    if limit not in LIMITS:
        raise FormError("limit", N_("Show at most one of {limits} reads."), limits=", ".join(map(str, LIMITS)))
    area, vehicle = _area(values), values["vehicle"] or None
    if plate is None and area is None and vehicle is None and since is None:
        raise FormError("plate", N_("Give a plate, an area, a car or a start time: a search of every read is "
                                    "refused."))
    query = ReadQuery(plate, confusable, since, until, area, vehicle, limit)
    return Search(query, Searcher(account.username, case_number, reason, account.id))


async def _page(request: Request, values: dict[str, str], status: int = 200, **context: Any) -> Response:
    console = console_of(request)
    cars = await console.db.run(queries.fleet)
    return render(request, "search.html", status=status, values=values, cars=[c.id for c in cars], limits=LIMITS,
                  map_center=console.settings.map_center, map_zoom=console.settings.map_zoom, **context)


@require_role(WATCH)
async def search_page(request: Request) -> Response:
    return await _page(request, form_values({"limit": str(DEFAULT_LIMIT)}), result=None)


async def _searched(request: Request, export: str | None = None) -> tuple[Search, SearchResult] | Response:
    """The form's search, run and audited (`export`: the file its results leave in), or the form again
    with what is wrong."""
    console = console_of(request)
    values = form_values(request.state.form)
    try:
        search = parse_search(values, request.state.account, console.settings.zone)
    except FormError as exc:
        return await _page(request, values, 400, result=None, error=exc)
    return search, await console.db.run(queries.search_reads, search.query, search.searcher, export=export)


@require_role(WATCH)
async def run_search(request: Request) -> Response:
    found = await _searched(request)
    if isinstance(found, Response):
        return found
    return await _page(request, form_values(request.state.form), result=found[1])


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@require_role(WATCH)
async def export_csv(request: Request) -> Response:
    """The same search again as a CSV download; the export is its own audit entry."""
    found = await _searched(request, export="csv")
    if isinstance(found, Response):
        return found
    search, result = found
    name = _UNSAFE.sub("_", search.searcher.case_number).strip("_") or "case"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(reads_csv(result.reads, search.searcher.case_number), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="reads-{name}-{stamp}.csv"',
                             "Cache-Control": "no-store", "X-Audit-Id": str(result.audit_id)})


PAGE = Page(
    routes=(
        Route("/search", search_page, methods=["GET"]),
        Route("/search", run_search, methods=["POST"]),
        Route("/search/export", export_csv, methods=["POST"]),
    ),
    nav=(NavEntry("/search", N_("Search"), WATCH, order=30),),
)
