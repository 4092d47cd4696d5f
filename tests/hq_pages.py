"""Helpers for the console-tools browser tests (search, audit, watchlists, K9): waiting across a form's
navigation, screenshots for the docs, and the text a screen shows (for the language checks)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from tests.browser import BrowserError, Page

SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def settle(page: Page, condition: str, timeout: float = 30) -> Any:
    """`page.wait_for` across a navigation (a form's submit), which ends the script that was waiting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return page.wait_for(condition, max(1.0, deadline - time.monotonic()))
        except BrowserError as exc:
            if "navigated" not in str(exc) and "context" not in str(exc) or time.monotonic() > deadline:
                raise


def submit(page: Page, button: str, condition: str, timeout: float = 30) -> Any:
    """Click a form's button and wait for `condition` on the page that answers (not on the one that asked)."""
    page.evaluate("window.picarAsked = true")
    page.click(button)
    return settle(page, f"!window.picarAsked && document.readyState === 'complete' && ({condition})", timeout)


def shoot(page: Page, tmp: Path, name: str, height: int | None = None) -> Path:
    """A screenshot in the test's folder (PICAR_SCREENSHOTS=1 copies it to docs/screenshots/NAME for the README and
    docs/hq.md): the window, or the page laid out `height` pixels tall (the console scrolls its main part, so a
    taller window is what shows more of it)."""
    if height:
        page.send("Emulation.setDeviceMetricsOverride", {"width": page.browser.width, "height": height,
                                                         "deviceScaleFactor": 1, "mobile": False})
    path = page.screenshot(tmp / name)
    if height:
        page.send("Emulation.setDeviceMetricsOverride", {"width": page.browser.width, "height": page.browser.height,
                                                         "deviceScaleFactor": 1, "mobile": False})
    if os.environ.get("PICAR_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SHOTS / name)
    return path


def choose_file(page: Page, selector: str, path: Path) -> None:
    """Put a file in an <input type=file> as the file chooser would (DevTools DOM.setFileInputFiles)."""
    root = page.send("DOM.getDocument")["root"]["nodeId"]
    node = page.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    page.send("DOM.setFileInputFiles", {"files": [str(path)], "nodeId": node})


# Every text of the page's <main> and the attributes a reader or a screen reader gets, without the cells that
# quote a file's own words (an importer's message about a line: class "mono") and the map's place names (data).
MAIN_TEXTS_JS = """(() => {
  const main = document.querySelector("main"), out = [document.title];
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const parent = n.parentElement;
    if (!parent || parent.closest("script, style, .mono, svg")) continue;
    const text = n.textContent.trim();
    if (text) out.push(text);
  }
  for (const e of main.querySelectorAll("*")) {
    for (const a of ["title", "alt", "aria-label", "placeholder", "data-pattern", "data-error"]) {
      const v = (e.getAttribute(a) || "").trim();
      if (v) out.push(v);
    }
  }
  return out;
})()"""
