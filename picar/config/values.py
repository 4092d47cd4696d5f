"""Checks on config values that types and bounds cannot say, used as pydantic validators by `models`.

Each raises `Invalid` with what is allowed. Paths are taken from the config file's folder: the loader
passes it as the validation context's `base_dir`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

from picar.config.errors import ConfigError, Invalid, show

SourceKind = Literal["index", "device", "url", "file", "folder"]
URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
SOURCE_ALLOWED = (
    "/dev/videoN, a camera index (0, 1, ...), an rtsp://, rtsps://, http:// or https:// URL, "
    "or an existing video file or image folder"
)


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, dict) else {}
    return Path(context.get("base_dir") or Path.cwd())


def _resolve(text: str, info: ValidationInfo) -> Path:
    """`~` expanded, relative paths taken from the config file's folder, `..` folded."""
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = _base_dir(info) / path
    return Path(os.path.normpath(path))


def path(value: Any, info: ValidationInfo) -> Any:
    """A path key: a non-empty string, taken from the config file's folder."""
    if isinstance(value, Path):  # a default, or a caller that already has a Path
        return value
    if not isinstance(value, str) or not value:
        raise Invalid("allowed: a non-empty path string")
    return _resolve(value, info)


def existing_file(value: Path) -> Path:
    """A path key that must name a file: checked only when given (defaults are checked where they are used)."""
    if not value.is_file():
        raise Invalid(f"file not found: {value}; allowed: an existing file")
    return value


def set_or_left_out(value: Any) -> Any:
    """An optional key: TOML has no null, so it is unset only by leaving it out, never by ""."""
    if value == "":
        raise Invalid("must not be empty; allowed: a value, or leave the key out to leave it unset")
    return value


def string_list(value: Any) -> Any:
    """A list of non-empty strings, kept as a tuple."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise Invalid("allowed: a list of non-empty strings, e.g. [\"a\", \"b\"]")
    return tuple(value)


def region_list(names: tuple[str, ...]) -> Callable[[Any], Any]:
    """A check for a plate region: one of `names` ("md") or a non-empty list of them (["md", "ro"]), kept
    as a tuple."""
    allowed = ", ".join(json.dumps(n) for n in names)

    def check(value: Any) -> Any:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not items or not all(isinstance(v, str) for v in items):
            raise Invalid(f'allowed: one of {allowed}, or a non-empty list of them, e.g. ["md", "ro"]')
        bad = [v for v in items if v not in names]
        if bad:
            raise Invalid(f"allowed: {allowed} (or a list of them); not a region: {', '.join(map(json.dumps, bad))}")
        return tuple(items)

    return check


def whole_number(value: Any) -> Any:
    """For a choice of integers: 9600.0 is not 9600 (a Literal alone would take it); reported as not a choice."""
    if isinstance(value, float):
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": "an integer"})
    return value


def camera_source(value: Any, info: ValidationInfo) -> str:
    """A camera source, normalised: an index as digits, a file or folder as an absolute path."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid(f"expected a string or integer; allowed: {SOURCE_ALLOWED}")
    if isinstance(value, int):
        if value < 0:
            raise Invalid(f"a camera index must be >= 0; allowed: {SOURCE_ALLOWED}")
        return str(value)
    text = value.strip()
    if not text:
        raise Invalid(f"must not be empty; allowed: {SOURCE_ALLOWED}")
    if text.isdigit():
        return str(int(text))
    if re.fullmatch(r"/dev/video\d+", text):
        return text  # may be plugged in later: the camera reconnects with back-off
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() not in URL_SCHEMES:
            raise Invalid(f"unsupported URL scheme {parts.scheme!r}; allowed: {SOURCE_ALLOWED}")
        if not parts.hostname:
            raise Invalid(f"URL has no host; allowed: {SOURCE_ALLOWED}")
        return text
    resolved = _resolve(text, info)
    if not resolved.exists():
        raise Invalid(f"no such file or folder: {resolved}; allowed: {SOURCE_ALLOWED}")
    return str(resolved)


