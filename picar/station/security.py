"""Who may use the station page, and the headers every answer carries.

With a token configured, a request needs it (``?token=`` once, which sets an HttpOnly cookie, or
``Authorization: Bearer``); without one only loopback clients that call it by a loopback name are
served. Actions (POST) from another origin are refused. `StationGuard` applies all of this as ASGI
middleware, before any route runs.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from picar.i18n import DEFAULT_LANGUAGE, N_, Language, cookie_language, translator

COOKIE = "picar_station"
COOKIE_MAX_AGE_S = 30 * 24 * 3600
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{8,200}$")
METHODS = ("GET", "HEAD", "POST")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; script-src 'self'; "
    "style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything else or not an address."""
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def is_loopback_host(host_header: str | None) -> bool:
    """True when the Host header names this machine by a loopback name or address (with any port)."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):  # [::1]:8088
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    return name == "localhost" or is_loopback(name)


def check_access(token: str | None, query: dict[str, list[str]], headers: Headers, client_host: str) -> str | None:
    """None if the request may proceed, else why not. A valid ?token= is reported as 'set-cookie'."""
    if token is None:
        return None if is_loopback(client_host) else N_("only loopback clients without a token")
    want = token.encode()
    if "token" in query and hmac.compare_digest(query["token"][0].encode(), want):
        return "set-cookie"
    auth = headers.get("Authorization", "")
    if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), want):
        return None
    for part in headers.get("Cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and hmac.compare_digest(value.encode(), want):
            return None
    return N_("token missing or wrong")


def token_cookie(token: str) -> str:
    """The Set-Cookie value that carries the token."""
    return f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={COOKIE_MAX_AGE_S}"


def answer(status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> Response:
    """A response with exactly this Content-Type and the security headers."""
    return Response(body, status_code=status, headers={"Content-Type": ctype, **SECURITY_HEADERS, **(headers or {})})


def json_answer(status: int, data: Any) -> Response:
    """A JSON response that no cache keeps."""
    return answer(status, json.dumps(data, default=str).encode(), "application/json", {"Cache-Control": "no-store"})


def error_answer(path: str, method: str, status: int, message: str) -> Response:
    """An error as the page expects it: JSON ``{"error": ...}`` for the API and actions, else a small HTML page."""
    if path.startswith("/api/") or method == "POST":
        return json_answer(status, {"error": message})
    text = html.escape(message, quote=True)
    page = f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{text}</p>"
    return answer(status, page.encode(), "text/html; charset=utf-8")


class StationGuard:
    """ASGI middleware: the token (or loopback), the token-to-cookie redirect and the same-origin rule for actions."""

    def __init__(self, app: ASGIApp, token: str | None, language: Language = DEFAULT_LANGUAGE) -> None:
        self.app = app
        self.token = token
        self.language = language  # the car's: refusals are told in the officer's language when the page set one

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = Headers(scope=scope)
        _ = translator(cookie_language(headers.get("Cookie")) or self.language)._
        response: Response | None = None
        if method not in METHODS:
            response = error_answer(path, method, 501, _("Unsupported method ({method!r})", method=method))
        else:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            client = scope.get("client")
            verdict = check_access(self.token, query, headers, client[0] if client else "")
            if verdict == "set-cookie" and method != "POST":
                # Drop the token from the address bar (and from history) once the cookie holds it.
                raw = scope.get("raw_path") or path.encode()
                location = raw.decode("latin-1") or "/"
                response = answer(303, b"", "text/plain",
                                  {"Location": location, "Set-Cookie": token_cookie(self.token or "")})
            elif self.token is None and not is_loopback_host(headers.get("Host")):
                # Without a token the page trusts loopback clients; a DNS-rebinding page reaches loopback
                # too, but under its own name in Host.
                response = error_answer(path, method, 403, _(
                    "host {host!r} refused: without a token this station answers only to localhost",
                    host=headers.get("Host", "")))
            elif verdict not in (None, "set-cookie"):
                response = error_answer(path, method, 401, _(
                    "Not authorised ({why}). Open the station link with ?token=...", why=_(verdict)))
            elif method == "POST":
                origin = headers.get("Origin")
                if origin and urlsplit(origin).netloc != headers.get("Host"):
                    response = error_answer(path, method, 403, _("cross-origin request from {origin} refused",
                                                                 origin=origin))
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)
