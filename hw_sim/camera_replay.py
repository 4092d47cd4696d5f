"""Replays a recorded video file or folder of frames as an HTTP MJPEG camera.

The daemon then reads it exactly as it reads a network camera (cv2.VideoCapture on the URL),
so the reconnect and newest-frame paths run against a real stream. Reading and pacing reuse
picar.sources.camera's sources: a folder plays at the timing in its frames.csv (from hw_sim.recorder),
else at a fixed fps (`--fps`, fps.txt or 10); a video at its own fps.

    python -m hw_sim.camera_replay SOURCE [--port P] [--fps F] [--loop] [--fast] [--name N]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import cv2

from hw_sim.mjpeg_server import FrameBoard, MjpegServer
from picar.sources.camera import Camera
from picar.sources.frame_sources import SourceLost, make_source

log = logging.getLogger(__name__)


class MjpegReplay:
    """A recording served at http://HOST:PORT/<name>.mjpg (and /snapshot.jpg).

    `realtime` plays at recorded pace; otherwise as fast as the clients take frames (no frame
    skipped for a client that keeps up). With `wait_for_client`, playback starts when the first
    stream client connects, so a test or the daemon sees the recording from its first frame.
    """

    def __init__(
        self,
        source: Path,
        port: int = 0,
        name: str = "front",
        fps: float | None = None,
        loop: bool = False,
        realtime: bool = True,
        host: str = "127.0.0.1",
        wait_for_client: bool = True,
        jpeg_quality: int = 90,
    ) -> None:
        self.source = Path(source)
        if not (self.source.is_dir() or self.source.is_file()):
            raise ValueError(f"replay source {str(source)!r} is neither a video file nor a folder of frames")
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be 1..100, got {jpeg_quality}")
        self.name = name
        self.realtime = realtime
        self.wait_for_client = wait_for_client
        self._quality = jpeg_quality
        self._board = FrameBoard()
        self._server = MjpegServer(self._board, name, host, port)
        self._source = make_source(str(self.source), fps=fps)
        self._camera = Camera(
            f"replay-{name}",
            self._source,
            realtime=realtime,
            loop=loop,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()
        self.frames_published = 0

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def snapshot_url(self) -> str:
        return self._server.snapshot_url

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def frames_served(self) -> int:
        """Frames written to stream clients (summed over clients)."""
        return self._board.frames_served

    def start(self) -> str:
        """Start serving and playing; returns the stream URL. Raises OSError if unreadable."""
        # Open the recording before any client can connect: OpenCV serialises FFmpeg opens, so
        # opening it while an in-process client waits inside its own open for our first frame
        # would deadlock until that client's timeout. The camera's own open then just rewinds.
        try:
            self._source.open()
        except SourceLost as exc:
            raise OSError(f"cannot replay {self.source}: {exc}") from exc
        url = self._server.start()
        self._thread = threading.Thread(target=self._pump, name=f"replay-{self.name}", daemon=True)
        self._thread.start()
        log.info("replaying %s at %s", self.source, url)
        return url

    def stop(self) -> None:
        """Stop playback and the server; open streams are cut."""
        self._stop.set()
        self._board.close()
        self._camera.stop()
        if self._thread is not None:
            self._thread.join()
        self._server.stop()

    def _pump(self) -> None:
        if self.wait_for_client:
            while not self._stop.is_set() and not self._board.wait_for_client(0.2):
                pass
        if self._stop.is_set():
            return
        self._camera.start()
        params = [int(cv2.IMWRITE_JPEG_QUALITY), self._quality]
        while not self._stop.is_set():
            frame = self._camera.get(timeout=0.2)
            if frame is None:
                if self._camera.finished:
                    break
                continue
            ok, buf = cv2.imencode(".jpg", frame.image, params)
            if not ok:
                log.warning("cannot encode frame %d of %s as JPEG", frame.index, self.source)
                continue
            # Fast mode waits for clients so a client that keeps up sees every frame.
            while not self._board.publish(buf.tobytes(), wait_for_clients=not self.realtime, timeout=0.5):
                if self._stop.is_set():
                    return
            self.frames_published += 1
        if self._camera.finished:
            log.info("replay of %s finished after %d frames", self.source, self.frames_published)
            # Let the clients take the last frame before the streams end.
            self._board.drain(timeout=2.0)
            self._board.close()
            self.finished.set()


def main(argv: list[str] | None = None) -> int:
    """CLI: serve SOURCE until it ends (unless --loop) or SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m hw_sim.camera_replay", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="video file, or folder of frames (frames.csv/fps.txt honoured)")
    parser.add_argument("--port", type=int, default=8554, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="front", help="stream path is /<name>.mjpg")
    parser.add_argument("--fps", type=float, default=None, help="fixed frame rate instead of the recording's")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--fast", action="store_true", help="as fast as the client reads, not at recorded pace")
    parser.add_argument("--no-wait", action="store_true", help="start playing before any client connects")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.fps is not None and args.fps <= 0:
        parser.error(f"--fps must be positive, got {args.fps}")
    try:
        replay = MjpegReplay(
            args.source, args.port, args.name, args.fps, args.loop, not args.fast, args.host, not args.no_wait
        )
    except (ValueError, OSError) as exc:
        print(f"camera_replay: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(replay.start(), flush=True)
    while not stop.is_set() and not replay.finished.is_set():
        stop.wait(0.2)
    replay.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
