"""SMS providers: the registry from a config `type` to its notifier, and the provider stack.

`PROVIDERS` maps each `type` of `notifications.providers` (`dialer.config.providers`) to the
factory of its notifier (`notifiers/`). To add a provider: its notifier module in `notifiers/`,
its config model in `dialer.config.providers`, and one entry here.

`build_notifier(notifications)` builds the provider stack, inside the running loop (Twilio's
session is bound to it)::

    Fallback(                                  only when `fallback` is configured
      Retrying(RateLimited(primary,  bucket)), in_process_attempts within in_process_max_s
      Retrying(RateLimited(fallback, bucket)))

Each provider has its own `SendWindow` (`messages_per_second`, a cap over every second, held
also right after a restart). `sleep` and `clock` are injectable, so tests never wait through a
backoff or a rate limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dialer.clock import Sleep
from dialer.config import (
    HttpProvider,
    Notifications,
    OutboxProvider,
    Provider,
    Settings,
    TwilioProvider,
)
from dialer.logs import get_logger
from dialer.metrics import Metrics
from notifiers import (
    FallbackNotifier,
    HttpGatewayNotifier,
    Notifier,
    OutboundSms,
    OutboxNotifier,
    RateLimitedNotifier,
    RetryingNotifier,
    SendResult,
    SendWindow,
    TwilioNotifier,
    twilio_delivery_failure_is_transient,
)

__all__ = ["PROVIDERS", "ProviderKind", "TimedNotifier", "build_notifier", "make_provider"]

log = get_logger(__name__)


def _outbox(name: str, provider: OutboxProvider) -> Notifier:
    return OutboxNotifier(provider.path, name=name)


def _twilio(name: str, provider: TwilioProvider) -> Notifier:
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


def _http(name: str, provider: HttpProvider) -> Notifier:
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


def _no_delivery_reports(_: str) -> bool:
    return False


@dataclass(frozen=True)
class ProviderKind:
    """What the daemon needs of a provider `type`: how to make its notifier (from its name in
    the config and its config model; called in the running loop), and which error codes of
    its delivery reports say "try again later" (the others: the message is dead)."""

    make: Callable[[str, Any], Notifier]
    delivery_failure_is_transient: Callable[[str], bool] = _no_delivery_reports


PROVIDERS: Mapping[str, ProviderKind] = {
    "outbox": ProviderKind(_outbox),
    "twilio": ProviderKind(_twilio, twilio_delivery_failure_is_transient),
    "http": ProviderKind(_http),
}
"""Config `type` -> what makes it work."""


def make_provider(name: str, provider: Provider) -> Notifier:
    """The notifier of one configured provider (its `type` picks the factory)."""
    return PROVIDERS[provider.type].make(name, provider)


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
        bucket = SendWindow(rate, clock=clock, sleep=sleep)
        return RetryingNotifier(
            RateLimitedNotifier(TimedNotifier(make_provider(name, provider), timed), bucket),
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
