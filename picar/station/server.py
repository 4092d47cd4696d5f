"""The in-car station: the officer's touchscreen page, served by Starlette under uvicorn in a background thread.

The page (static/) gets live updates over Server-Sent Events on `/events` and re-reads `/api/state` on
every (re)connect, so a dropped connection loses nothing that the server still holds. Access needs the
token (``?token=`` once, which sets an HttpOnly cookie, or ``Authorization: Bearer``); without a
configured token only loopback clients are served (security.py). The URLs are in routes.py; this module
holds what the page is told (the state and the events) and starts and stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from picar.i18n import DEFAULT_LANGUAGE, N_, Language, message_of, parse_language
from picar.station.k9 import KINDS as K9_KINDS
from picar.station.k9 import OUTCOMES, K9Error, K9Log
from picar.station.routes import STATIC_DIR, HttpError, build_app, parse_disposition, resolve_image
from picar.station.security import TOKEN_PATTERN, is_loopback

__all__ = ["STATIC_DIR", "HttpError", "StationServer", "parse_disposition", "resolve_image"]

log = logging.getLogger("picar.ui.server")  # name kept from before the package move: log lines carry it

_is_loopback = is_loopback  # the name tests and older callers import from here

KINDS = ("hit", "read", "status", "k9", "heat", "disposition")
KEEPALIVE_S = 15.0
CLIENT_QUEUE = 512
RECENT_HITS = 50
RECENT_READS = 100
START_TIMEOUT_S = 10.0
STOP_GRACE_S = 3  # requests still running after this are cancelled
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")

Status = Callable[[], dict[str, Any]]
OnDisposition = Callable[[str, str, "str | None", "str | None"], dict[str, Any]]


class _Client:
    """One live SSE connection: a bounded queue; a client that falls behind is dropped and resyncs.

    Lives on the server's event loop: `offer` is only called there.
    """

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=CLIENT_QUEUE)
        self.dropped = False

    def offer(self, message: bytes | None) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True  # the page reconnects and re-reads /api/state


class _Uvicorn(uvicorn.Server):
    """uvicorn that leaves the daemon's signals alone and says when it is serving."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # SIGTERM and SIGHUP belong to the daemon (picar/daemon.py), which calls stop()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


