"""The SMS component: order events in, the dispatcher out, replies and delivery reports.

`SmsService` is what the daemon runs (`run(stop)`: the dispatcher) and what the HTTP routes call:
`accept_event` and `accept_events` (`POST /v1/events`: one event, a batch), `record_delivery` (a
provider's status callback), `handle_reply` (an inbound SMS), `replay_dead` (a dead letter
queued again).

A provider's callback is acted on once: given its `CallbackId`, a callback seen before (a
replay, say a captured START sent again after the customer's STOP) changes nothing and is
logged `sms.callback_replayed`. The ids seen are kept `CALLBACKS_KEPT` (30 days), then
forgotten (checked at most hourly, when a callback comes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from dialer.clock import Clock, Sleep
from dialer.config import Settings
from dialer.health import Health
from dialer.logs import get_logger
from dialer.messaging.dispatcher import Dispatcher, RetryPolicy
from dialer.messaging.intake import EventResult, Intake
from dialer.messaging.limits import DailyLimit
from dialer.messaging.lookups import SentLookup
from dialer.messaging.ports import (
    CallbackId,
    CallbackLedger,
    DeliveryReport,
    EventRepository,
    OptOutRegistry,
    Outbox,
)
from dialer.messaging.providers import PROVIDERS, build_provider_stack, status_callback_url
from dialer.messaging.replies import (
    FAILED_DELIVERY,
    after_delivery_failure,
    is_delivery_status,
    reply_action,
)
from dialer.metrics import NO_PROVIDER, Metrics
from dialer.phones import InvalidNumber, normalize
from dialer.timeline import FollowUpRepository
from notifiers import Notifier

__all__ = ["CALLBACKS_KEPT", "SmsService", "dispatcher_for", "replay_dead_letter"]

log = get_logger(__name__)

CALLBACKS_KEPT = timedelta(days=30)
"""How long a callback's id is remembered, to recognise a replay of it."""
CALLBACKS_PRUNED_EVERY = timedelta(hours=1)


def dispatcher_for(
    settings: Settings,
    outbox: Outbox,
    notifier: Notifier,
    *,
    now: Clock,
    metrics: Metrics | None = None,
    health: Health | None = None,
    sleep: Sleep = asyncio.sleep,
    lookups: Sequence[SentLookup] = (),
) -> Dispatcher:
    notifications = settings.notifications
    return Dispatcher(
        outbox,
        notifier,
        now=now,
        policy=RetryPolicy(
            backoff_initial_s=notifications.retry.backoff_initial_s,
            backoff_max_s=notifications.retry.backoff_max_s,
            max_age_s=notifications.retry.max_age_s,
        ),
        concurrency=notifications.dispatcher.concurrency,
        poll_interval_s=notifications.dispatcher.poll_interval_s,
        status_callback_url=status_callback_url(settings),
        metrics=metrics,
        health=health,
        sleep=sleep,
        lookups=lookups,
        daily_limit=daily_limit_of(settings),
    )


def daily_limit_of(settings: Settings) -> DailyLimit | None:
    """The daily limit per number the settings ask for (None: no limit)."""
    notifications = settings.notifications
    if notifications.daily_limit_per_number is None:
        return None
    return DailyLimit.of(
        notifications.daily_limit_per_number,
        notifications.daily_limit_urgent_reserve,
        notifications.daily_limit_timezone,
        (name for name, stage in notifications.stages.items() if stage.urgent),
        notifications.quiet_hours,
    )


async def replay_dead_letter(outbox: Outbox, message_id: int, *, now: datetime) -> bool:
    """Queue dead message `message_id` again, due now; False when there is no such dead one."""
    replayed = await outbox.replay_dead(message_id, now=now)
    if replayed:
        log.info("sms.replayed", message_id=message_id)
    return replayed


