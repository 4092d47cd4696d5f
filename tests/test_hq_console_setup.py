"""The console's configuration, TLS, sessions and accounts (no browser): what the config refuses and how it says
so, the console over HTTPS with secure cookies, a session that went idle or whose account was disabled,
`picar hq serve` on a bad config, `picar hq account ...`, and the rule that every POST route is guarded."""

from __future__ import annotations

import base64
import http.client
import io
import json
import ssl
import time
from pathlib import Path

import itsdangerous
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from hw_sim.broker import make_tls_files
from hw_sim.hq_web import start_console as start_demo_console
from hw_sim.postgres import Postgres
from picar.hq.config import HqConfigError, load_hq_config, parse_hq_config
from picar.hq.console.app import PAGES, create_app
from picar.hq.console.cli import account_main, serve_main
from picar.hq.console.page import Page
from picar.hq.store import accounts, connect
from tests.hq_console import ACCOUNTS, RunningConsole, console, start_console
from tests.test_hq_console import Http

__all__ = ["console"]

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "hq.example.toml"


def problems(data: dict[str, object], tmp_path: Path) -> str:
    with pytest.raises(HqConfigError) as caught:
        parse_hq_config(data, tmp_path)
    return "\n".join(caught.value.problems)


def test_the_example_config_loads_and_bad_keys_are_named(tmp_path: Path) -> None:
    config = load_hq_config(EXAMPLE)
    assert config.console.language == "ro" and config.console.bind == "127.0.0.1" and config.mqtt is not None
    assert config.console.session_secret_file == Path("/var/lib/picar/hq/console-session.key")
    db = {"dsn": "dbname=x"}
    assert "console.colour: unknown key" in problems({"database": db, "console": {"colour": "red"}}, tmp_path)
    assert "database: required table is missing" in problems({}, tmp_path)
    text = problems({"database": db, "console": {"port": 99999, "language": "de", "time_zone": "Mars/Olympus",
                                                  "tile_url": "ftp://tiles/{z}"}}, tmp_path)
    for key in ("console.port = 99999", 'console.language = "de"', 'console.time_zone = "Mars/Olympus"',
                'console.tile_url = "ftp://tiles/{z}"'):
        assert key in text
    # Off this machine only with TLS, or behind a TLS proxy said so explicitly.
    assert "give tls_cert_file and tls_key_file" in problems({"database": db, "console": {"bind": "0.0.0.0"}},
                                                              tmp_path)
    assert parse_hq_config({"database": db, "console": {"bind": "0.0.0.0", "allow_plain_http": True}},
                           tmp_path).console.bind == "0.0.0.0"
    assert "go together" in problems({"database": db, "console": {"tls_cert_file": "c.pem"}}, tmp_path)
    relative = parse_hq_config({"database": db, "console": {"tls_cert_file": "c.pem", "tls_key_file": "k.pem",
                                                            "bind": "0.0.0.0"}}, tmp_path)
    assert relative.console.tls_cert_file == tmp_path / "c.pem" and relative.console.tls


