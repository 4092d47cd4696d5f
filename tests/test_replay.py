"""The MJPEG replay read through real cv2.VideoCapture and sockets, and the session recorder."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from hw_sim.camera_replay import MjpegReplay
from hw_sim.recorder import Recorder
from picar.sources.camera import Camera
from picar.sources.frame_sources import list_folder
from picar.types import Frame
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
SHADE_STEP = 5


def shaded(i: int) -> np.ndarray:
    return np.full((48, 64, 3), (i * SHADE_STEP) % 250, dtype=np.uint8)


def shade_of(image: np.ndarray | None) -> int:
    assert image is not None
    return round(float(image.mean()) / SHADE_STEP)


def write_folder(folder: Path, count: int, fps: float) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        assert cv2.imwrite(str(folder / f"{i:06d}.jpg"), shaded(i))
    (folder / "fps.txt").write_text(f"{fps}\n")
    return folder


def nmea(body: str) -> bytes:
    checksum = 0
    for ch in body.encode("ascii"):
        checksum ^= ch
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


class RetryCounter(logging.Handler):
    """Sets `reached` once the camera has logged `wanted` retry waits; keeps their delays."""

    def __init__(self, wanted: int) -> None:
        super().__init__(logging.DEBUG)
        self.wanted = wanted
        self.delays: list[float] = []
        self.reached = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        match = re.search(r"retry in ([0-9.]+) s", record.getMessage())
        if match:
            self.delays.append(float(match.group(1)))
            if len(self.delays) >= self.wanted:
                self.reached.set()


def write_video(path: Path, count: int, fps: float) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for i in range(count):
        writer.write(shaded(i))
    writer.release()
    return path


@pytest.mark.parametrize("kind", ["folder", "video"])
def test_opencv_reads_every_frame_of_a_fast_replay(tmp_path: Path, kind: str) -> None:
    if kind == "folder":
        source = write_folder(tmp_path / "frames", 30, fps=10)
    else:
        source = write_video(tmp_path / "drive.avi", 30, fps=10)
    replay = MjpegReplay(source, realtime=False)
    url = replay.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/front\.mjpg", url)
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000,
                                                     cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000])
        assert cap.isOpened()
        shades = []
        while True:
            ok, image = cap.read()
            if not ok:
                break
            shades.append(shade_of(image))
        cap.release()
        assert replay.finished.is_set()
        assert shades == list(range(30))
        assert replay.frames_served == 30
        with urllib.request.urlopen(replay.snapshot_url, timeout=5) as resp:
            assert resp.headers["Content-Type"] == "image/jpeg"
            snap = cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR)
        assert shade_of(snap) == 29
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url.replace("front", "rear"), timeout=5)
        assert err.value.code == 404
    finally:
        replay.stop()


def test_camera_streams_replay_at_recorded_pace(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "frames", 20, fps=20)
    replay = MjpegReplay(folder, name="front")
    url = replay.start()
    cam = Camera("front", url, reconnect_initial_s=0.05, reconnect_max_s=0.2, io_timeout_s=3.0)
    started = time.monotonic()
    cam.start()
    try:
        frames: list[Frame] = []
        while (frame := cam.get(30.0)) is not None and len(frames) < 20:
            frames.append(frame)
            if shade_of(frame.image) == 19:
                break
        shades = [shade_of(f.image) for f in frames]
        assert shades and shades[-1] == 19, shades
        assert all(a < b for a, b in zip(shades, shades[1:], strict=False)), shades  # in order, none twice
        # A live source keeps the newest frames: every frame the camera read was taken here or counted.
        status = cam.status()
        assert status["frames"] == len(frames) + status["dropped"], (status, shades)
        # 20 frames at 20 fps, not a burst: the last one cannot arrive before it is due, 0.95 s into the
        # replay, which started after the camera did. A loaded machine only makes it later.
        assert frames[-1].monotonic - started >= 0.9 * 19 / 20
        # The stream ends with the recording: for a live source that is a drop, not the end.
        assert cam.wait_state("reconnecting", 30.0)
        assert not cam.finished
    finally:
        cam.stop()
        replay.stop()


def test_camera_reconnects_with_backoff_when_stream_vanishes_and_returns(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "frames", 10, fps=50)
    replay = MjpegReplay(folder, loop=True)
    url = replay.start()
    port = replay.port
    counter = RetryCounter(wanted=4)
    cam_log = logging.getLogger("picar.camera")
    cam_log.addHandler(counter)
    old_level = cam_log.level
    cam_log.setLevel(logging.DEBUG)
    cam = Camera("front", url, reconnect_initial_s=0.05, reconnect_max_s=0.2, io_timeout_s=3.0)
    cam.start()
    try:
        assert cam.get(30.0) is not None
        assert cam.wait_state("streaming", 30.0)
        before = int(cam.status()["frames"])  # type: ignore[call-overload]
        replay.stop()  # the camera vanishes: open streams are cut and the port refuses
        assert cam.wait_state("reconnecting", 30.0)
        assert counter.reached.wait(30.0), f"only {counter.delays} retries"
        # Exponential back-off from the initial delay, capped at the maximum.
        assert counter.delays[:4] == [0.05, 0.1, 0.2, 0.2]
        replay = MjpegReplay(folder, port=port, loop=True)
        assert replay.start() == url
        assert cam.wait_state("streaming", 30.0)
        # New frames come after the reconnect (older ones may still sit in the camera's two-frame queue).
        assert wait_until(lambda: (f := cam.get(1.0)) is not None and f.index >= before, 30), cam.status()
        status = cam.status()
        assert int(status["reconnects"]) >= 4  # type: ignore[call-overload]
        assert status["state"] == "streaming"
    finally:
        cam.stop()
        replay.stop()
        cam_log.removeHandler(counter)
        cam_log.setLevel(old_level)


def test_stalled_stream_times_out_and_reconnects(tmp_path: Path) -> None:
    """A camera that keeps the socket open but stops sending must not hang the worker."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    jpeg = cv2.imencode(".jpg", shaded(3))[1].tobytes()

    def serve() -> None:
        conn, _ = listener.accept()
        held.append(conn)
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=b\r\n\r\n")
        for _ in range(5):
            conn.sendall(b"--b\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n")
        # ...and then silence, with the connection left open.

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    cam = Camera("front", f"http://127.0.0.1:{port}/front.mjpg", reconnect_initial_s=5.0,
                 reconnect_max_s=5.0, io_timeout_s=1.0)
    cam.start()
    try:
        frame = cam.get(30.0)
        assert frame is not None and shade_of(frame.image) == 3
        assert cam.wait_state("reconnecting", 30.0), cam.status()
        assert "read failed" in str(cam.status()["reason"])
    finally:
        cam.stop()
        listener.close()
        for conn in held:
            conn.close()


