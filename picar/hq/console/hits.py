"""Hits as they arrive: the plate and how it matched, the list and priority, the evidence images (served only
to a logged-in operator or supervisor), and the officer's disposition when the car sends it."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from picar.hq.console.live import Change
from picar.hq.console.page import HttpError, NavEntry, Page, console_of, render, render_fragment
from picar.hq.console.security import WATCH, require_role
from picar.hq.store import queries
from picar.hq.store.records import Hit
from picar.i18n import N_

log = logging.getLogger("picar.hq.console")

RECENT = 50
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


@require_role(WATCH)
async def hits_page(request: Request) -> Response:
    hits = await console_of(request).db.run(queries.recent_hits, RECENT)
    return render(request, "hits.html", hits=hits)


@require_role(WATCH)
async def hit_cards(request: Request) -> Response:
    """The list's cards (a page re-reads them after its stream reconnects)."""
    hits = await console_of(request).db.run(queries.recent_hits, RECENT)
    return HTMLResponse(render_fragment(request, "_hits.html", hits=hits), headers={"Cache-Control": "no-store"})


@require_role(WATCH)
async def image(request: Request) -> Response:
    """A hit's evidence image; each view is logged with who saw it."""
    event_id = request.path_params["event_id"]
    found = await console_of(request).db.run(queries.image, event_id)
    if found is None or found.ref.content_type not in IMAGE_TYPES:
        raise HttpError(404, N_("There is no such image."))
    log.info("console: %s viewed image %s of hit %s", request.state.account.username, event_id,
             found.ref.hit_event_id)
    return Response(found.data, media_type=found.ref.content_type,
                    headers={"Cache-Control": "private, max-age=3600"})


def hit_changed(request: Request, change: Change) -> tuple[str, dict[str, Any]] | None:
    hit = change.record
    if change.kind not in ("hit", "image", "disposition") or not isinstance(hit, Hit):
        return None
    return "hit", {"id": hit.event_id, "html": render_fragment(request, "_hit.html", h=hit)}


PAGE = Page(
    routes=(
        Route("/hits", hits_page, methods=["GET"]),
        Route("/hits/cards", hit_cards, methods=["GET"]),
        Route("/images/{event_id}", image, methods=["GET"]),
    ),
    nav=(NavEntry("/hits", N_("Hits"), WATCH, order=20),),
    live=(("hit", hit_changed), ("image", hit_changed), ("disposition", hit_changed)),
)
