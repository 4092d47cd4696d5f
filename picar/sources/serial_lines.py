"""Lines from a serial device: the reader the kennel heat sensor and the K9 door input share.

`SerialLines` reopens a vanished device with back-off and hands complete lines to a callback.
Lines may end in an optional ``*HH`` XOR checksum of the characters before the ``*`` (as in NMEA);
`checked_text` verifies and strips it, `with_checksum` adds it (for simulators and tests).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import serial

# The heat module's logger: the reader logged as "picar.heat" before it moved out of that module.
log = logging.getLogger("picar.heat")

MAX_LINE = 200


class LineError(ValueError):
    """A serial line that does not follow the protocol; the message names the line."""


def xor_checksum(text: str) -> int:
    """XOR of the bytes of `text`, as NMEA does it."""
    value = 0
    for b in text.encode("ascii", "replace"):
        value ^= b
    return value


def with_checksum(text: str) -> str:
    """`text` followed by its ``*HH`` checksum (for simulators and tests)."""
    return f"{text}*{xor_checksum(text):02X}"


def checked_text(raw: bytes) -> str:
    """Decode one line, verify and strip an optional ``*HH`` checksum; raise LineError if bad."""
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise LineError(f"not ASCII: {raw!r}") from exc
    if "*" in text:
        body, _, given = text.rpartition("*")
        try:
            expected = int(given, 16)
        except ValueError as exc:
            raise LineError(f"bad checksum field {given!r} in {text!r}") from exc
        if len(given) != 2 or expected != xor_checksum(body):
            raise LineError(f"checksum {given} does not match {xor_checksum(body):02X} in {text!r}")
        text = body.strip()
    return text



class SerialLines:
    """Read lines from a serial device on a thread; reopen with back-off when it goes away.

    `on_line(raw)` gets each complete line (without CR/LF); `on_tick()` is called at least every
    `tick_s` seconds so that owners can notice silence.
    """

    def __init__(
        self,
        device: str,
        baud: int,
        on_line: Callable[[bytes], object],
        on_tick: Callable[[], None] = lambda: None,
        *,
        name: str = "serial",
        tick_s: float = 0.25,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.device = device
        self.baud = baud
        self._on_line = on_line
        self._on_tick = on_tick
        self._name = name
        self._tick = tick_s
        self._max_backoff = max_backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        """Start the reader thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the reader thread and close the device."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(self.device, baudrate=self.baud, timeout=self._tick)
            except (serial.SerialException, OSError, ValueError) as exc:
                log.warning("%s: cannot open %s: %s; retrying in %.1f s", self._name, self.device, exc, backoff)
                self._on_tick()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.5
            log.info("%s: reading %s at %d baud", self._name, self.device, self.baud)
            self.connected.set()
            try:
                self._read(port)
            except (serial.SerialException, OSError) as exc:
                log.warning("%s: %s failed: %s; reopening", self._name, self.device, exc)
            finally:
                self.connected.clear()
                port.close()
            self._on_tick()
            self._stop.wait(backoff)

    def _read(self, port: Any) -> None:
        buf = b""
        while not self._stop.is_set():
            chunk = port.read(max(1, port.in_waiting))
            if chunk:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    line = line.rstrip(b"\r")
                    if line:
                        self._on_line(line)
                if len(buf) > MAX_LINE:
                    self._on_line(buf)  # an over-long fragment: the owner counts it as a bad line
                    buf = b""
            self._on_tick()
