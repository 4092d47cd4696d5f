"""The in-car station: a small threaded HTTP server for the officer's touchscreen page.

Standard library only. The page (static/) gets live updates over Server-Sent Events on `/events`
and re-reads `/api/state` on every (re)connect, so a dropped connection loses nothing that the
server still holds. Access needs the token (``?token=`` once, which sets an HttpOnly cookie, or
``Authorization: Bearer``); without a configured token only loopback clients are served.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import json
import logging
import queue
import re
import socket
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from picar.station.k9 import KINDS as K9_KINDS
from picar.station.k9 import OUTCOMES, K9Error, K9Log
from picar.types import REJECT_REASONS

log = logging.getLogger("picar.ui.server")  # name kept from before the package move: log lines carry it

STATIC_DIR = Path(__file__).with_name("static")
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
KINDS = ("hit", "read", "status", "k9", "heat", "disposition")
COOKIE = "picar_station"
MAX_BODY = 64 * 1024
MAX_NOTE = 1000
KEEPALIVE_S = 15.0
CLIENT_QUEUE = 512
RECENT_HITS = 50
RECENT_READS = 100
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{8,200}$")
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; script-src 'self'; "
    "style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

Status = Callable[[], dict[str, Any]]
OnDisposition = Callable[[str, str, "str | None", "str | None"], dict[str, Any]]


class HttpError(Exception):
    """An error answer with a status code and a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Client:
    """One live SSE connection: a bounded queue; a client that falls behind is dropped and resyncs."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=CLIENT_QUEUE)
        self.dropped = False

    def offer(self, message: bytes | None) -> None:
        try:
            self.queue.put_nowait(message)
        except queue.Full:
            self.dropped = True  # the page reconnects and re-reads /api/state


def parse_disposition(body: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """Validate a disposition request body; returns (decision, reason, officer_note)."""
    decision = body.get("decision")
    if decision not in ("accept", "reject"):
        raise HttpError(400, f"decision {decision!r} is not allowed; use accept or reject")
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise HttpError(400, "note must be text")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise HttpError(400, f"note is {len(note)} characters, at most {MAX_NOTE} allowed")
    reason = body.get("reason")
    if decision == "accept":
        if body.get("confirmed") is not True:
            raise HttpError(400, "accept needs confirmed: true (plate and state checked by the officer)")
        return "accept", None, note
    if reason not in REJECT_REASONS:
        raise HttpError(400, f"reason {reason!r} is not allowed; use one of: {', '.join(REJECT_REASONS)}")
    if reason == "other" and note is None:
        raise HttpError(400, "reason 'other' needs a note")
    return "reject", reason, note


def resolve_image(image_dir: Path, rel: str) -> Path:
    """The file under `image_dir` that `rel` names; HttpError for traversal, odd types or absence."""
    rel = unquote(rel)
    parts = rel.replace("\\", "/").split("/")
    if not rel or "\x00" in rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise HttpError(400, f"bad image path {rel!r}")
    base = image_dir.resolve()
    path = (base / rel).resolve()
    if not path.is_relative_to(base):
        raise HttpError(400, f"image path {rel!r} leaves the image directory")
    if path.suffix.lower() not in IMAGE_TYPES:
        raise HttpError(404, f"not an image: {rel!r}")
    if not path.is_file():
        raise HttpError(404, f"no image {rel!r}")
    return path


def _is_loopback(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


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
    ) -> None:
        if token is not None and not _TOKEN.match(token):
            raise ValueError("station token must be 8-200 characters of A-Z a-z 0-9 . _ ~ - (it goes in a cookie)")
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
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        if k9 is not None:
            k9.add_listener(self._k9_changed)

    # lifecycle

    def start(self) -> str:
        """Start serving; returns the base URL (port 0 picks a free port)."""
        handler = type("StationHandler", (_Handler,), {"station": self})
        server_class = _V6Server if ":" in self.bind else ThreadingHTTPServer
        self._httpd = server_class((self.bind, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="station-http", daemon=True)
        self._thread.start()
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(self.bind, self.bind)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        url = f"http://{host}:{self.port}"
        log.info("station page at %s (token %s)", url, "required" if self._token else "off, loopback only")
        return url

    def stop(self) -> None:
        """Close every live stream and stop serving."""
        self._stopping.set()
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            c.offer(None)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
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
            message = f"id: {self._seq}\nevent: {kind}\ndata: {body}\n\n".encode()
            clients = list(self._clients)
        for c in clients:
            c.offer(message)

    def client_count(self) -> int:
        """How many pages are connected to the event stream now."""
        with self._lock:
            return len(self._clients)

    def state(self) -> dict[str, Any]:
        """Everything a page needs after (re)connecting."""
        try:
            status = self._status()
        except Exception:
            log.exception("station: status callable failed")
            status = {}
        with self._lock:
            hits = list(self._hits.values())
            dispositions = dict(self._dispositions)
            reads = list(self._reads)
            heat = self._heat
        return {
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

    # request handling (called from _Handler)

    def authorise(self, handler: _Handler, query: dict[str, list[str]]) -> str | None:
        """None if the request may proceed, else why not. A valid ?token= is reported as 'set-cookie'."""
        if self._token is None:
            return None if _is_loopback(handler.client_address[0]) else "only loopback clients without a token"
        if "token" in query and hmac.compare_digest(query["token"][0].encode(), self._token.encode()):
            return "set-cookie"
        auth = handler.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self._token.encode()):
            return None
        for part in handler.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(value.encode(), self._token.encode()):
                return None
        return "token missing or wrong"

    def cookie(self) -> str:
        """The Set-Cookie value that carries the token."""
        return f"{COOKIE}={self._token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000"

    def add_client(self) -> _Client:
        client = _Client()
        with self._lock:
            self._clients.add(client)
        return client

    def remove_client(self, client: _Client) -> None:
        with self._lock:
            self._clients.discard(client)

    def disposition(self, hit_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if not _ID.match(hit_id):
            raise HttpError(400, f"bad hit id {hit_id!r}")
        decision, reason, note = parse_disposition(body)
        try:
            stored = self._on_disposition(hit_id, decision, reason, note)
        except KeyError as exc:
            raise HttpError(404, f"no hit {hit_id}: {exc}") from exc
        except ValueError as exc:
            raise HttpError(400, str(exc)) from exc
        record: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
        if record.get("event_id") not in (None, hit_id):
            record["disposition_event_id"] = record["event_id"]  # the daemon's own id for the HQ message
        record.update(event_id=hit_id, decision=decision, reason=reason, note=note)
        self.push("disposition", record)
        return record

    def k9_start(self, body: dict[str, Any]) -> dict[str, Any]:
        k9 = self._need_k9()
        try:
            return k9.start(body.get("dog", ""), body.get("handler", ""), body.get("type", ""),
                            case_number=body.get("case_number"), notes=body.get("notes") or "",
                            trigger="manual")
        except K9Error as exc:
            raise HttpError(400, str(exc)) from exc

    def k9_end(self, deployment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        k9 = self._need_k9()
        try:
            return k9.end(deployment_id, body.get("outcome", ""), body.get("notes") or "")
        except KeyError as exc:
            raise HttpError(404, str(exc)) from exc
        except K9Error as exc:
            raise HttpError(400, str(exc)) from exc

    def _need_k9(self) -> K9Log:
        if self._k9 is None:
            raise HttpError(404, "no K9 unit configured in this car")
        return self._k9


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    station: StationServer
    server_version = "PiCAR-station"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class name
        log.debug("station %s %s", self.client_address[0], format % args)

    # plumbing

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in {**_SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data, default=str).encode()
        self._send(status, body, "application/json", {"Cache-Control": "no-store"})

    def _error(self, status: int, message: str) -> None:
        if self.path.startswith("/api/") or self.command == "POST":
            self._json(status, {"error": message})
        else:
            page = f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{_html(message)}</p>"
            self._send(status, page.encode(), "text/html; charset=utf-8")

    def _body(self) -> dict[str, Any]:
        if self.headers.get_content_type() != "application/json":
            raise HttpError(415, "send application/json")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError as exc:
            raise HttpError(400, "bad Content-Length") from exc
        if length > MAX_BODY:
            raise HttpError(413, f"body of {length} bytes, at most {MAX_BODY}")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HttpError(400, f"body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise HttpError(400, "body must be a JSON object")
        return data

    def _check(self, method: str) -> tuple[str, dict[str, list[str]]] | None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        verdict = self.station.authorise(self, query)
        if verdict == "set-cookie" and method == "GET":
            # Drop the token from the address bar (and from history) once the cookie holds it.
            self._send(303, b"", "text/plain", {"Location": url.path or "/", "Set-Cookie": self.station.cookie()})
            return None
        if verdict not in (None, "set-cookie"):
            self._error(401, f"Not authorised ({verdict}). Open the station link with ?token=...")
            return None
        if method == "POST":
            origin = self.headers.get("Origin")
            if origin and urlsplit(origin).netloc != self.headers.get("Host"):
                self._error(403, f"cross-origin request from {origin} refused")
                return None
        return url.path, query

    # verbs

    def do_GET(self) -> None:
        checked = self._check("GET")
        if checked is None:
            return
        path, _ = checked
        try:
            self._get(path)
        except HttpError as exc:
            self._error(exc.status, exc.message)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_HEAD = do_GET

    def do_POST(self) -> None:
        checked = self._check("POST")
        if checked is None:
            return
        path, _ = checked
        try:
            self._json(200, self._post(path, self._body()))
        except HttpError as exc:
            self._error(exc.status, exc.message)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:
            log.exception("station: %s failed", path)
            self._error(500, f"internal error: {type(exc).__name__}: {exc}")

    def _get(self, path: str) -> None:
        station = self.station
        if path in ("/", "/index.html"):
            path = "/static/index.html"
        if path.startswith("/static/"):
            name = path[len("/static/"):]
            if name not in STATIC_FILES:
                raise HttpError(404, f"no such file {name!r}")
            self._send(200, (STATIC_DIR / name).read_bytes(), STATIC_FILES[name], {"Cache-Control": "no-cache"})
        elif path == "/events":
            if self.command == "HEAD":
                raise HttpError(405, "the event stream needs GET")
            self._events()
        elif path == "/api/state":
            self._json(200, station.state())
        elif path == "/api/k9":
            self._json(200, station._need_k9().active())
        elif path.startswith("/images/"):
            image = resolve_image(station.image_dir, path[len("/images/"):])
            self._send(200, image.read_bytes(), IMAGE_TYPES[image.suffix.lower()],
                       {"Cache-Control": "private, max-age=3600"})
        else:
            raise HttpError(404, f"no such page {path!r}")

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        station = self.station
        if len(parts) == 4 and parts[:2] == ["api", "hits"] and parts[3] == "disposition":
            return station.disposition(unquote(parts[2]), body)
        if parts == ["api", "k9", "start"]:
            return station.k9_start(body)
        if len(parts) == 4 and parts[:2] == ["api", "k9"] and parts[3] == "end":
            return station.k9_end(unquote(parts[2]), body)
        raise HttpError(404, f"no such action {path!r}")

    def _events(self) -> None:
        station = self.station
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        client = station.add_client()
        try:
            self.wfile.write(b"retry: 2000\n: connected\n\n")
            self.wfile.flush()
            while not station._stopping.is_set() and not client.dropped:
                try:
                    message = client.queue.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    message = b": keepalive\n\n"
                if message is None:
                    break
                self.wfile.write(message)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            station.remove_client(client)


def _html(text: str) -> str:
    return html.escape(text, quote=True)
