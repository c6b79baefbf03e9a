"""The timeline of a phone number: every decision about it, with its time and reason.

An entry is written by the store in the same transaction as the decision it records (an event
accepted, a message queued or skipped, a call settled...), so the timeline never says something
happened that did not, and costs one more INSERT in a transaction that is open anyway. Entries
of the kinds in `FOLLOWED_KINDS` are also marked for the follow-up (`dialer.messaging.followup`:
escalation rules and webhooks to the order system), which takes them in order and unmarks them
in the transaction that writes what they cause.

Kinds (`TIMELINE_KINDS`), one word each, and what `reason` / `until` hold:

    event_received      reason: the order stage
    sms_queued          until: when it may go (quiet hours), reason "quiet_hours" then
    sms_skipped         reason: opted_out | already_queued | not_mobile | no_template
    sms_sent            reason: the provider
    sms_retry           until: the next try; reason: the error
    sms_held            until: when it goes; reason: the daily limit per number reached
    sms_dead            reason: why (opted_out, expired, number, provider: ...)
    sms_delivered       reason: the provider's status
    sms_failed          reason: undelivered | failed (a delivery report)
    sms_reply           reason: the reply's text (the escalation rules match it)
    opted_out           reason: where it came from (sms_reply, provider...)
    contact_added       campaign; reason: merged | new
    contact_skipped     campaign; reason: opted_out
    held_back           campaign; reason: outside_calling_window | campaign_paused | dnc |
                        opted_out | country_not_allowed ...; until: when, where known
    dialled             campaign; detail: attempt_id
    call_outcome        campaign; reason: the outcome; detail: disposition
    disposition         campaign; reason: the disposition (IVR digit or agent)
    retry_scheduled     campaign; until: the next attempt; reason: why
    contact_finished    campaign; reason: done | failed; detail: why, disposition
    contact_cancelled   campaign; reason: why (a reply asked for re-delivery...)
    escalated           reason: the rule's name; detail: what it did
    webhook_queued      reason: the webhook event
    webhook_retry       until: the next try; reason: the error
    reported            reason: the webhook event (the order system took it)
    webhook_dead        reason: why it will not be delivered
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "FOLLOWED_KINDS",
    "TIMELINE_KINDS",
    "FollowUpAction",
    "FollowUpRepository",
    "NewEntry",
    "QueuedMessage",
    "TimelineEntry",
]

TIMELINE_KINDS = (
    "event_received",
    "sms_queued",
    "sms_skipped",
    "sms_sent",
    "sms_retry",
    "sms_held",
    "sms_dead",
    "sms_delivered",
    "sms_failed",
    "sms_reply",
    "opted_out",
    "contact_added",
    "contact_skipped",
    "held_back",
    "dialled",
    "call_outcome",
    "disposition",
    "retry_scheduled",
    "contact_finished",
    "contact_cancelled",
    "escalated",
    "webhook_queued",
    "webhook_retry",
    "reported",
    "webhook_dead",
)

FOLLOWED_KINDS = frozenset(
    {"contact_finished", "disposition", "sms_delivered", "sms_dead", "sms_reply", "opted_out"}
)
"""Entries the follow-up reads: they may trigger an escalation rule or a webhook."""


@dataclass(frozen=True)
class NewEntry:
    """One entry to write; `follow_up` defaults to whether its kind is followed."""

    phone: str
    at: datetime
    kind: str
    reason: str | None = None
    until: datetime | None = None
    campaign: str | None = None
    order_id: str | None = None
    detail: dict[str, Any] | None = field(default=None, hash=False)

    def row(self) -> dict[str, Any]:
        return {
            "phone": self.phone,
            "at": self.at,
            "kind": self.kind,
            "reason": self.reason,
            "until": self.until,
            "campaign": self.campaign,
            "order_id": self.order_id,
            "detail": self.detail,
            "follow_up": True if self.kind in FOLLOWED_KINDS else None,
        }


@dataclass(frozen=True)
class TimelineEntry:
    """An entry as stored."""

    id: int
    phone: str
    at: datetime
    kind: str
    reason: str | None
    until: datetime | None
    campaign: str | None
    order_id: str | None
    detail: dict[str, Any] = field(hash=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "reason": self.reason,
            "until": self.until.isoformat() if self.until else None,
            "campaign": self.campaign,
            "order_id": self.order_id,
            "detail": self.detail,
        }


# ------------------------------------------------------------------------------ the follow-up


@dataclass(frozen=True)
class QueuedMessage:
    """An outbox row the follow-up queues: an SMS stage (`channel` "sms") or a webhook to the
    order system ("webhook", `body` its JSON). At most one per `(order_id, stage)`."""

    channel: str
    order_id: str
    stage: str
    phone: str
    body: str
    next_attempt_at: datetime
    segments: int = 1
    templates: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """SMS: provider name -> its approved template (`dialer.messaging.ports.StageTemplate`)."""


@dataclass(frozen=True)
class FollowUpAction:
    """What the follow-up does about one entry. With a `rule`, at most once per rule and
    `subject` (a contact, an order): a second action of the same pair is dropped whole."""

    subject: str
    at: datetime
    """When the follow-up decided it (the messages may be due later: quiet hours)."""
    rule: str | None = None
    messages: tuple[QueuedMessage, ...] = ()
    cancel_contacts: tuple[int, ...] = ()
    cancel_reason: str = ""
    entries: tuple[NewEntry, ...] = ()


class FollowUpRepository(Protocol):
    """The timeline as the follow-up uses it (`dialer.store.timeline.TimelineStore`)."""

    async def follow_up(
        self, decide: Callable[[list[TimelineEntry]], list[FollowUpAction]], *, limit: int = 100
    ) -> int:
        """Take up to `limit` followed entries, write what `decide` makes of them and unmark
        them, in one transaction; how many were taken."""

    async def prune(self, *, before: datetime) -> int:
        """Forget the entries older than `before`; how many."""

    async def record_reply(self, phone: str, text: str, *, now: datetime) -> None:
        """An inbound SMS (no STOP/START word), with the callbacks of `phone` still pending."""
