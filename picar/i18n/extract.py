"""Babel extractor for the pages' HTML (babel.cfg: `html = picar.i18n.extract:extract_html`).

An element marked `data-i18n` is translated whole: its text (whitespace collapsed) is the msgid, and it
must hold text only, no child elements, so that the script can replace it with `textContent` and nothing
of the markup is lost or injected. `data-i18n-attr="title aria-label"` names attributes whose values are
msgids. picar/i18n/static/i18n.js applies both the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from typing import IO, Any

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

Extracted = tuple[int, str, str, list[str]]


def normalise(text: str) -> str:
    """Whitespace collapsed, as the script does before it looks a text up."""
    return " ".join(text.split())


class _Collector(HTMLParser):
    def __init__(self, name: str) -> None:
        super().__init__(convert_charrefs=True)
        self.name = name
        self.found: list[Extracted] = []
        self._open: tuple[str, int, list[str]] | None = None  # the data-i18n element being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        if self._open is not None:
            raise ValueError(f"{self.name} line {line}: <{tag}> inside the data-i18n element of line "
                             f"{self._open[1]}; a translated element holds text only")
        values = dict(attrs)
        for attr in (values.get("data-i18n-attr") or "").split():
            text = normalise(values.get(attr) or "")
            if not text:
                raise ValueError(f"{self.name} line {line}: data-i18n-attr names {attr!r}, which is empty")
            self.found.append((line, "gettext", text, [f"<{tag}> {attr}"]))
        if "data-i18n" in values and tag not in VOID:
            self._open = (tag, line, [])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if self._open is not None and self._open[0] == tag:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[2].append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open is None or tag != self._open[0]:
            return
        _, line, parts = self._open
        self._open = None
        text = normalise("".join(parts))
        if not text:
            raise ValueError(f"{self.name} line {line}: <{tag} data-i18n> has no text")
        self.found.append((line, "gettext", text, []))


def extract_html(fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: dict[str, Any]) -> Iterator[Extracted]:
    """Babel extraction method: (line, function, msgid, comments) for each translated text of an HTML page."""
    collector = _Collector(getattr(fileobj, "name", "<html>"))
    collector.feed(fileobj.read().decode(options.get("encoding", "utf-8")))
    collector.close()
    yield from collector.found
