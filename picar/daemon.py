"""`picar run --config FILE`: start the daemon under systemd or by hand."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from picar.config import ConfigError, config_warnings, load_config
from picar.link.outbox import OutboxError
from picar.vision.session import ModelError

log = logging.getLogger("picar")


def run_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="picar run", description="Run the vehicle daemon.")
    ap.add_argument("--config", "-c", type=Path, default=Path("/etc/picar/picar.toml"))
    ap.add_argument("--exit-when-done", action="store_true",
                    help="stop when every camera is a recording that has ended (simulator, demo, tests)")
    args = ap.parse_args(argv)
    # Reads, hits, images and the outbox are for the picar user (and its group) only, with or without
    # systemd's UMask=0027.
    os.umask(0o027)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"picar: the config is not valid, not starting:\n{exc}", file=sys.stderr)
        return 2
    from picar.app import Daemon, install_signal_handlers, setup_logging

    setup_logging(cfg.logging.level, cfg.logging.audit_file)
    for w in config_warnings(cfg):
        log.warning("config: %s", w)
    daemon = Daemon(cfg, exit_when_done=args.exit_when_done)
    install_signal_handlers(daemon)
    try:
        daemon.start()
    except (ModelError, OSError, ValueError, OutboxError) as exc:
        log.error("cannot start: %s", exc)
        daemon.stop()
        return 3
    return daemon.run()
