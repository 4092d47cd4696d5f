"""PiCAR configuration: one TOML file, validated at start into frozen dataclasses.

Each section is a frozen dataclass. Its field names are the TOML keys, its annotations give the
type, and `_key(...)` metadata gives the rules (range, choices, pattern, file must exist, derived
default). One generic reader walks those fields, so adding a key is one line here plus one line in
config/picar.example.toml (a test keeps the two in step). Cross-key rules live in small
`_check_<section>` functions. Every problem is collected, then raised together as ConfigError.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import json
import math
import os
import re
import sys
import tomllib
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from picar.link import MAX_INFLIGHT
from picar.link.topics import DEFAULT_PREFIX
from picar.paths import DEFAULT_DETECTOR, DEFAULT_OCR, EXAMPLE_CONFIG

# Plate format regions (picar.vision.formats.REGIONS; a test keeps the two in step).
Region = Literal["auto", "us", "eu", "br", "ar", "de", "md", "pl", "ro", "tr", "ua"]
Position = Literal["front", "rear", "left", "right"]
SourceKind = Literal["index", "device", "url", "file", "folder"]
SERIAL_BAUDS = (4800, 9600, 19200, 38400, 57600, 115200)
URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
SOURCE_ALLOWED = (
    "/dev/videoN, a camera index (0, 1, ...), an rtsp://, rtsps://, http:// or https:// URL, "
    "or an existing video file or image folder"
)


class ConfigError(Exception):
    """The configuration is unusable. `problems` holds one line per problem, each naming the key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class _Invalid(Exception):
    """Raised by a value check; the text says what is allowed."""


@dataclass(frozen=True)
class _Rule:
    """How one key is checked beyond its annotated type."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # the bound itself is not allowed (> rather than >=)
    choices: tuple[Any, ...] | None = None
    pattern: str | None = None
    pattern_help: str = ""
    allow_empty: bool = False
    exists: Literal["file", "dir"] | None = None  # checked only when the key is given
    # Replaces the type-driven conversion (e.g. a camera source may be an int or a string).
    convert: Callable[[Any, _Ctx], Any] | None = None
    # Extra check on the converted value: returns None when fine, else what is allowed.
    check: Callable[[Any], str | None] | None = None
    # Default computed from other keys: (this section's parsed values, context) -> value.
    derive: Callable[[dict[str, Any], _Ctx], Any] | None = None


def _key(default: Any = MISSING, **rule: Any) -> Any:
    """A dataclass field carrying its validation rule; no default means required or derived."""
    meta = {"rule": _Rule(**rule)}
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class _Ctx:
    base_dir: Path
    vehicle_id: str | None = None
    data_dir: Path | None = None

    def path(self, text: str) -> Path:
        """`~` expanded, relative paths taken from the config file's directory, `..` folded."""
        p = Path(text).expanduser()
        if not p.is_absolute():
            p = self.base_dir / p
        return Path(os.path.normpath(p))


# --- value checks used in the tables below -------------------------------------------------------


def _camera_source(value: Any, ctx: _Ctx) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _Invalid(f"expected a string or integer; allowed: {SOURCE_ALLOWED}")
    if isinstance(value, int):
        if value < 0:
            raise _Invalid(f"a camera index must be >= 0; allowed: {SOURCE_ALLOWED}")
        return str(value)
    text = value.strip()
    if not text:
        raise _Invalid(f"must not be empty; allowed: {SOURCE_ALLOWED}")
    if text.isdigit():
        return str(int(text))
    if re.fullmatch(r"/dev/video\d+", text):
        return text  # may be plugged in later: the camera reconnects with back-off
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() not in URL_SCHEMES:
            raise _Invalid(f"unsupported URL scheme {parts.scheme!r}; allowed: {SOURCE_ALLOWED}")
        if not parts.hostname:
            raise _Invalid(f"URL has no host; allowed: {SOURCE_ALLOWED}")
        return text
    path = ctx.path(text)
    if not path.exists():
        raise _Invalid(f"no such file or folder: {path}; allowed: {SOURCE_ALLOWED}")
    return str(path)


