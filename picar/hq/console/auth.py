"""Logging in and out, the language switch, and one's own account (language and password)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from picar.hq.console.page import HttpError, Page, console_of, language_of, render
from picar.hq.console.security import ANYONE, public_action, require_role, start_session
from picar.hq.store import accounts
from picar.i18n import LANGUAGE_COOKIE, N_, parse_language

log = logging.getLogger("picar.hq.console")

MAX_FIELD = 200


def local_path(value: str | None, default: str) -> str:
    """`value` if it is a path on this console (never another site: no scheme, no //host), else `default`."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")) and len(value) < 500:
        return value
    return default


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def login_page(request: Request) -> Response:
    console = console_of(request)
    account = await console.current_account(request)
    if account is not None:
        return RedirectResponse(console.home(account.role), status_code=303)
    return render(request, "login.html", next=local_path(request.query_params.get("next"), ""), error=None,
                  username="")


@public_action
async def login(request: Request) -> Response:
    console = console_of(request)
    form = request.state.form
    username = form.get("username", "").strip()[:MAX_FIELD]
    password = form.get("password", "")[:MAX_FIELD]
    keys = [f"user:{username.lower()}", f"addr:{_client(request)}"]
    wait = console.throttle.wait_s(keys)
    if wait > 0:
        log.warning("console: login for %r from %s refused: too many failures", username, _client(request))
        return render(request, "login.html", status=429, next=form.get("next", ""), username=username,
                      error=(N_("Too many failed logins. Try again in {minutes} min."),
                             {"minutes": max(1, round(wait / 60))}))
    account = await console.db.run(accounts.authenticate, username, password) if username and password else None
    if account is None:
        console.throttle.failed(keys)
        log.warning("console: failed login for %r from %s", username, _client(request))
        return render(request, "login.html", status=401, next=form.get("next", ""), username=username,
                      error=(N_("Wrong username or password, or the account is disabled."), {}))
    console.throttle.succeeded(keys[0])
    start_session(request, account)
    log.info("console: %s (%s) logged in from %s", account.username, account.role, _client(request))
    return RedirectResponse(local_path(form.get("next"), console.home(account.role)), status_code=303)


@require_role(ANYONE)
async def logout(request: Request) -> Response:
    sid = request.session.get("sid")
    if isinstance(sid, str):
        console_of(request).revoked.add(sid)
    lang = language_of(request)
    request.session.clear()
    request.session["lang"] = lang  # the login page stays in the operator's language
    return RedirectResponse("/login", status_code=303)


@public_action
async def switch_language(request: Request) -> Response:
    """The language picked in the header: this session's, the account's if logged in, and the browser's cookie."""
    form = request.state.form
    lang = parse_language(form.get("lang"))
    if lang is None:
        raise HttpError(400, N_("Unknown language {lang!r}."), lang=form.get("lang", "")[:20])
    console = console_of(request)
    account = await console.current_account(request)
    if account is not None:
        await console.db.run(accounts.update_account, account.username, language=lang)
    request.session["lang"] = lang
    response = RedirectResponse(local_path(form.get("next"), "/"), status_code=303)
    response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict",
                        secure=console.settings.tls)
    return response


@require_role(ANYONE)
async def account_page(request: Request) -> Response:
    return render(request, "account.html", message=None, error=None)


@require_role(ANYONE)
async def change_password(request: Request) -> Response:
    console = console_of(request)
    form, account = request.state.form, request.state.account
    current, new, again = (form.get(k, "")[:MAX_FIELD] for k in ("current", "new", "again"))
    if await console.db.run(accounts.authenticate, account.username, current) is None:
        return render(request, "account.html", status=400, message=None,
                      error=(N_("The current password is wrong."), {}))
    if new != again:
        return render(request, "account.html", status=400, message=None,
                      error=(N_("The two new passwords differ."), {}))
    if len(new) < accounts.MIN_PASSWORD:
        return render(request, "account.html", status=400, message=None,
                      error=(N_("A password needs at least {n} characters."), {"n": accounts.MIN_PASSWORD}))
    await console.db.run(accounts.set_password, account.username, new)
    log.info("console: %s changed their password", account.username)
    return render(request, "account.html", message=N_("Password changed."), error=None)


PAGE = Page(routes=(
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/language", switch_language, methods=["POST"]),
    Route("/account", account_page, methods=["GET"]),
    Route("/account/password", change_password, methods=["POST"]),
))
