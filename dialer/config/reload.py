"""Reloading the config while the daemon runs (SIGHUP, `POST /v1/reload`).

What a reload changes at once: the campaigns (added, changed, removed; DNC files read again)
and the SMS stages, templates, signature, opt-out hint and quiet hours; the escalation rules,
the webhook `events` and the timeline's retention. What waits for a restart, because it is held
by an open connection or socket: `ami`, `api`, `store`, `logging`, `default_region`, the
notification providers, retry and dispatcher settings, and the webhooks' url, secret and
transport settings. A reload that
changes those applies the rest and names them (`needs_restart`), keeping their old values.

A new config that does not validate is refused whole: its errors are logged, the old config
stays in force and nothing is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dialer.config import Settings

__all__ = ["ReloadOutcome", "effective_settings", "restart_only_changes"]

RESTART_ONLY_SECTIONS = ("ami", "api", "store", "logging", "default_region")
RESTART_ONLY_NOTIFICATIONS = ("providers", "primary", "fallback", "retry", "dispatcher")
# The webhook sender is built once: its target and transport wait; `events` applies at once.
RESTART_ONLY_WEBHOOKS = (
    "url",
    "secret",
    "secret_file",
    "signature_header",
    "timestamp_header",
    "timeout_s",
    "concurrency",
    "poll_interval_s",
    "backoff_initial_s",
    "backoff_max_s",
    "max_age_s",
)


@dataclass(frozen=True)
class ReloadOutcome:
    applied: bool
    errors: list[str] = field(default_factory=list)
    changes: dict[str, list[str]] = field(default_factory=dict)
    needs_restart: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "errors": self.errors,
            "changes": self.changes,
            "needs_restart": self.needs_restart,
        }


def restart_only_changes(old: Settings, new: Settings) -> list[str]:
    """The keys whose new value waits for a restart (dotted, in file order)."""
    changed = [key for key in RESTART_ONLY_SECTIONS if getattr(old, key) != getattr(new, key)]
    changed += [
        f"notifications.{key}"
        for key in RESTART_ONLY_NOTIFICATIONS
        if getattr(old.notifications, key) != getattr(new.notifications, key)
    ]
    changed += [
        f"webhooks.{key}"
        for key in RESTART_ONLY_WEBHOOKS
        if getattr(old.webhooks, key) != getattr(new.webhooks, key)
    ]
    return changed


def effective_settings(old: Settings, new: Settings) -> Settings:
    """`new`, but with what only a restart can change kept as it is in `old`."""
    notifications = new.notifications.model_copy(
        update={key: getattr(old.notifications, key) for key in RESTART_ONLY_NOTIFICATIONS}
    )
    webhooks = new.webhooks.model_copy(
        update={key: getattr(old.webhooks, key) for key in RESTART_ONLY_WEBHOOKS}
    )
    kept: dict[str, Any] = {key: getattr(old, key) for key in RESTART_ONLY_SECTIONS}
    return new.model_copy(update={**kept, "notifications": notifications, "webhooks": webhooks})