def test_recorder_writes_session_layout_from_folder_and_pty(tmp_path: Path) -> None:
    source = write_folder(tmp_path / "src", 40, fps=40)
    master, slave = os.openpty()
    session = tmp_path / "session"
    recorder = Recorder(session, [("front", str(source))], gps=os.ttyname(slave), baud=9600)
    stop = threading.Event()
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.update(recorder.run(stop)))
    worker.start()
    try:
        assert recorder.gps_ready.wait(30.0)
        lines = [nmea("GPRMC,120000.00,A,4807.038,N,01131.000,E,10.0,84.4,230394,,,A"),
                 nmea("GPGGA,120000.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")]
        # The second line arrives in two pieces, as a UART delivers it.
        os.write(master, lines[0] + lines[1][:20])
        os.write(master, lines[1][20:])
        assert recorder.wait_for(lambda: recorder.nmea is not None and recorder.nmea.lines >= 2, 30.0)
        # Every camera source ended: the recorder stops by itself.
        worker.join(30.0)
        assert not worker.is_alive()
    finally:
        stop.set()
        worker.join(30.0)
        os.close(master)
        os.close(slave)
    assert (session / "gps.nmea").read_bytes() == b"".join(lines)
    with (session / "gps_times.csv").open() as fh:
        times = list(csv.DictReader(fh))
    assert [(int(r["line"]), int(r["offset"])) for r in times] == [(0, 0), (1, len(lines[0]))]
    with (session / "front" / "frames.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 2 and [int(r["index"]) for r in rows] == list(range(len(rows)))
    shades = [shade_of(cv2.imread(str(session / "front" / r["file"]))) for r in rows]
    assert shades == sorted(shades) and shades[-1] == 39
    stamps = [float(r["captured_at"]) for r in rows]
    assert stamps == sorted(stamps)
    meta = json.loads((session / "session.json").read_text())
    assert meta["cameras"][0]["name"] == "front" and meta["cameras"][0]["frames"] == len(rows)
    assert meta["gps"]["lines"] == 2 and meta["stopped_at"] is not None
    # The replay side reads the recorded timing back.
    entries = list_folder(session / "front")
    assert [e.path.name for e in entries] == [r["file"] for r in rows]
    assert entries[-1].time == pytest.approx(stamps[-1] - stamps[0], abs=1e-5)
    # A finished session is never overwritten.
    with pytest.raises(ValueError, match="already holds a session"):
        Recorder(session, [("front", str(source))])


def test_replay_cli_serves_until_the_recording_ends(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "frames", 12, fps=10)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hw_sim.camera_replay", str(folder), "--port", "0", "--fast", "--name", "rear"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/rear\.mjpg", url), url
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000,
                                                     cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000])
        shades = []
        while (got := cap.read())[0]:
            shades.append(shade_of(got[1]))
        cap.release()
        assert shades == list(range(12))
        assert proc.wait(30.0) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_replay_rejects_a_missing_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'.*nothing' is neither a video file nor a folder"):
        MjpegReplay(tmp_path / "nothing")


def test_recorder_cli_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    source = write_folder(tmp_path / "src", 400, fps=20)  # outlasts the test: SIGTERM ends it
    source2 = write_folder(tmp_path / "src2", 400, fps=20)
    gps_log = tmp_path / "drive.nmea"
    gps_log.write_bytes(nmea("GPRMC,120000.00,V,,,,,,,230394,,,N"))
    session = tmp_path / "session"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hw_sim.recorder", "--camera", str(source), "--camera2", str(source2),
         "--gps", str(gps_log), "--out", str(session), "--seconds", "60", "--fps", "10"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if re.search(r"recorder: front [1-9]\d* frames, rear [1-9]\d* frames, gps 1 lines", line):
                break
        else:
            pytest.fail("recorder never reported progress:\n" + "".join(seen))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30.0) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    meta = json.loads((session / "session.json").read_text())
    assert meta["stopped_at"] is not None and meta["fps"] == 10
    assert [c["name"] for c in meta["cameras"]] == ["front", "rear"]
    for cam in meta["cameras"]:
        rows = (session / cam["name"] / "frames.csv").read_text().splitlines()
        assert cam["frames"] >= 1 and len(rows) == cam["frames"] + 1
        assert (session / cam["name"] / "fps.txt").read_text().strip() == "10"
    assert (session / "gps.nmea").read_bytes() == gps_log.read_bytes()