def source_kind(source: str) -> SourceKind:
    """What kind of frame source a validated camera `source` string is."""
    if source.isdigit():
        return "index"
    if source.startswith("/dev/"):
        return "device"
    if "://" in source:
        return "url"
    return "folder" if Path(source).is_dir() else "file"


def _topic_prefix(value: str) -> str | None:
    if "+" in value or "#" in value or value.startswith("/") or value.endswith("/") or "//" in value:
        return "an MQTT topic prefix without wildcards (+ #), leading/trailing or doubled '/'"
    if "\0" in value or any(c.isspace() for c in value):
        return "an MQTT topic prefix without spaces or control characters"
    return None


def _host(value: str) -> str | None:
    if "://" in value or any(c.isspace() for c in value) or "/" in value:
        return "a host name or IP address only (no scheme, path or spaces; the port is mqtt.port)"
    return None


def _bind_address(value: str) -> str | None:
    if value == "localhost":
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "an IP address such as 127.0.0.1, 0.0.0.0 or ::1, or 'localhost'"
    return None


def _is_loopback(bind: str) -> bool:
    return bind == "localhost" or ipaddress.ip_address(bind).is_loopback


def _confusables(groups: tuple[str, ...]) -> str | None:
    for group in groups:
        if len(group) < 2 or not re.fullmatch(r"[A-Z0-9]+", group) or len(set(group)) != len(group):
            return (
                f"groups of 2 or more distinct upper-case letters/digits, e.g. [\"0ODQ\", \"1I\"] "
                f"(bad group: {json.dumps(group)})"
            )
    return None


def _unique(items: tuple[str, ...]) -> str | None:
    seen = {i for i in items if items.count(i) > 1}
    return f"a list without repeats (repeated: {', '.join(sorted(seen))})" if seen else None


_VEHICLE_ID = r"[A-Za-z0-9_-]{1,64}"

# --- the schema ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VehicleConfig:
    """The car itself."""

    id: str = _key(pattern=_VEHICLE_ID, pattern_help="1-64 letters, digits, '_' or '-' (used in MQTT topics)")
    description: str = _key("", allow_empty=True)


@dataclass(frozen=True, kw_only=True)
class CameraConfig:
    """One frame source. `source` is normalised: an index as digits, a file or folder as an absolute path."""

    name: str = _key(pattern=r"[a-z0-9_-]{1,32}", pattern_help="1-32 lower-case letters, digits, '_' or '-'")
    source: str = _key(convert=_camera_source)
    position: Position = _key("front")
    enabled: bool = _key(True)
    realtime: bool = _key(True)
    loop: bool = _key(False)
    fps: float = _key(0.0, lo=0, hi=240)
    width: int = _key(0, lo=0, hi=8192)
    height: int = _key(0, lo=0, hi=8192)
    reconnect_initial_s: float = _key(1.0, lo=0, lo_open=True, hi=3600)
    reconnect_max_s: float = _key(30.0, lo=0, lo_open=True, hi=3600)
    region: Region = _key("auto")

    @property
    def source_kind(self) -> SourceKind:
        return source_kind(self.source)


@dataclass(frozen=True, kw_only=True)
class GpsConfig:
    """The position receiver."""

    source: Literal["serial", "gpsd", "none"] = _key("serial")
    device: str = _key("/dev/ttyACM0")
    baud: int = _key(9600, choices=SERIAL_BAUDS)
    gpsd_host: str = _key("127.0.0.1", check=_host)
    gpsd_port: int = _key(2947, lo=1, hi=65535)
    max_fix_age_s: float = _key(3.0, lo=0, lo_open=True, hi=3600)
    reopen_initial_s: float = _key(1.0, lo=0, lo_open=True, hi=3600)
    reopen_max_s: float = _key(30.0, lo=0, lo_open=True, hi=3600)


@dataclass(frozen=True, kw_only=True)
class ModelsConfig:
    """The ONNX detector and OCR, and how hard to run them."""

    # A path given here must exist; the shipped defaults are checked when the models load.
    detector: Path = _key(DEFAULT_DETECTOR, exists="file")
    ocr: Path = _key(DEFAULT_OCR, exists="file")
    threads: int = _key(1, lo=1, hi=8)
    detector_threshold: float | None = _key(None, lo=0, hi=1)
    min_read_confidence: float = _key(0.5, lo=0, hi=1)
    region: Region = _key("auto")


