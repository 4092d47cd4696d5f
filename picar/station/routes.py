"""The station page's URLs on Starlette: the page's files, the event stream, the JSON API and the officer's actions.

Every route is behind `StationGuard` (security.py). GET handlers that touch the daemon or the disk are plain
functions, which Starlette runs on its worker threads; actions read their JSON body on the event loop and
run on a worker thread too, since the daemon's callbacks may block (a publish, a database write).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from picar.i18n import N_, Language, Message, cookie_language, parse_language, translator
from picar.i18n import STATIC_DIR as I18N_STATIC_DIR
from picar.i18n.page import page_catalogue
from picar.station.security import SECURITY_HEADERS, StationGuard, error_answer, json_answer
from picar.types import REJECT_REASONS

if TYPE_CHECKING:
    from picar.station.server import StationServer

log = logging.getLogger("picar.ui.server")  # the name log lines have always carried

STATIC_DIR = Path(__file__).with_name("static")
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
}
STATIC_DIRS = {"i18n.js": I18N_STATIC_DIR}  # shared with other pages; the rest are the station's own
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
MAX_BODY = 64 * 1024
MAX_NOTE = 1000
EVENT_STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",
    "Connection": "close",
}


class HttpError(Exception):
    """An error answer with a status code and a message for the page, translated when it is answered.

    `message` is a msgid (`N_("no such page {path!r}")` with `path=...`) or a Message. Text only a script or
    a technician can cause (a bad body, an image path) is left untranslated: it is its own msgid.
    """

    def __init__(self, status: int, message: Message | str, **params: Any) -> None:
        self.message = message if isinstance(message, Message) else Message.of(message, **params)
        super().__init__(str(self.message))
        self.status = status


def parse_disposition(body: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """Validate a disposition request body; returns (decision, reason, officer_note)."""
    decision = body.get("decision")
    if decision not in ("accept", "reject"):
        raise HttpError(400, N_("decision {decision!r} is not allowed; use accept or reject"), decision=decision)
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise HttpError(400, N_("note must be text"))
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise HttpError(400, N_("note is {length} characters, at most {limit} allowed"), length=len(note),
                        limit=MAX_NOTE)
    reason = body.get("reason")
    if decision == "accept":
        if body.get("confirmed") is not True:
            raise HttpError(400, N_("accept needs confirmed: true (plate and state checked by the officer)"))
        return "accept", None, note
    if reason not in REJECT_REASONS:
        raise HttpError(400, N_("reason {reason!r} is not allowed; use one of: {allowed}"), reason=reason,
                        allowed=", ".join(REJECT_REASONS))
    if reason == "other" and note is None:
        raise HttpError(400, N_("reason 'other' needs a note"))
    return "reject", reason, note


def resolve_image(image_dir: Path, rel: str) -> Path:
    """The file under `image_dir` that `rel` (already percent-decoded) names; HttpError for traversal,
    odd types or absence."""
    parts = rel.replace("\\", "/").split("/")
    if not rel or "\x00" in rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise HttpError(400, f"bad image path {rel!r}")
    base = image_dir.resolve()
    path = (base / rel).resolve()
    if not path.is_relative_to(base):
        raise HttpError(400, f"image path {rel!r} leaves the image directory")
    if path.suffix.lower() not in IMAGE_TYPES:
        raise HttpError(404, f"not an image: {rel!r}")
    if not path.is_file():
        raise HttpError(404, f"no image {rel!r}")
    return path


def _station(request: Request) -> StationServer:
    station: StationServer = request.app.state.station
    return station


def page_language(request: Request) -> Language:
    """The language of this page: asked for (?lang=), else the officer's choice (cookie), else the car's."""
    return (parse_language(request.query_params.get("lang")) or cookie_language(request.headers.get("Cookie"))
            or _station(request).language)


def _file(path: Path, ctype: str, cache: str) -> Response:
    return FileResponse(path, media_type=ctype, headers={**SECURITY_HEADERS, "Cache-Control": cache})


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object body, at most MAX_BODY bytes; an empty body is ``{}``."""
    if request.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
        raise HttpError(415, "send application/json")
    try:
        length = int(request.headers.get("Content-Length", "0"))
    except ValueError as exc:
        raise HttpError(400, "bad Content-Length") from exc
    if length > MAX_BODY:
        raise HttpError(413, f"body of {length} bytes, at most {MAX_BODY}")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise HttpError(413, f"body of more than {MAX_BODY} bytes, at most {MAX_BODY}")
    try:
        data = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HttpError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise HttpError(400, "body must be a JSON object")
    return data


