"""Serving the console with uvicorn: TLS from the config's certificate and key; off loopback only with TLS
(or `allow_plain_http` for a TLS proxy on the same machine, which ConsoleSettings checks)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from picar.hq.config import HqConfig

log = logging.getLogger("picar.hq.console")


class ConsoleServer(uvicorn.Server):
    """uvicorn that ends the console's event streams when asked to stop, rather than waiting them out."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.end_streams()

    def stop(self) -> None:
        self.should_exit = True
        self.end_streams()

    def end_streams(self) -> None:
        app = self.config.app
        console = getattr(getattr(app, "state", None), "console", None)
        if console is not None:
            console.live.close_streams_threadsafe()


def uvicorn_config(app: Starlette, config: HqConfig, sock: socket.socket | None = None) -> uvicorn.Config:
    """uvicorn's settings for the console: TLS when configured; the client's address (what the login throttle
    counts) from X-Forwarded-For only behind a TLS proxy on this machine (allow_plain_http), never otherwise;
    no Server header."""
    s = config.console
    return uvicorn.Config(
        app, host=s.bind, port=s.port, lifespan="on", http="h11", ws="none", loop="asyncio",
        log_config=None, log_level="info", access_log=False, server_header=False,
        proxy_headers=s.allow_plain_http, forwarded_allow_ips="127.0.0.1,::1",
        ssl_certfile=None if s.tls_cert_file is None else str(s.tls_cert_file),
        ssl_keyfile=None if s.tls_key_file is None else str(s.tls_key_file),
        timeout_graceful_shutdown=3,
    )


def url_of(config: HqConfig, port: int | None = None) -> str:
    """The address an operator opens."""
    s = config.console
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(s.bind, s.bind)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{'https' if s.tls else 'http'}://{host}:{port or s.port}"


class ConsoleThread:
    """The console served on a thread of this process (the demo, tests): `url`, then `stop()`."""

    def __init__(self, app: Starlette, config: HqConfig, start_timeout_s: float = 20.0) -> None:
        s = config.console
        family = socket.AF_INET6 if ":" in s.bind else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((s.bind, s.port))  # port 0: a free one
        self.port: int = sock.getsockname()[1]
        self.url = url_of(config, self.port)
        self.server = ConsoleServer(uvicorn_config(app, config))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name="hq-console",
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + start_timeout_s
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            self.stop()
            raise RuntimeError(f"the console did not start on {s.bind}:{self.port}")

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(15)


def serve(app: Starlette, config: HqConfig) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn handles both)."""
    server = ConsoleServer(uvicorn_config(app, config))
    log.info("console at %s", url_of(config))
    server.run()
