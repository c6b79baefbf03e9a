"""What the SMS side needs from the store, as small protocols, and the values that cross them.

The messaging core owns these; `dialer.store` implements them (`EventStore`, `OutboxStore`,
`OptOutStore`), and tests may use fakes. Nothing here does I/O.

A message row moves through these statuses::

    queued --claim--> sending --> sent --> delivered | undelivered | failed   (delivery reports)
      ^                  |  \\--> queued (transient: next_attempt_at later)
      |                  \\----> dead   (permanent, opted out, or too old; last_error says why)
      +---- replay (dead) / settle after a crash (sending) -----+
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

__all__ = [
    "DELIVERY_STATUS_RANK",
    "MESSAGE_STATUSES",
    "AcceptedEvent",
    "CallbackId",
    "CallbackLedger",
    "ClaimedMessage",
    "DeliveryReport",
    "EventRepository",
    "IncomingEvent",
    "MessageOutcome",
    "NewMessage",
    "OptOutRegistry",
    "Outbox",
    "OutcomeKind",
    "StageContact",
    "StageTemplate",
    "StoredEvent",
]

MESSAGE_STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "dead")
"""Every status of a message, in the order of its life."""

DELIVERY_STATUS_RANK: Mapping[str, int] = {
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
}
"""A delivery report only moves a message forward: to a status of a higher rank."""

# ------------------------------------------------------------------------------- order events


@dataclass(frozen=True)
class StoredEvent:
    payload: dict[str, Any]
    response: dict[str, Any] | None


@dataclass(frozen=True)
class StageTemplate:
    """A stage's template approved at one provider (`code`) and its variables, filled."""

    code: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class NewMessage:
    phone: str
    body: str
    segments: int
    next_attempt_at: datetime
    templates: Mapping[str, StageTemplate] = field(default_factory=dict)
    """Provider name -> its template, for the providers that send only templates."""


@dataclass(frozen=True)
class StageContact:
    """A contact an order stage adds to a campaign (`add_to_campaign`)."""

    campaign: str
    kind: str
    phone: str
    name: str | None
    context: Mapping[str, Any]


@dataclass(frozen=True)
class AcceptedEvent:
    """What writing an event did: `created` False means the event_id was already there."""

    created: bool
    stored: StoredEvent
    message_id: int | None
    message_skipped: str | None  # "opted_out" | "already_queued" when no row was written
    contacts: list[dict[str, Any]]


@dataclass(frozen=True)
class IncomingEvent:
    """One event to write. `respond` makes the answer from what was written; it is stored with
    the event, in the same transaction."""

    event_id: str
    order_id: str
    stage: str
    phone: str
    payload: Mapping[str, Any]
    message: NewMessage | None
    new_contacts: Sequence[StageContact]
    now: datetime
    respond: Callable[[AcceptedEvent], dict[str, Any]]
    message_skipped: str | None = None
    """Why `message` is None ("not_mobile", "no_template"), for the timeline."""


class EventRepository(Protocol):
    """Order events with what they cause (`dialer.store.EventStore`)."""

    async def accept_events(self, batch: Sequence[IncomingEvent]) -> list[AcceptedEvent]:
        """Write the batch in one transaction: each event, its message (at most one per order
        and stage, none to an opted-out number) and its contacts; one result per event, in
        order. An event_id already stored writes nothing and comes back as stored."""

    def fails_alone(self, exc: Exception) -> bool:
        """Whether a failed batch may be one item's fault (write them one by one), rather
        than the store's (fail the whole batch)."""


# ------------------------------------------------------------------------------------ outbox


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    event_id: str
    order_id: str
    stage: str
    phone: str
    body: str
    attempts: int
    age_from: datetime
    """When `max_age_s` started counting: queued, replayed from the dead letters, or released
    from a daily-limit hold."""
    opted_out: bool
    templates: Mapping[str, StageTemplate] = field(default_factory=dict)
    ambiguous_since: datetime | None = None
    """An earlier send may have reached a provider unanswered (from then on): look it up
    before sending again."""


OutcomeKind = Literal["sent", "retry", "dead", "hold"]


