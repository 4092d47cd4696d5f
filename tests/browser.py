"""Headless Chromium for tests, driven over the DevTools protocol on a pipe.

`--remote-debugging-pipe` makes Chromium read commands on fd 3 and write replies on fd 4, each
a JSON message ended by a NUL byte. That needs no websocket client and no extra dependency.
Clicks are real input events at the element's centre, not `element.click()`.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.waiting import wait_until

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
    # Tabs behind the front one would otherwise get their timers slowed to once a second.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


def chromium_binary() -> str | None:
    """The Chromium executable, or None when it is not installed."""
    for candidate in ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def _high_fd(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class BrowserError(RuntimeError):
    """A DevTools command failed or timed out."""


class Browser:
    """One Chromium process with a pipe to its DevTools endpoint."""

    def __init__(self, width: int = 1024, height: int = 600) -> None:
        binary = chromium_binary()
        if binary is None:
            raise BrowserError("chromium is not installed: apt-get install -y chromium")
        self.width, self.height = width, height
        self._profile = tempfile.mkdtemp(prefix="picar-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Move the child's ends above 9 so that the redirections below cannot clobber them.
        to_child_r, from_child_w = (_high_fd(to_child_r), _high_fd(from_child_w))
        # The child must see the pipe ends as fds 3 and 4; bash redirections put them there.
        script = f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-'
        self.proc = subprocess.Popen(
            [shutil.which("bash") or "/bin/bash", "-c", script, binary, *FLAGS, "--remote-debugging-pipe",
             f"--user-data-dir={self._profile}", f"--window-size={width},{height}", "about:blank"],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._lock = threading.Lock()
        self._next_id = 0
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self.console: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        waiter = self._waiting.pop(msg["id"], None)
                    if waiter:
                        waiter[1].append(msg)
                        waiter[0].set()
                elif msg.get("method") == "Runtime.consoleAPICalled":
                    args = msg["params"].get("args", [])
                    self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
                elif msg.get("method") == "Runtime.exceptionThrown":
                    self.console.append("EXCEPTION " + json.dumps(msg["params"]["exceptionDetails"])[:500])
        with self._lock:
            for event, _ in self._waiting.values():
                event.set()

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        """Send one DevTools command and wait for its reply."""
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
            event = threading.Event()
            box: list[dict[str, Any]] = []
            self._waiting[msg_id] = (event, box)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        if not event.wait(timeout) or not box:
            raise BrowserError(f"{method}: no reply within {timeout} s; stderr: {self.stderr()[-800:]}")
        if "error" in box[0]:
            raise BrowserError(f"{method}: {box[0]['error']}")
        return box[0].get("result", {})

    def stderr(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    def new_page(self, url: str) -> Page:
        """Open `url` in a new tab of the browser's size and wait for it to load."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        page.send("Runtime.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        page.goto(url)
        return page

    def close_pages(self) -> None:
        """Close every tab and wait until they are gone: their scripts stop and their loads are cancelled (a
        page that polls would otherwise go on using the cookies every tab shares)."""
        def pages() -> list[str]:
            return [t["targetId"] for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page"]

        for target in pages():
            self.send("Target.closeTarget", {"targetId": target})
        if not wait_until(lambda: not pages(), 10):
            raise BrowserError(f"tabs still open after closing them: {pages()}")

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except BrowserError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)


class Page:
    """One tab."""

    def __init__(self, browser: Browser, session: str, target: str = "") -> None:
        self.browser = browser
        self.session = session
        self.target = target

    def close(self) -> None:
        """Close the tab: its scripts stop (a page that polls would otherwise go on using the shared cookies)."""
        self.browser.send("Target.closeTarget", {"targetId": self.target})

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        return self.browser.send(method, params, self.session, timeout)

    def goto(self, url: str, timeout: float = 30.0) -> None:
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'", timeout)

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """Evaluate JavaScript (promises are awaited) and return its JSON value."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True, "userGesture": False}, timeout + 1)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout: float = 30.0) -> Any:
        """Wait, inside the page, until the JS `condition` is truthy; return its value."""
        js = f"""new Promise((resolve, reject) => {{
            const t0 = performance.now();
            const check = () => {{
                let v; try {{ v = ({condition}); }} catch (e) {{ v = false; }}
                if (v) return resolve(v);
                if (performance.now() - t0 > {timeout * 1000})
                    return reject(new Error("timed out: " + {json.dumps(condition)}));
                setTimeout(check, 20);
            }};
            check();
        }})"""
        return self.evaluate(js, timeout + 1)

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the (visible) element."""
        box = self.wait_for(
            f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
                if (!e || e.disabled || e.closest('[hidden]')) return null;
                e.scrollIntoView({{block: 'center'}});
                const r = e.getBoundingClientRect();
                return r.width && r.height ? {{x: r.x + r.width / 2, y: r.y + r.height / 2}} : null; }})()""")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"],
                                                   "button": "left", "clickCount": 1})

    def type(self, selector: str, text: str) -> None:
        """Focus the element by clicking it and type `text` as real key input."""
        self.click(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the viewport."""
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextmanager
def browser(width: int = 1024, height: int = 600) -> Iterator[Browser]:
    """A Chromium for the duration of a `with` block."""
    b = Browser(width, height)
    try:
        yield b
    finally:
        b.close()
