"""`picar` command line: one entry point, one sub-command per job."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

# sub-command -> (module, function, one-line help). Modules load lazily so `picar gps` does not pay
# for onnxruntime and `picar read` does not pay for paho.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("picar.daemon", "run_main", "run the vehicle daemon (systemd runs this)"),
    "check-config": ("picar.config", "check_config_main", "validate a config file and exit"),
    "gps": ("picar.sources.gps_cli", "gps_main", "print GPS position updates from a receiver"),
    "read": ("picar.tools.read", "read_main", "read the plates in still photos"),
    "eval": ("picar.tools.eval", "eval_main", "score the models on a labelled folder"),
    "bench": ("picar.tools.bench", "bench_main", "benchmark the pipeline on a recorded clip"),
    "watchlist": ("picar.watchlist.cli", "watchlist_main", "import, show and apply watchlists"),
    "hq": ("picar.hq.cli", "hq_main", "HQ tools: keys, signed watchlists, fleet monitor"),
    "k9": ("picar.station.k9_cli", "k9_main", "K9 deployment log and reports"),
    "demo": ("hw_sim.demo", "demo_main", "replay the demo drive through the whole system"),
}


def _usage() -> str:
    lines = ["usage: picar COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<13} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "`picar COMMAND --help` describes each command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        from picar.app import VERSION

        print(f"picar {VERSION}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"picar: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[name]
    handler: Callable[[list[str]], int] = getattr(importlib.import_module(module), func)
    try:
        return int(handler(args[1:]) or 0)
    except KeyboardInterrupt:
        return 130


def argparser(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"picar {prog}", description=description)


if __name__ == "__main__":
    sys.exit(main())