class StationServer:
    """The officer's page, its JSON API and the live event stream."""

    def __init__(
        self,
        bind: str,
        port: int,
        token: str | None,
        status: Status,
        on_disposition: OnDisposition,
        k9: K9Log | None,
        image_dir: Path,
        language: str = DEFAULT_LANGUAGE,
    ) -> None:
        if token is not None and not TOKEN_PATTERN.match(token):
            raise ValueError("station token must be 8-200 characters of A-Z a-z 0-9 . _ ~ - (it goes in a cookie)")
        lang = parse_language(language)
        if lang is None:
            raise ValueError(f"station language {language!r} is not one of the catalogues' languages")
        self.language: Language = lang  # the car's; an officer may choose another on the page
        self.bind = bind
        self.port = port
        self._token = token
        self._status = status
        self._on_disposition = on_disposition
        self._k9 = k9
        self.image_dir = Path(image_dir)
        self._lock = threading.Lock()
        self._clients: set[_Client] = set()
        self._seq = 0
        self._hits: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._dispositions: dict[str, dict[str, Any]] = {}
        self._reads: deque[dict[str, Any]] = deque(maxlen=RECENT_READS)
        self._heat: dict[str, Any] | None = None
        self._server: _Uvicorn | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        if k9 is not None:
            k9.add_listener(self._k9_changed)

    # lifecycle

    def start(self) -> str:
        """Start serving once the socket listens; returns the base URL (port 0 picks a free port)."""
        sock = self._listen()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self, self._token),
            lifespan="off", http="h11", ws="none", loop="asyncio",
            log_config=None, log_level="warning", access_log=False,  # the daemon's logging, untouched
            proxy_headers=False,  # the peer's own address decides "loopback", never X-Forwarded-For
            server_header=False, headers=[("Server", "PiCAR-station")],
            timeout_graceful_shutdown=STOP_GRACE_S,
        )
        server = self._server = _Uvicorn(config)
        self._thread = threading.Thread(target=self._run, args=(server, sock), name="station-http", daemon=True)
        self._thread.start()
        if not server.ready.wait(START_TIMEOUT_S) or not server.started:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"station page did not start on {self.bind}:{self.port}")
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(self.bind, self.bind)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        url = f"http://{host}:{self.port}"
        log.info("station page at %s (token %s)", url, "required" if self._token else "off, loopback only")
        return url

    def _listen(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.bind else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may reuse the port at once
            sock.bind((self.bind, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            # The daemon starts several listeners: say which one and which keys move it.
            raise OSError(exc.errno, f"in-car page cannot listen on {self.bind}:{self.port}: {exc.strerror} "
                          "(ui.bind, ui.port; is another PiCAR or service using it?)") from exc
        return sock

    def _run(self, server: _Uvicorn, sock: socket.socket) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            await server.serve(sockets=[sock])

        try:
            asyncio.run(serve())
        except BaseException:  # uvicorn exits the process on a failed start; here it only ends this thread
            log.exception("station: the page server failed")
        finally:
            server.ready.set()

    def stop(self) -> None:
        """Close every live stream and stop serving."""
        self._stopping.set()
        self._fan_out_threadsafe(None)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)

    # events

    def push(self, kind: str, data: dict[str, Any]) -> None:
        """Send an event to every live page and remember what a reconnecting page needs."""
        if kind not in KINDS:
            raise ValueError(f"station event kind {kind!r} is not one of {', '.join(KINDS)}")
        if kind in ("hit", "disposition") and not data.get("event_id"):
            raise ValueError(f"station {kind} event without an event_id: {data!r:.200}")
        if kind == "hit" and data.get("covert"):
            # Covert hits must never reach the officer's screen; refuse loudly so the bug is seen.
            raise ValueError(f"covert hit {data['event_id']} must not be pushed to the station page")
        with self._lock:
            if kind == "hit":
                event_id = str(data.get("event_id", ""))
                self._hits[event_id] = data
                self._hits.move_to_end(event_id)
                while len(self._hits) > RECENT_HITS:
                    old, _ = self._hits.popitem(last=False)
                    self._dispositions.pop(old, None)
            elif kind == "read":
                self._reads.append(data)
            elif kind == "heat":
                self._heat = data
            elif kind == "disposition":
                self._dispositions[str(data.get("event_id"))] = data
            self._seq += 1
            body = json.dumps(data, default=str, separators=(",", ":"))
            # Handed to the loop under the lock, so pages get events in the order of their ids.
            self._fan_out_threadsafe(f"id: {self._seq}\nevent: {kind}\ndata: {body}\n\n".encode())

    def _fan_out_threadsafe(self, message: bytes | None) -> None:
        loop = self._loop
        if loop is None:
            return  # not serving yet: the state above is what a page will read
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
            loop.call_soon_threadsafe(self._fan_out, message)

    def _fan_out(self, message: bytes | None) -> None:
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            c.offer(message)

    async def stream(self) -> AsyncIterator[bytes]:
        """One page's event stream: pushed events, a keep-alive comment when idle, the end on stop."""
        client = _Client()
        with self._lock:
            self._clients.add(client)
        try:
            yield b"retry: 2000\n: connected\n\n"
            while not self._stopping.is_set() and not client.dropped:
                try:
                    message = await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    message = b": keepalive\n\n"
                if message is None:
                    break
                yield message
        finally:
            with self._lock:
                self._clients.discard(client)

    def client_count(self) -> int:
        """How many pages are connected to the event stream now."""
        with self._lock:
            return len(self._clients)

    def state(self) -> dict[str, Any]:
        """Everything a page needs after (re)connecting.

        `seq` is the id of the last event this snapshot includes: the page keeps an event with a higher id over
        the snapshot (it was pushed after), and the status and K9 parts are read after it, so never older.
        """
        with self._lock:
            seq = self._seq
            hits = list(self._hits.values())
            dispositions = dict(self._dispositions)
            reads = list(self._reads)
            heat = self._heat
        try:
            status = self._status()
        except Exception:
            log.exception("station: status callable failed")
            status = {}
        return {
            "seq": seq,
            "status": status,
            "hits": hits,
            "dispositions": dispositions,
            "reads": reads,
            "heat": heat,
            "k9": self._k9_state(),
        }

    def _k9_state(self) -> dict[str, Any] | None:
        if self._k9 is None:
            return None
        return {"active": self._k9.active(), "types": list(K9_KINDS), "outcomes": list(OUTCOMES)}

    def _k9_changed(self, deployment: dict[str, Any]) -> None:
        self.push("k9", {"deployment": deployment, **(self._k9_state() or {})})

    # the officer's actions (called from routes.py on a worker thread)

    def disposition(self, hit_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Accept or reject a hit through the daemon, then tell every page."""
        if not _ID.match(hit_id):
            raise HttpError(400, N_("bad hit id {hit_id!r}"), hit_id=hit_id)
        decision, reason, note = parse_disposition(body)
        try:
            stored = self._on_disposition(hit_id, decision, reason, note)
        except KeyError as exc:
            raise HttpError(404, N_("no hit {hit_id}: {error}"), hit_id=hit_id, error=message_of(exc)) from exc
        except ValueError as exc:
            raise HttpError(400, message_of(exc)) from exc
        record: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
        if record.get("event_id") not in (None, hit_id):
            record["disposition_event_id"] = record["event_id"]  # the daemon's own id for the HQ message
        record.update(event_id=hit_id, decision=decision, reason=reason, note=note)
        self.push("disposition", record)
        return record

    def k9_start(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a K9 deployment from the page."""
        k9 = self.need_k9()
        try:
            return k9.start(body.get("dog", ""), body.get("handler", ""), body.get("type", ""),
                            case_number=body.get("case_number"), notes=body.get("notes") or "",
                            trigger="manual")
        except K9Error as exc:
            raise HttpError(400, message_of(exc)) from exc

    def k9_end(self, deployment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """End a K9 deployment from the page."""
        k9 = self.need_k9()
        try:
            return k9.end(deployment_id, body.get("outcome", ""), body.get("notes") or "")
        except KeyError as exc:
            raise HttpError(404, message_of(exc)) from exc
        except K9Error as exc:
            raise HttpError(400, message_of(exc)) from exc

    def need_k9(self) -> K9Log:
        """The K9 log, or a 404 for a car without a K9 unit."""
        if self._k9 is None:
            raise HttpError(404, N_("no K9 unit configured in this car"))
        return self._k9
