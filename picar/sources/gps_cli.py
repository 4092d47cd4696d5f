"""`picar gps`: print a receiver's position updates, as text or one JSON object per epoch (`--json`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable

from picar.isotime import utc_iso
from picar.sources.gps import open_serial, pump_serial
from picar.sources.gpsd import GpsdDecoder, open_gpsd, pump_gpsd
from picar.sources.nmea import Epoch, NmeaAssembler


def _readable(epoch: Epoch) -> str:
    when = "time unknown" if epoch.time is None else utc_iso(epoch.time)
    sats = "-" if epoch.sats is None else epoch.sats
    tail = f"sats {sats}  hdop {'-' if epoch.hdop is None else epoch.hdop}"
    fix = epoch.fix
    if fix is None:
        return f"{when}  no fix  {tail}"
    speed = "-" if fix.speed_kmh is None else f"{fix.speed_kmh:.1f}"
    heading = "-" if fix.heading_deg is None else f"{fix.heading_deg:.1f}"
    return f"{when}  {fix.lat:.7f},{fix.lon:.7f}  {fix.fix}  {speed} km/h  {heading} deg  {tail}"


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def gps_main(argv: list[str]) -> int:
    """`picar gps`: print the receiver's epochs; 0 when the device goes away, 2 if it cannot be opened."""
    ap = argparse.ArgumentParser(prog="picar gps", description="Show what the GPS receiver reports.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--device", help="serial device (or a recorded NMEA file), e.g. /dev/ttyACM0")
    src.add_argument("--gpsd", type=_host_port, metavar="HOST:PORT", help="read from gpsd instead")
    ap.add_argument("--baud", type=int, default=9600, help="serial baud rate (default 9600)")
    ap.add_argument("--json", action="store_true", help="one JSON object per epoch (fix none: null lat/lon)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="picar gps: %(message)s")

    def emit(epoch: Epoch) -> None:
        line = json.dumps(epoch.to_json()) if args.json else _readable(epoch)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    stop = threading.Event()
    try:
        if args.gpsd:
            host, port = args.gpsd
            return _gpsd_main(host, port, emit, stop)
        return _device_main(args.device, args.baud, emit, stop)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # keep interpreter exit quiet
        return 0


def _device_main(device: str, baud: int, emit: Callable[[Epoch], None], stop: threading.Event) -> int:
    asm = NmeaAssembler()
    if os.path.isfile(device):
        with open(device, "rb") as f:
            for line in f:
                for epoch in asm.feed_epochs(line):
                    emit(epoch)
    else:
        try:
            port = open_serial(device, baud)
        except (OSError, ValueError) as e:
            print(f"picar gps: cannot open {device}: {e}", file=sys.stderr)
            return 2
        try:
            pump_serial(port, device, asm, emit, stop)
        except OSError as e:
            print(f"picar gps: {device} went away: {e}", file=sys.stderr)
        finally:
            port.close()
    for epoch in asm.flush():
        emit(epoch)
    _report_counters(asm.counters.as_dict())
    return 0


def _gpsd_main(host: str, port: int, emit: Callable[[Epoch], None], stop: threading.Event) -> int:
    try:
        sock = open_gpsd(host, port)
    except OSError as e:
        print(f"picar gps: cannot connect to gpsd at {host}:{port}: {e}", file=sys.stderr)
        return 2
    decoder = GpsdDecoder()
    try:
        pump_gpsd(sock, decoder, emit, stop)
    except OSError as e:
        print(f"picar gps: gpsd at {host}:{port}: {e}", file=sys.stderr)
    finally:
        sock.close()
    _report_counters(decoder.counters)
    return 0


def _report_counters(counters: dict[str, int]) -> None:
    print("picar gps: " + ", ".join(f"{k} {v}" for k, v in counters.items()), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(gps_main(sys.argv[1:]))
