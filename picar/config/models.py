"""PiCAR's configuration schema: one frozen pydantic dataclass per TOML table.

Field names are the TOML keys; the annotation, `Field(...)` bounds and `Literal` choices say what is
allowed, and validators from `values` say what types cannot. Unknown keys are refused (`extra="forbid"`).
Adding a key is one line here plus one line in config/picar.example.toml (tests keep the two in step).
Pydantic dataclasses rather than BaseModel: callers read `cfg.section.key` from plain frozen dataclasses.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_type_hints

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    Strict,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import InitErrorDetails

from picar.config import values
from picar.config.errors import Allowed, ConfigError, Invalid, also_report, show
from picar.config.values import SOURCE_ALLOWED, SourceKind, not_below
from picar.i18n.languages import Language, language_for_regions
from picar.link import MAX_INFLIGHT
from picar.link.topics import DEFAULT_PREFIX
from picar.paths import DEFAULT_DETECTOR, DEFAULT_OCR

# Plate grammar regions (picar.vision.grammar.REGIONS; a test keeps the two in step). A camera's region is
# one name or a list of them; the decode takes the most probable reading among all their grammars.
RegionName = Literal["auto", "us", "eu", "br", "ar", "de", "md", "pl", "ro", "tr", "ua", "transnistria"]
Region = Annotated[tuple[RegionName, ...], BeforeValidator(values.region_list(get_args(RegionName)))]
Position = Literal["front", "rear", "left", "right"]
Baud = Annotated[Literal[4800, 9600, 19200, 38400, 57600, 115200], BeforeValidator(values.whole_number)]

# TOML values are typed: no "yes" for true, no 640.0 for an integer (an integer is taken for a number).
Bool = Annotated[bool, Strict()]
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Text = Annotated[str, Strict()]
Str = Annotated[str, Strict(), Field(min_length=1)]  # must not be empty
StrList = Annotated[tuple[str, ...], BeforeValidator(values.string_list)]
AnyPath = Annotated[Path, BeforeValidator(values.path)]
FilePath = Annotated[AnyPath, AfterValidator(values.existing_file)]  # must exist when given

Seconds = Annotated[Float, Field(gt=0, le=3600)]  # a wait or an age: more than nothing, at most an hour
Port = Annotated[Int, Field(ge=1, le=65535)]

TABLE = ConfigDict(extra="forbid", allow_inf_nan=False)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def derived(how: str, **constraints: Any) -> Any:
    """A key that, left out, is filled in from other keys once the whole config is valid; `how` says how."""
    return Field(default=None, description=f"Default: {how}.", json_schema_extra=_no_default, **constraints)


@dataclass(frozen=True, config=TABLE)
class VehicleConfig:
    """The car itself."""

    id: Annotated[Str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$"),
                  Allowed("1-64 letters, digits, '_' or '-' (used in MQTT topics)")]
    description: Text = ""


@dataclass(frozen=True, config=TABLE)
class CameraConfig:
    """One frame source. `source` is normalised: an index as digits, a file or folder as an absolute path."""

    name: Annotated[Str, Field(pattern=r"^[a-z0-9_-]{1,32}$"), Allowed("1-32 lower-case letters, digits, '_' or '-'")]
    source: Annotated[str, BeforeValidator(values.camera_source, json_schema_input_type=int | str),
                      Allowed(SOURCE_ALLOWED)]
    position: Position = "front"
    enabled: Bool = True
    realtime: Bool = True
    loop: Bool = False
    fps: Float = Field(default=0.0, ge=0, le=240)
    width: Int = Field(default=0, ge=0, le=8192)
    height: Int = Field(default=0, ge=0, le=8192)
    reconnect_initial_s: Seconds = 1.0
    reconnect_max_s: Annotated[Seconds, AfterValidator(not_below("reconnect_initial_s"))] = Field(
        default=30.0, validate_default=True)
    region: Region = Field(default="auto", validate_default=True)

    @property
    def source_kind(self) -> SourceKind:
        return values.source_kind(self.source)


@dataclass(frozen=True, config=TABLE)
class GpsConfig:
    """The position receiver."""

    source: Literal["serial", "gpsd", "none"] = "serial"
    device: Str = "/dev/ttyACM0"
    baud: Baud = 9600
    gpsd_host: Annotated[Str, AfterValidator(values.host)] = "127.0.0.1"
    gpsd_port: Port = 2947
    max_fix_age_s: Seconds = 3.0
    reopen_initial_s: Seconds = 1.0
    reopen_max_s: Annotated[Seconds, AfterValidator(not_below("reopen_initial_s"))] = Field(
        default=30.0, validate_default=True)


@dataclass(frozen=True, config=TABLE)
class ModelsConfig:
    """The ONNX detector and OCR, and how hard to run them."""

    # A path given here must exist; the shipped defaults are checked when the models load.
    detector: FilePath = DEFAULT_DETECTOR
    ocr: FilePath = DEFAULT_OCR
    threads: Int = Field(default=1, ge=1, le=8)
    detector_threshold: Annotated[Float | None, BeforeValidator(values.set_or_left_out)] = Field(
        default=None, ge=0, le=1)
    min_read_confidence: Float = Field(default=0.5, ge=0, le=1)
    region: Region = Field(default="auto", validate_default=True)


@dataclass(frozen=True, config=TABLE)
class TrackerConfig:
    """How detections across frames are joined into one read per vehicle pass."""

    iou: Float = Field(default=0.2, gt=0, le=1)
    max_gap_s: Float = Field(default=1.5, gt=0, le=60)
    min_frames: Int = Field(default=2, ge=1, le=100)
    cooldown_s: Float = Field(default=60.0, ge=0, le=86400)
    max_tracks: Int = Field(default=64, ge=1, le=10000)


@dataclass(frozen=True, config=TABLE)
class WatchlistConfig:
    """Where the watchlist lives, how it is verified and how loosely reads match it."""

    dir: AnyPath = derived("<storage.data_dir>/watchlist")
    public_key: Annotated[FilePath | None, BeforeValidator(values.set_or_left_out)] = None
    require_signature: Bool = True
    max_substitutions: Int = Field(default=1, ge=0, le=3)
    max_edit_distance: Int = Field(default=1, ge=0, le=1)
    confusables: Annotated[StrList, AfterValidator(values.confusables)] = ("0ODQ", "1I", "2Z", "5S", "8B", "6G")
    recheck_hours: Float = Field(default=24.0, gt=0, le=24 * 365)
    hit_cooldown_s: Float = Field(default=300.0, ge=0, le=86400)


OptionalPath = Annotated[AnyPath | None, BeforeValidator(values.set_or_left_out)]


def _tls_file_missing(key: str, path: Path, where: str) -> str:
    return (f"{where}{key} = {show(str(path))}: file not found; allowed: an existing file "
            f"(needed because {where}tls = true)")


@dataclass(frozen=True, config=TABLE)
class MqttConfig:
    """The link to HQ. `port` and `client_id` are always filled in (derived when not given)."""

    enabled: Bool = True
    host: Annotated[Str, AfterValidator(values.host)] = "127.0.0.1"
    port: Port = derived("8883 with tls, 1883 without")
    tls: Bool = True
    # The TLS files must exist only when tls = true; cert_file and key_file go together.
    ca_file: OptionalPath = None
    cert_file: OptionalPath = None
    key_file: OptionalPath = Field(default=None, validate_default=True)  # checked last of the three: see _tls_files
    credentials_file: Annotated[FilePath | None, BeforeValidator(values.set_or_left_out)] = None
    keepalive_s: Int = Field(default=30, ge=5, le=600)
    topic_prefix: Annotated[Str, AfterValidator(values.topic_prefix)] = DEFAULT_PREFIX
    position_interval_s: Seconds = 5.0
    max_inflight: Int = Field(default=20, ge=1, le=MAX_INFLIGHT)
    client_id: Annotated[Str, Allowed("1-128 printable characters without spaces")] = derived(
        '"picar-" + vehicle.id', pattern=r"^[!-~]{1,128}$")
    hq_ack: Literal["auto", "on", "off"] = "auto"  # picar.link.hq_ack.HQ_ACK_MODES (a test keeps them in step)
    hq_ack_timeout_s: Annotated[Float, Field(gt=0, le=86400)] = 60.0
    hq_ack_max_s: Annotated[Float, Field(gt=0, le=86400)] = 900.0

    @field_validator("key_file")
    @classmethod
    def _tls_files(cls, key_file: Path | None, info: ValidationInfo) -> Path | None:
        """With tls the files must exist; a client certificate needs its key. Checked once all three are read."""
        files = {k: info.data[k] for k in ("ca_file", "cert_file") if k in info.data} | {"key_file": key_file}
        problems: list[Callable[[str], str]] = []
        for key, path in files.items() if info.data.get("tls") else ():
            if path is not None and not path.is_file():
                problems.append(functools.partial(_tls_file_missing, key, path))
        if "cert_file" in files and (files["cert_file"] is None) != (key_file is None):
            given, missing = ("cert_file", "key_file") if key_file is None else ("key_file", "cert_file")
            problems.append(lambda where: f"{where}{missing}: required key is missing because {where}{given} is "
                                          f"set; allowed: both cert_file and key_file, or neither")
        if problems:
            raise Invalid(lines=lambda where: [problem(where) for problem in problems])
        return key_file

    @field_validator("hq_ack_max_s")
    @classmethod
    def _hq_ack_max(cls, value: float, info: ValidationInfo) -> float:
        first = info.data.get("hq_ack_timeout_s")
        if first is not None and value < first:
            raise Invalid(lines=lambda where: [f"{where}hq_ack_max_s = {show(value)}: allowed: at least "
                                               f"{where}hq_ack_timeout_s ({show(first)})"])
        return value

    @field_validator("credentials_file")
    @classmethod
    def _credentials(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                values.read_credentials(value)
            except ConfigError as exc:
                problems = exc.problems
                raise Invalid(lines=lambda where: [f"{where}credentials_file: {p}" for p in problems]) from None
        return value

    @model_validator(mode="after")
    def _port(self) -> MqttConfig:
        if self.port is None:
            object.__setattr__(self, "port", 8883 if self.tls else 1883)
        return self


@dataclass(frozen=True, config=TABLE)
class StorageConfig:
    """Where data is kept on the car."""

    data_dir: AnyPath = Path("/var/lib/picar")
    save_hit_images: Bool = True
    save_read_crops: Bool = False
    # Up to 1 TiB: more than a vehicle computer's disk, so a typo (200000000) is caught at start instead of
    # silently refusing every image.
    min_free_mb: Annotated[Int, AfterValidator(values.at_most(2**20, "1 TiB: more disk than the car has"))] = Field(
        default=200, ge=0)
    # The outbox's largest size on disk: a backlog of weeks without HQ must not fill the disk the reads need.
    outbox_max_mb: Int = Field(default=2048, ge=16, le=1_048_576)


@dataclass(frozen=True, config=TABLE)
class RetentionConfig:
    """How long records are kept."""

    reads_days: Float = Field(default=7.0, gt=0, le=36500)
    hits_days: Annotated[Float, AfterValidator(not_below("reads_days"))] = Field(
        default=365.0, gt=0, le=36500, validate_default=True)
    k9_days: Float = Field(default=3650.0, gt=0, le=36500)
    purge_interval_s: Float = Field(default=3600.0, ge=1, le=86400 * 7)


@dataclass(frozen=True, config=TABLE)
class UiConfig:
    """The in-car alert page."""

    enabled: Bool = True
    bind: Annotated[Str, AfterValidator(values.bind_address)] = "127.0.0.1"
    port: Port = 8088
    token_file: Annotated[FilePath | None, BeforeValidator(values.set_or_left_out)] = Field(
        default=None, validate_default=True)
    # The page's language (the officer can switch it on the page); also the language of its errors.
    language: Language = derived("\"ro\" when models.region or a camera's region is md or ro, else \"en\"")

    @field_validator("token_file")
    @classmethod
    def _token_off_loopback(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        enabled, bind = info.data.get("enabled"), info.data.get("bind")
        if value is None and enabled and bind is not None and not values.is_loopback(bind):
            raise Invalid(lines=lambda where: [
                f"{where}token_file: required key is missing because {where}bind = {show(bind)} is not loopback; "
                f"allowed: an existing file holding the access token, or bind = \"127.0.0.1\""
            ])
        return value


OptionalStr = Annotated[Str | None, BeforeValidator(values.set_or_left_out)]


@dataclass(frozen=True, config=TABLE)
class K9Config:
    """Dog unit: door sensor, kennel heat monitor, deployment log."""

    enabled: Bool = False
    door_device: OptionalStr = None
    heat_device: OptionalStr = None
    heat_baud: Baud = 9600
    heat_warn_c: Float = Field(default=29.0, ge=0, le=60)
    heat_alarm_c: Annotated[Float, AfterValidator(not_below("heat_warn_c", strict=True))] = Field(
        default=32.0, ge=0, le=60, validate_default=True)
    alarm_command: OptionalStr = None
    dogs: Annotated[StrList, AfterValidator(values.unique)] = ()
    handlers: Annotated[StrList, AfterValidator(values.unique)] = ()


@dataclass(frozen=True, config=TABLE)
class LoggingConfig:
    """Log level and the audit log (always a path: derived from storage.data_dir when not given)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    audit_file: AnyPath = derived("<storage.data_dir>/audit.log")


