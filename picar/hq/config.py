"""HQ's configuration file (config/hq.example.toml): one pydantic model per TOML table, unknown keys refused.

    [database]  the PostgreSQL DSN that ingest writes to and the console reads
    [mqtt]      HQ's connection to the broker (the console publishes watchlists with it)
    [console]   `picar hq serve`: where it listens, TLS, sessions, the map, the default language
    [watchlist] the key the console signs watchlists with, and their list id

Relative paths are taken from the file's folder. `load_hq_config` reports every problem at once, each line
naming its key (`console.port = 99999: ...`).
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from picar.i18n.languages import Language
from picar.link.topics import DEFAULT_PREFIX

TABLE = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
PortOrAny = Annotated[StrictInt, Field(ge=0, le=65535)]  # 0: a free port (tests)


class HqConfigError(ValueError):
    """A refused HQ config; `problems` holds one line per problem, each naming its key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class DatabaseSettings(BaseModel):
    model_config = TABLE
    dsn: Annotated[str, Field(min_length=1)]  # libpq: "host=/run/postgresql dbname=picar_hq" or postgresql://...


class MqttSettings(BaseModel):
    """HQ's own broker connection (username `hq` in the broker ACL, picar.link.topics.broker_acl)."""

    model_config = TABLE
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Port | None = None  # 8883 with tls, 1883 without
    tls: StrictBool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    credentials_file: Path | None = None  # username=... and password=... lines
    topic_prefix: Annotated[str, Field(min_length=1)] = DEFAULT_PREFIX

    @property
    def effective_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)


class ConsoleSettings(BaseModel):
    """`picar hq serve`. Off loopback the console needs TLS (tls_cert_file + tls_key_file) unless
    allow_plain_http says the TLS ends in front of it (a reverse proxy on the same machine)."""

    model_config = TABLE
    bind: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: PortOrAny = 8443
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    allow_plain_http: StrictBool = False
    session_secret_file: Path = Path("console-session.key")  # made (0600) on the first start if missing
    session_idle_minutes: Annotated[StrictInt, Field(ge=1, le=24 * 60)] = 30
    language: Language = "ro"  # the login page's language until an operator picks one
    time_zone: str = "Europe/Chisinau"  # the zone times are shown in (stored in UTC)
    map_center: tuple[Annotated[float, Field(ge=-85, le=85)], Annotated[float, Field(ge=-180, le=180)]] = (
        47.0, 28.8)  # latitude, longitude shown before any car has a position (Moldova)
    map_zoom: Annotated[StrictInt, Field(ge=2, le=18)] = 7
    tile_url: str | None = None  # e.g. "https://tiles.hq.local/{z}/{x}/{y}.png"; off: the built-in basemap only
    login_attempts: Annotated[StrictInt, Field(ge=1, le=100)] = 5  # failed logins per username or address ...
    login_window_s: Annotated[StrictInt, Field(ge=10, le=86400)] = 300  # ... in this many seconds, then a wait

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Chisinau or UTC)") from None
        return value

    @field_validator("tile_url")
    @classmethod
    def _tiles(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")) or not all(k in value for k in ("{z}", "{x}", "{y}")):
            raise ValueError("a tile URL template: http(s)://host/path with {z}, {x} and {y}")
        return value

    @model_validator(mode="after")
    def _tls(self) -> ConsoleSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both or neither")
        if not self.tls and not self.allow_plain_http and not is_loopback_bind(self.bind):
            raise ValueError(f"bind = {self.bind!r} is off this machine: give tls_cert_file and tls_key_file, "
                             "or set allow_plain_http = true when a TLS proxy on this machine fronts the console")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class WatchlistSettings(BaseModel):
    """Publishing watchlists from the console: HQ's private signing key (`picar hq keygen`; the cars hold its
    public half) and the list id the snapshots carry."""

    model_config = TABLE
    signing_key_file: Path | None = None  # without it the console imports and reviews, and cannot publish
    list_id: Annotated[str, Field(max_length=64)] = ""


class HqConfig(BaseModel):
    model_config = TABLE
    database: DatabaseSettings
    mqtt: MqttSettings | None = None
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    watchlist: WatchlistSettings = Field(default_factory=WatchlistSettings)


def is_loopback_bind(host: str) -> bool:
    """True when a listener on `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_PATH_KEYS = {("mqtt", k) for k in ("ca_file", "cert_file", "key_file", "credentials_file")} | {
    ("console", k) for k in ("tls_cert_file", "tls_key_file", "session_secret_file")} | {
    ("watchlist", "signing_key_file")}


def parse_hq_config(data: dict[str, Any], base_dir: Path) -> HqConfig:
    """Validate parsed TOML; relative paths are taken from `base_dir`. HqConfigError lists every problem."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for table, key in _PATH_KEYS:
        section = data.get(table)
        if isinstance(section, dict) and isinstance(section.get(key), str):
            section[key] = str((base_dir / Path(section[key]).expanduser()).absolute())
    try:
        return HqConfig.model_validate(data)
    except ValidationError as exc:
        raise HqConfigError([_problem(e) for e in exc.errors()]) from None


def _problem(error: Any) -> str:
    key = ".".join(str(p) for p in error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    where = f"{key} = {error['input']!r}" if key and not isinstance(error.get("input"), dict) else (key or "file")
    return f"{where}: {msg}"


def load_hq_config(path: Path) -> HqConfig:
    """Read and validate HQ's TOML file; HqConfigError names the file and each key."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise HqConfigError([f"{path}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HqConfigError([f"{path}: cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise HqConfigError([f"{path}: TOML syntax error: {exc}"]) from None
    try:
        return parse_hq_config(data, path.absolute().parent)
    except HqConfigError as exc:
        raise HqConfigError([f"{path}: {p}" for p in exc.problems]) from None

