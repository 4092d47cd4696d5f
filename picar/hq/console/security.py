"""Who may do what in the console, and the protections every answer carries.

Roles (docs/hq.md "Roles"):
    operator    the live fleet, hits and their evidence, acknowledging alarms, searching reads (with a case
                number and a reason, audited), K9 reports
    supervisor  all an operator may, and the watchlists: import, review, sign, publish
    auditor     the audit trail of searches, and nothing else: no reads, hits, images or positions

Sessions are Starlette's signed cookie (itsdangerous; HttpOnly, SameSite=Strict, Secure under TLS). A session
ends after `session_idle_minutes` without a request (an open console keeps it: its event stream reconnects
every few minutes), after SESSION_MAX_H in any case, at logout (its id is revoked in this process), and
at once when the account is disabled (every request reads the account). Every POST needs the session's CSRF
token (form field `csrf` or header X-CSRF-Token) and an Origin of this console; `require_role` and
`public_action` check both, and create_app refuses a POST route that neither guards.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from picar.hq.console.page import HttpError, console_of, read_form
from picar.hq.store.records import ROLES, Account
from picar.i18n import N_

OPERATOR, SUPERVISOR, AUDITOR = ROLES
WATCH = frozenset({OPERATOR, SUPERVISOR})  # the fleet, hits, alarms, search, K9 reports
PUBLISH = frozenset({SUPERVISOR})  # watchlists
AUDIT = frozenset({AUDITOR})  # the search audit trail
ANYONE = frozenset(ROLES)  # one's own account
ROLE_LABELS = {OPERATOR: N_("operator"), SUPERVISOR: N_("supervisor"), AUDITOR: N_("auditor")}

SESSION_COOKIE = "picar_hq"
SESSION_MAX_H = 12  # a shift; then log in again
SEEN_EVERY_S = 30  # the session cookie is re-signed (its idle clock restarted) at most this often
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
METHODS = ("GET", "HEAD", "POST")

Endpoint = Callable[[Request], Awaitable[Response]]


def security_headers(tile_url: str | None, tls: bool) -> dict[str, str]:
    """The headers of every answer: a CSP that allows this console's own scripts and styles only (and images
    from the tile server when one is configured), no framing, no sniffing, no referrer off the console."""
    tiles = ""
    if tile_url:
        parts = urlsplit(tile_url)
        tiles = f" {parts.scheme}://{parts.netloc}"
    headers = {
        "Content-Security-Policy": f"default-src 'self'; img-src 'self' data:{tiles}; script-src 'self'; "
        "style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
        "object-src 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",  # "no-referrer" would make a same-origin POST's Origin "null"
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if tls:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class ConsoleGuard:
    """ASGI middleware: only GET, HEAD and POST; a POST only from this console's own origin; the security
    headers on every answer."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            await Response(refusal[1], status_code=refusal[0], media_type="text/plain")(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)

    @staticmethod
    def refusal(scope: Scope) -> tuple[int, str] | None:
        method = scope["method"]
        if method not in METHODS:
            return 405, f"method {method} not allowed"
        if method == "POST":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if not origin or urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
                return 403, f"cross-origin request refused (Origin {origin!r})"
        return None


class LoginThrottle:
    """Failed logins per username and per client address: past `attempts` in `window_s`, further tries are
    refused without checking the password until the oldest failure leaves the window."""

    MAX_KEYS = 10_000

    def __init__(self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts, self.window_s, self.clock = attempts, window_s, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def wait_s(self, keys: Iterable[str]) -> float:
        """Seconds until a login may be tried for these keys; 0 when it may now."""
        now, wait = self.clock(), 0.0
        for key in keys:
            times = self._failures.get(key)
            while times and now - times[0] >= self.window_s:
                times.popleft()
            if times and len(times) >= self.attempts:
                wait = max(wait, self.window_s - (now - times[0]))
        return wait

    def failed(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._failures.setdefault(key, deque(maxlen=self.attempts)).append(self.clock())
            self._failures.move_to_end(key)
        while len(self._failures) > self.MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use): templates put it in every form as `csrf`."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = request.session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


async def check_csrf(request: Request) -> dict[str, str]:
    """Refuse (403) a POST without the session's token; returns the form (empty for a non-form body)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form = await read_form(request) if ctype in ("application/x-www-form-urlencoded", "") else {}
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD) or ""
    want = request.session.get(CSRF_FIELD)
    if not isinstance(want, str) or not hmac.compare_digest(sent.encode(), want.encode()):
        raise HttpError(403, N_("The form has expired or did not come from this console. "
                                "Reload the page and try again."))
    return form


def start_session(request: Request, account: Account) -> None:
    """A fresh session for `account` (a new id and CSRF token: nothing of the anonymous one is kept)."""
    now = int(time.time())
    request.session.clear()
    request.session.update(sid=secrets.token_urlsafe(16), user=account.username, login=now, seen=now,
                           lang=account.language, csrf=secrets.token_urlsafe(32))


def session_user(request: Request, revoked: set[str]) -> str | None:
    """The username of a live session (not revoked, not older than SESSION_MAX_H); refreshes its idle clock."""
    session = request.session
    user, sid, login = session.get("user"), session.get("sid"), session.get("login")
    if not isinstance(user, str) or not isinstance(sid, str) or not isinstance(login, int):
        return None
    now = int(time.time())
    if sid in revoked or now - login > SESSION_MAX_H * 3600:
        session.clear()
        return None
    if now - int(session.get("seen", 0)) >= SEEN_EVERY_S:
        session["seen"] = now  # re-signs the cookie: its Max-Age (the idle timeout) starts again
    return user


def require_role(*roles: frozenset[str] | str) -> Callable[[Endpoint], Endpoint]:
    """Endpoint decorator: a logged-in, enabled account with one of `roles` (role names or the sets above);
    a POST also needs the CSRF token. Without a session a page redirects to the login, an API call gets 401.
    The account is `request.state.account`, a POST's form `request.state.form`."""
    allowed: set[str] = set()
    for r in roles:
        allowed |= {r} if isinstance(r, str) else set(r)
    unknown = allowed - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            account = await console_of(request).current_account(request)
            if account is None:
                if request.method == "GET" and not _is_api(request):
                    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
                raise HttpError(401, N_("Log in first."))
            if account.role not in allowed:
                raise HttpError(403, N_("Your role ({role}) may not open this."), role=account.role)
            request.state.account = account
            if request.method == "POST":
                request.state.form = await check_csrf(request)
            return await endpoint(request)

        _mark(guarded, frozenset(allowed))
        return guarded

    return decorate


def public_action(endpoint: Endpoint) -> Endpoint:
    """A POST open without login (the login form, the language switch): still needs the CSRF token."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        request.state.form = await check_csrf(request)
        return await endpoint(request)

    _mark(guarded, frozenset())
    return guarded


def _mark(endpoint: Any, roles: frozenset[str]) -> None:
    endpoint.picar_guarded = True
    endpoint.picar_roles = roles


def is_guarded(endpoint: Any) -> bool:
    return getattr(endpoint, "picar_guarded", False) is True


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/events")) or "text/html" not in request.headers.get("accept", "")
