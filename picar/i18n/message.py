"""Text that is translated when it is shown, not when it is made.

Code deep in the car (a K9 rule, a disposition check) raises its error long before anyone knows which
language the officer reads. It raises a `Message` instead of a finished string: the msgid (marked with
`N_` for extraction) and its named parameters. `str()` gives the English text, as before; the page
translates it for the officer's language (`Translator.message`).

Placeholders are `{name}` (Python's str.format, `{name!r}` allowed); the page's scripts use the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def N_(msgid: str) -> str:  # noqa: N802 (the name gettext tools look for)
    """Mark `msgid` for extraction without translating it here (it is translated where it is shown)."""
    return msgid


@dataclass(frozen=True)
class Message:
    """A msgid and its parameters; a parameter that is itself a Message is translated along with it."""

    msgid: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, msgid: str, **params: Any) -> Message:
        return cls(msgid, tuple(params.items()))

    def render(self, gettext: Callable[[str], str]) -> str:
        """The text with `gettext` applied to the msgid and to every Message among the parameters."""
        template = gettext(self.msgid)
        if not self.params:
            return template  # not a format: text made elsewhere may hold braces
        values = {k: v.render(gettext) if isinstance(v, Message) else v for k, v in self.params}
        for text in (template, self.msgid):  # a broken translation must not hide the message
            try:
                return text.format(**values)
            except (KeyError, IndexError, ValueError):
                continue
        return f"{self.msgid} {values}"

    def __str__(self) -> str:
        return self.render(lambda s: s)


class TranslatableError(ValueError):
    """An error whose text is a Message: `str(exc)` is English, `exc.message` translates."""

    def __init__(self, msgid: str, **params: Any) -> None:
        self.message = Message.of(msgid, **params)
        super().__init__(str(self.message))


def message_of(exc: BaseException) -> Message | str:
    """The Message an exception carries (as a TranslatableError or as its argument), else its text."""
    if isinstance(exc, TranslatableError):
        return exc.message
    if exc.args and isinstance(exc.args[0], Message):
        return exc.args[0]
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])  # KeyError's own str() would quote it
    return str(exc)