@dataclass(frozen=True, kw_only=True)
class TrackerConfig:
    """How detections across frames are joined into one read per vehicle pass."""

    iou: float = _key(0.2, lo=0, lo_open=True, hi=1)
    max_gap_s: float = _key(1.5, lo=0, lo_open=True, hi=60)
    min_frames: int = _key(2, lo=1, hi=100)
    cooldown_s: float = _key(60.0, lo=0, hi=86400)
    max_tracks: int = _key(64, lo=1, hi=10000)


@dataclass(frozen=True, kw_only=True)
class WatchlistConfig:
    """Where the watchlist lives, how it is verified and how loosely reads match it."""

    dir: Path = _key(derive=lambda _v, ctx: ctx.data_dir / "watchlist" if ctx.data_dir else None)
    public_key: Path | None = _key(None, exists="file")
    require_signature: bool = _key(True)
    max_substitutions: int = _key(1, lo=0, hi=3)
    max_edit_distance: int = _key(1, lo=0, hi=1)
    confusables: tuple[str, ...] = _key(("0ODQ", "1I", "2Z", "5S", "8B", "6G"), check=_confusables)
    recheck_hours: float = _key(24.0, lo=0, lo_open=True, hi=24 * 365)
    hit_cooldown_s: float = _key(300.0, lo=0, hi=86400)


@dataclass(frozen=True, kw_only=True)
class MqttConfig:
    """The link to HQ. `port` and `client_id` are always filled in (derived when not given)."""

    enabled: bool = _key(True)
    host: str = _key("127.0.0.1", check=_host)
    port: int = _key(lo=1, hi=65535, derive=lambda v, _ctx: 8883 if v.get("tls", True) else 1883)
    tls: bool = _key(True)
    ca_file: Path | None = _key(None)  # existence checked only when tls = true
    cert_file: Path | None = _key(None)
    key_file: Path | None = _key(None)
    credentials_file: Path | None = _key(None, exists="file")
    keepalive_s: int = _key(30, lo=5, hi=600)
    topic_prefix: str = _key(DEFAULT_PREFIX, check=_topic_prefix)
    position_interval_s: float = _key(5.0, lo=0, lo_open=True, hi=3600)
    max_inflight: int = _key(20, lo=1, hi=MAX_INFLIGHT)
    client_id: str = _key(
        pattern=r"[!-~]{1,128}",
        pattern_help="1-128 printable characters without spaces",
        derive=lambda _v, ctx: f"picar-{ctx.vehicle_id}" if ctx.vehicle_id else None,
    )


@dataclass(frozen=True, kw_only=True)
class StorageConfig:
    """Where data is kept on the car."""

    data_dir: Path = _key(Path("/var/lib/picar"))
    save_hit_images: bool = _key(True)
    save_read_crops: bool = _key(False)
    min_free_mb: int = _key(200, lo=0)


@dataclass(frozen=True, kw_only=True)
class RetentionConfig:
    """How long records are kept."""

    reads_days: float = _key(7.0, lo=0, lo_open=True, hi=36500)
    hits_days: float = _key(365.0, lo=0, lo_open=True, hi=36500)
    k9_days: float = _key(3650.0, lo=0, lo_open=True, hi=36500)
    purge_interval_s: float = _key(3600.0, lo=1, hi=86400 * 7)


@dataclass(frozen=True, kw_only=True)
class UiConfig:
    """The in-car alert page."""

    enabled: bool = _key(True)
    bind: str = _key("127.0.0.1", check=_bind_address)
    port: int = _key(8088, lo=1, hi=65535)
    token_file: Path | None = _key(None, exists="file")


@dataclass(frozen=True, kw_only=True)
class K9Config:
    """Dog unit: door sensor, kennel heat monitor, deployment log."""

    enabled: bool = _key(False)
    door_device: str | None = _key(None)
    heat_device: str | None = _key(None)
    heat_baud: int = _key(9600, choices=SERIAL_BAUDS)
    heat_warn_c: float = _key(29.0, lo=0, hi=60)
    heat_alarm_c: float = _key(32.0, lo=0, hi=60)
    alarm_command: str | None = _key(None)
    dogs: tuple[str, ...] = _key((), check=_unique)
    handlers: tuple[str, ...] = _key((), check=_unique)


