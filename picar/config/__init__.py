"""The one TOML config: its typed schema (`models`, pydantic), checks types cannot say (`values`), loading and
problem lines (`load`, `errors`), and `picar check-config` (`cli`).

Callers import from here (`from picar.config import load_config`).
"""

from picar.config.cli import check_config_main, config_warnings, summary
from picar.config.errors import ConfigError
from picar.config.load import load_config, parse_config
from picar.config.models import (
    SECTIONS,
    CameraConfig,
    Config,
    GpsConfig,
    K9Config,
    LoggingConfig,
    ModelsConfig,
    MqttConfig,
    Position,
    Region,
    RegionName,
    RetentionConfig,
    StorageConfig,
    TrackerConfig,
    UiConfig,
    VehicleConfig,
    WatchlistConfig,
    config_schema,
)
from picar.config.values import SourceKind, read_credentials, source_kind

__all__ = [
    "SECTIONS", "CameraConfig", "Config", "ConfigError", "GpsConfig", "K9Config", "LoggingConfig", "ModelsConfig",
    "MqttConfig", "Position", "Region", "RegionName", "RetentionConfig", "SourceKind", "StorageConfig",
    "TrackerConfig", "UiConfig",
    "VehicleConfig", "WatchlistConfig", "check_config_main", "config_schema", "config_warnings", "load_config",
    "parse_config", "read_credentials", "source_kind", "summary",
]
