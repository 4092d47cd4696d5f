"""`picar hq ingest`: one ingest worker, from a config file (config/hq.example.toml) and/or options, until
SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

STATS_EVERY_S = 60.0


def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="picar hq ingest",
                                 description="Store the fleet's messages in HQ's database (docs/hq.md).")
    ap.add_argument("--config", type=Path, help="HQ config file (keys and defaults: config/hq.example.toml)")
    ap.add_argument("--dsn", help="database.dsn: libpq connection string of HQ's PostgreSQL")
    ap.add_argument("--host", help="mqtt.host")
    ap.add_argument("--port", type=int, help="mqtt.port")
    ap.add_argument("--tls", action=argparse.BooleanOptionalAction, default=None, help="mqtt.tls")
    ap.add_argument("--ca", dest="ca_file", help="mqtt.ca_file")
    ap.add_argument("--cert", dest="cert_file", help="mqtt.cert_file")
    ap.add_argument("--keyfile", dest="key_file", help="mqtt.key_file")
    ap.add_argument("--credentials", dest="credentials_file", help="mqtt.credentials_file (username=, password=)")
    ap.add_argument("--prefix", dest="topic_prefix", help="mqtt.topic_prefix")
    ap.add_argument("--protocol", choices=["5", "3.1.1"], help="mqtt.protocol")
    ap.add_argument("--worker", type=int, help="ingest.worker: this worker's number (its MQTT client id)")
    ap.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return ap.parse_args(argv)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The config file's tables with the command line's options on top."""
    data: dict[str, Any] = {}
    if args.config is not None:
        with args.config.open("rb") as fh:
            data = tomllib.load(fh)
    sections: dict[str, dict[str, Any]] = {k: dict(v) for k, v in data.items() if isinstance(v, dict)}
    data.update(sections)
    for section, keys in (("database", ("dsn",)), ("ingest", ("worker",)),
                          ("mqtt", ("host", "port", "tls", "ca_file", "cert_file", "key_file", "credentials_file",
                                    "topic_prefix", "protocol"))):
        for key in keys:
            value = getattr(args, key)
            if value is not None:
                data.setdefault(section, {})[key] = value
    return data


def ingest_main(argv: list[str]) -> int:
    args = _args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))  # we log the migration
    from picar.config import ConfigError, read_credentials
    from picar.hq.config import parse_hq_config

    try:
        base = args.config.absolute().parent if args.config else Path.cwd()
        cfg = parse_hq_config(settings(args), base)
        user = password = None
        if cfg.mqtt.credentials_file is not None:
            user, password = read_credentials(cfg.mqtt.credentials_file)
    except (ConfigError, OSError, tomllib.TOMLDecodeError) as exc:
        lines = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
        print("picar hq ingest: bad configuration:\n  " + "\n  ".join(lines), file=sys.stderr)
        return 2
    from picar.hq.ingest.worker import IngestWorker

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker = IngestWorker(cfg, username=user, password=password)
    try:
        worker.start()
    except Exception as exc:  # the database or the schema: say which, do not dump a trace on the operator
        print(f"picar hq ingest: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    log = logging.getLogger("picar.hq")
    while not stop.wait(STATS_EVERY_S):
        log.info("ingest %s: %s", worker.client_id, worker.stats())
    worker.stop()
    return 0
