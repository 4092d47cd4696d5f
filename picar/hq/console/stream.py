"""`GET /events`: a page's live stream (Server-Sent Events). Every change the console hears (live.py) is
rendered by the pages that show it (Page.live), in the operator's language, and sent as a named event with
JSON data; the page's script (static/console.js) applies it. The browser never polls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from picar.hq.console.live import Change
from picar.hq.console.page import LiveRenderer, Page, console_of
from picar.hq.console.security import WATCH, require_role

HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def sse(event: str, data: object) -> bytes:
    """One Server-Sent Event (JSON has no raw newlines, so the data is one line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n".encode()


@require_role(WATCH)
async def events(request: Request) -> Response:
    console = console_of(request)
    renderers = [(kind, render) for page in console.pages for kind, render in page.live]

    async def body() -> AsyncIterator[bytes]:
        changes = console.live.changes()
        await anext(changes)  # registered before "ready": a change after the page's first fetch is not missed
        try:
            yield b"retry: 2000\n: connected\n\n"
            if console.live.listening.is_set():
                yield sse("ready", {})
            async for change in changes:
                if change is None:
                    yield b": keepalive\n\n"
                    continue
                for message in _rendered(request, change, renderers):
                    yield message
        finally:
            await changes.aclose()  # the page leaves the list at once when its browser goes

    return StreamingResponse(body(), media_type="text/event-stream", headers=HEADERS)


def _rendered(request: Request, change: Change, renderers: list[tuple[str, LiveRenderer]]) -> list[bytes]:
    out = []
    if change.kind == "resync":
        return [sse("resync", {})]
    for kind, render in renderers:
        if kind == change.kind:
            found = render(request, change)
            if found is not None:
                out.append(sse(*found))
    return out


PAGE = Page(routes=(Route("/events", events, methods=["GET"]),))
