"""`picar hq db upgrade|current --dsn DSN`: HQ's schema migrations from the command line (ingest also runs the
upgrade at every start)."""

from __future__ import annotations

import argparse
import sys


def db_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="picar hq db", description="HQ's PostgreSQL schema (Alembic migrations).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, text in (("upgrade", "migrate the database to the newest schema this PiCAR carries"),
                       ("current", "print the schema revision the database is at")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--dsn", required=True,
                       help="libpq connection string, e.g. 'host=/run/postgresql dbname=picar_hq user=picar'")
    args = ap.parse_args(argv)
    import psycopg
    import sqlalchemy

    from picar.hq.store import migrate

    try:
        if args.cmd == "upgrade":
            print(f"HQ database at revision {migrate.upgrade(args.dsn)} (newest: {migrate.head()})")
        else:
            print(migrate.current(args.dsn) or "empty (never migrated)")
    except (psycopg.Error, sqlalchemy.exc.DBAPIError) as exc:
        cause = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
        print(f"picar hq db: {cause}".strip(), file=sys.stderr)
        return 1
    return 0
