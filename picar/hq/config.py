"""HQ's configuration (`config/hq.example.toml`), one table each, unknown keys refused, every problem reported
with its key, value and what is allowed (built like the car's, picar/config/models.py):

    [database]   the PostgreSQL DSN that ingest writes to and the console reads
    [mqtt]       HQ's connection to the broker (ingest reads from it; the console publishes watchlists with it)
    [ingest]     batching and the MQTT session of an ingest worker
    [retention]  days each kind is kept at HQ
    [console]    `picar hq serve`: where it listens, TLS, sessions, the map, the default language
    [watchlist]  the key the console signs watchlists with, and their list id
"""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from picar.config import values
from picar.config.errors import Allowed, ConfigError, Invalid
from picar.config.load import load_toml, parse_toml
from picar.config.models import TABLE, Bool, FilePath, Int, OptionalPath, Port, Seconds, Str, derived
from picar.hq.store.retention import Retention
from picar.i18n.languages import Language
from picar.link.topics import DEFAULT_PREFIX

Days = Annotated[Int, Field(ge=1, le=36500)]


@dataclass(frozen=True, config=TABLE)
class DatabaseConfig:
    """HQ's PostgreSQL."""

    dsn: Annotated[Str, Allowed("a libpq connection string, e.g. \"host=/run/postgresql dbname=picar_hq\"")]


@dataclass(frozen=True, config=TABLE)
class HqMqttConfig:
    """The broker, as HQ (username `hq`) sees it."""

    host: Annotated[Str, AfterValidator(values.host)] = "127.0.0.1"
    port: Port = derived("8883 with tls, 1883 without")
    tls: Bool = True
    ca_file: OptionalPath = None
    cert_file: Annotated[FilePath | None, BeforeValidator(values.set_or_left_out)] = None
    key_file: Annotated[FilePath | None, BeforeValidator(values.set_or_left_out)] = None
    credentials_file: Annotated[FilePath | None, BeforeValidator(values.set_or_left_out)] = None
    keepalive_s: Int = Field(default=30, ge=5, le=600)
    topic_prefix: Annotated[Str, AfterValidator(values.topic_prefix)] = DEFAULT_PREFIX
    # The shared subscription's group: every ingest worker of one HQ uses the same, so they share the load.
    share_group: Annotated[Str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$"),
                           Allowed("1-64 letters, digits, '_' or '-'")] = "picar-ingest"
    # "5": MQTT 5 with the shared subscription above. "3.1.1": for a broker without MQTT 5 or shared
    # subscriptions (NATS, RabbitMQ before 3.13: docs/scale.md); every worker then gets every message, so run
    # one worker per broker (or per topic prefix).
    protocol: Annotated[Str, Field(pattern=r"^(5|3\.1\.1)$"), Allowed('"5" or "3.1.1"')] = "5"

    @property
    def effective_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)

    @model_validator(mode="after")
    def _port(self) -> HqMqttConfig:
        if self.port is None:
            object.__setattr__(self, "port", 8883 if self.tls else 1883)
        return self


@dataclass(frozen=True, config=TABLE)
class IngestConfig:
    """How ingest takes messages from the broker into the database."""

    # This worker's number: its MQTT client id is "picar-ingest-<worker>" (a persistent session the broker
    # keeps while it restarts). Run each worker with its own number.
    worker: Int = Field(default=1, ge=1, le=999)
    batch_max: Int = Field(default=500, ge=1, le=10000)  # messages committed in one transaction, at most
    batch_wait_s: Annotated[Seconds, Field(le=5)] = 0.05  # wait for more after the first of a batch
    receive_maximum: Int = Field(default=1000, ge=1, le=65535)  # unacknowledged messages the broker may send
    # How long the broker keeps a worker's session after it went: it keeps receiving its share meanwhile (a
    # restart finds it there); past that its share goes to the others and the cars resend what it held.
    session_expiry_s: Int = Field(default=60, ge=0, le=86400)


@dataclass(frozen=True, config=TABLE)
class HqRetentionConfig:
    """Days each kind is kept at HQ (reads and positions: whole days, dropped by partition)."""

    reads_days: Days = 30
    positions_days: Days = 30
    hits_days: Days = 730
    images_days: Days = Field(default=365, validate_default=True)
    k9_days: Days = 1825
    heat_days: Days = 365
    purge_interval_s: Int = Field(default=3600, ge=60, le=86400)

    @field_validator("images_days")
    @classmethod
    def _images_within_hits(cls, value: int, info: ValidationInfo) -> int:
        hits = info.data.get("hits_days")
        if hits is not None and value > hits:
            raise Invalid(lines=lambda where: [f"{where}images_days = {value}: allowed: at most {where}hits_days "
                                               f"({hits}): an image would outlive its hit"])
        return value

    def policy(self) -> Retention:
        return Retention(self.reads_days, self.positions_days, self.hits_days, self.images_days, self.k9_days,
                         self.heat_days)


PortOrAny = Annotated[StrictInt, Field(ge=0, le=65535)]  # 0: a free port (tests)


@dataclass(frozen=True, config=TABLE)
class ConsoleSettings:
    """`picar hq serve`. Off loopback the console needs TLS (tls_cert_file + tls_key_file) unless
    allow_plain_http says the TLS ends in front of it (a reverse proxy on the same machine)."""

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


@dataclass(frozen=True, config=TABLE)
class WatchlistSettings:
    """Publishing watchlists from the console: HQ's private signing key (`picar hq keygen`; the cars hold its
    public half) and the list id the snapshots carry."""

    signing_key_file: Path | None = None  # without it the console imports and reviews, and cannot publish
    list_id: Annotated[str, Field(max_length=64)] = ""


@dataclass(frozen=True, config=TABLE)
class HqConfig:
    database: DatabaseConfig
    mqtt: HqMqttConfig = dataclasses.field(default_factory=HqMqttConfig)
    ingest: IngestConfig = dataclasses.field(default_factory=IngestConfig)
    retention: HqRetentionConfig = dataclasses.field(default_factory=HqRetentionConfig)
    console: ConsoleSettings = dataclasses.field(default_factory=ConsoleSettings)
    watchlist: WatchlistSettings = dataclasses.field(default_factory=WatchlistSettings)


# The names the console's code uses for the same tables.
DatabaseSettings = DatabaseConfig
MqttSettings = HqMqttConfig
HqConfigError = ConfigError


def is_loopback_bind(host: str) -> bool:
    """True when a listener on `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_hq_config(path: Path) -> HqConfig:
    """Read and validate an HQ config file; ConfigError lists every problem."""
    return load_toml(path, HqConfig)


def parse_hq_config(data: dict[str, Any], base_dir: Path = Path(".")) -> HqConfig:
    """Validate parsed TOML; relative paths are taken from `base_dir`. ConfigError lists every problem."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for table, key in _CONSOLE_PATH_KEYS:
        section = data.get(table)
        if isinstance(section, dict) and isinstance(section.get(key), str):
            section[key] = str((base_dir / Path(section[key]).expanduser()).absolute())
    return parse_toml(data, base_dir, HqConfig)


# The console's tables are plain pydantic models: their relative paths are made absolute here.
_CONSOLE_PATH_KEYS = {("console", k) for k in ("tls_cert_file", "tls_key_file", "session_secret_file")} | {
    ("watchlist", "signing_key_file")}
