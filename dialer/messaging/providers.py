"""SMS providers: the registry from a config `type` to its notifier, and the provider stack.

`PROVIDERS` maps each `type` of `notifications.providers` (`dialer.config.providers`) to the
factory of its notifier (`notifiers/`). To add a provider: its notifier module in `notifiers/`,
its config model in `dialer.config.providers`, and one entry here.

`build_notifier(notifications)` builds the provider stack, inside the running loop (Twilio's
session is bound to it)::

    Fallback(                                  only when `fallback` is configured
      Retrying(AccountBackoff(RateLimited(primary,  bucket))),  in_process_attempts within
      Retrying(AccountBackoff(RateLimited(fallback, bucket))))  in_process_max_s

`AccountBackoff` (`notifiers.backoff`, for the kinds whose `account_backoff` is set: Aliyun and
Tencent): after the provider's account-level throttling with a wait (`Throttling.User`,
`RequestLimitExceeded`, an app's daily cap), every message through it waits or goes to the
fallback, not only the one refused. Twilio's 429 keeps delaying its own message only.

Each provider has its own `SendWindow` (`messages_per_second`, a cap over every second, held
also right after a restart). `sleep` and `clock` are injectable, so tests never wait through a
backoff or a rate limit.

`build_provider_stack` also returns the providers that can say whether they already took a
message (`SentLookup`: Aliyun's QuerySendDetails by OutId, Tencent's
PullSmsSendStatusByPhoneNumber by SessionContext), which the dispatcher asks before sending
again a message whose earlier send went unanswered. Twilio and the HTTP gateway cannot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dialer.clock import Sleep
from dialer.config import (
    AliyunProvider,
    HttpProvider,
    Notifications,
    OutboxProvider,
    Provider,
    Settings,
    TencentProvider,
    TwilioProvider,
)
from dialer.logs import get_logger
from dialer.messaging.lookups import SentLookup
from dialer.metrics import Metrics
from notifiers import (
    AccountBackoffNotifier,
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
    aliyun_delivery_failure_is_transient,
    tencent_delivery_failure_is_transient,
    twilio_delivery_failure_is_transient,
)

__all__ = [
    "PROVIDERS",
    "ProviderKind",
    "ProviderStack",
    "TimedNotifier",
    "build_notifier",
    "build_provider_stack",
    "make_provider",
]

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


def _aliyun(name: str, provider: AliyunProvider) -> Notifier:
    from notifiers import AliyunSmsNotifier  # the SDK loads only when one is configured

    return AliyunSmsNotifier(
        access_key_id=provider.access_key_id.get_secret_value(),
        access_key_secret=provider.access_key_secret.get_secret_value(),
        sign_name=provider.sign_name,
        region_id=provider.region,
        endpoint=provider.endpoint,
        protocol=provider.protocol,
        connect_timeout_s=provider.connect_timeout_s,
        read_timeout_s=provider.timeout_s,
        max_workers=provider.pool_size,
        max_param_chars=provider.max_param_chars,
        name=name,
    )


def _tencent(name: str, provider: TencentProvider) -> Notifier:
    from notifiers import TencentSmsNotifier  # the SDK loads only when one is configured

    return TencentSmsNotifier(
        secret_id=provider.secret_id.get_secret_value(),
        secret_key=provider.secret_key.get_secret_value(),
        sdk_app_id=provider.sdk_app_id,
        sign_name=provider.sign_name,
        region=provider.region,
        endpoint=provider.endpoint,
        protocol=provider.protocol,
        timeout_s=provider.timeout_s,
        max_workers=provider.pool_size,
        max_param_chars=provider.max_param_chars,
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
    account_backoff: bool = False
    """Its account-level throttling pauses every send through it (`notifiers.backoff`)."""


PROVIDERS: Mapping[str, ProviderKind] = {
    "outbox": ProviderKind(_outbox),
    "twilio": ProviderKind(_twilio, twilio_delivery_failure_is_transient),
    "http": ProviderKind(_http),
    "aliyun": ProviderKind(_aliyun, aliyun_delivery_failure_is_transient, account_backoff=True),
    "tencent": ProviderKind(_tencent, tencent_delivery_failure_is_transient, account_backoff=True),
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


@dataclass(frozen=True)
class ProviderStack:
    """The notifier the dispatcher sends through, and the providers of it that can look up
    what they took (primary first)."""

    notifier: Notifier
    lookups: tuple[SentLookup, ...]


async def build_notifier(
    notifications: Notifications,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    metrics: Metrics | None = None,
) -> Notifier:
    """The configured provider stack (see the module docstring). Call inside the loop."""
    stack = await build_provider_stack(notifications, sleep=sleep, clock=clock, metrics=metrics)
    return stack.notifier


async def build_provider_stack(
    notifications: Notifications,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    metrics: Metrics | None = None,
) -> ProviderStack:
    """The configured provider stack and its lookups. Call inside the loop."""
    retry = notifications.retry
    timed = metrics or Metrics()
    lookups: list[SentLookup] = []

    async def layer(name: str) -> Notifier:
        provider = notifications.providers[name]
        rate = provider.messages_per_second
        bucket = SendWindow(rate, clock=clock, sleep=sleep)
        sender = make_provider(name, provider)
        if isinstance(sender, SentLookup):
            lookups.append(sender)
        limited: Notifier = RateLimitedNotifier(TimedNotifier(sender, timed), bucket)
        if PROVIDERS[provider.type].account_backoff:
            limited = AccountBackoffNotifier(limited, clock=clock)
        return RetryingNotifier(
            limited,
            attempts=retry.in_process_attempts,
            max_time_s=retry.in_process_max_s,
            initial_wait_s=min(0.5, retry.in_process_max_s),
            max_wait_s=min(10.0, retry.in_process_max_s),
            sleep=sleep,
            clock=clock,
        )

    primary = await layer(notifications.primary)
    if notifications.fallback is None:
        return ProviderStack(primary, tuple(lookups))
    try:
        both = FallbackNotifier(primary, await layer(notifications.fallback))
    except BaseException:
        await primary.close()
        raise
    return ProviderStack(both, tuple(lookups))


def status_callback_url(settings: Settings) -> str | None:
    """Where Twilio posts delivery reports (None: no Twilio provider asks for them)."""
    for provider in settings.notifications.providers.values():
        if isinstance(provider, TwilioProvider) and provider.status_callback_url:
            return provider.status_callback_url
    return None
