"""In-process retries of a send: tenacity, bounded by attempts and by time, sleep injected.

What to retry is decided by one classifier function of the exception (as stamina does):
`False` means do not retry, `True` retry after the usual backoff, a number retry but wait at
least that many seconds (a provider's Retry-After). The default, `classify_error`, retries
`TransientError` only, and honours its `retry_after_s`.

The wait before try n+1 is full-jitter exponential backoff, uniform in
[0, min(max_wait_s, initial_wait_s * 2**(n-1))], raised to the Retry-After when there is one.
The retries stop, and the last error is re-raised as it is (`TransientError` with its
`retry_after_s`, for the store to reschedule), when any of these holds:

- `attempts` tries were made;
- the next wait would end past `max_time_s` since the first try;
- the provider asks for a wait longer than `max_wait_s` (it is then the store's to wait).

The first try runs outside tenacity (a send that passes costs one call, nothing more); tenacity
takes over from the first failure it may retry.

Tests pass `sleep=` (a recording coroutine) and `clock=`, so no test waits through a backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypedDict, Unpack

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_random_exponential

from notifiers.base import Notifier, OutboundSms, SendResult
from notifiers.errors import TransientError

__all__ = [
    "Classifier",
    "RetryOptions",
    "RetryingNotifier",
    "classify_error",
    "classify_error_unless_ambiguous",
    "send_with_retry",
]

# exception -> False (give up), True (retry after the backoff) or seconds (retry, waiting >= that)
Classifier = Callable[[BaseException], bool | float]
# (the error, the number of the try that failed, the seconds about to be waited)
RetryHook = Callable[[BaseException, int, float], None]
Sleep = Callable[[float], Awaitable[object]]


def classify_error(exc: BaseException) -> bool | float:
    """Retry `TransientError`, waiting at least its `retry_after_s`; nothing else."""
    if isinstance(exc, TransientError):
        return exc.retry_after_s if exc.retry_after_s is not None else True
    return False


def classify_error_unless_ambiguous(exc: BaseException) -> bool | float:
    """As `classify_error`, but never retry what may have been sent (no duplicates in-process)."""
    if isinstance(exc, TransientError) and exc.ambiguous:
        return False
    return classify_error(exc)


def _decision(classify: Classifier, exc: BaseException) -> tuple[bool, float]:
    """(retry?, the least wait it asks for)"""
    decision = classify(exc)
    if isinstance(decision, bool):
        return decision, 0.0
    return True, max(0.0, float(decision))


class _stop_when_out_of_time(stop_base):
    """Stop when the coming wait would end past `max_time_s` since `started`."""

    def __init__(self, max_time_s: float, started: float, clock: Callable[[], float]) -> None:
        self.max_time_s = max_time_s
        self.started = started
        self.clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        elapsed = self.clock() - self.started
        return elapsed + retry_state.upcoming_sleep > self.max_time_s


class _stop_when_wait_too_long(stop_base):
    """Stop when the provider asks for a wait longer than `max_wait_s`."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.upcoming_sleep > self.max_wait_s


async def send_with_retry(
    notifier: Notifier,
    message: OutboundSms,
    *,
    attempts: int = 3,
    max_time_s: float = 30.0,
    initial_wait_s: float = 0.5,
    max_wait_s: float = 10.0,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    classify: Classifier = classify_error,
    on_retry: RetryHook | None = None,
) -> SendResult:
    """`notifier.send(message)`, retried as the module docstring says; re-raises the last
    error.

    The first try is made directly: most sends pass, and building tenacity's machinery for each
    of them cost as much CPU as a third of the provider call. Only a first failure that the
    classifier retries enters tenacity, which then sees that failure as its first attempt (the
    same stop, wait and `on_retry` decisions as if it had made the try itself)."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, not {attempts!r}")
    if initial_wait_s < 0 or max_wait_s < 0 or max_time_s < 0:
        raise ValueError("waits and max_time_s must be >= 0")
    started = clock()
    try:
        return await notifier.send(message)
    except Exception as exc:
        if not _decision(classify, exc)[0]:
            raise
        first_error = exc
    retrying = _retrying(
        started=started,
        attempts=attempts,
        max_time_s=max_time_s,
        initial_wait_s=initial_wait_s,
        max_wait_s=max_wait_s,
        sleep=sleep,
        clock=clock,
        classify=classify,
        on_retry=on_retry,
    )
    async for attempt in retrying:
        with attempt:
            if attempt.retry_state.attempt_number == 1:
                raise first_error  # the try already made, handed to tenacity as its first
            return await notifier.send(message)
    raise AssertionError("unreachable: tenacity returns the result or re-raises the error")


def _retrying(
    *,
    started: float,
    attempts: int,
    max_time_s: float,
    initial_wait_s: float,
    max_wait_s: float,
    sleep: Sleep,
    clock: Callable[[], float],
    classify: Classifier,
    on_retry: RetryHook | None,
) -> AsyncRetrying:
    """Tenacity's loop for one message whose first try began at `started` (by `clock`)."""
    backoff = wait_random_exponential(multiplier=initial_wait_s, max=max_wait_s)

    def wait(retry_state: RetryCallState) -> float:
        assert retry_state.outcome is not None
        error = retry_state.outcome.exception()
        least = _decision(classify, error)[1] if error is not None else 0.0
        return max(backoff(retry_state), least)

    def should_retry(exc: BaseException) -> bool:
        return _decision(classify, exc)[0]

    async def before_sleep(retry_state: RetryCallState) -> None:
        if on_retry is not None and retry_state.outcome is not None:
            error = retry_state.outcome.exception()
            if error is not None:
                on_retry(error, retry_state.attempt_number, retry_state.upcoming_sleep)

    return AsyncRetrying(
        sleep=sleep,  # type: ignore[arg-type]  # any awaitable-returning sleep works
        stop=(
            stop_after_attempt(attempts)
            | _stop_when_out_of_time(max_time_s, started, clock)
            | _stop_when_wait_too_long(max_wait_s)
        ),
        wait=wait,
        retry=retry_if_exception(should_retry),
        before_sleep=before_sleep,
        reraise=True,
    )


class RetryOptions(TypedDict, total=False):
    """The keyword arguments of `send_with_retry`, kept by `RetryingNotifier`."""

    attempts: int
    max_time_s: float
    initial_wait_s: float
    max_wait_s: float
    sleep: Sleep
    clock: Callable[[], float]
    classify: Classifier
    on_retry: RetryHook | None


class RetryingNotifier:
    """A notifier whose `send` is `send_with_retry(inner, ...)` with these settings."""

    def __init__(self, inner: Notifier, **options: Unpack[RetryOptions]) -> None:
        self.inner = inner
        self.name = inner.name
        self.options = options

    async def send(self, message: OutboundSms) -> SendResult:
        return await send_with_retry(self.inner, message, **self.options)

    async def close(self) -> None:
        await self.inner.close()
