"""The daemon's settings: the YAML file's models, validated at load, every problem located.

`load_settings(path)` returns a frozen `Settings`, or raises `ConfigError` listing every problem
as `PATH:LINE: dotted.key: message`. The models are split by section:

- `yaml_file`: reading the YAML, `${VAR}` expansion, locating errors; `base`: `Section`,
  secrets and paths; `values`: value types (names, zones, windows, templates);
- `sections` (`ami`, `store`, `api`, `logging`), `campaigns` (what every kind has) and `kinds`
  (one module per campaign kind), `providers` and `notifications` (SMS);
- `settings`: the whole file; `reload`: what a reload may change; `reference`: the generated
  config reference.
"""

from dialer.config.campaigns import DialplanDestination, PacingRule, QueueDestination, RetryRule
from dialer.config.kinds import (
    KINDS,
    Campaign,
    OutboundCampaign,
    RefusalCallbackCampaign,
    VipCampaign,
)
from dialer.config.notifications import (
    DispatcherSettings,
    NotificationRetry,
    Notifications,
    ProviderStageTemplate,
    QuietHours,
    Stage,
)
from dialer.config.providers import (
    TEMPLATE_ONLY_TYPES,
    AliyunProvider,
    HttpProvider,
    OutboxProvider,
    Provider,
    TencentProvider,
    TwilioProvider,
)
from dialer.config.sections import AmiSettings, ApiSettings, LoggingSettings, StoreSettings
from dialer.config.settings import Settings, load_settings, parse_settings
from dialer.config.values import TEMPLATE_PLACEHOLDERS, TimeRange
from dialer.config.worker import WorkerSettings
from dialer.config.yaml_file import ConfigError, ConfigIssue

__all__ = [
    "KINDS",
    "TEMPLATE_ONLY_TYPES",
    "TEMPLATE_PLACEHOLDERS",
    "AliyunProvider",
    "AmiSettings",
    "ApiSettings",
    "Campaign",
    "ConfigError",
    "ConfigIssue",
    "DialplanDestination",
    "DispatcherSettings",
    "HttpProvider",
    "LoggingSettings",
    "NotificationRetry",
    "Notifications",
    "OutboundCampaign",
    "OutboxProvider",
    "PacingRule",
    "Provider",
    "ProviderStageTemplate",
    "QueueDestination",
    "QuietHours",
    "RefusalCallbackCampaign",
    "RetryRule",
    "Settings",
    "Stage",
    "StoreSettings",
    "TencentProvider",
    "TimeRange",
    "TwilioProvider",
    "VipCampaign",
    "WorkerSettings",
    "load_settings",
    "parse_settings",
]