def test_serve_refuses_a_bad_config_naming_the_file_and_key(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "hq.toml"
    bad.write_text('[database]\ndsn = "dbname=x"\n[console]\nbind = "10.1.2.3"\n')
    assert serve_main(["--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "bind = '10.1.2.3' is off this machine" in err


def test_the_console_over_tls_sends_secure_cookies_and_hsts(hq_dsn: str, tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls", clients=())
    running = start_console(hq_dsn, tmp_path, tls_cert_file=tls.server_cert, tls_key_file=tls.server_key)
    try:
        assert running.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(tls.ca_file))
        conn = http.client.HTTPSConnection("127.0.0.1", running.config.console.port, context=context, timeout=10)
        conn.request("GET", "/login")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        cookie = resp.getheader("Set-Cookie") or ""
        assert cookie.startswith("picar_hq=") and "secure" in cookie.lower() and "httponly" in cookie.lower()
        assert "samesite=strict" in cookie.lower()
        assert resp.getheader("Strict-Transport-Security", "").startswith("max-age=")
        conn.close()
        plain = http.client.HTTPConnection("127.0.0.1", running.config.console.port, timeout=10)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            plain.request("GET", "/login")
            plain.getresponse().read()  # the TLS listener does not speak plain HTTP
    finally:
        running.stop()


def _forged(running: RunningConsole, session: dict[str, object], age_s: float) -> str:
    """A session cookie signed with the console's secret, as if made `age_s` ago."""

    class Then(itsdangerous.TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age_s)

    return Then(running.secret.decode()).sign(base64.b64encode(json.dumps(session).encode())).decode()


def test_an_idle_or_too_old_session_and_a_disabled_account_end(console: RunningConsole) -> None:
    http = Http(console.url)
    origin = {"Origin": console.url}
    status, _, _ = http.request("POST", "/login", {"username": "olga", "password": ACCOUNTS["olga"][0],
                                                   "csrf": http.csrf()}, origin)
    assert status == 303 and http.request("GET", "/")[0] == 200
    now = int(time.time())
    live = {"sid": "s1", "user": "olga", "login": now, "seen": now, "lang": "ro", "csrf": "t"}
    idle = console.config.console.session_idle_minutes * 60
    for cookie, opens in ((_forged(console, live, 5), True),
                          (_forged(console, live, idle + 5), False),  # idle longer than allowed
                          (_forged(console, {**live, "login": now - 13 * 3600}, 5), False)):  # past a shift
        other = Http(console.url)
        other.cookies["picar_hq"] = cookie
        assert (other.request("GET", "/")[0] == 200) is opens
    with connect(console.dsn) as conn:
        accounts.update_account(conn, "olga", disabled=True)
    status, headers, _ = http.request("GET", "/")
    assert status == 303 and headers["location"].startswith("/login")


def test_account_commands(hq_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("ion-password-1\n"))
    assert account_main(["add", "ion", "--role", "supervisor", "--language", "ru", "--dsn", hq_dsn,
                         "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert account_main(["add", "dan", "--role", "operator", "--dsn", hq_dsn, "--password-stdin"]) == 1
    assert "password: at least 10 characters" in capsys.readouterr().err
    assert account_main(["list", "--dsn", hq_dsn]) == 0
    assert "ion" in capsys.readouterr().out
    with connect(hq_dsn) as conn:
        assert accounts.authenticate(conn, "ion", "ion-password-1") is not None
    assert account_main(["disable", "ion", "--dsn", hq_dsn]) == 0
    with connect(hq_dsn) as conn:
        assert accounts.authenticate(conn, "ion", "ion-password-1") is None
    assert account_main(["enable", "ion", "--dsn", hq_dsn]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("ion-password-2\n"))
    assert account_main(["passwd", "ion", "--dsn", hq_dsn, "--password-stdin"]) == 0
    with connect(hq_dsn) as conn:
        assert accounts.authenticate(conn, "ion", "ion-password-2") is not None
    assert account_main(["list"]) == 1 and "--config" in capsys.readouterr().err


def test_a_post_route_without_role_and_csrf_checks_is_refused(hq_dsn: str, tmp_path: Path) -> None:
    async def delete_everything(request: Request) -> Response:
        return PlainTextResponse("done")

    config = parse_hq_config({"database": {"dsn": hq_dsn}}, tmp_path)
    unguarded = Page(routes=(Route("/danger", delete_everything, methods=["POST"]),))
    with pytest.raises(TypeError, match="POST /danger"):
        create_app(config, secret=b"x" * 64, pages=(*PAGES, unguarded))
    assert create_app(config, secret=b"x" * 64) is not None  # the real pages are all guarded


def test_a_database_that_does_not_answer_is_said_in_the_operators_language(postgres_server: Postgres,
                                                                          tmp_path: Path) -> None:
    gone = postgres_server.dsn("no_such_database")
    running = start_console(gone, tmp_path)
    try:
        http = Http(running.url)
        status, _, page = http.request("POST", "/login", {"username": "olga", "password": "whatever-1",
                                                          "csrf": http.csrf()}, {"Origin": running.url})
        assert status == 503 and "Baza de date a sediului nu răspunde" in page  # the console's default: ro
    finally:
        running.stop()


def test_the_demo_console_lets_its_printed_login_in(hq_dsn: str, tmp_path: Path) -> None:
    served, username, password = start_demo_console(hq_dsn, tmp_path)
    try:
        http = Http(served.url)
        status, headers, _ = http.request("POST", "/login", {"username": username, "password": password,
                                                             "csrf": http.csrf()}, {"Origin": served.url})
        assert status == 303 and headers["location"] == "/"
        assert http.request("GET", "/")[0] == 200
        assert (tmp_path / "console-session.key").stat().st_mode & 0o777 == 0o600  # made on first start
    finally:
        served.stop()
