"""Watchlists: import a CSV or NCIC file, review it (counts by list, every invalid row with its line, the
difference against the list in force), sign it with HQ's key and publish it to the fleet or one car; the
published versions, and which car holds which version (vehicles.watchlist_version, from the cars' status).

Operators and supervisors import and review; only supervisors publish or discard (security.PUBLISH). The
file comes as the request's raw body from static/watchlists.js (no multipart parser), with the CSRF token in
its header. The work is picar.hq.watchlists'; imports wait in picar.hq.store.drafts.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from picar.config import ConfigError, read_credentials
from picar.hq import watchlists as wl
from picar.hq.config import MqttSettings
from picar.hq.console.page import HttpError, NavEntry, Page, console_of, read_body, render, render_fragment
from picar.hq.console.security import PUBLISH, WATCH, require_role
from picar.hq.store import drafts, queries
from picar.hq.store.records import Vehicle, WatchlistVersion
from picar.i18n import N_
from picar.link.topics import FLEET

log = logging.getLogger("picar.hq.console")

MAX_UPLOAD = 64 * 2**20  # a national list of a million entries is ~60 MB as CSV
SHOWN = 200  # entries of each kind of difference listed on the review page


@dataclass(frozen=True)
class CarList:
    """A car and the list it holds, against the newest one published for it (its own or the fleet's)."""

    car: Vehicle
    published: int | None

    @property
    def state(self) -> str:
        held = self.car.watchlist_version
        if not held:
            return "none"
        if self.published is None or held >= self.published:
            return "current"
        return "behind"


def car_lists(cars: list[Vehicle], versions: list[WatchlistVersion]) -> list[CarList]:
    fleet = max((v.version for v in versions if v.target == FLEET), default=None)
    out = []
    for car in cars:
        own = max((v.version for v in versions if v.target == car.id), default=None)
        newest = max((v for v in (fleet, own) if v is not None), default=None)
        out.append(CarList(car, newest))
    return out


def broker_of(mqtt: MqttSettings | None) -> wl.Broker:
    """HQ's broker connection from the config (its `hq` credentials); HttpError when it is not configured."""
    if mqtt is None:
        raise HttpError(503, N_("Publishing needs the [mqtt] table in HQ's configuration."))
    username = password = None
    if mqtt.credentials_file is not None:
        try:
            username, password = read_credentials(mqtt.credentials_file)
        except ConfigError as exc:
            raise HttpError(503, N_("HQ's MQTT credentials cannot be read: {error}"), error=str(exc)) from None

    def text(p: Path | None) -> str | None:
        return None if p is None else str(p)

    return wl.Broker(mqtt.host, mqtt.effective_port, username, password, mqtt.tls, text(mqtt.ca_file),
                     text(mqtt.cert_file), text(mqtt.key_file), mqtt.topic_prefix)


@require_role(WATCH)
async def watchlists_page(request: Request) -> Response:
    db = console_of(request).db
    versions = await db.run(queries.watchlist_versions, 50)
    cars = await db.run(queries.fleet)
    open_drafts = await db.run(drafts.open_drafts)
    published = request.query_params.get("published")
    return render(request, "watchlists.html", versions=versions[:20], cars=car_lists(cars, versions),
                  drafts=open_drafts, published=published, formats=wl.FORMATS,
                  can_publish=request.state.account.role in PUBLISH)


@require_role(WATCH)
async def car_list_rows(request: Request) -> Response:
    """The rows of "which car holds which list" (re-read by the page when a car's status changes)."""
    db = console_of(request).db
    versions = await db.run(queries.watchlist_versions, 50)
    cars = await db.run(queries.fleet)
    return HTMLResponse(render_fragment(request, "_car_lists.html", cars=car_lists(cars, versions)),
                        headers={"Cache-Control": "no-store"})


@require_role(WATCH)
async def import_file(request: Request) -> Response:
    """The uploaded file (raw body; ?format=csv|ncic&name=FILE) reviewed and kept as a draft."""
    fmt = request.query_params.get("format", "")
    name = Path(request.query_params.get("name", "") or "upload").name[:120]
    if fmt not in wl.FORMATS:
        raise HttpError(400, N_("Choose the file's format: CSV or NCIC."))
    data = await read_body(request, MAX_UPLOAD)
    if not data:
        raise HttpError(400, N_("The file is empty."))
    review = await run_in_threadpool(wl.review_import, data, name, fmt)
    draft = await console_of(request).db.run(
        drafts.save_draft, created_by=request.state.account.username, filename=name, format=fmt,
        records=review.records, invalid=[dataclasses.asdict(row) for row in review.invalid], gave_up=review.gave_up)
    log.info("console: %s imported %s (%s): %d entries, %d invalid rows -> draft %d",
             request.state.account.username, name, fmt, len(review.records), len(review.invalid), draft.id)
    return JSONResponse({"location": f"/watchlists/drafts/{draft.id}", "entries": len(review.records),
                         "invalid": len(review.invalid)})


async def _draft_page(request: Request, draft_id: int, status: int = 200, message: str | None = None,
                      **params: str) -> Response:
    db = console_of(request).db
    draft = await db.run(drafts.draft, draft_id)
    if draft is None:
        raise HttpError(404, N_("There is no such import."))
    cars = await db.run(queries.fleet)
    target = request.query_params.get("target", FLEET)
    if target != FLEET and target not in {c.id for c in cars}:
        target = FLEET
    records = await db.run(drafts.draft_records, draft_id)
    current = await db.run(wl.in_force, target)
    diff = wl.diff(current.records, records) if current is not None and current.records is not None else None
    review = wl.ImportReview(draft.filename, draft.format, records,
                             [wl.InvalidRow(r["line"], r["message"]) for r in draft.invalid], draft.gave_up)
    settings = console_of(request).config.watchlist
    return render(request, "watchlist_draft.html", status=status, draft=draft, review=review, diff=diff,
                  current=current, target=target, cars=[c.id for c in cars], shown=SHOWN, error=message,
                  error_params=params, can_publish=request.state.account.role in PUBLISH,
                  has_key=settings.signing_key_file is not None)


def _draft_id(request: Request) -> int:
    try:
        return int(request.path_params["draft_id"])
    except ValueError:
        raise HttpError(404, N_("There is no such import.")) from None


@require_role(WATCH)
async def draft_page(request: Request) -> Response:
    return await _draft_page(request, _draft_id(request))


@require_role(PUBLISH)
async def publish(request: Request) -> Response:
    console = console_of(request)
    draft_id = _draft_id(request)
    form = request.state.form
    target = form.get("target", FLEET) or FLEET
    cars = {c.id for c in await console.db.run(queries.fleet)}
    if target != FLEET and target not in cars:
        raise HttpError(400, N_("There is no car {car}."), car=target)
    key = console.config.watchlist.signing_key_file
    if key is None:
        raise HttpError(503, N_("Publishing needs watchlist.signing_key_file in HQ's configuration."))
    broker = broker_of(console.config.mqtt)
    note = form.get("note", "").strip()[:500] or None
    try:
        version = await console.db.run(wl.publish_draft, draft_id, key=key, broker=broker,
                                       published_by=request.state.account.username, target=target, note=note)
    except wl.PublishError as exc:
        log.warning("console: publishing draft %d failed: %s", draft_id, exc)
        return await _draft_page(request, draft_id, 502, N_("Not published: {error}"), error=str(exc))
    log.info("console: %s published draft %d as version %d to %s", request.state.account.username, draft_id,
             version.version, target)
    return RedirectResponse(f"/watchlists?published={version.version}", status_code=303)


@require_role(PUBLISH)
async def discard(request: Request) -> Response:
    await console_of(request).db.run(drafts.close_draft, _draft_id(request))
    return RedirectResponse("/watchlists", status_code=303)


PAGE = Page(
    routes=(
        Route("/watchlists", watchlists_page, methods=["GET"]),
        Route("/watchlists/cars", car_list_rows, methods=["GET"]),
        Route("/watchlists/import", import_file, methods=["POST"]),
        Route("/watchlists/drafts/{draft_id}", draft_page, methods=["GET"]),
        Route("/watchlists/drafts/{draft_id}/publish", publish, methods=["POST"]),
        Route("/watchlists/drafts/{draft_id}/discard", discard, methods=["POST"]),
    ),
    nav=(NavEntry("/watchlists", N_("Watchlists"), WATCH, order=40),),
)
