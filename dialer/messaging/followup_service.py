"""The follow-up component: escalation rules, webhooks to the order system, timeline pruning.

`FollowUpService.run(stop)` runs three loops until `stop`:

- the follow-up: takes the timeline's followed entries in order and writes what they cause
  (`dialer.messaging.followup.decide`), in the transaction that unmarks them;
- the webhook sender: a `Dispatcher` (the SMS one: claims leased to this worker, retries with
  backoff, dead letters, settling after a crash) on the outbox rows of channel `webhook`,
  through a `WebhookNotifier` (signed POSTs). It never holds up calls or SMS: its own rows,
  its own task;
- the pruning of entries older than `timeline.retention_days`, every `prune_interval_s`.

`run_until_idle()` (tests) follows up and sends until nothing is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from datetime import timedelta

from dialer.clock import Clock, Sleep
from dialer.config import Settings
from dialer.health import Health
from dialer.logs import get_logger
from dialer.messaging.dispatcher import Dispatcher, RetryPolicy
from dialer.messaging.followup import decide
from dialer.messaging.ports import Outbox
from dialer.metrics import Metrics
from dialer.timeline import FollowUpRepository
from notifiers import Notifier, OutboundSms, SendResult
from notifiers.webhook import WebhookNotifier

__all__ = ["FollowUpService", "SignedWebhooks"]

log = get_logger(__name__)

FOLLOW_UP_BATCH = 100


class SignedWebhooks:
    """The notifier of the webhook dispatcher: the outbox row's body is the JSON document; its
    `id` is the idempotency key, the same on every try."""

    name = "webhook"

    def __init__(self, notifier: WebhookNotifier) -> None:
        self.notifier = notifier

    async def send(self, message: OutboundSms) -> SendResult:
        document = json.loads(message.body)
        extra = {
            **message.extra,
            "idempotency_key": str(document.get("id") or message.message_id),
            "event": str(document.get("event") or ""),
        }
        sent = OutboundSms(message.message_id, message.to, message.body, extra=extra)
        return await self.notifier.send(sent)

    async def close(self) -> None:
        await self.notifier.close()


def webhook_notifier(settings: Settings) -> Notifier | None:
    hooks = settings.webhooks
    if hooks.url is None or hooks.secret is None:
        return None
    return SignedWebhooks(
        WebhookNotifier(
            url=hooks.url,
            secret=hooks.secret.get_secret_value().encode("utf-8"),
            signature_header=hooks.signature_header,
            timestamp_header=hooks.timestamp_header,
            timeout_s=hooks.timeout_s,
        )
    )


class FollowUpService:
    """The daemon component (see the module docstring)."""

    name = "follow-up"

    def __init__(
        self,
        settings: Settings,
        *,
        timeline: FollowUpRepository,
        webhooks: Outbox,
        now: Clock,
        sleep: Sleep = asyncio.sleep,
        notifier: Notifier | None = None,
        health: Health | None = None,
    ) -> None:
        self.settings = settings
        self.timeline = timeline
        self.now = now
        self.sleep = sleep
        self.health = health or Health(now=now)
        self.guard = self.health.guard("follow-up", sleep)
        self.notifier = notifier if notifier is not None else webhook_notifier(settings)
        self.dispatcher = self._dispatcher(webhooks, self.notifier) if self.notifier else None
        self._wake = asyncio.Event()
        self.followed = 0

    def _dispatcher(self, outbox: Outbox, notifier: Notifier) -> Dispatcher:
        hooks = self.settings.webhooks
        return Dispatcher(
            outbox,
            notifier,
            now=self.now,
            policy=RetryPolicy(hooks.backoff_initial_s, hooks.backoff_max_s, hooks.max_age_s),
            concurrency=hooks.concurrency,
            poll_interval_s=hooks.poll_interval_s,
            metrics=Metrics(),  # webhooks are not counted as SMS
            health=self.health,
            sleep=self.sleep,
            channel="webhook",
        )

    async def take_over(self, _dead_workers: Sequence[str] = ()) -> None:
        """A heartbeat: webhooks left `sending` by dead workers are queued again, here."""
        if self.dispatcher is not None:
            await self.dispatcher.take_over()

    def wake(self) -> None:
        """Something was recorded that may need a follow-up: look now."""
        self._wake.set()

    async def reload(self, settings: Settings) -> dict[str, list[str]]:
        """New rules and webhook events apply to the entries followed from now on."""
        changed = sorted(
            name
            for name in {*self.settings.escalations, *settings.escalations}
            if self.settings.escalations.get(name) != settings.escalations.get(name)
        )
        self.settings = settings
        return {"escalations_changed": changed}

    async def follow_up_once(self) -> int:
        """Follow up one batch of entries; how many were taken."""
        taken = await self.timeline.follow_up(
            lambda entries: decide(entries, self.settings, self.now()), limit=FOLLOW_UP_BATCH
        )
        self.followed += taken
        if taken and self.dispatcher is not None:
            self.dispatcher.wake()
        return taken

    async def prune(self) -> int:
        retention = timedelta(days=self.settings.timeline.retention_days)
        removed = await self.timeline.prune(before=self.now() - retention)
        if removed:
            log.info("timeline.pruned", removed=removed)
        return removed

    async def run_until_idle(self) -> int:
        """Tests: follow up and send until nothing is left; how many entries were taken."""
        taken = 0
        while True:
            batch = await self.follow_up_once()
            taken += batch
            sent = await self.dispatcher.run_until_idle() if self.dispatcher is not None else 0
            if batch == 0 and sent == 0:
                return taken

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow_up_loop(stop), name="follow-up-loop")
            tasks.create_task(self._prune_loop(stop), name="timeline-prune")
            if self.dispatcher is not None:
                tasks.create_task(self.dispatcher.run(stop), name="webhooks")
        await self.close()

    async def close(self) -> None:
        """Release the webhook sender's HTTP session (again: no harm)."""
        if self.notifier is not None:
            await self.notifier.close()

    async def _follow_up_loop(self, stop: asyncio.Event) -> None:
        poll_s = self.settings.webhooks.poll_interval_s
        while not stop.is_set():
            try:
                taken = await self.follow_up_once()
            except Exception as exc:  # the store: reported, retried after a backoff
                await self.guard.failed(exc)
                continue
            self.guard.worked()
            if taken < FOLLOW_UP_BATCH:
                await self._idle(stop, poll_s, wake=self._wake)

    async def _prune_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.prune()
            except Exception as exc:
                log.warning("timeline.prune_failed", error=str(exc))
            await self._idle(stop, self.settings.timeline.prune_interval_s, wake=None)

    async def _idle(
        self, stop: asyncio.Event, seconds: float, *, wake: asyncio.Event | None = None
    ) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.sleep(seconds))]
        if wake is not None:
            wake.clear()
            waits.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await waiting
