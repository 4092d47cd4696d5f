"""Records a drive: camera frames and raw GPS NMEA into a session folder the simulator replays.

    python -m hw_sim.recorder --camera SOURCE [--camera2 SOURCE] --gps DEVICE [--baud N]
                              --out SESSION_DIR [--seconds S] [--fps F]

Layout (read by hw_sim.camera_replay, picar.sources.camera.FolderSource and hw_sim.virtual_gps):

    SESSION_DIR/session.json          start/stop time, cameras, fps, gps device, counts
    SESSION_DIR/<camera>/NNNNNN.jpg   one JPEG per frame, numbered from 000000
    SESSION_DIR/<camera>/frames.csv   index,file,captured_at (wall-clock UTC seconds)
    SESSION_DIR/<camera>/fps.txt      the requested frame rate (when --fps is given)
    SESSION_DIR/gps.nmea              the receiver's bytes exactly as they arrived
    SESSION_DIR/gps_times.csv         line,offset,received_at: byte offset in gps.nmea of each
                                      line's start and the wall-clock time its newline arrived

Every line is flushed as written, so a crash loses at most the frame being written. Stops
cleanly on SIGINT/SIGTERM, after --seconds, or when every camera source has ended.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

import cv2
import serial

from picar.isotime import utc_iso
from picar.sources.camera import Camera, open_camera
from picar.types import Frame

log = logging.getLogger(__name__)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class FrameWriter:
    """Writes one camera's frames as numbered JPEGs plus a frames.csv line each."""

    def __init__(self, folder: Path, jpeg_quality: int = 90) -> None:
        folder.mkdir(parents=True, exist_ok=False)
        self.folder = folder
        self._params = [int(cv2.IMWRITE_JPEG_QUALITY), jpeg_quality]
        self._csv_file = (folder / "frames.csv").open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(["index", "file", "captured_at"])
        self._csv_file.flush()
        self.count = 0

    def write(self, frame: Frame) -> None:
        """Save the frame; the CSV line is written only once the JPEG is complete on disk."""
        name = f"{self.count:06d}.jpg"
        ok, buf = cv2.imencode(".jpg", frame.image, self._params)
        if not ok:
            raise OSError(f"cannot encode frame {frame.index} of camera {frame.camera} as JPEG")
        tmp = self.folder / (name + ".part")
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, self.folder / name)
        self._csv.writerow([self.count, name, f"{frame.captured_at:.6f}"])
        self._csv_file.flush()
        self.count += 1

    def close(self) -> None:
        self._csv_file.close()


class NmeaWriter:
    """Appends raw receiver bytes to gps.nmea and logs when each line's newline arrived."""

    def __init__(self, session: Path, wall_clock: Callable[[], float] = time.time) -> None:
        self._raw = (session / "gps.nmea").open("xb")
        self._times_file = (session / "gps_times.csv").open("x", newline="", encoding="utf-8")
        self._times = csv.writer(self._times_file)
        self._times.writerow(["line", "offset", "received_at"])
        self._times_file.flush()
        self._wall = wall_clock
        self.bytes = 0
        self.lines = 0
        self._line_start = 0

    def write(self, chunk: bytes) -> None:
        now = self._wall()
        self._raw.write(chunk)
        self._raw.flush()
        pos = 0
        while (nl := chunk.find(b"\n", pos)) != -1:
            self._times.writerow([self.lines, self._line_start, f"{now:.6f}"])
            self.lines += 1
            self._line_start = self.bytes + nl + 1
            pos = nl + 1
        self._times_file.flush()
        self.bytes += len(chunk)

    def close(self) -> None:
        self._raw.close()
        self._times_file.close()


