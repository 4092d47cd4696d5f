"""The shipped systemd units: each runs a command the installed `picar` accepts, as its own unprivileged user,
with the hardening the install notes (systemd/README.md) promise."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = sorted((Path(__file__).resolve().parent.parent / "systemd").glob("*.service"))
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "CapabilityBoundingSet": "", "AmbientCapabilities": "", "RestrictSUIDSGID": "yes",
             "SystemCallFilter": "@system-service"}


def service(unit: Path) -> dict[str, list[str]]:
    """The [Service] section's keys and every value each is given."""
    section, out = "", {}
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith("#") and section == "Service":
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_there_are_the_cars_and_hqs_units() -> None:
    assert {u.name for u in UNITS} >= {"picar.service", "picar-hq-ingest@.service", "picar-hq-console.service"}


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_each_unit_is_unprivileged_and_hardened(unit: Path) -> None:
    s = service(unit)
    assert s.get("User", ["root"])[0] not in ("", "root"), f"{unit.name}: runs as root"
    for key, value in HARDENING.items():
        assert s.get(key) == [value], f"{unit.name}: {key}={value} expected, has {s.get(key)}"


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_each_units_command_is_one_picar_accepts(unit: Path, tmp_path: Path) -> None:
    (command,) = service(unit)["ExecStart"]
    argv = shlex.split(command.replace("%i", "1"))
    assert argv[0] == "/opt/picar/venv/bin/picar", argv
    config = argv.index("--config") + 1
    missing = tmp_path / "missing.toml"
    argv[config] = str(missing)
    # Every option is known (argparse would print its usage) and the command gets as far as its config.
    cli = "import sys; from picar.cli import main; sys.exit(main(sys.argv[1:]))"
    run = subprocess.run([sys.executable, "-c", cli, *argv[1:]], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "usage:" not in run.stderr, f"{unit.name}: {command}\n{run.stderr}"
    assert str(missing) in run.stderr, run.stderr
