"""The SMS component: intake, dispatcher and callbacks wired from the settings; its CLI.

`build_notifier(notifications)` builds the provider stack, inside the running loop (Twilio's
session is bound to it)::

    Fallback(                                  only when `fallback` is configured
      Retrying(RateLimited(primary,  bucket)), in_process_attempts within in_process_max_s
      Retrying(RateLimited(fallback, bucket)))

Each provider has its own token bucket (`messages_per_second`). `sleep` and `clock` are
injectable, so tests never wait through a backoff or a rate limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from dialer import outbox_store
from dialer.config import (
    HttpProvider,
    Notifications,
    OutboxProvider,
    Provider,
    Settings,
    TwilioProvider,
)
from dialer.dispatcher import Dispatcher, RetryPolicy
from dialer.intake import Intake
from dialer.logs import get_logger, mask_phone
from dialer.metrics import Metrics
from dialer.sms_api import WebApplication, add_sms_routes
from dialer.store import Store
from notifiers import (
    FallbackNotifier,
    HttpGatewayNotifier,
    Notifier,
    OutboundSms,
    OutboxNotifier,
    RateLimitedNotifier,
    RetryingNotifier,
    SendResult,
    TokenBucket,
    TwilioNotifier,
)

if TYPE_CHECKING:
    from dialer.app import Component, Resources

__all__ = ["SmsComponent", "build_notifier", "make_sms_component", "print_dead", "replay"]

log = get_logger(__name__)

Sleep = Callable[[float], Awaitable[object]]


async def _provider(name: str, provider: Provider) -> Notifier:
    if isinstance(provider, OutboxProvider):
        return OutboxNotifier(provider.path, name=name)
    if isinstance(provider, TwilioProvider):
        return TwilioNotifier(
            account_sid=provider.account_sid,
            auth_token=provider.auth_token.get_secret_value(),
            from_number=provider.from_number,
            messaging_service_sid=provider.messaging_service_sid,
            base_url=provider.base_url,
            timeout_s=provider.timeout_s,
            status_callback_url=provider.status_callback_url,
            name=name,
        )
    assert isinstance(provider, HttpProvider)
    auth = provider.auth_header.get_secret_value() if provider.auth_header else None
    return HttpGatewayNotifier(
        url=provider.url,
        method=provider.method,
        body_format=provider.body_format,
        body=provider.body,
        headers=dict(provider.headers),
        auth_header=auth,
        auth_header_name=provider.auth_header_name,
        success_statuses=provider.success_statuses,
        permanent_statuses=provider.permanent_statuses,
        transient_statuses=provider.transient_statuses,
        timeout_s=provider.timeout_s,
        name=name,
    )


class TimedNotifier:
    """A provider whose every call is timed into `outreach_sms_provider_latency_seconds`."""

    def __init__(
        self, inner: Notifier, metrics: Metrics, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._latency = metrics.sms_provider_latency.labels(provider=inner.name)
        self._clock = clock

    async def send(self, message: OutboundSms) -> SendResult:
        started = self._clock()
        try:
            return await self.inner.send(message)
        finally:
            self._latency.observe(max(0.0, self._clock() - started))

    async def close(self) -> None:
        await self.inner.close()


async def build_notifier(
    notifications: Notifications,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    metrics: Metrics | None = None,
) -> Notifier:
    """The configured provider stack (see the module docstring). Call inside the loop."""
    retry = notifications.retry
    timed = metrics or Metrics()

    async def layer(name: str) -> Notifier:
        provider = notifications.providers[name]
        rate = provider.messages_per_second
        bucket = TokenBucket(rate, max(1.0, rate), clock=clock, sleep=sleep)
        return RetryingNotifier(
            RateLimitedNotifier(TimedNotifier(await _provider(name, provider), timed), bucket),
            attempts=retry.in_process_attempts,
            max_time_s=retry.in_process_max_s,
            initial_wait_s=min(0.5, retry.in_process_max_s),
            max_wait_s=min(10.0, retry.in_process_max_s),
            sleep=sleep,
            clock=clock,
        )

    primary = await layer(notifications.primary)
    if notifications.fallback is None:
        return primary
    try:
        return FallbackNotifier(primary, await layer(notifications.fallback))
    except BaseException:
        await primary.close()
        raise


def status_callback_url(settings: Settings) -> str | None:
    """Where Twilio posts delivery reports (None: no Twilio provider asks for them)."""
    for provider in settings.notifications.providers.values():
        if isinstance(provider, TwilioProvider) and provider.status_callback_url:
            return provider.status_callback_url
    return None


def dispatcher_for(
    settings: Settings,
    store: Store,
    notifier: Notifier,
    *,
    now: Callable[[], datetime],
    metrics: Metrics | None = None,
) -> Dispatcher:
    notifications = settings.notifications
    return Dispatcher(
        store,
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
    )


class SmsComponent:
    """POST /v1/events and the SMS routes; the dispatcher as its long-running task."""

    name = "sms"

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        now: Callable[[], datetime],
        sleep: Sleep = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.now = now
        self.sleep = sleep
        self.metrics = metrics or Metrics()
        self.dispatcher: Dispatcher | None = None
        self.intake = Intake(settings, store, now=now, on_queued=self.wake, metrics=self.metrics)

    def wake(self) -> None:
        """Something was queued or replayed: the dispatcher looks now."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def add_routes(self, app: WebApplication) -> None:
        add_sms_routes(app, self)

    async def reload(self, settings: Settings) -> dict[str, list[str]]:
        """New stages, templates, quiet hours: for events accepted from now on."""
        before = self.settings.notifications
        after = settings.notifications
        self.settings = settings
        self.intake.reconfigure(settings)
        changed = [
            name
            for name in sorted({*before.stages, *after.stages})
            if before.stages.get(name) != after.stages.get(name)
        ]
        return {"sms_stages_changed": changed}

    async def run(self, stop: asyncio.Event) -> None:
        notifier = await build_notifier(
            self.settings.notifications, sleep=self.sleep, metrics=self.metrics
        )
        try:
            self.dispatcher = dispatcher_for(
                self.settings, self.store, notifier, now=self.now, metrics=self.metrics
            )
            await self.dispatcher.run(stop)
        finally:
            await notifier.close()


def make_sms_component(resources: Resources) -> Component:
    return SmsComponent(
        resources.settings, resources.store, now=resources.now, metrics=resources.metrics
    )


# --------------------------------------------------------------------------- CLI


async def print_dead(settings: Settings) -> int:
    store = await Store.open(settings.store.async_url)
    try:
        dead = await outbox_store.list_dead(store)
    finally:
        await store.close()
    if not dead:
        print("no dead messages")
        return 0
    print(f"{'ID':>6}  {'ORDER':<16} {'STAGE':<18} {'PHONE':<16} {'WHEN (UTC)':<19}  REASON")
    for message in dead:
        when = message.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        code = f" [{message.error_code}]" if message.error_code else ""
        print(
            f"{message.id:>6}  {message.order_id:<16} {message.stage:<18} "
            f"{mask_phone(message.phone):<16} {when:<19}  {message.last_error or ''}{code}"
        )
    return 0


async def replay(settings: Settings, message_id: int, *, now: datetime) -> bool:
    store = await Store.open(settings.store.async_url)
    try:
        return await outbox_store.replay_dead(store, message_id, now=now)
    finally:
        await store.close()
