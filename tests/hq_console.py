"""The HQ console for tests: the real app under real uvicorn (a thread, a free port) against a real PostgreSQL
(the `hq_dsn` fixture), with accounts of each role, and a Chromium logged in through the login form.

    def test_x(console: RunningConsole, chromium: Browser) -> None:
        page = login(chromium, console, "olga")          # an operator; "sam" supervisor, "ada" auditor
        page.wait_for("document.body.dataset.stream === 'open'")   # the live stream is up
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from picar.hq.config import ConsoleSettings, DatabaseSettings, HqConfig, MqttSettings, WatchlistSettings
from picar.hq.console.app import create_app
from picar.hq.console.server import ConsoleServer, uvicorn_config
from picar.hq.store import accounts, connect
from tests.browser import Browser, BrowserError, Page
from tests.waiting import wait_until

# username -> (password, role, language)
ACCOUNTS: dict[str, tuple[str, str, str]] = {
    "olga": ("operator-pass-1", "operator", "ro"),
    "sam": ("supervisor-pass-1", "supervisor", "en"),
    "ada": ("auditor-pass-1", "auditor", "en"),
}


@dataclass
class RunningConsole:
    url: str
    dsn: str
    config: HqConfig
    server: ConsoleServer
    thread: threading.Thread
    app: Any = field(repr=False)

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(15)


def start_console(dsn: str, tmp: Path, *, mqtt: MqttSettings | None = None,
                  watchlist: WatchlistSettings | None = None, **settings: Any) -> RunningConsole:
    """The console on 127.0.0.1 and a free port; `settings` override ConsoleSettings (tls files, tile_url ...);
    `mqtt` and `watchlist` are those tables of HQ's config (publishing watchlists)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = HqConfig(database=DatabaseSettings(dsn=dsn), mqtt=mqtt, watchlist=watchlist or WatchlistSettings(),
                      console=ConsoleSettings(
        bind="127.0.0.1", port=port, session_secret_file=tmp / "session.key", **settings))
    app = create_app(config, secret=secrets.token_hex(32).encode(), position_every_s=0.3)
    server = ConsoleServer(uvicorn_config(app, config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="hq-console", daemon=True)
    thread.start()
    if not wait_until(lambda: server.started or not thread.is_alive(), 20) or not server.started:
        raise RuntimeError("the console did not start")
    scheme = "https" if config.console.tls else "http"
    return RunningConsole(f"{scheme}://127.0.0.1:{port}", dsn, config, server, thread, app)


def add_accounts(dsn: str) -> None:
    with connect(dsn) as conn:
        for username, (password, role, language) in ACCOUNTS.items():
            accounts.create_account(conn, username, password, role, language)


@pytest.fixture
def console(hq_dsn: str, tmp_path: Path) -> Iterator[RunningConsole]:
    """A console with the three accounts of ACCOUNTS."""
    add_accounts(hq_dsn)
    running = start_console(hq_dsn, tmp_path)
    yield running
    running.stop()


def login(browser: Browser, console: RunningConsole, username: str, password: str | None = None,
          path: str = "/") -> Page:
    """A fresh tab logged in as `username` through the login form (real typing and clicks)."""
    browser.send("Storage.clearCookies")
    page = browser.new_page(f"{console.url}/login?next={path}")
    page.type("#username", username)
    page.type("#password", password if password is not None else ACCOUNTS[username][0])
    page.click("#login-button")
    settled = "document.readyState === 'complete' && (location.pathname !== '/login' || " \
              "!!document.getElementById('login-error'))"
    assert wait_until(lambda: _quietly(page, settled), 30), "the login form led nowhere"
    return page


def _quietly(page: Page, condition: str) -> bool:
    """The condition's value; False while the page is between two documents."""
    try:
        return bool(page.evaluate(condition))
    except BrowserError:
        return False
