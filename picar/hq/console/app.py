"""The console's ASGI application: `create_app(config)` composes the pages (PAGES), the session and guard
middleware, the database pool and the live listener.

Adding a page: a module with `PAGE = Page(routes=..., nav=..., live=...)` (page.py), listed in PAGES below.
Every POST route must be wrapped by security.require_role or security.public_action: create_app refuses
to build otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from picar.hq.config import ConsoleSettings, HqConfig
from picar.hq.console import alarms, audit, auth, fleet, hits, k9, search, stream, watchlists
from picar.hq.console.db import Database
from picar.hq.console.live import Live
from picar.hq.console.page import STATIC, HttpError, NavEntry, Page, console_of, language_of, render_fragment
from picar.hq.console.security import (
    ROLE_LABELS,
    SESSION_COOKIE,
    WATCH,
    ConsoleGuard,
    LoginThrottle,
    csrf_token,
    is_guarded,
    security_headers,
    session_user,
)
from picar.hq.store import accounts
from picar.hq.store.records import Account
from picar.i18n import N_, translator

log = logging.getLogger("picar.hq.console")

# The console's screens, in nav order within each page's own `order`. console-tools adds its modules here.
PAGES: tuple[Page, ...] = (auth.PAGE, fleet.PAGE, hits.PAGE, alarms.PAGE, stream.PAGE, search.PAGE,
                          watchlists.PAGE, k9.PAGE, audit.PAGE)
SECRET_BYTES = 32
_UNSET = object()


class Console:
    """What every request of one console shares: settings, the database pool, the live listener, the login
    throttle, the revoked sessions and the nav."""

    def __init__(self, config: HqConfig, db: Database, live: Live, pages: Sequence[Page]) -> None:
        self.config = config
        self.settings: ConsoleSettings = config.console
        self.db = db
        self.live = live
        self.pages = tuple(pages)
        self.nav: tuple[NavEntry, ...] = tuple(sorted((n for p in pages for n in p.nav), key=lambda n: n.order))
        self.throttle = LoginThrottle(self.settings.login_attempts, self.settings.login_window_s)
        self.revoked: set[str] = set()

    async def current_account(self, request: Request) -> Account | None:
        """The logged-in account of this request (read once per request), None without a live session or
        when the account is gone or disabled."""
        found = getattr(request.state, "account", _UNSET)
        if found is not _UNSET:
            return found if isinstance(found, Account) else None
        username = session_user(request, self.revoked)
        account = None if username is None else await self.db.run(accounts.get_account, username)
        if account is not None and account.disabled:
            account = None
        if account is None and username is not None:
            request.session.clear()
        request.state.account = account
        return account

    def home(self, role: str) -> str:
        """Where an account of `role` lands after login: the first nav entry it may open."""
        for entry in self.nav:
            if role in entry.roles:
                return entry.path
        return "/account"

    def context(self, request: Request) -> dict[str, Any]:
        """What every template gets: the account, its nav, the CSRF token, the language, the map's tiles."""
        account: Account | None = getattr(request.state, "account", None)
        lang = language_of(request)
        return {
            "request_path": request.url.path,
            "account": account,
            "nav": [n for n in self.nav if account is not None and account.role in n.roles],
            "csrf": csrf_token(request),
            "lang": lang,
            "tile_url": self.settings.tile_url,
            "live": account is not None and account.role in WATCH,
            "tr": translator(lang),
            "role_label": lambda role: ROLE_LABELS.get(role, role),
        }


def load_secret(path: Path) -> bytes:
    """The session-signing secret from `path`, made (random, mode 0600) when the file does not exist."""
    try:
        secret = path.read_bytes().strip()
    except FileNotFoundError:
        secret = secrets.token_hex(SECRET_BYTES).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as f:
            path.chmod(0o600)
            f.write(secret + b"\n")
        log.info("console: made a new session secret in %s", path)
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"{path}: the session secret must be at least {SECRET_BYTES} characters")
    return secret


def create_app(config: HqConfig, *, secret: bytes | None = None, pages: Sequence[Page] = PAGES,
               position_every_s: float | None = None) -> Starlette:
    """The console for `config`. `secret` signs session cookies (default: console.session_secret_file)."""
    settings = config.console
    if secret is None:
        secret = load_secret(settings.session_secret_file)
    routes: list[BaseRoute] = [Mount("/static", StaticFiles(directory=STATIC), name="static")]
    for page in pages:
        routes.extend(page.routes)
    _check_guarded(routes)
    db = Database(config.database.dsn)
    live = Live(config.database.dsn, db) if position_every_s is None else Live(config.database.dsn, db,
                                                                              position_every_s)
    console = Console(config, db, live, pages)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        live.start()
        try:
            yield
        finally:
            await live.stop()
            db.close()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(ConsoleGuard, headers=security_headers(settings.tile_url, settings.tls)),
            Middleware(SessionMiddleware, secret_key=secret.decode(), session_cookie=SESSION_COOKIE,
                       max_age=settings.session_idle_minutes * 60, same_site="strict", https_only=settings.tls),
        ],
        exception_handlers={HttpError: _http_error, HTTPException: _starlette_error,
                            psycopg.OperationalError: _database_down},
        lifespan=lifespan,
    )
    app.state.console = console
    return app


def _check_guarded(routes: Sequence[BaseRoute]) -> None:
    for route in routes:
        if isinstance(route, Route) and "POST" in (route.methods or ()) and not is_guarded(route.endpoint):
            raise TypeError(f"POST {route.path} ({route.endpoint.__name__}) is neither require_role nor "
                            "public_action: every action needs its role and CSRF checks")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return error_page(request, exc.status, exc.message, **exc.params)


async def _database_down(request: Request, exc: Exception) -> Response:
    log.error("console: %s %s: the database is not answering: %s", request.method, request.url.path, exc)
    return error_page(request, 503, N_("HQ's database is not answering. Try again in a moment."))


async def _starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: N_("There is no such page."), 405: N_("This address does not take that method.")}.get(
        exc.status_code, N_("The request was refused."))
    return error_page(request, exc.status_code, message)


def error_page(request: Request, status: int, message: str, **params: Any) -> Response:
    """The error in the request's language: a small page, or JSON for the page's own scripts."""
    text = translator(language_of(request))._(message, **params)
    if request.url.path.startswith("/api/") or request.headers.get("x-requested-with") == "picar":
        return JSONResponse({"error": text}, status_code=status, headers={"Cache-Control": "no-store"})
    body = render_fragment(request, "error.html", status=status, message=text)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


__all__ = ["PAGES", "Console", "console_of", "create_app", "load_secret"]
