"""A small threaded HTTP server that serves JPEG frames as an MJPEG stream, like an IP camera.

`/<name>.mjpg` is a multipart/x-mixed-replace stream (one image/jpeg part per frame, each with
Content-Length, which FFmpeg's mpjpeg demuxer and browsers both read); `/snapshot.jpg` is the
newest frame. Stopping the server closes every open stream, so a client sees the camera vanish.
"""

from __future__ import annotations

import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

BOUNDARY = "picarframe"


class FrameBoard:
    """The newest JPEG and its sequence number, shared by the producer and every client."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._closed = False
        self._clients: dict[int, int] = {}  # client id -> last sequence it was handed
        self._next_client = 0
        self.frames_served = 0

    def publish(self, jpeg: bytes, wait_for_clients: bool = False, timeout: float = 5.0) -> bool:
        """Make `jpeg` the newest frame.

        With `wait_for_clients`, first wait until every connected client has taken the current
        frame, so a fast replay loses nothing to a client that keeps up. False if that timed out.
        """
        with self._cond:
            taken = True
            if wait_for_clients:
                taken = self._cond.wait_for(
                    lambda: self._closed or all(s >= self._seq for s in self._clients.values()), timeout
                )
            self._jpeg = jpeg
            self._seq += 1
            self._cond.notify_all()
            return taken

    def drain(self, timeout: float) -> bool:
        """Wait until every connected client has taken the newest frame."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._closed or all(s >= self._seq for s in self._clients.values()), timeout
            )

    def wait_for_client(self, timeout: float | None = None) -> bool:
        """Block until at least one stream client is connected (or the board closes)."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._clients) or self._closed, timeout)

    def subscribe(self) -> int:
        """Register a stream client; it will be handed frames published from now on."""
        with self._cond:
            cid = self._next_client
            self._next_client += 1
            self._clients[cid] = self._seq
            self._cond.notify_all()
            return cid

    def unsubscribe(self, cid: int) -> None:
        with self._cond:
            self._clients.pop(cid, None)
            self._cond.notify_all()

    def next_frame(self, cid: int, timeout: float) -> bytes | None:
        """The next frame for client `cid`, newest first; None on timeout or once closed."""
        with self._cond:
            ready = self._cond.wait_for(
                lambda: self._closed or (self._jpeg is not None and self._seq > self._clients[cid]), timeout
            )
            if not ready or self._closed:
                return None
            self._clients[cid] = self._seq
            self.frames_served += 1
            self._cond.notify_all()
            return self._jpeg

    def latest(self) -> bytes | None:
        with self._cond:
            return self._jpeg

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every stream: no more frames will come."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # no keep-alive, no chunking: the stream ends when the socket does

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == f"/{self.server.stream_name}.mjpg":
            self._stream()
        elif path == "/snapshot.jpg":
            self._snapshot()
        else:
            self.send_error(HTTPStatus.NOT_FOUND, f"no such path; try /{self.server.stream_name}.mjpg")

    def _snapshot(self) -> None:
        jpeg = self.server.board.latest()
        if jpeg is None:
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(jpeg)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(jpeg)

    def _stream(self) -> None:
        board = self.server.board
        if board.closed:
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "replay finished")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Pragma", "no-cache")
        self.end_headers()
        cid = board.subscribe()
        self.server.track(self.connection, True)
        try:
            while not self.server.stopping.is_set():
                jpeg = board.next_frame(cid, timeout=0.5)
                if jpeg is None:
                    if board.closed:
                        break
                    continue
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode("ascii") + jpeg + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client went away
        finally:
            board.unsubscribe(cid)
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # restart on the same port while old sockets sit in TIME_WAIT

    def __init__(self, address: tuple[str, int], board: FrameBoard, stream_name: str) -> None:
        super().__init__(address, _Handler)
        self.board = board
        self.stream_name = stream_name
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def track(self, conn: socket.socket, active: bool) -> None:
        with self._lock:
            if active:
                self._open.add(conn)
            else:
                self._open.discard(conn)

    def drop_clients(self) -> None:
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class MjpegServer:
    """Serves a FrameBoard over HTTP on host:port (port 0 picks a free one)."""

    def __init__(self, board: FrameBoard, name: str = "front", host: str = "127.0.0.1", port: int = 0) -> None:
        self.board = board
        self.name = name
        self._server = _Server((host, port), board, name)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The stream URL a camera opens."""
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}/{self.name}.mjpg"

    @property
    def snapshot_url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}/snapshot.jpg"

    def start(self) -> str:
        """Serve in a background thread; returns the stream URL."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"mjpeg-{self.name}", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop accepting, cut every open stream and release the port."""
        self._server.stopping.set()
        self._server.drop_clients()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
