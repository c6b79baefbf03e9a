"""The sections that close the loop: `timeline`, `webhooks` (to the order system) and
`escalations` (rules across calls and SMS). Names of stages and campaigns in a rule are checked
against the rest of the file in `Settings` (a located error when one does not exist)."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from dialer.config.base import OptionalSecret, SecretFile, Section
from dialer.config.values import Count, HttpUrl, OneLine, Seconds, Slug
from dialer.config.yaml_file import problem

__all__ = [
    "WEBHOOK_EVENTS",
    "EscalationRule",
    "TimelineSettings",
    "Webhooks",
]

WebhookEvent = Literal[
    "contact.finished", "redelivery.requested", "sms.delivered", "sms.failed", "sms.opted_out"
]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = (
    "contact.finished",
    "redelivery.requested",
    "sms.delivered",
    "sms.failed",
    "sms.opted_out",
)


class TimelineSettings(Section):
    """The timeline of each phone number: every decision about it, with time and reason."""

    retention_days: Count = 90
    """Entries older than this are pruned in the background."""
    prune_interval_s: Seconds = 3600
    """How often old entries are looked for."""


class Webhooks(Section):
    """Results sent back to the order system: a signed JSON POST per event, through the outbox
    (retried like SMS; dead letters and `dialer sms replay` alike)."""

    secret_fields: ClassVar[dict[str, bool]] = {"secret": False}

    url: HttpUrl | None = None
    """Where to POST; no url: no webhook is sent."""
    secret: OptionalSecret = None
    """Secret: the HMAC-SHA256 key shared with the order system (${VAR} or secret_file)."""
    secret_file: SecretFile = None
    """File holding the webhook secret."""
    events: list[WebhookEvent] = Field(default_factory=lambda: list(WEBHOOK_EVENTS))
    """Which events to send: contact.finished, redelivery.requested, sms.delivered, sms.failed,
    sms.opted_out."""
    signature_header: OneLine = "X-Outreach-Signature"
    """Header holding `v1=<hex HMAC-SHA256 of "TIMESTAMP.BODY">`."""
    timestamp_header: OneLine = "X-Outreach-Timestamp"
    """Header holding the Unix time of the send (the receiver refuses old ones: replay)."""
    timeout_s: Seconds = 10
    """Time-out of one POST."""
    concurrency: Count = 4
    """Webhooks being sent at the same time, at most."""
    poll_interval_s: Seconds = 1
    """How often an idle webhook sender looks for due ones."""
    backoff_initial_s: Seconds = 10
    """First retry delay after a failure (5xx, 429, time-out); it doubles up to backoff_max_s."""
    backoff_max_s: Seconds = 3600
    """Cap of the retry delay."""
    max_age_s: Seconds = 7 * 86400
    """A webhook still undelivered this long after it was queued is dead (replayable)."""

    @model_validator(mode="after")
    def _check(self) -> Webhooks:
        if self.url is not None and self.secret is None:
            raise problem(
                (("secret",), "required with url: give secret (as ${VAR}) or secret_file")
            )
        if self.backoff_initial_s > self.backoff_max_s:
            raise problem((("backoff_initial_s",), "exceeds backoff_max_s"))
        return self


class EscalationRule(Section):
    """One rule: when something happens to a contact, do something on another channel. Each
    acts at most once per contact (per order, for replies)."""

    on: Literal["contact_failed", "reply", "disposition"]
    """contact_failed: a campaign contact ended failed (attempts used up, no retry rule);
    reply: an inbound SMS matching `reply_patterns` from a number with a pending callback;
    disposition: an IVR or agent disposition in `dispositions`."""
    campaign: Slug | None = None
    """Only contacts of this campaign (any campaign when absent)."""
    reply_patterns: list[OneLine] = Field(default_factory=list)
    """on reply: regular expressions, one of which the reply (trimmed) must match whole."""
    dispositions: list[OneLine] = Field(default_factory=list)
    """on disposition: the dispositions (as recorded: `not_home`, `wrong_item`...)."""
    send_stage: Slug | None = None
    """Send this notifications stage's SMS for the contact's order."""
    request_redelivery: bool = False
    """Tell the order system re-delivery was requested (webhook redelivery.requested) and
    cancel the pending callback."""

    @field_validator("reply_patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return patterns

    @model_validator(mode="after")
    def _check(self) -> EscalationRule:
        if self.send_stage is None and not self.request_redelivery:
            raise problem((("send_stage",), "a rule must send_stage or request_redelivery"))
        if self.on == "reply" and not self.reply_patterns:
            raise problem((("reply_patterns",), "required for on: reply"))
        if self.on == "disposition" and not self.dispositions:
            raise problem((("dispositions",), "required for on: disposition"))
        return self

    def matches_reply(self, text: str) -> bool:
        return any(re.fullmatch(pattern, text.strip()) for pattern in self.reply_patterns)