class Recorder:
    """One recording session: a thread per camera and one for the GPS receiver."""

    def __init__(
        self,
        out: Path,
        cameras: Sequence[tuple[str, str]],
        gps: str | None = None,
        baud: int = 9600,
        fps: float = 0.0,
        jpeg_quality: int = 90,
        camera_opts: dict[str, Any] | None = None,
    ) -> None:
        if not cameras:
            raise ValueError("at least one --camera is needed")
        names = [n for n, _ in cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must differ, got {names}")
        if fps < 0:
            raise ValueError(f"--fps must be >= 0, got {fps}")
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"--quality must be 1..100, got {jpeg_quality}")
        if baud <= 0:
            raise ValueError(f"--baud must be a positive rate such as 9600, got {baud}")
        self.out = Path(out)
        if (self.out / "session.json").exists():
            raise ValueError(f"{self.out} already holds a session; choose a new --out folder")
        self.gps = gps
        self.baud = baud
        self.fps = fps
        self._quality = jpeg_quality
        self._cameras: list[Camera] = [
            open_camera(name, source, fps_cap=fps, **(camera_opts or {})) for name, source in cameras
        ]
        self._sources = dict(cameras)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.gps_ready = threading.Event()
        self.writers: dict[str, FrameWriter] = {}
        self.nmea: NmeaWriter | None = None
        self._started = 0.0

    def _session(self, stopped: float | None) -> dict[str, Any]:
        return {
            "version": 1,
            "started_at": utc_iso(self._started),
            "started_at_unix": round(self._started, 6),
            "stopped_at": None if stopped is None else utc_iso(stopped),
            "fps": self.fps or None,
            "cameras": [
                {
                    "name": cam.name,
                    "source": self._sources[cam.name],
                    "dir": cam.name,
                    "frames": self.writers[cam.name].count if cam.name in self.writers else 0,
                    "status": cam.status() if stopped is not None else None,
                }
                for cam in self._cameras
            ],
            "gps": None
            if self.gps is None
            else {
                "device": self.gps,
                "baud": self.baud,
                "file": "gps.nmea",
                "times": "gps_times.csv",
                "bytes": self.nmea.bytes if self.nmea else 0,
                "lines": self.nmea.lines if self.nmea else 0,
            },
        }

    def run(self, stop: threading.Event, seconds: float | None = None) -> dict[str, Any]:
        """Record until `stop` is set, `seconds` pass or every camera source has ended."""
        self.out.mkdir(parents=True, exist_ok=True)
        self._started = time.time()
        for cam in self._cameras:
            self.writers[cam.name] = FrameWriter(self.out / cam.name, self._quality)
            if self.fps:
                (self.out / cam.name / "fps.txt").write_text(f"{self.fps:g}\n", encoding="utf-8")
        if self.gps is not None:
            self.nmea = NmeaWriter(self.out)
        _write_json_atomic(self.out / "session.json", self._session(None))
        threads = [threading.Thread(target=self._camera_loop, args=(cam,), daemon=True) for cam in self._cameras]
        if self.gps is not None:
            threads.append(threading.Thread(target=self._gps_loop, daemon=True))
        for cam in self._cameras:
            cam.start()
        for t in threads:
            t.start()
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            while not stop.is_set():
                cameras_done = not any(t.is_alive() for t in threads[: len(self._cameras)])
                if cameras_done and all(cam.finished for cam in self._cameras):
                    log.info("every camera source ended")
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                stop.wait(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
        finally:
            self._stop.set()
            for cam in self._cameras:
                cam.stop()
            for t in threads:
                t.join()
            for writer in self.writers.values():
                writer.close()
            if self.nmea is not None:
                self.nmea.close()
            summary = self._session(time.time())
            _write_json_atomic(self.out / "session.json", summary)
        return summary

    def progress(self) -> str:
        """One status line: frames per camera and GPS lines so far."""
        with self._cond:
            parts = [f"{name} {w.count} frames" for name, w in self.writers.items()]
            if self.nmea is not None:
                parts.append(f"gps {self.nmea.lines} lines")
            return ", ".join(parts)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate` (reading counts) holds; used by tests and the CLI's progress."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def _camera_loop(self, cam: Camera) -> None:
        writer = self.writers[cam.name]
        while not self._stop.is_set():
            frame = cam.get(timeout=0.2)
            if frame is None:
                if cam.finished:
                    return
                continue
            try:
                writer.write(frame)
            except OSError as exc:
                log.error("camera %s: cannot save frame: %s", cam.name, exc)
                continue
            with self._cond:
                self._cond.notify_all()

    def _open_gps(self) -> serial.SerialBase | IO[bytes]:
        assert self.gps is not None
        if Path(self.gps).is_file():
            return open(self.gps, "rb")  # a captured log instead of a receiver
        return serial.serial_for_url(self.gps, baudrate=self.baud, timeout=0.2)

    def _gps_loop(self) -> None:
        assert self.nmea is not None
        backoff = 0.5
        while not self._stop.is_set():
            try:
                port = self._open_gps()
            except (OSError, serial.SerialException) as exc:
                log.warning("gps %s: cannot open (%s), retrying in %.1f s", self.gps, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            self.gps_ready.set()
            try:
                with port:
                    while not self._stop.is_set():
                        if isinstance(port, serial.SerialBase):
                            # Whatever is waiting, at least one byte: each line is stamped on arrival.
                            chunk = port.read(max(1, port.in_waiting))
                        else:
                            chunk = port.read(4096)
                        if not chunk:
                            if not isinstance(port, serial.SerialBase):
                                log.info("gps %s: end of file after %d bytes", self.gps, self.nmea.bytes)
                                return
                            continue
                        with self._cond:
                            self.nmea.write(chunk)
                            self._cond.notify_all()
            except (OSError, serial.SerialException) as exc:
                log.warning("gps %s: read failed (%s), reopening", self.gps, exc)
                self.gps_ready.clear()
                self._stop.wait(backoff)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m hw_sim.recorder", description=__doc__.splitlines()[0])
    parser.add_argument("--camera", required=True, help="device (/dev/video0, 0), stream URL, video or folder")
    parser.add_argument("--camera2", help="a second camera")
    parser.add_argument("--camera-name", default="front")
    parser.add_argument("--camera2-name", default="rear")
    parser.add_argument("--gps", help="serial device of the GPS receiver (or a file of NMEA)")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--out", required=True, type=Path, help="new session folder")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--fps", type=float, default=0.0, help="frames per second to keep (0 = all)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality 1..100")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cameras = [(args.camera_name, args.camera)]
    if args.camera2:
        cameras.append((args.camera2_name, args.camera2))
    try:
        recorder = Recorder(args.out, cameras, args.gps, args.baud, args.fps, args.quality)
    except (ValueError, OSError) as exc:
        print(f"recorder: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    reporter = threading.Thread(target=_report, args=(recorder, stop), daemon=True)
    reporter.start()
    print(f"recording into {args.out}", file=sys.stderr, flush=True)
    summary = recorder.run(stop, args.seconds)
    stop.set()
    counts = ", ".join(f"{c['name']} {c['frames']} frames" for c in summary["cameras"])
    print(f"recorder: stopped: {counts}", file=sys.stderr, flush=True)
    return 0


def _report(recorder: Recorder, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        print(f"recorder: {recorder.progress()}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