CAMERAS_ALLOWED = "one or more [[cameras]] tables with name and source"


@dataclass(frozen=True, config=TABLE)
class Config:
    """The whole validated configuration; `source_path` is the file it came from, if any."""

    vehicle: Annotated[VehicleConfig, Allowed('[vehicle] with id = "..."')]
    cameras: Annotated[tuple[CameraConfig, ...], Allowed(CAMERAS_ALLOWED)]
    gps: GpsConfig = dataclasses.field(default_factory=GpsConfig)
    models: ModelsConfig = dataclasses.field(default_factory=ModelsConfig)
    tracker: TrackerConfig = dataclasses.field(default_factory=TrackerConfig)
    watchlist: WatchlistConfig = dataclasses.field(default_factory=WatchlistConfig)
    mqtt: MqttConfig = dataclasses.field(default_factory=MqttConfig)
    storage: StorageConfig = dataclasses.field(default_factory=StorageConfig)
    retention: RetentionConfig = dataclasses.field(default_factory=RetentionConfig)
    ui: UiConfig = dataclasses.field(default_factory=UiConfig)
    k9: K9Config = dataclasses.field(default_factory=K9Config)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    source_path: SkipJsonSchema[Path | None] = dataclasses.field(default=None, init=False)  # not a TOML key

    @field_validator("cameras")
    @classmethod
    def _some_camera(cls, cameras: tuple[CameraConfig, ...]) -> tuple[CameraConfig, ...]:
        if not cameras:
            raise Invalid(f"allowed: {CAMERAS_ALLOWED}")
        return cameras

    @model_validator(mode="wrap")
    @classmethod
    def _camera_names(cls, data: Any, handler: ModelWrapValidatorHandler[Config]) -> Config:
        """No two cameras share a name: told beside the cameras' own problems, so every problem is told at once."""
        first_use: dict[str, int] = {}
        repeats: list[InitErrorDetails] = []
        tables = data.get("cameras") if isinstance(data, dict) else None
        for i, table in enumerate(tables if isinstance(tables, list) else []):
            name = table.get("name") if isinstance(table, dict) else None
            if isinstance(name, str) and name in first_use:
                text = f"already used by cameras[{first_use[name]}]; allowed: a name no other camera has"
                repeats.append({"type": "value_error", "loc": ("cameras", i, "name"), "input": name,
                                "ctx": {"error": Invalid(text)}})
            elif isinstance(name, str):
                first_use[name] = i
        return also_report(repeats, handler, data)

    @model_validator(mode="after")
    def _derive(self, info: ValidationInfo) -> Config:
        """Fill in the keys whose defaults come from other tables, and where the config came from."""
        fill = object.__setattr__  # the dataclasses are frozen to callers; this completes them once
        if self.mqtt.client_id is None:
            fill(self.mqtt, "client_id", f"picar-{self.vehicle.id}")
        if self.watchlist.dir is None:
            fill(self.watchlist, "dir", self.storage.data_dir / "watchlist")
        if self.logging.audit_file is None:
            fill(self.logging, "audit_file", self.storage.data_dir / "audit.log")
        if self.ui.language is None:
            fill(self.ui, "language", language_for_regions(self.plate_regions()))
        context = info.context if isinstance(info.context, dict) else {}
        fill(self, "source_path", context.get("source_path"))
        return self


    def plate_regions(self) -> list[str]:
        """Every plate region this car reads: the models' default and each camera's (one or several each)."""
        found: list[str] = []
        for region in [self.models.region, *(c.region for c in self.cameras)]:
            found.extend([region] if isinstance(region, str) else region)
        return found


# Table sections in file order; `cameras` is the one array of tables.
SECTIONS: dict[str, type] = {
    name: get_args(hint)[0] if name == "cameras" else hint
    for name, hint in get_type_hints(Config).items() if name != "source_path"
}

CONFIG = TypeAdapter(Config)


def config_schema() -> dict[str, Any]:
    """The JSON schema of the config file (`picar check-config --schema`)."""
    return CONFIG.json_schema()
