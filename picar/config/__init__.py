"""The one TOML config: its typed schema, loading and validation (`schema`), and `picar check-config`.

Callers import from here (`from picar.config import load_config`); the schema module is where it lives.
"""

from picar.config.schema import (
    SECTIONS,
    CameraConfig,
    Config,
    ConfigError,
    GpsConfig,
    K9Config,
    LoggingConfig,
    ModelsConfig,
    MqttConfig,
    Position,
    Region,
    RetentionConfig,
    SourceKind,
    StorageConfig,
    TrackerConfig,
    UiConfig,
    VehicleConfig,
    WatchlistConfig,
    check_config_main,
    config_warnings,
    load_config,
    parse_config,
    read_credentials,
    source_kind,
    summary,
)

__all__ = [
    "SECTIONS", "CameraConfig", "Config", "ConfigError", "GpsConfig", "K9Config", "LoggingConfig", "ModelsConfig",
    "MqttConfig", "Position", "Region", "RetentionConfig", "SourceKind", "StorageConfig", "TrackerConfig", "UiConfig",
    "VehicleConfig", "WatchlistConfig", "check_config_main", "config_warnings", "load_config", "parse_config",
    "read_credentials", "source_kind", "summary",
]
