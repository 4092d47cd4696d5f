"""`picar hq serve` and `picar hq account ...`: the console and its accounts.

    picar hq serve --config hq.toml
    picar hq account add USER --role operator|supervisor|auditor [--language ro|ru|en] --config hq.toml
    picar hq account list|disable USER|enable USER|passwd USER --config hq.toml   (or --dsn DSN)

A password is read from the terminal (twice), or from the first line of standard input with
--password-stdin (scripts, the demo). Accounts are disabled, not deleted: the audit trail names them.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path

import psycopg

from picar.hq.config import HqConfig, HqConfigError, load_hq_config
from picar.hq.store import accounts, connect
from picar.hq.store.records import LANGUAGES, ROLES


def _err(msg: str) -> int:
    print(f"picar hq: {msg}", file=sys.stderr)
    return 1


def serve_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="picar hq serve", description="HQ's web console for operators.")
    ap.add_argument("--config", required=True, type=Path, help="HQ's TOML file (config/hq.example.toml)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_hq_config(args.config)
    except HqConfigError as exc:
        return _err(str(exc))
    from picar.hq.console.app import create_app
    from picar.hq.console.server import serve

    try:
        app = create_app(config)
    except (OSError, ValueError) as exc:
        return _err(str(exc))
    serve(app, config)
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != first:
        raise accounts.AccountError("password: the two entries differ")
    return first


def _dsn(args: argparse.Namespace) -> str:
    if args.dsn:
        return str(args.dsn)
    if args.config is None:
        raise HqConfigError(["give --config HQ.toml or --dsn DSN"])
    config: HqConfig = load_hq_config(args.config)
    return config.database.dsn


def account_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="picar hq account", description="The console's accounts.")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--config", type=Path, help="HQ's TOML file ([database] dsn)")
    where.add_argument("--dsn", help="PostgreSQL DSN instead of --config")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("add", parents=[where], help="a new account")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--language", default="ro", choices=LANGUAGES)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sub.add_parser("list", parents=[where], help="every account")
    for name, text in (("disable", "refuse its logins (its sessions end at once)"), ("enable", "allow it again")):
        p = sub.add_parser(name, parents=[where], help=text)
        p.add_argument("username")
    p = sub.add_parser("passwd", parents=[where], help="set a new password")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true")
    args = ap.parse_args(argv)
    try:
        dsn = _dsn(args)
        with connect(dsn) as conn:
            if args.cmd == "add":
                acc = accounts.create_account(conn, args.username, _password(args), args.role, args.language)
                print(f"account {acc.username}: {acc.role}, language {acc.language}")
            elif args.cmd == "list":
                for a in accounts.list_accounts(conn):
                    last = a.last_login_at.isoformat(timespec="seconds") if a.last_login_at else "never"
                    state = "disabled" if a.disabled else "enabled"
                    print(f"{a.username:<24} {a.role:<10} {a.language}  {state:<8}  last login {last}")
            elif args.cmd in ("disable", "enable"):
                accounts.update_account(conn, args.username, disabled=args.cmd == "disable")
                print(f"account {args.username}: {args.cmd}d")
            else:
                accounts.set_password(conn, args.username, _password(args))
                print(f"account {args.username}: password changed")
    except HqConfigError as exc:
        return _err(str(exc))
    except accounts.AccountError as exc:
        return _err(str(exc))
    except (OSError, psycopg.Error) as exc:
        return _err(f"database: {exc}")
    return 0
