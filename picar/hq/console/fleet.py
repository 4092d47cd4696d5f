"""The live fleet: every car online or offline, its last position on the map, its status, backlog and watchlist
version. The map (static/map.js) draws the basemap that ships with HQ (picar/hq/basemap, Natural Earth) and,
when configured, the operator's tile server; each car's marker comes from its table row's data attributes,
so the table and the map never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from picar.hq.console import basemap as basemaps
from picar.hq.console.live import Change
from picar.hq.console.page import HttpError, NavEntry, Page, console_of, language_of, render, render_fragment
from picar.hq.console.security import WATCH, require_role
from picar.hq.store import queries
from picar.hq.store.records import Vehicle
from picar.i18n import N_

# Why a car went offline, as its last will or its clean stop says (picar/link/mqtt.py); others are shown as sent.
OFFLINE_REASONS = {"connection lost": N_("connection lost"), "shutdown": N_("switched off")}


@dataclass(frozen=True)
class CarView:
    """What a car's row shows, from its Vehicle record (status is the car's own last status message)."""

    car: Vehicle
    lat: float | None
    lon: float | None
    cameras: list[dict[str, Any]]
    gps_fix: str | None
    reads_per_min: float | None
    storage_full: bool
    watchlist_problem: str | None
    offline_reason: str | None


def car_view(car: Vehicle) -> CarView:
    status = car.status if isinstance(car.status, dict) else {}
    gps = _table(status.get("gps"))
    lat, lon = car.last_lat, car.last_lon
    if lat is None or lon is None:  # no position message yet: the status's own fix
        lat, lon = _number(gps.get("lat")), _number(gps.get("lon"))
    cameras = [c for c in status.get("cameras", []) if isinstance(c, dict)] if isinstance(
        status.get("cameras"), list) else []
    storage = _table(status.get("storage"))
    problem = status.get("watchlist_problem")
    reason = status.get("reason") if not car.online else None
    if isinstance(reason, str):
        reason = OFFLINE_REASONS.get(reason, reason)
    return CarView(car, lat, lon, cameras, gps.get("fix") if isinstance(gps.get("fix"), str) else None,
                   _number(status.get("reads_per_min")), storage.get("full") is True,
                   problem if isinstance(problem, str) else None, reason if isinstance(reason, str) else None)


def _table(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@require_role(WATCH)
async def fleet_page(request: Request) -> Response:
    console = console_of(request)
    cars = await console.db.run(queries.fleet)
    return render(request, "fleet.html", cars=[car_view(c) for c in cars], map_center=console.settings.map_center,
                  map_zoom=console.settings.map_zoom)


@require_role(WATCH)
async def fleet_rows(request: Request) -> Response:
    """The table's rows (a page re-reads them after its stream reconnects)."""
    cars = await console_of(request).db.run(queries.fleet)
    return HTMLResponse(render_fragment(request, "_cars.html", cars=[car_view(c) for c in cars]),
                        headers={"Cache-Control": "no-store"})


@require_role(WATCH)
async def basemap(request: Request) -> Response:
    """A basemap file, its places named in the operator's language."""
    name = request.path_params["name"]
    if name not in basemaps.FILES:
        raise HttpError(404, N_("There is no such page."))
    body = await run_in_threadpool(basemaps.labelled, name, language_of(request))
    return Response(body, media_type="application/geo+json", headers={"Cache-Control": "private, max-age=3600"})


def car_changed(request: Request, change: Change) -> tuple[str, dict[str, Any]] | None:
    car = change.record
    if not isinstance(car, Vehicle):
        return None
    html = render_fragment(request, "_car.html", c=car_view(car))
    return "car", {"id": car.id, "html": html}


PAGE = Page(
    routes=(
        Route("/", fleet_page, methods=["GET"]),
        Route("/fleet/rows", fleet_rows, methods=["GET"]),
        Route("/basemap/{name}", basemap, methods=["GET"]),
    ),
    nav=(NavEntry("/", N_("Fleet"), WATCH, order=10),),
    live=(("status", car_changed),),
)
