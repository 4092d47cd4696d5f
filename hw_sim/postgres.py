"""A real PostgreSQL server for the demo, the tests and the load generator, as hw_sim/broker.py is for Mosquitto.

``Postgres`` runs ``initdb`` into a fresh temporary directory and ``pg_ctl start``s the server on a free TCP
port of 127.0.0.1, with its unix socket in that directory; ``stop()`` shuts it down and removes the
directory. Password-less (trust) access for one superuser, ``picar``: the server listens on loopback only.
The binaries come from ``pg_config --bindir`` (Debian: /usr/lib/postgresql/NN/bin), else the newest
/usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root, so under root the server runs as the
``postgres`` system user (the Debian package creates it) and its directory belongs to that user.

    from hw_sim.postgres import Postgres
    with Postgres() as pg:
        dsn = pg.create_database("picar_test")   # "host=/tmp/picar-pg-... port=... dbname=picar_test user=picar"
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from hw_sim.broker import free_port

SUPERUSER = "picar"
SERVICE_USER = "postgres"  # who runs the server when we are root


def bindir() -> Path:
    """Where initdb, pg_ctl and postgres live; RuntimeError naming what to install when nowhere."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
                         key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for path in candidates:
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package "
                       "`postgresql` (scripts/system-packages.txt)")


class Postgres:
    """One PostgreSQL server owned by a test or the demo. Use as a context manager or start()/stop().

    ``fsync=False`` trades crash safety for speed (a test that never kills the server may take it);
    the default keeps PostgreSQL's durable commits, as at HQ.
    """

    def __init__(self, *, fsync: bool = True, port: int | None = None, keep: bool = False,
                 settings: dict[str, str] | None = None, workdir: Path | None = None) -> None:
        """``workdir``: a directory of the caller's to keep the server in (kept on stop; a server
        initialised there before is started again with its data) instead of a fresh one under /tmp."""
        self.bindir = bindir()
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.fsync = fsync
        self.keep = keep or workdir is not None  # leave the directory behind on stop (to look at the log)
        self.settings = dict(settings or {})
        self._as_service_user = os.geteuid() == 0
        # A fresh directory of its own under /tmp, not the caller's (pytest's tmp_path is 0700 root and the
        # `postgres` user could not enter it); unix socket paths must also stay short (107 bytes).
        if workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="picar-pg-"))
        else:
            self.workdir = Path(workdir).resolve()
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.datadir = self.workdir / "data"
        self.socket_dir = self.workdir
        self.log_path = self.workdir / "postgres.log"
        if self._as_service_user:
            user = pwd.getpwnam(SERVICE_USER)
            os.chown(self.workdir, user.pw_uid, user.pw_gid)
        self._initialised = (self.datadir / "PG_VERSION").is_file()
        self._running = False

    # ---- lifecycle -----------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> Postgres:
        """initdb (the first time) and start the server; returns once it accepts connections."""
        if not self._initialised:
            self._run(["initdb", "-D", str(self.datadir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                       "--locale=C", *([] if self.fsync else ["--no-sync"])], timeout)
            self._initialised = True
        options = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "on" if self.fsync else "off",
            "max_connections": "200",
            "log_min_messages": "warning",
            **self.settings,
        }
        opts = " ".join(f"-c {k}={v}" for k, v in options.items())
        for attempt in range(3):
            try:
                self._run(["pg_ctl", "-D", str(self.datadir), "-l", str(self.log_path), "-o", opts, "-w",
                           "-t", str(int(timeout)), "start"], timeout + 10)
                break
            except RuntimeError:
                if attempt == 2 or "Address already in use" not in self.log_text():
                    raise
                self.port = free_port()  # someone took the port between choosing and binding
                opts = opts.replace(f"port={options['port']}", f"port={self.port}")
                options["port"] = str(self.port)
        self._running = True
        return self

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """Shut the server down (``fast``: roll back open transactions, checkpoint) and remove its directory
        unless ``keep``. A server an earlier process left running in ``workdir`` is stopped too."""
        if self._running or (self.datadir / "postmaster.pid").is_file():
            try:
                self._run(["pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", str(int(timeout)), "stop"],
                          timeout + 10)
            finally:
                self._running = False
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop("immediate" if exc[0] is not None else "fast")

    # ---- connecting ----------------------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq connection string (psycopg's, and `picar hq ... --dsn`'s) over the unix socket."""
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={SUPERUSER}"

    def tcp_dsn(self, dbname: str = "postgres") -> str:
        """The same over TCP on 127.0.0.1."""
        return f"host={self.host} port={self.port} dbname={dbname} user={SUPERUSER}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE ``name`` (optionally as a copy of ``template``); returns its DSN."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template is not None:
                query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
            conn.execute(query)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # ---- internals -----------------------------------------------------------------------------------

    def _run(self, argv: list[str], timeout: float) -> None:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        kwargs: dict[str, object] = {}
        if self._as_service_user:
            kwargs = {"user": SERVICE_USER, "group": SERVICE_USER, "extra_groups": []}
        started = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.workdir,
                                  check=False, **kwargs)  # type: ignore[call-overload]
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{argv[0]} did not finish within {timeout:.0f} s:\n{self.log_text()[-3000:]}") \
                from exc
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed (rc {proc.returncode}, {time.monotonic() - started:.1f} s): "
                f"{proc.stderr.strip()[-2000:]}\n{self.log_text()[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    """`python -m hw_sim.postgres start|stop --dir DIR`: a server kept in DIR for long measurements (prints its
    DSN), e.g. the 10-million-read search benchmark of docs/scale.md."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m hw_sim.postgres")
    ap.add_argument("action", choices=("start", "stop"))
    ap.add_argument("--dir", type=Path, required=True, help="the server's directory (data, socket, log)")
    ap.add_argument("--port", type=int, help="TCP port (default: a free one; the same one for a restart)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a server setting")
    args = ap.parse_args(argv)
    port_file = args.dir / "port"
    port = args.port or (int(port_file.read_text()) if port_file.is_file() else None)
    settings = dict(item.split("=", 1) for item in args.set)
    pg = Postgres(workdir=args.dir, port=port, settings=settings)
    if args.action == "stop":
        pg.stop()
        return 0
    pg.start()
    port_file.write_text(str(pg.port))
    print(pg.dsn("postgres"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