@dataclass(frozen=True)
class MessageOutcome:
    """What became of one claimed message: `sent` (with the provider and its id), `retry` (due
    again at `at`; `ambiguous`: the provider may have taken it), `dead` (`error` starts with
    the reason; with `opt_out_phone`, that number is opted out too) or `hold` (the daily limit
    per number: queued again until `at`, the try not counted, its age counted from `at`)."""

    kind: OutcomeKind
    message_id: int
    now: datetime
    provider: str | None = None
    provider_message_id: str | None = None
    at: datetime | None = None
    error: str | None = None
    code: str | None = None
    opt_out_phone: str | None = None
    ambiguous: bool = False


@dataclass(frozen=True)
class DeliveryReport:
    """A delivery report that moved a message: which message, stage, provider; how many tries
    it had and since when its age counts (for a retry after an undelivered report)."""

    message_id: int
    stage: str
    provider: str | None
    attempts: int
    age_from: datetime


class Outbox(Protocol):
    """The messages to send and their fate (`dialer.store.OutboxStore`)."""

    async def settle_sending(
        self, *, now: datetime, own: bool = True
    ) -> list[tuple[int, str, str]]:
        """Rows left `sending` by a crash: queued again, due now; (id, order_id, stage) each.
        Those of workers that are not live, and (`own`: before claiming) this worker's own."""

    async def claim_due(self, *, now: datetime, limit: int) -> list[ClaimedMessage]:
        """Mark up to `limit` due messages `sending` (attempts + 1), leased to this worker, in
        their own transaction; nothing once this worker was declared dead."""

    async def record_outcomes(self, outcomes: Sequence[MessageOutcome]) -> None:
        """The outcomes of many claimed messages, in one transaction."""

    async def sent_today(self, phone: str, *, since: datetime, besides: int) -> int:
        """Messages to `phone` sent since `since`, or being sent now with a lower id than
        message `besides` (the daily limit per number)."""

    def fails_alone(self, exc: Exception) -> bool:
        """As `EventRepository.fails_alone`."""

    async def record_delivery_status(
        self,
        *,
        status: str,
        now: datetime,
        message_id: int | None = None,
        provider_message_id: str | None = None,
        error_code: str | None = None,
        phone: str | None = None,
    ) -> DeliveryReport | None:
        """A delivery report; the status only moves forward; with `phone`, only a message to
        that number. None: no row moved."""

    async def after_delivery_failure(
        self,
        message_id: int,
        *,
        retry_at: datetime | None,
        error: str,
        code: str | None,
        now: datetime,
    ) -> bool:
        """A message reported undelivered or failed: queued again, due at `retry_at`, or dead
        (`retry_at` None; `error` starts with the reason). False: it had moved on meanwhile."""

    async def replay_dead(self, message_id: int, *, now: datetime) -> bool:
        """A dead message queued again, due now. False: no such dead message."""


class OptOutRegistry(Protocol):
    """Numbers that said stop (`dialer.store.OptOutStore`)."""

    async def opt_out(self, phone: str, *, source: str, now: datetime) -> None:
        """`phone` opts out of SMS and calls; doing it twice changes nothing."""

    async def opt_in(self, phone: str) -> None:
        """Undo every opt-out of `phone` (a START reply)."""


# --------------------------------------------------------------------------- provider callbacks


@dataclass(frozen=True)
class CallbackId:
    """What identifies one callback of a provider (Twilio: the MessageSid of an inbound SMS;
    the MessageSid and the status of a delivery report, which comes once per status)."""

    provider: str
    id: str


class CallbackLedger(Protocol):
    """The provider callbacks already acted on (`dialer.store.CallbackStore`)."""

    async def claim_callback(self, provider: str, callback_id: str, *, now: datetime) -> bool:
        """Record a callback; False when it was recorded before (a replay), in one step."""

    async def release_callback(self, provider: str, callback_id: str) -> None:
        """Forget one callback, whose effect failed (so that a retry of it is acted on)."""

    async def forget_callbacks(self, *, before: datetime) -> int:
        """Forget the callbacks recorded before `before`; how many."""
