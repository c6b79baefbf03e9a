"""The daemon's settings: one YAML file, validated at load, every problem reported with its line.

`load_settings(path)` returns a frozen `Settings`, or raises `ConfigError` listing every problem
as `PATH:LINE: dotted.key: message`. Secrets never sit in the file: a secret field `X` takes
`${ENV_VAR}` or `X_file: path`, and any string may use `${VAR}` or `${VAR:-default}`. Relative
paths are relative to the config file's directory, so a config works from any working directory.
The docstring under each field is its description in the config reference.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from dialer.config.base import (
    Section,
)
from dialer.config.followup import EscalationRule, TimelineSettings, Webhooks
from dialer.config.kinds import (
    Campaign,
)
from dialer.config.notifications import (
    Notifications,
)
from dialer.config.sections import (
    AmiSettings,
    ApiSettings,
    LoggingSettings,
    StoreSettings,
)
from dialer.config.values import (
    RegionCode,
    Slug,
    empty_section,
)
from dialer.config.worker import WorkerSettings
from dialer.config.yaml_file import (
    ConfigError,
    ConfigIssue,
    KeyPath,
    Locator,
    issues_from_errors,
    problem,
    read_yaml,
    to_plain,
)

# --------------------------------------------------------------------------------- the file


class Settings(Section):
    """The whole config file."""

    ami: AmiSettings
    """Asterisk Manager Interface."""
    store: StoreSettings = Field(default_factory=empty_section, validate_default=True)
    """Database."""
    api: ApiSettings
    """HTTP API."""
    logging: LoggingSettings = Field(default_factory=empty_section, validate_default=True)
    """Logs."""
    default_region: RegionCode = "CN"
    """Region of phone numbers written without a country code."""
    campaigns: dict[Slug, Campaign] = Field(default_factory=dict)
    """Name -> outbound call campaign: {kind: refusal_callback | vip, ...}."""
    notifications: Notifications = Field(default_factory=empty_section, validate_default=True)
    """SMS."""
    worker: WorkerSettings = Field(default_factory=empty_section, validate_default=True)
    """This daemon among several sharing one PostgreSQL store."""
    timeline: TimelineSettings = Field(default_factory=empty_section, validate_default=True)
    """The timeline of each phone number."""
    webhooks: Webhooks = Field(default_factory=empty_section, validate_default=True)
    """Results back to the order system."""
    escalations: dict[Slug, EscalationRule] = Field(default_factory=dict)
    """Name -> rule across calls and SMS: {on: contact_failed | reply | disposition, ...}."""

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        found: list[tuple[KeyPath, str]] = []
        for name, stage in self.notifications.stages.items():
            target = self.campaigns.get(stage.add_to_campaign or "")
            where: KeyPath = ("notifications", "stages", name, "add_to_campaign")
            if stage.add_to_campaign is not None and target is None:
                defined = ", ".join(self.campaigns) or "none"
                found.append(
                    (where, f"unknown campaign {stage.add_to_campaign!r}; defined: {defined}")
                )
            elif target is not None and target.for_vip_customers and not stage.only_vip:
                found.append(
                    (where, "a vip campaign: set only_vip: true, or every customer is added")
                )
        for name, rule in self.escalations.items():
            where = ("escalations", name)
            if rule.campaign is not None and rule.campaign not in self.campaigns:
                defined = ", ".join(self.campaigns) or "none"
                found.append(
                    (
                        (*where, "campaign"),
                        f"unknown campaign {rule.campaign!r}; defined: {defined}",
                    )
                )
            if rule.send_stage is not None and rule.send_stage not in self.notifications.stages:
                defined = ", ".join(self.notifications.stages) or "none"
                found.append(
                    (
                        (*where, "send_stage"),
                        f"unknown stage {rule.send_stage!r}; defined: {defined}",
                    )
                )
        for name, provider in self.notifications.providers.items():
            if getattr(provider, "status_callback_url", None) and self.api.public_url is None:
                message = "needs api.public_url, to check the callbacks' signatures"
                found.append((("notifications", "providers", name, "status_callback_url"), message))
        if found:
            raise problem(*found)
        return self


def parse_settings(
    text: str, *, source: str, base_dir: Path, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from YAML text; `source` names it in issues, `base_dir` anchors relative paths."""
    tree = read_yaml(text, source=source)
    if not isinstance(tree, dict):
        found = "an empty file" if tree is None else type(tree).__name__
        raise ConfigError([ConfigIssue(source, 1, "(root)", f"expected a mapping, found {found}")])
    data, env_problems = to_plain(tree, os.environ if environ is None else environ, source=source)
    locator = Locator(tree)
    issues = []
    for path, message in env_problems:
        key, line = locator.locate(path)
        issues.append(ConfigIssue(source, line, key, message))
    context = {"base_dir": Path(base_dir).resolve(), "secrets_from_env_only": True}
    try:
        settings = Settings.model_validate(data, context=context)
    except ValidationError as exc:
        unset = {issue.key for issue in issues}  # errors that follow from these are noise
        issues += [
            issue
            for issue in issues_from_errors(exc.errors(), tree, source=source)
            if not unset & {issue.key, *_parents(issue.key)}
        ]
    if issues:
        raise ConfigError(sorted(issues, key=lambda issue: (issue.line or 0, issue.key)))
    return settings


def _parents(key: str) -> list[str]:
    """ "a.b[0].c" -> ["a", "a.b", "a.b[0]"]."""
    return [key[: match.start()] for match in re.finditer(r"[.\[]", key)]


def load_settings(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from the YAML file at `path`, or `ConfigError` listing every problem in it."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([ConfigIssue(source, None, "(root)", f"cannot read: {reason}")]) from None
    base_dir = Path(source).resolve().parent
    return parse_settings(text, source=source, base_dir=base_dir, environ=environ)
