"""Order events in: validated, stored with what they cause, answered once and for all.

`Intake.accept(body)` takes the JSON of `POST /v1/events` and returns `(http_status, answer)`:

- 422 (as `pydantic.ValidationError`, raised) naming each bad field: an unknown `stage` (the
  built-in stages plus the configured ones), a `phone` that is not a valid number (with the
  reason from `phones.parse`), a naive `occurred_at`, unknown keys...
- 202 with what it queued: the event, its message (one per order and stage, none to an
  opted-out or non-mobile number, none for a stage without a template) and the contacts its
  stage adds (`add_to_campaign`, `only_vip`), all written in one transaction first. Events
  that arrive together share that transaction (`GroupCommit`: one writer, batches that grow
  under load); each is answered after the commit.
- 200 with the stored answer when the same event (same `event_id`, same body) comes again;
  409 when an `event_id` comes back with a different body.

A non-urgent message that arrives in quiet hours is queued with `next_attempt_at` at their end.

`Intake.accept_batch(bodies)` takes the events of one batch request: one `EventResult` per body,
in order, each what `accept` would have answered for it alone (422 carrying the validation
error), so a bad event never refuses its neighbours. The valid ones go to the writer together
(they share its transactions, `WRITE_BATCH` events each) and the dispatcher is woken once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic

from dialer.clock import Clock
from dialer.config import Settings
from dialer.logs import get_logger
from dialer.messaging.events import Event, validation_context
from dialer.messaging.group_commit import GroupCommit
from dialer.messaging.ports import (
    AcceptedEvent,
    EventRepository,
    IncomingEvent,
    NewMessage,
    StageContact,
    StoredEvent,
)
from dialer.messaging.templates import quiet_hours_end, render_message
from dialer.metrics import Metrics
from notifiers import segments

__all__ = ["EventResult", "Intake"]

log = get_logger(__name__)

WRITE_BATCH = 100  # events written in one transaction, at most


@dataclass(frozen=True)
class EventResult:
    """What became of one event of a batch: the status and answer `accept` gives it alone
    (202, 200, 409; 500 when its own write failed); for 422, `invalid` holds the validation
    error (and `answer` is empty: the HTTP edge words it as it words a single body's)."""

    status: int
    answer: dict[str, Any]
    invalid: pydantic.ValidationError | None = None


@dataclass(frozen=True)
class _Pending:
    """A validated event on its way to the writer."""

    event: Event
    incoming: IncomingEvent
    encoding: str | None


class Intake:
    def __init__(
        self,
        settings: Settings,
        events: EventRepository,
        *,
        now: Clock,
        on_queued: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.events = events
        self.now = now
        self.on_queued = on_queued
        self.reconfigure(settings)
        # Events that arrive while a write runs are written together, in one transaction.
        self._writer: GroupCommit[IncomingEvent, AcceptedEvent] = GroupCommit(
            self._write,
            max_batch=WRITE_BATCH,
            name="intake-writer",
            fails_alone=events.fails_alone,
        )

    def reconfigure(self, settings: Settings) -> None:
        """Stages and templates for the events validated from now on (a reloaded config)."""
        self.settings = settings
        self._context = validation_context(settings.notifications.stages, settings.default_region)
        self.stages: frozenset[str] = self._context["stages"]

    async def _write(self, batch: Sequence[IncomingEvent]) -> list[AcceptedEvent]:
        return await self.events.accept_events(batch)

    def validate(self, body: Any) -> Event:
        """The event, or `pydantic.ValidationError` naming each bad field."""
        return Event.model_validate(body, context=self._context)

    async def accept(self, body: Any) -> tuple[int, dict[str, Any]]:
        pending = self._prepare(body, self.now())
        accepted = await self._writer.submit(pending.incoming)
        status, answer, queued = self._finish(pending, accepted)
        if queued and self.on_queued is not None:
            self.on_queued()
        return status, answer

    async def accept_batch(self, bodies: Sequence[Any]) -> list[EventResult]:
        """Each body as `accept` takes it, one result per body, in order: an invalid one is
        422 without holding up the others; the valid ones are handed to the writer at once (so
        they share its transactions) and the dispatcher is woken once for the lot.

        A write that fails for the event's own reason (the repository's `fails_alone`) is that
        event's 500; a failure of the store itself is raised, as for one event (what was
        written before it stays written: sent again, those events answer as duplicates)."""
        now = self.now()
        results: dict[int, EventResult] = {}
        pending: list[tuple[int, _Pending]] = []
        for index, body in enumerate(bodies):
            try:
                pending.append((index, self._prepare(body, now)))
            except pydantic.ValidationError as exc:
                results[index] = EventResult(422, {}, invalid=exc)
        written = await asyncio.gather(
            *(self._writer.enqueue(item.incoming) for _, item in pending), return_exceptions=True
        )
        store_failure: BaseException | None = None
        queued = False
        for (index, item), outcome in zip(pending, written, strict=True):
            if isinstance(outcome, Exception) and self.events.fails_alone(outcome):
                log.error(
                    "event.write_failed", event_id=item.event.event_id, error=type(outcome).__name__
                )
                results[index] = EventResult(500, _unwritten(item.event))
            elif isinstance(outcome, BaseException):
                store_failure = store_failure or outcome
            else:
                status, answer, item_queued = self._finish(item, outcome)
                queued = queued or item_queued
                results[index] = EventResult(status, answer)
        if queued and self.on_queued is not None:
            self.on_queued()
        if store_failure is not None:
            raise store_failure
        return [results[index] for index in range(len(bodies))]

    def _prepare(self, body: Any, now: datetime) -> _Pending:
        """The event validated (or `pydantic.ValidationError`) and what writing it takes."""
        event = self.validate(body)
        message, skipped, encoding = self._message(event, now)
        incoming = IncomingEvent(
            event_id=event.event_id,
            order_id=event.order_id,
            stage=event.stage,
            phone=event.phone.e164,
            payload=event.stored_form(),
            message=message,
            new_contacts=self._contacts(event),
            now=now,
            respond=lambda done: _answer(event, done, message, skipped, encoding),
            message_skipped=skipped,
        )
        return _Pending(event, incoming, encoding)

    def _finish(
        self, pending: _Pending, accepted: AcceptedEvent
    ) -> tuple[int, dict[str, Any], bool]:
        """(status, answer, whether a message was queued) once the event is written."""
        event, message = pending.event, pending.incoming.message
        if not accepted.created:  # the event_id was already stored (or came twice at once)
            return (*self._again(event, pending.incoming.payload, accepted.stored), False)
        self.metrics.events_received.labels(stage=event.stage).inc()
        queued = False
        if accepted.message_id is not None and message is not None:
            log.info(
                "sms.queued",
                order_id=event.order_id,
                stage=event.stage,
                message_id=accepted.message_id,
                segments=message.segments,
                encoding=pending.encoding,
                next_attempt_at=message.next_attempt_at.isoformat(),
            )
            self.metrics.sms_queued.labels(stage=event.stage).inc()
            queued = True
        assert accepted.stored.response is not None
        return 202, accepted.stored.response, queued

    def _again(
        self, event: Event, payload: Mapping[str, Any], known: StoredEvent
    ) -> tuple[int, dict[str, Any]]:
        if dict(known.payload) != dict(payload):
            log.warning("event.conflicting_duplicate", event_id=event.event_id)
            return 409, {
                "error": "this event_id was already accepted with a different body",
                "event_id": event.event_id,
            }
        return 200, dict(known.response or {})

    def _message(
        self, event: Event, now: datetime
    ) -> tuple[NewMessage | None, str | None, str | None]:
        """(the message to queue, why none, its encoding)."""
        notifications = self.settings.notifications
        stage = notifications.stages.get(event.stage)
        if stage is None:
            return None, "no_template", None
        if not event.phone.is_mobile:
            return None, "not_mobile", None
        body, templates = render_message(
            stage,
            notifications,
            stage=event.stage,
            order_id=event.order_id,
            customer_name=event.customer.name,
            data=event.data,
        )
        encoding, parts = segments(body)
        held_until = None if stage.urgent else quiet_hours_end(now, notifications.quiet_hours)
        message = NewMessage(event.phone.e164, body, parts, held_until or now, templates)
        return message, None, encoding

    def _contacts(self, event: Event) -> list[StageContact]:
        stage = self.settings.notifications.stages.get(event.stage)
        if stage is None or stage.add_to_campaign is None:
            return []
        if stage.only_vip and not event.customer.vip:
            return []
        campaign = self.settings.campaigns[stage.add_to_campaign]
        context: dict[str, Any] = {
            "order_id": event.order_id,
            "stage": event.stage,
            "event_id": event.event_id,
            "occurred_at": event.occurred_at.isoformat(),
            **{key: value for key, value in event.data.items()},
        }
        return [
            StageContact(
                campaign=stage.add_to_campaign,
                kind=campaign.kind,
                phone=event.phone.e164,
                name=event.customer.name or None,
                context=context,
            )
        ]


def _unwritten(event: Event) -> dict[str, Any]:
    return {"error": "this event could not be stored", "event_id": event.event_id}


def _answer(
    event: Event,
    done: AcceptedEvent,
    message: NewMessage | None,
    skipped: str | None,
    encoding: str | None,
) -> dict[str, Any]:
    queued = None
    if done.message_id is not None and message is not None:
        queued = {
            "id": done.message_id,
            "status": "queued",
            "next_attempt_at": message.next_attempt_at.isoformat(),
            "segments": message.segments,
            "encoding": encoding,
        }
    return {
        "event_id": event.event_id,
        "order_id": event.order_id,
        "stage": event.stage,
        "message": queued,
        "message_skipped": skipped or done.message_skipped,
        "contacts": done.contacts,
    }