@dataclass(frozen=True, kw_only=True)
class LoggingConfig:
    """Log level and the audit log (always a path: derived from storage.data_dir when not given)."""

    level: Literal["debug", "info", "warning", "error"] = _key("info")
    audit_file: Path = _key(derive=lambda _v, ctx: ctx.data_dir / "audit.log" if ctx.data_dir else None)


@dataclass(frozen=True)
class Config:
    """The whole validated configuration; `source_path` is the file it came from, if any."""

    vehicle: VehicleConfig
    cameras: tuple[CameraConfig, ...]
    gps: GpsConfig
    models: ModelsConfig
    tracker: TrackerConfig
    watchlist: WatchlistConfig
    mqtt: MqttConfig
    storage: StorageConfig
    retention: RetentionConfig
    ui: UiConfig
    k9: K9Config
    logging: LoggingConfig
    source_path: Path | None = None


# Table sections in file order; `cameras` is the one array of tables.
SECTIONS: dict[str, type] = {
    "vehicle": VehicleConfig,
    "cameras": CameraConfig,
    "gps": GpsConfig,
    "models": ModelsConfig,
    "tracker": TrackerConfig,
    "watchlist": WatchlistConfig,
    "mqtt": MqttConfig,
    "storage": StorageConfig,
    "retention": RetentionConfig,
    "ui": UiConfig,
    "k9": K9Config,
    "logging": LoggingConfig,
}

# --- the generic reader --------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as it would be written in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _range_text(noun: str, rule: _Rule) -> str:
    if rule.lo is not None and rule.hi is not None and not rule.lo_open:
        return f"{noun} from {_num(rule.lo)} to {_num(rule.hi)}"
    parts = []
    if rule.lo is not None:
        parts.append(f"{'>' if rule.lo_open else '>='} {_num(rule.lo)}")
    if rule.hi is not None:
        parts.append(f"<= {_num(rule.hi)}")
    return f"{noun} {' and '.join(parts)}" if parts else noun


def _in_range(x: float, rule: _Rule) -> bool:
    if rule.lo is not None and (x < rule.lo or (rule.lo_open and x == rule.lo)):
        return False
    return rule.hi is None or x <= rule.hi


