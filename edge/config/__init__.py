"""config.yaml, read once and checked into frozen typed objects; errors carry key paths.

`schema` holds one frozen dataclass per section (defaults and limits live there and
nowhere else); `loader` reads the YAML, checks every key against the schema, resolves
paths and reports every problem with its key path. Each stage receives only its own
section.
"""
from moodbox.config.loader import config_from_dict, find_config, load_config
from moodbox.config.schema import (EX_CONFIG, ButtonsConfig, CameraConfig, ClassifierConfig,
                                   Config, ConfigError, ControlConfig, DaemonConfig, FacesConfig, MoodConfig, MpdConfig,
                                   PlayerConfig, PlaylistConfig, PrivacyConfig, QuietHoursConfig, WebConfig,
                                   parse_listen,
                                   playlists_for)
from moodbox.config.schema import MqttConfig, MqttTlsConfig, topic_id

__all__ = ["EX_CONFIG", "ButtonsConfig", "ControlConfig", "WebConfig", "parse_listen",
           "CameraConfig", "ClassifierConfig", "Config", "ConfigError",
           "DaemonConfig", "FacesConfig", "MoodConfig", "MpdConfig", "PlayerConfig", "PlaylistConfig",
           "PrivacyConfig",
           "QuietHoursConfig", "config_from_dict", "find_config", "load_config", "playlists_for"]
__all__ += ["MqttConfig", "MqttTlsConfig", "topic_id"]
