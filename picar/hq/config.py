"""HQ's configuration (`config/hq.example.toml`): the database, the broker HQ's ingest reads from, ingest's
batching and HQ's retention. Built like the car's (picar/config/models.py): frozen pydantic dataclasses,
unknown keys refused, every problem reported with its key, value and what is allowed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass

from picar.config import values
from picar.config.errors import Allowed, Invalid
from picar.config.load import load_toml, parse_toml
from picar.config.models import TABLE, Bool, FilePath, Int, OptionalPath, Port, Seconds, Str, derived
from picar.hq.store.retention import Retention
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


@dataclass(frozen=True, config=TABLE)
class HqConfig:
    database: DatabaseConfig
    mqtt: HqMqttConfig = dataclasses.field(default_factory=HqMqttConfig)
    ingest: IngestConfig = dataclasses.field(default_factory=IngestConfig)
    retention: HqRetentionConfig = dataclasses.field(default_factory=HqRetentionConfig)


def load_hq_config(path: Path) -> HqConfig:
    """Read and validate an HQ config file; ConfigError lists every problem."""
    return load_toml(path, HqConfig)


def parse_hq_config(data: dict[str, Any], base_dir: Path = Path(".")) -> HqConfig:
    return parse_toml(data, base_dir, HqConfig)
