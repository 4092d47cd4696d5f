"""K9 deployment reports: per unit (car, dog or handler) and date range, as a printable page and as CSV
(picar.hq.exports.k9_csv). Dates are whole days in the console's time zone."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from picar.hq.console.page import HttpError, NavEntry, Page, console_of, language_of, render
from picar.hq.console.security import WATCH, require_role
from picar.hq.exports import k9_csv
from picar.hq.store import queries
from picar.hq.store.records import K9Deployment
from picar.i18n import N_, translator

FILTERS = ("since", "until", "vehicle", "dog", "handler")
DEFAULT_DAYS = 30
MAX_DAYS = 3660


def report_range(values: dict[str, str], zone: ZoneInfo, today: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first day 00:00, day after the last 00:00) in `zone`; the last DEFAULT_DAYS by default."""
    def day(name: str, default: dt.date) -> dt.date:
        if not values[name]:
            return default
        try:
            return dt.date.fromisoformat(values[name])
        except ValueError:
            raise HttpError(400, N_("{value} is not a date."), value=values[name]) from None

    last = day("until", today)
    first = day("since", last - dt.timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise HttpError(400, N_("The first day must not come after the last."))
    if (last - first).days >= MAX_DAYS:
        raise HttpError(400, N_("A report covers at most {n} days."), n=MAX_DAYS)
    start = dt.datetime.combine(first, dt.time(), zone)
    return start, dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)


async def _report(request: Request) -> tuple[dict[str, str], dt.datetime, dt.datetime, list[K9Deployment]]:
    console = console_of(request)
    values = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    zone = console.settings.zone
    since, until = report_range(values, zone, dt.datetime.now(zone).date())
    deployments = await console.db.run(queries.k9_report, since, until, vehicle=values["vehicle"] or None,
                                       dog=values["dog"] or None, handler=values["handler"] or None)
    return values, since, until, deployments


@require_role(WATCH)
async def k9_page(request: Request) -> Response:
    values, since, until, deployments = await _report(request)
    summary: dict[str, Any] = {
        "count": len(deployments),
        "hours": sum(d.duration_s or 0 for d in deployments) / 3600,
        "outcomes": Counter(d.outcome for d in deployments if d.outcome),
        "open": sum(1 for d in deployments if d.ended_at is None),
    }
    first, last = since.date(), (until - dt.timedelta(days=1)).date()
    shown = {**values, "since": first.isoformat(), "until": last.isoformat()}
    locale = translator(language_of(request)).locale
    return render(request, "k9.html", values=shown, deployments=deployments, summary=summary,
                  csv_url="/k9.csv?" + urlencode(shown), first=format_date(first, "long", locale=locale),
                  last=format_date(last, "long", locale=locale))


@require_role(WATCH)
async def k9_csv_file(request: Request) -> Response:
    values, since, until, deployments = await _report(request)
    unit = "-".join(v for v in (values["vehicle"], values["dog"], values["handler"]) if v) or "all"
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in unit)[:60]
    filename = f"k9-{name}-{since.date().isoformat()}-{(until - dt.timedelta(days=1)).date().isoformat()}.csv"
    return Response(k9_csv(deployments), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


PAGE = Page(
    routes=(Route("/k9", k9_page, methods=["GET"]), Route("/k9.csv", k9_csv_file, methods=["GET"])),
    nav=(NavEntry("/k9", N_("K9 reports"), WATCH, order=50),),
)
