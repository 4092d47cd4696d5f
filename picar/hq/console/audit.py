"""The audit trail of searches, for auditors only: who searched the reads, when, for which case and why,
what they asked and how many reads they saw (exports marked). Nobody can change it: the page only reads,
and the table refuses UPDATE and DELETE (a trigger in the schema)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from picar.hq.console.page import NavEntry, Page, console_of, render
from picar.hq.console.search import FormError, parse_time
from picar.hq.console.security import AUDIT, require_role
from picar.hq.store import queries
from picar.i18n import N_

LIMIT = 500
FILTERS = ("username", "case_number", "since", "until")


@require_role(AUDIT)
async def audit_page(request: Request) -> Response:
    console = console_of(request)
    values = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    zone = console.settings.zone
    filters: dict[str, Any] = {"username": values["username"] or None, "case_number": values["case_number"] or None}
    try:
        since, until = parse_time(values["since"], "since", zone), parse_time(values["until"], "until", zone)
    except FormError as exc:
        return render(request, "audit.html", status=400, values=values, entries=[], error=exc, limit=LIMIT)
    if until is not None and len(values["until"]) == 10:
        until += dt.timedelta(days=1)  # a date alone: through the end of that day
    entries = await console.db.run(queries.search_audit, since=since, until=until, limit=LIMIT, **filters)
    return render(request, "audit.html", values=values, entries=entries, error=None, limit=LIMIT)


PAGE = Page(
    routes=(Route("/audit", audit_page, methods=["GET"]),),
    nav=(NavEntry("/audit", N_("Audit trail"), AUDIT, order=60),),
)