async def _act(request: Request, action: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
    """Read the body, run the action on a worker thread, answer its result; unexpected failures are a 500."""
    body = await read_json(request)
    try:
        return json_answer(200, await run_in_threadpool(action, body))
    except HttpError:
        raise
    except Exception as exc:
        log.exception("station: %s failed", request.url.path)
        raise HttpError(500, N_("internal error: {error}"), error=f"{type(exc).__name__}: {exc}") from exc


# GET


async def index(request: Request) -> Response:
    return _file(STATIC_DIR / "index.html", STATIC_FILES["index.html"], "no-cache")


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_FILES:
        raise HttpError(404, N_("no such file {name!r}"), name=name)
    return _file(STATIC_DIRS.get(name, STATIC_DIR) / name, STATIC_FILES[name], "no-cache")


async def events(request: Request) -> Response:
    if request.method == "HEAD":
        raise HttpError(405, N_("the event stream needs GET"))
    return StreamingResponse(_station(request).stream(), headers=EVENT_STREAM_HEADERS)


def api_state(request: Request) -> Response:
    return json_answer(200, _station(request).state())


def api_i18n(request: Request) -> Response:
    """The page's catalogue, terms and formats in its language, and the car's own language."""
    return json_answer(200, {**page_catalogue(page_language(request)), "default": _station(request).language})


def api_k9(request: Request) -> Response:
    return json_answer(200, _station(request).need_k9().active())


def image(request: Request) -> Response:
    path = resolve_image(_station(request).image_dir, request.path_params["rel"])
    return _file(path, IMAGE_TYPES[path.suffix.lower()], "private, max-age=3600")


# POST


async def disposition(request: Request) -> Response:
    hit_id = request.path_params["hit_id"]
    return await _act(request, lambda body: _station(request).disposition(hit_id, body))


async def k9_start(request: Request) -> Response:
    return await _act(request, _station(request).k9_start)


async def k9_end(request: Request) -> Response:
    deployment_id = request.path_params["deployment_id"]
    return await _act(request, lambda body: _station(request).k9_end(deployment_id, body))


async def not_found(request: Request) -> Response:
    if request.method == "POST":
        await read_json(request)  # a bad body is reported before an unknown action, as it always was
        raise HttpError(404, N_("no such action {path!r}"), path=request.url.path)
    raise HttpError(404, N_("no such page {path!r}"), path=request.url.path)


# errors


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    text = translator(page_language(request)).message(exc.message)
    return error_answer(request.url.path, request.method, exc.status, text)


async def _starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_answer(request.url.path, request.method, exc.status_code, exc.detail)


def build_app(station: StationServer, token: str | None) -> Starlette:
    """The station's ASGI application: every route behind the token and origin checks."""
    get = ["GET"]  # Starlette answers HEAD for every GET route
    app = Starlette(
        routes=[
            Route("/", index, methods=get),
            Route("/index.html", index, methods=get),
            Route("/static/{name:path}", static, methods=get),
            Route("/events", events, methods=get),
            Route("/api/state", api_state, methods=get),
            Route("/api/k9", api_k9, methods=get),
            Route("/api/i18n", api_i18n, methods=get),
            Route("/images/{rel:path}", image, methods=get),
            Route("/api/hits/{hit_id}/disposition", disposition, methods=["POST"]),
            Route("/api/k9/start", k9_start, methods=["POST"]),
            Route("/api/k9/{deployment_id}/end", k9_end, methods=["POST"]),
            Route("/{path:path}", not_found, methods=["GET", "POST"]),
        ],
        middleware=[Middleware(StationGuard, token=token, language=station.language)],
        exception_handlers={HttpError: _http_error, HTTPException: _starlette_error},
    )
    app.state.station = station
    return app
