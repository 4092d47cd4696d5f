"""Simulated K9 remote door release on a pseudo-terminal.

    python -m hw_sim.door                      # then type: open / closed / bad (one per line)
    python -m hw_sim.door --script open@1,closed@20

prints ``PTY /dev/pts/N`` on its first line; point `picar.station.k9.DoorInput` at that device. Lines
follow docs/station.md: ``DOOR OPEN*HH`` / ``DOOR CLOSED*HH``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from hw_sim.heat_sensor import PtyLine
from picar.sources.serial_lines import with_checksum

COMMANDS = {"open": "DOOR OPEN", "closed": "DOOR CLOSED", "close": "DOOR CLOSED"}


def door_line(state: str, checksum: bool = True) -> bytes:
    """The protocol line for 'open' or 'closed'."""
    text = COMMANDS[state.lower()]
    return ((with_checksum(text) if checksum else text) + "\r\n").encode("ascii")


class DoorSim:
    """The door controller's end of the line."""

    def __init__(self, checksum: bool = True) -> None:
        self.line = PtyLine()
        self.checksum = checksum

    @property
    def path(self) -> str:
        return self.line.path

    def send(self, command: str) -> None:
        """'open', 'closed' or 'bad' (a garbled line)."""
        if command.lower() == "bad":
            self.line.write(b"DOOR AJAR\r\n")
        elif command.lower() in COMMANDS:
            self.line.write(door_line(command, self.checksum))
        else:
            raise ValueError(f"door command {command!r}: use open, closed or bad")

    def close(self) -> None:
        self.line.close()


def parse_script(text: str) -> list[tuple[float, str]]:
    """'open@1,closed@20' as [(1.0, 'open'), (20.0, 'closed')], sorted by time."""
    steps = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        command, _, at = part.partition("@")
        if command.lower() not in (*COMMANDS, "bad"):
            raise argparse.ArgumentTypeError(f"script step {part!r}: command must be open, closed or bad")
        try:
            steps.append((float(at or 0), command.lower()))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"script step {part!r}: time {at!r} is not seconds") from exc
    return sorted(steps)


def main(argv: list[str] | None = None) -> int:
    """Send door events from --script, or from stdin lines, until done or interrupted."""
    ap = argparse.ArgumentParser(prog="python -m hw_sim.door", description=__doc__.splitlines()[0])
    ap.add_argument("--script", type=parse_script, default=None, help="e.g. open@1,closed@20 (seconds)")
    ap.add_argument("--no-checksum", action="store_true")
    args = ap.parse_args(argv)
    sim = DoorSim(checksum=not args.no_checksum)
    stop = threading.Event()

    def on_term(*_: object) -> None:
        stop.set()
        if args.script is None:
            raise KeyboardInterrupt  # a read of stdin is not interrupted otherwise

    signal.signal(signal.SIGTERM, on_term)
    print(f"PTY {sim.path}", flush=True)
    try:
        if args.script is not None:
            waited = 0.0
            for at, command in args.script:
                if stop.wait(max(0.0, at - waited)):
                    break
                waited = at
                sim.send(command)
                print(f"sent {command}", flush=True)
            stop.wait(1.0)  # let the reader take the last line before the pty goes away
        else:
            for raw in sys.stdin:
                command = raw.strip()
                if not command:
                    continue
                try:
                    sim.send(command)
                    print(f"sent {command}", flush=True)
                except ValueError as exc:
                    print(exc, file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
