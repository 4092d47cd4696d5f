"""What a technician is told about a bad config: ConfigError's problem lines, and how a value is shown in them.

Every problem is one line that starts with the key path (`mqtt.port`, `cameras[1].source`), shows the value
as it would be written in TOML, and says what is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import InitErrorDetails

T = TypeVar("T")


class ConfigError(Exception):
    """The configuration is unusable. `problems` holds one line per problem, each naming the key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class Invalid(ValueError):
    """Raised by a validator for what types cannot say.

    `text` follows "key = value: " in the problem line, e.g. "allowed: a list without repeats". A rule that
    names other keys gives `lines` instead: it gets the key path prefix of the table ("mqtt.", "cameras[0].",
    "" at the top) and returns whole problem lines.
    """

    def __init__(self, text: str = "", *, lines: Callable[[str], list[str]] | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.lines = lines


@dataclass(frozen=True)
class Allowed:
    """Annotation metadata: what is allowed, in words, where a pattern or form says it only to a programmer."""

    text: str


def show(value: Any) -> str:
    """A value as it would be written in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def also_report(problems: list[InitErrorDetails], handler: Callable[[Any], T], data: Any) -> T:
    """For a wrap validator: validate `data` with `handler`, and report `problems` found on the raw data too,
    together with the handler's own errors rather than after they are fixed."""
    try:
        result = handler(data)
    except ValidationError as exc:
        if not problems:
            raise
        own: list[InitErrorDetails] = []
        for e in exc.errors():
            again = InitErrorDetails(type=e["type"], loc=e["loc"], input=e["input"])
            if "ctx" in e:
                again["ctx"] = e["ctx"]
            own.append(again)
        raise ValidationError.from_exception_data(exc.title, own + problems) from None
    if problems:
        raise ValidationError.from_exception_data(type(result).__name__, problems)
    return result
