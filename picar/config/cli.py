"""`picar check-config`: is this file valid, what will it do, what looks unintended; the example and the schema."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from picar.config import values
from picar.config.errors import ConfigError
from picar.config.load import load_config
from picar.config.models import Config, config_schema
from picar.paths import EXAMPLE_CONFIG


def config_warnings(config: Config) -> list[str]:
    """Legal but probably unintended settings, for `check-config` and the start-up log."""
    warnings: list[str] = []
    if not any(c.enabled for c in config.cameras):
        warnings.append("cameras: every camera has enabled = false; nothing will be read")
    for key, path in (("models.detector", config.models.detector), ("models.ocr", config.models.ocr)):
        if not path.is_file():
            warnings.append(f"{key}: model file not found: {path}")
    wl = config.watchlist
    if wl.require_signature and wl.public_key is None:
        warnings.append(
            "watchlist.public_key is not set while require_signature = true: every watchlist will be rejected"
        )
    if not wl.require_signature:
        warnings.append("watchlist.require_signature = false: unsigned watchlists will be accepted")
    if not config.mqtt.enabled:
        warnings.append("mqtt.enabled = false: hits are stored locally only, HQ is not told")
    elif not config.mqtt.tls:
        warnings.append("mqtt.tls = false: reads and hits travel unencrypted")
    secrets = (("mqtt.credentials_file", config.mqtt.credentials_file), ("mqtt.key_file", config.mqtt.key_file),
               ("ui.token_file", config.ui.token_file))
    for key, secret in secrets:
        if secret is not None and secret.is_file() and secret.stat().st_mode & 0o077:
            warnings.append(f"{key}: {secret} is readable by group/others (mode {secret.stat().st_mode & 0o777:o});"
                            " chmod 600 it")
    creds = config.mqtt.credentials_file
    if config.mqtt.enabled and creds is not None:
        username = values.read_credentials(creds)[0]  # already checked when the config was loaded
        if username != config.vehicle.id:
            warnings.append(f"mqtt.credentials_file: username {username!r} is not vehicle.id "
                            f"{config.vehicle.id!r}; the broker ACL lets a car write only under its own id")
    return warnings


def summary(config: Config) -> str:
    """One line describing the configuration, for logs and `check-config`."""
    cams = ", ".join(
        f"{c.name}={c.source}{'' if c.enabled else ' (disabled)'}" for c in config.cameras
    )
    gps = config.gps
    gps_text = {
        "serial": f"serial {gps.device} @ {gps.baud}",
        "gpsd": f"gpsd {gps.gpsd_host}:{gps.gpsd_port}",
        "none": "none",
    }[gps.source]
    mq = config.mqtt
    mqtt_text = f"{mq.host}:{mq.port}{' tls' if mq.tls else ''}" if mq.enabled else "disabled"
    return (
        f"vehicle {config.vehicle.id}; cameras: {cams}; gps: {gps_text}; mqtt: {mqtt_text}; "
        f"data dir: {config.storage.data_dir}"
    )


def check_config_main(argv: list[str]) -> int:
    """`picar check-config FILE`: 0 and "OK: <summary>" if the file is valid, else problems and 2.

    `--example` prints the commented example that ships in the package: an installed PiCAR has no checkout
    to copy it from (systemd/README.md). `--schema` prints the JSON schema of the file, for editors and tools.
    """
    parser = argparse.ArgumentParser(prog="picar check-config", description="Validate a PiCAR config file.")
    parser.add_argument("file", type=Path, nargs="?", help="the TOML configuration file")
    parser.add_argument("--example", action="store_true", help="print the commented example config and exit")
    parser.add_argument("--schema", action="store_true", help="print the JSON schema of the config and exit")
    args = parser.parse_args(argv)
    if args.example:
        sys.stdout.write(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
        return 0
    if args.schema:
        print(json.dumps(config_schema(), indent=2))
        return 0
    if args.file is None:
        parser.error("a config FILE is required (or --example, --schema)")
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        n = len(exc.problems)
        print(f"picar check-config: {n} problem{'s' if n != 1 else ''}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print(f"OK: {summary(config)}")
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(check_config_main(sys.argv[1:]))