def _convert(value: Any, hint: Any, rule: _Rule, ctx: _Ctx) -> Any:
    """Check one TOML value against its annotation and rule; returns the typed value."""
    if rule.convert is not None:
        return rule.convert(value, ctx)
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):  # `X | None`: TOML has no null, so None only by omission
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        if value == "":
            raise _Invalid("must not be empty; allowed: a value, or leave the key out to leave it unset")
        return _convert(value, inner, rule, ctx)
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices or isinstance(value, bool):
            raise _Invalid(f"allowed: {', '.join(_show(c) for c in choices)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _Invalid("allowed: true or false")
        return value
    if hint is int or hint is float:
        noun = "an integer" if hint is int else "a number"
        ok_type = isinstance(value, int) if hint is int else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            raise _Invalid(f"allowed: {_range_text(noun, rule)}")
        if not math.isfinite(value):
            raise _Invalid(f"allowed: a finite {_range_text(noun, rule).removeprefix('a ')}")
        if rule.choices is not None and value not in rule.choices:
            raise _Invalid(f"allowed: {', '.join(_show(c) for c in rule.choices)}")
        if not _in_range(value, rule):
            raise _Invalid(f"out of range; allowed: {_range_text(noun, rule)}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise _Invalid(f"allowed: a string{' like ' + rule.pattern_help if rule.pattern_help else ''}")
        if not value and not rule.allow_empty:
            raise _Invalid("must not be empty")
        if rule.pattern and not re.fullmatch(rule.pattern, value):
            raise _Invalid(f"allowed: {rule.pattern_help or 'matching ' + rule.pattern}")
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise _Invalid("allowed: a non-empty path string")
        path = ctx.path(value)
        if rule.exists == "file" and not path.is_file():
            raise _Invalid(f"file not found: {path}; allowed: an existing file")
        if rule.exists == "dir" and not path.is_dir():
            raise _Invalid(f"folder not found: {path}; allowed: an existing folder")
        return path
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise _Invalid("allowed: a list of non-empty strings, e.g. [\"a\", \"b\"]")
        return tuple(value)
    raise TypeError(f"config schema: no reader for annotation {hint!r}")  # a bug in this module


def _unknown_key(where: str, key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{where}{key}: unknown key{hint}; allowed keys: {', '.join(allowed)}"


def _read_table(cls: type, raw: dict[str, Any], where: str, ctx: _Ctx, problems: list[str]) -> dict[str, Any]:
    """Parse one table into keyword arguments of `cls`; bad or missing keys are left out.

    `where` is the key path prefix for messages ("mqtt." or "cameras[1].").
    """
    specs: tuple[Field[Any], ...] = fields(cls)
    hints = get_type_hints(cls)
    allowed = [f.name for f in specs]
    problems.extend(_unknown_key(where, key, allowed) for key in raw if key not in allowed)
    values: dict[str, Any] = {}
    derived: list[Field[Any]] = []
    for f in specs:
        rule: _Rule = f.metadata["rule"]
        if f.name in raw:
            try:
                value = _convert(raw[f.name], hints[f.name], rule, ctx)
                reason = rule.check(value) if rule.check and value is not None else None
                if reason:
                    raise _Invalid(f"allowed: {reason}")
                values[f.name] = value
            except _Invalid as exc:
                problems.append(f"{where}{f.name} = {_show(raw[f.name])}: {exc}")
        elif f.default is not MISSING:
            values[f.name] = f.default
        elif rule.derive is not None:
            derived.append(f)
        else:
            what = rule.pattern_help or (SOURCE_ALLOWED if rule.convert is _camera_source else "a value")
            problems.append(f"{where}{f.name}: required key is missing; allowed: {what}")
    for f in derived:  # after the others: a derived default may depend on them (mqtt.port on tls)
        derive = f.metadata["rule"].derive
        assert derive is not None
        value = derive(values, ctx)
        if value is not None:  # None: it depends on a key elsewhere that was already reported as bad
            values[f.name] = value
    return values


# --- cross-key rules -----------------------------------------------------------------------------


class _Partial(dict[str, Any]):
    """The keys of a section that parsed; a rule runs only when all the keys it needs did."""

    def has(self, *keys: str) -> bool:
        return all(k in self for k in keys)



def _ordered(v: _Partial, where: str, low: str, high: str, problems: list[str], strict: bool = False) -> None:
    """`high` must be >= `low` (or > when strict), both keys of the same section."""
    if v.has(low, high) and (v[high] <= v[low] if strict else v[high] < v[low]):
        problems.append(
            f"{where}{high} = {_show(v[high])}: allowed: a number {'>' if strict else '>='} "
            f"{where}{low} ({_show(v[low])})"
        )


def _check_camera(v: _Partial, where: str, problems: list[str]) -> None:
    _ordered(v, where, "reconnect_initial_s", "reconnect_max_s", problems)


def _check_gps(v: _Partial, where: str, problems: list[str]) -> None:
    _ordered(v, where, "reopen_initial_s", "reopen_max_s", problems)


def _check_mqtt(v: _Partial, where: str, problems: list[str]) -> None:
    if v.has("cert_file", "key_file") and (v["cert_file"] is None) != (v["key_file"] is None):
        given, missing = ("cert_file", "key_file") if v["key_file"] is None else ("key_file", "cert_file")
        problems.append(
            f"{where}{missing}: required key is missing because {where}{given} is set; "
            f"allowed: both cert_file and key_file, or neither"
        )
    if v.get("tls"):
        for key in ("ca_file", "cert_file", "key_file"):
            path = v.get(key)
            if path is not None and not path.is_file():
                problems.append(
                    f"{where}{key} = {_show(str(path))}: file not found; allowed: an existing file "
                    f"(needed because {where}tls = true)"
                )
    if v.get("credentials_file") is not None:
        try:
            read_credentials(v["credentials_file"])
        except ConfigError as exc:
            problems.extend(f"{where}credentials_file: {p}" for p in exc.problems)


def _check_retention(v: _Partial, where: str, problems: list[str]) -> None:
    _ordered(v, where, "reads_days", "hits_days", problems)


def _check_ui(v: _Partial, where: str, problems: list[str]) -> None:
    needs_token = v.has("enabled", "bind", "token_file") and v["enabled"] and not _is_loopback(v["bind"])
    if needs_token and v["token_file"] is None:
        problems.append(
            f"{where}token_file: required key is missing because {where}bind = {_show(v['bind'])} is "
            f"not loopback; allowed: an existing file holding the access token, or bind = \"127.0.0.1\""
        )


def _check_k9(v: _Partial, where: str, problems: list[str]) -> None:
    _ordered(v, where, "heat_warn_c", "heat_alarm_c", problems, strict=True)


_CHECKS: dict[type, Callable[[_Partial, str, list[str]], None]] = {
    CameraConfig: _check_camera,
    GpsConfig: _check_gps,
    MqttConfig: _check_mqtt,
    RetentionConfig: _check_retention,
    UiConfig: _check_ui,
    K9Config: _check_k9,
}


def _section(cls: type, raw: Any, where: str, ctx: _Ctx, problems: list[str]) -> Any:
    """One validated section, or None after adding its problems (cross-key rules included)."""
    label = where.rstrip(".")
    if not isinstance(raw, dict):
        header = "[[cameras]]" if label.startswith("cameras[") else f"[{label}]"
        problems.append(f"{label}: expected a table ({header}), got {_show(raw)}")
        return None
    before = len(problems)
    values = _read_table(cls, raw, where, ctx, problems)
    if cls in _CHECKS:
        _CHECKS[cls](_Partial(values), where, problems)
    complete = all(f.name in values for f in fields(cls))
    return cls(**values) if complete and len(problems) == before else None


def _cameras(raw: Any, ctx: _Ctx, problems: list[str]) -> tuple[CameraConfig, ...] | None:
    if raw is None:
        problems.append(
            "cameras: required key is missing; allowed: one or more [[cameras]] tables with name and source"
        )
        return None
    if isinstance(raw, dict):
        problems.append("cameras: expected an array of tables; write each camera as [[cameras]], not [cameras]")
        return None
    if not isinstance(raw, list) or not raw:
        problems.append(f"cameras = {_show(raw)}: allowed: one or more [[cameras]] tables with name and source")
        return None
    cameras: list[CameraConfig] = []
    first_use: dict[str, int] = {}
    ok = True
    for i, table in enumerate(raw):
        where = f"cameras[{i}]."
        name = table.get("name") if isinstance(table, dict) else None
        if isinstance(name, str) and name in first_use:
            problems.append(
                f"{where}name = {_show(name)}: already used by cameras[{first_use[name]}]; "
                f"allowed: a name no other camera has"
            )
            ok = False
        elif isinstance(name, str):
            first_use[name] = i
        camera = _section(CameraConfig, table, where, ctx, problems)
        if camera is None:
            ok = False
        else:
            cameras.append(camera)
    return tuple(cameras) if ok else None


def parse_config(data: Mapping[str, Any], base_dir: Path, source_path: Path | None = None) -> Config:
    """Validate parsed TOML into a Config; relative paths are taken from `base_dir`.

    Raises ConfigError listing every problem found, not only the first.
    """
    problems: list[str] = []
    for key in data:
        if key not in SECTIONS:
            problems.append(_unknown_key("", key, list(SECTIONS)))
    ctx = _Ctx(base_dir=Path(os.path.normpath(Path(base_dir).expanduser().absolute())))

    def table(name: str) -> Any:
        return data.get(name, {})

    # vehicle and storage first: other sections derive defaults from them.
    vehicle: VehicleConfig | None = None
    if "vehicle" in data:
        vehicle = _section(VehicleConfig, data["vehicle"], "vehicle.", ctx, problems)
    else:
        problems.append("vehicle: required table is missing; allowed: [vehicle] with id = \"...\"")
    ctx.vehicle_id = vehicle.id if vehicle else None
    storage = _section(StorageConfig, table("storage"), "storage.", ctx, problems)
    ctx.data_dir = storage.data_dir if storage else None
    parts: dict[str, Any] = {"vehicle": vehicle, "storage": storage}
    parts["cameras"] = _cameras(data.get("cameras"), ctx, problems)
    for name, cls in SECTIONS.items():
        if name not in parts:
            parts[name] = _section(cls, table(name), f"{name}.", ctx, problems)
    if problems:
        raise ConfigError(problems)
    return Config(**parts, source_path=source_path)


def load_config(path: Path) -> Config:
    """Read and validate the TOML file at `path`; raises ConfigError naming file, line and key."""
    path = Path(path).expanduser()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a folder, expected a TOML file"]) from None
    except PermissionError:
        raise ConfigError([f"{path}: permission denied reading config file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not valid UTF-8 text at byte {exc.start}"]) from None
    except tomllib.TOMLDecodeError as exc:
        # The message already ends with "(at line L, column C)".
        raise ConfigError([f"{path}: TOML syntax error: {exc}"]) from None
    try:
        return parse_config(data, path.absolute().parent, source_path=path.absolute())
    except ConfigError as exc:
        raise ConfigError([f"{path}: {p}" for p in exc.problems]) from None


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


def config_warnings(config: Config) -> list[str]:
    """Legal but probably unintended settings, for `check-config` and the start-up log."""
    warnings: list[str] = []
    if not any(c.enabled for c in config.cameras):
        warnings.append("cameras: every camera has enabled = false; nothing will be read")
    for key, path in (("models.detector", config.models.detector), ("models.ocr", config.models.ocr)):
        if not path.is_file():
            warnings.append(f"{key}: model file not found: {path}")
    wl = config.watchlist
    if wl.require_signature and wl.public_key is None:
        warnings.append(
            "watchlist.public_key is not set while require_signature = true: every watchlist will be rejected"
        )
    if not wl.require_signature:
        warnings.append("watchlist.require_signature = false: unsigned watchlists will be accepted")
    if not config.mqtt.enabled:
        warnings.append("mqtt.enabled = false: hits are stored locally only, HQ is not told")
    elif not config.mqtt.tls:
        warnings.append("mqtt.tls = false: reads and hits travel unencrypted")
    creds = config.mqtt.credentials_file
    if creds is not None and creds.stat().st_mode & 0o077:
        warnings.append(f"mqtt.credentials_file: {creds} is readable by group/others; chmod 600 it")
    return warnings


def summary(config: Config) -> str:
    """One line describing the configuration, for logs and `check-config`."""
    cams = ", ".join(
        f"{c.name}={c.source}{'' if c.enabled else ' (disabled)'}" for c in config.cameras
    )
    gps = config.gps
    gps_text = {
        "serial": f"serial {gps.device} @ {gps.baud}",
        "gpsd": f"gpsd {gps.gpsd_host}:{gps.gpsd_port}",
        "none": "none",
    }[gps.source]
    mq = config.mqtt
    mqtt_text = f"{mq.host}:{mq.port}{' tls' if mq.tls else ''}" if mq.enabled else "disabled"
    return (
        f"vehicle {config.vehicle.id}; cameras: {cams}; gps: {gps_text}; mqtt: {mqtt_text}; "
        f"data dir: {config.storage.data_dir}"
    )


def check_config_main(argv: list[str]) -> int:
    """`picar check-config FILE`: 0 and "OK: <summary>" if the file is valid, else problems and 2.

    `--example` prints the commented example that ships in the package: an installed PiCAR has no checkout
    to copy it from (systemd/README.md).
    """
    parser = argparse.ArgumentParser(prog="picar check-config", description="Validate a PiCAR config file.")
    parser.add_argument("file", type=Path, nargs="?", help="the TOML configuration file")
    parser.add_argument("--example", action="store_true", help="print the commented example config and exit")
    args = parser.parse_args(argv)
    if args.example:
        sys.stdout.write(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
        return 0
    if args.file is None:
        parser.error("a config FILE is required (or --example)")
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        n = len(exc.problems)
        print(f"picar check-config: {n} problem{'s' if n != 1 else ''}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print(f"OK: {summary(config)}")
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(check_config_main(sys.argv[1:]))
