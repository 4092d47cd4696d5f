"""What every page of the console is made of: its routes and nav entries (`Page`), templates rendered in the
operator's language (`render`), error answers, and bounded request bodies.

A page module (fleet.py, hits.py, ...) defines `PAGE = Page(routes=(...), nav=(NavEntry(...),))`; app.py lists
the modules. Templates live in templates/, rendered by Jinja2 with autoescaping and the gettext functions of
picar.i18n.jinja; the console adds its own filters (times in the configured zone).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from picar.i18n import LANGUAGE_COOKIE, N_, Language, cookie_language, parse_language, translator
from picar.i18n.jinja import environment
from picar.i18n.page import endonyms

if TYPE_CHECKING:
    from picar.hq.console.app import Console
    from picar.hq.console.live import Change

LiveRenderer = Callable[[Request, "Change"], "tuple[str, dict[str, Any]] | None"]

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
MAX_FORM = 64 * 1024
_LOADER = FileSystemLoader(TEMPLATES)


@dataclass(frozen=True)
class NavEntry:
    """A link in the console's header: shown to the roles that may open it, in `order`."""

    path: str
    label: str  # msgid, marked N_() where it is written
    roles: frozenset[str]
    order: int = 50


@dataclass(frozen=True)
class Page:
    """One screen (or a group of them): its routes, its nav entries, and what it sends down the live stream:
    (change kind, renderer) pairs; a renderer turns a live.Change into (event name, JSON data) or None."""

    routes: Sequence[BaseRoute]
    nav: Sequence[NavEntry] = ()
    live: Sequence[tuple[str, LiveRenderer]] = ()


class HttpError(Exception):
    """An error answer: the status and a message (a msgid, translated when shown; `params` fill it)."""

    def __init__(self, status: int, message: str, **params: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.params = params


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def language_of(request: Request) -> Language:
    """The session's language (the account's, or the one picked on the login page), else the cookie's, else
    the configured default."""
    chosen = parse_language(request.session.get("lang")) or cookie_language(request.headers.get("cookie"))
    return chosen or console_of(request).settings.language


@functools.cache
def _environment(lang: Language, zone: str) -> Environment:
    env = environment(_LOADER, lang).overlay()
    env.filters, env.globals = dict(env.filters), dict(env.globals)  # an overlay shares them with its parent
    tr = translator(lang)
    tz = ZoneInfo(zone)

    def when(value: dt.datetime | None, width: str = "medium") -> str:
        return "" if value is None else tr.datetime(value.timestamp(), width, tz)

    def clock(value: dt.datetime | None) -> str:
        return "" if value is None else tr.time(value.timestamp(), tz)

    env.filters.update(when=when, clock=clock, iso=lambda v: "" if v is None else v.isoformat(),
                       tojson_attr=lambda v: json.dumps(v, separators=(",", ":")))
    env.globals.update(endonyms=endonyms(), LANGUAGE_COOKIE=LANGUAGE_COOKIE)
    return env


def template_env(lang: Language, zone: str) -> Environment:
    """The console's templates in `lang`, times shown in `zone`."""
    return _environment(lang, zone)


def render_fragment(request: Request, template: str, lang: Language | None = None, **context: Any) -> str:
    """A template rendered to text (a part of a page, or a live update), in the request's language."""
    console = console_of(request)
    env = template_env(lang or language_of(request), console.settings.time_zone)
    return env.get_template(template).render(**console.context(request), **context)


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """A whole page: the template with the base context (account, nav, CSRF token, alarms)."""
    return HTMLResponse(render_fragment(request, template, **context), status_code=status,
                        headers={"Cache-Control": "no-store"})


async def read_form(request: Request) -> dict[str, str]:
    """The request's urlencoded form (at most MAX_FORM bytes), the last value of each field."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise HttpError(415, N_("Send the form as application/x-www-form-urlencoded."))
    raw = await read_body(request, MAX_FORM)
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise HttpError(400, N_("The form is not UTF-8.")) from None


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused (413) past `limit` bytes; cached on the request for a second reader."""
    cached: bytes | None = getattr(request.state, "body", None)
    if cached is not None:
        return cached
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise HttpError(413, N_("The request is too large (at most {limit} bytes)."), limit=limit)
    request.state.body = raw
    return raw
