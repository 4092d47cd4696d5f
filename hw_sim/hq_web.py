"""HQ's web console for the demo and the simulator: served on a thread next to HQ's PostgreSQL, with a demo
operator account, so `picar demo` can print a URL and a login.

    served, username, password = start_console(dsn, workdir)   # then served.url; served.stop() at the end
"""

from __future__ import annotations

from pathlib import Path

from picar.hq.config import ConsoleSettings, DatabaseSettings, HqConfig
from picar.hq.console.app import create_app
from picar.hq.console.server import ConsoleThread
from picar.hq.store import accounts, connect

DEMO_USER = "demo"
DEMO_PASSWORD = "picar-demo-hq"  # the demo's throwaway database only; never a real HQ's


def start_console(dsn: str, workdir: Path, *, port: int = 0, language: str = "ro") -> tuple[ConsoleThread, str, str]:
    """The console on 127.0.0.1 (`port` 0: a free one) for HQ's database `dsn`, with the demo operator account
    (made if missing); returns the running console, the username and the password."""
    with connect(dsn) as conn:
        if accounts.get_account(conn, DEMO_USER) is None:
            accounts.create_account(conn, DEMO_USER, DEMO_PASSWORD, "operator", language)
    config = HqConfig(database=DatabaseSettings(dsn=dsn), console=ConsoleSettings(
        bind="127.0.0.1", port=port, session_secret_file=workdir / "console-session.key", language=language))
    return ConsoleThread(create_app(config), config), DEMO_USER, DEMO_PASSWORD