class SmsService:
    """The intake, the dispatcher as the long-running task, and the callbacks' effects."""

    name = "sms"

    def __init__(
        self,
        settings: Settings,
        *,
        events: EventRepository,
        outbox: Outbox,
        opt_outs: OptOutRegistry,
        callbacks: CallbackLedger,
        now: Clock,
        sleep: Sleep = asyncio.sleep,
        metrics: Metrics | None = None,
        health: Health | None = None,
        timeline: FollowUpRepository | None = None,
    ) -> None:
        self.settings = settings
        self.timeline = timeline
        self.health = health or Health(now=now)
        self.outbox = outbox
        self.opt_outs = opt_outs
        self.callbacks = callbacks
        self._callbacks_pruned_at: datetime | None = None
        self.now = now
        self.sleep = sleep
        self.metrics = metrics or Metrics()
        self.dispatcher: Dispatcher | None = None
        self.intake = Intake(settings, events, now=now, on_queued=self.wake, metrics=self.metrics)

    def wake(self) -> None:
        """Something was queued or replayed: the dispatcher looks now."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    async def reload(self, settings: Settings) -> dict[str, list[str]]:
        """New stages, templates, quiet hours: for events accepted from now on; the daily
        limit per number for the messages sent from now on."""
        before = self.settings.notifications
        after = settings.notifications
        self.settings = settings
        self.intake.reconfigure(settings)
        if self.dispatcher is not None:  # the daily limit per number applies from now on
            self.dispatcher.daily_limit = daily_limit_of(settings)
        changed = [
            name
            for name in sorted({*before.stages, *after.stages})
            if before.stages.get(name) != after.stages.get(name)
        ]
        return {"sms_stages_changed": changed}

    async def run(self, stop: asyncio.Event) -> None:
        stack = await build_provider_stack(
            self.settings.notifications, sleep=self.sleep, metrics=self.metrics
        )
        try:
            self.dispatcher = dispatcher_for(
                self.settings,
                self.outbox,
                stack.notifier,
                now=self.now,
                metrics=self.metrics,
                health=self.health,
                sleep=self.sleep,
                lookups=stack.lookups,
            )
            await self.dispatcher.run(stop)
        finally:
            await stack.notifier.close()

    async def take_over(self, _dead_workers: Sequence[str] = ()) -> None:
        """A heartbeat (`dialer.workers.Membership`): messages left `sending` by dead workers
        are queued again, here."""
        if self.dispatcher is not None:
            await self.dispatcher.take_over()

    # -- what the HTTP routes call -------------------------------------------------------------

    async def accept_event(self, body: Any) -> tuple[int, dict[str, Any]]:
        """`POST /v1/events`: (status, answer); raises pydantic's ValidationError (422)."""
        return await self.intake.accept(body)

    async def accept_events(self, bodies: Sequence[Any]) -> list[EventResult]:
        """`POST /v1/events` with a batch: one result per event, in order (see `Intake`)."""
        return await self.intake.accept_batch(bodies)

    async def record_delivery(
        self,
        status: str,
        *,
        message_id: int | None,
        provider_message_id: str | None,
        error_code: str | None,
        callback: CallbackId | None = None,
        phone: str | None = None,
    ) -> bool:
        """A provider's delivery report; True when it moved a message forward. With `phone`,
        only a message to that number moves (a report names the number it is about)."""
        if not is_delivery_status(status) or (message_id is None and not provider_message_id):
            log.info("sms.status_ignored", status=status)
            return False
        if await self._seen_before(callback):
            return False
        try:
            report = await self.outbox.record_delivery_status(
                status=status,
                now=self.now(),
                message_id=message_id,
                provider_message_id=provider_message_id,
                error_code=error_code,
                phone=phone,
            )
        except BaseException:
            await self._release(callback)
            raise
        log.info(
            "sms.status_received",
            status=status,
            message_id=message_id,
            provider_message_id=provider_message_id,
            applied=report is not None,
        )
        if report is None:
            return False
        self.metrics.delivery_reported(status, report.stage, report.provider)
        if status in FAILED_DELIVERY:
            await self._after_failure(report, status, error_code)
        return True

    async def _after_failure(self, report: DeliveryReport, status: str, code: str | None) -> None:
        provider = self.settings.notifications.providers.get(report.provider or "")
        kind = PROVIDERS.get(provider.type) if provider is not None else None
        transient = (
            kind is not None and code is not None and kind.delivery_failure_is_transient(code)
        )
        retry = self.settings.notifications.retry
        policy = RetryPolicy(retry.backoff_initial_s, retry.backoff_max_s, retry.max_age_s)
        step = after_delivery_failure(
            report,
            status=status,
            code=code,
            transient=transient,
            delay_s=policy.delay_s(report.attempts, None),
            max_age_s=retry.max_age_s,
            now=self.now(),
        )
        moved = await self.outbox.after_delivery_failure(
            report.message_id, retry_at=step.retry_at, error=step.error, code=code, now=self.now()
        )
        if not moved:
            return
        if step.retry_at is None:
            self.metrics.sms_dead.labels(
                stage=report.stage, provider=report.provider or NO_PROVIDER
            ).inc()
            log.warning("sms.dead", message_id=report.message_id, reason=step.error, code=code)
        else:
            log.info(
                "sms.redelivery_scheduled",
                message_id=report.message_id,
                code=code,
                next_attempt_at=step.retry_at.isoformat(),
            )
            self.wake()

    async def handle_reply(
        self, sender: str, text: str, *, callback: CallbackId | None = None
    ) -> None:
        """An inbound SMS: STOP words opt the number out, START back in; any other reply goes on
        the number's timeline (the escalation rules read it there)."""
        action = reply_action(text)
        if action is None and self.timeline is None:
            return
        try:
            phone = normalize(sender, self.settings.default_region)
        except InvalidNumber:
            return
        if await self._seen_before(callback):
            return
        if action is None:
            assert self.timeline is not None
            try:
                await self.timeline.record_reply(phone, text.strip(), now=self.now())
            except BaseException:
                await self._release(callback)
                raise
            log.info("sms.reply_recorded", phone=phone)
            return
        try:
            if action == "opt_out":
                await self.opt_outs.opt_out(phone, source="sms_reply", now=self.now())
            else:
                await self.opt_outs.opt_in(phone)
        except BaseException:
            await self._release(callback)
            raise
        if action == "opt_out":
            log.info("sms.opted_out", phone=phone, word=text.strip().upper())
        else:
            log.info("sms.opted_in", phone=phone)

    async def _seen_before(self, callback: CallbackId | None) -> bool:
        """Record `callback`; True (logged) when it was acted on before."""
        if callback is None:
            return False
        now = self.now()
        if self._callbacks_pruned_at is None or now - self._callbacks_pruned_at >= (
            CALLBACKS_PRUNED_EVERY
        ):
            self._callbacks_pruned_at = now
            await self.callbacks.forget_callbacks(before=now - CALLBACKS_KEPT)
        if await self.callbacks.claim_callback(callback.provider, callback.id, now=now):
            return False
        log.warning("sms.callback_replayed", provider=callback.provider, callback_id=callback.id)
        return True

    async def _release(self, callback: CallbackId | None) -> None:
        if callback is not None:
            await self.callbacks.release_callback(callback.provider, callback.id)

    async def replay_dead(self, message_id: int) -> bool:
        """Queue dead message `message_id` again; False when there is no such dead message."""
        replayed = await replay_dead_letter(self.outbox, message_id, now=self.now())
        if replayed:
            self.wake()
        return replayed
