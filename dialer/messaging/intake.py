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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

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
from dialer.messaging.templates import quiet_hours_end, render
from dialer.metrics import Metrics
from notifiers import segments

__all__ = ["Intake"]

log = get_logger(__name__)

WRITE_BATCH = 100  # events written in one transaction, at most


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
        event = self.validate(body)
        payload = event.stored_form()
        now = self.now()
        message, skipped, encoding = self._message(event, now)
        accepted = await self._writer.submit(
            IncomingEvent(
                event_id=event.event_id,
                order_id=event.order_id,
                stage=event.stage,
                phone=event.phone.e164,
                payload=payload,
                message=message,
                new_contacts=self._contacts(event),
                now=now,
                respond=lambda done: _answer(event, done, message, skipped, encoding),
            )
        )
        if not accepted.created:  # the event_id was already stored (or came twice at once)
            return self._again(event, payload, accepted.stored)
        self.metrics.events_received.labels(stage=event.stage).inc()
        if accepted.message_id is not None and message is not None:
            log.info(
                "sms.queued",
                order_id=event.order_id,
                stage=event.stage,
                message_id=accepted.message_id,
                segments=message.segments,
                encoding=encoding,
                next_attempt_at=message.next_attempt_at.isoformat(),
            )
            self.metrics.sms_queued.labels(stage=event.stage).inc()
            if self.on_queued is not None:
                self.on_queued()
        assert accepted.stored.response is not None
        return 202, accepted.stored.response

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
        body = render(
            stage,
            notifications,
            stage=event.stage,
            order_id=event.order_id,
            customer_name=event.customer.name,
            data=event.data,
        )
        encoding, parts = segments(body)
        held_until = None if stage.urgent else quiet_hours_end(now, notifications.quiet_hours)
        message = NewMessage(event.phone.e164, body, parts, held_until or now)
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