def source_kind(source: str) -> SourceKind:
    """What kind of frame source a validated camera `source` string is."""
    if source.isdigit():
        return "index"
    if source.startswith("/dev/"):
        return "device"
    if "://" in source:
        return "url"
    return "folder" if Path(source).is_dir() else "file"


def topic_prefix(value: str) -> str:
    if "+" in value or "#" in value or value.startswith("/") or value.endswith("/") or "//" in value:
        raise Invalid("allowed: an MQTT topic prefix without wildcards (+ #), leading/trailing or doubled '/'")
    if "\0" in value or any(c.isspace() for c in value):
        raise Invalid("allowed: an MQTT topic prefix without spaces or control characters")
    return value


def host(value: str) -> str:
    if "://" in value or any(c.isspace() for c in value) or "/" in value:
        raise Invalid("allowed: a host name or IP address only (no scheme, path or spaces; the port is mqtt.port)")
    return value


def bind_address(value: str) -> str:
    if value == "localhost":
        return value
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise Invalid("allowed: an IP address such as 127.0.0.1, 0.0.0.0 or ::1, or 'localhost'") from None
    return value


def is_loopback(bind: str) -> bool:
    return bind == "localhost" or ipaddress.ip_address(bind).is_loopback


def confusables(groups: tuple[str, ...]) -> tuple[str, ...]:
    for group in groups:
        if len(group) < 2 or not re.fullmatch(r"[A-Z0-9]+", group) or len(set(group)) != len(group):
            raise Invalid(
                f"allowed: groups of 2 or more distinct upper-case letters/digits, e.g. [\"0ODQ\", \"1I\"] "
                f"(bad group: {json.dumps(group)})"
            )
    return groups


def unique(items: tuple[str, ...]) -> tuple[str, ...]:
    repeated = {i for i in items if items.count(i) > 1}
    if repeated:
        raise Invalid(f"allowed: a list without repeats (repeated: {', '.join(sorted(repeated))})")
    return items


def not_below(low: str, *, strict: bool = False) -> Callable[[float, ValidationInfo], float]:
    """A validator: this key must be >= the key `low` of the same table (> when strict), once both are valid."""

    def check(value: float, info: ValidationInfo) -> float:
        if low not in info.data:  # `low` was itself bad, and is reported on its own
            return value
        floor = info.data[low]
        if value <= floor if strict else value < floor:
            key, op = info.field_name, ">" if strict else ">="
            raise Invalid(lines=lambda where: [
                f"{where}{key} = {show(value)}: allowed: a number {op} {where}{low} ({show(floor)})"
            ])
        return value

    return check


def at_most(limit: int, why: str) -> Callable[[int], int]:
    """A validator: an upper bound past which the value is a typo, said with the reason."""

    def check(value: int) -> int:
        if value > limit:
            raise Invalid(f"allowed: at most {limit} ({why})")
        return value

    return check


def read_credentials(path: Path) -> tuple[str, str]:
    """(username, password) from a file of `username=...` and `password=...` lines.

    Blank lines and lines starting with '#' are ignored; values are stripped of surrounding spaces.
    Raises ConfigError naming the file and line of each problem.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read credentials file: {exc}"]) from None
    found: dict[str, tuple[str, int]] = {}
    problems: list[str] = []
    for n, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            problems.append(f"{path}:{n}: expected key=value; allowed keys: username, password")
        elif key not in ("username", "password"):
            problems.append(f"{path}:{n}: unknown key {key!r}; allowed keys: username, password")
        elif key in found:
            problems.append(f"{path}:{n}: {key} given again (first on line {found[key][1]})")
        elif not value:
            problems.append(f"{path}:{n}: {key} is empty")
        else:
            found[key] = (value, n)
    for key in ("username", "password"):
        if key not in found and not any(f": {key} " in p for p in problems):
            problems.append(f"{path}: missing line {key}=...")
    if problems:
        raise ConfigError(problems)
    return found["username"][0], found["password"][0]
