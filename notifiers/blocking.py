"""Blocking SDKs from asyncio: a bounded thread pool, and no second send of what may be sent.

`BlockingCalls` runs a blocking function in a `ThreadPoolExecutor(max_workers=N)` that it owns,
never on the event loop: at most N provider requests are on the wire at once, whatever the number
of coroutines sending. `close()` refuses new calls; calls already running finish by themselves
(each is bounded by the SDK's own connect and read time-outs).

`AmbiguousSends` and `send_at_most_once` keep a provider whose send is not idempotent (Aliyun and
Tencent Cloud SendSms have no idempotency key) from sending a message twice after a failure that
may have reached it (a time-out or a reset after the request was written, a cancelled send):

- such a failure is remembered, by message id, with the provider's calendar day;
- the next send of the same message id first asks the provider (`lookup`) whether a message with
  our id was accepted that day; if it was, that answer is returned and nothing is sent;
- when the lookup cannot answer (the provider is down), the send fails again as transient and
  ambiguous, and nothing is sent either.

The window that remains: a lookup sees only what the provider has already recorded; a message
accepted a moment ago may not be listed yet (the provider's own indexing delay), and then it is
sent again. The memory is per notifier and per process: a daemon restart forgets it, so the store
should keep `ambiguous` outcomes and call `lookup` itself before resending after a restart.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import ParamSpec, TypeVar

import requests
import urllib3

from notifiers.base import OutboundSms, SendResult
from notifiers.errors import NotifyError, TransientError

__all__ = [
    "AmbiguousSends",
    "BlockingCalls",
    "request_never_left",
    "send_at_most_once",
    "transport_cause",
]

P = ParamSpec("P")
T = TypeVar("T")

Lookup = Callable[[OutboundSms, date], Awaitable[SendResult | None]]
Send = Callable[[OutboundSms], Awaitable[SendResult]]


class BlockingCalls:
    """A bounded pool of threads for one notifier's blocking SDK calls."""

    def __init__(self, max_workers: int, *, thread_name_prefix: str) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, not {max_workers!r}")
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix=thread_name_prefix)
        self._closed = False
        self._counts = threading.Lock()
        self._running = 0
        self._queued = 0

    @property
    def running(self) -> int:
        """Calls running in a pool thread now (at most `max_workers`)."""
        return self._running

    @property
    def queued(self) -> int:
        """Calls waiting for a free thread (a saturated pool: the provider is slow)."""
        return self._queued

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)` in the pool; the coroutine waits without blocking the
        loop. Cancelling it does not stop the thread: the request may still go out."""
        if self._closed:
            raise RuntimeError("the notifier is closed")
        with self._counts:
            self._queued += 1
        job = self._pool.submit(functools.partial(self._counted, function, *args, **kwargs))
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            if job.cancel():  # it never started: it will never count itself out
                with self._counts:
                    self._queued -= 1
            raise

    def _counted(self, function: Callable[..., T], *args: object, **kwargs: object) -> T:
        with self._counts:
            self._queued -= 1
            self._running += 1
        try:
            return function(*args, **kwargs)
        finally:
            with self._counts:
                self._running -= 1

    def close(self) -> None:
        """Refuse new calls and drop queued ones; running calls end on their SDK time-out."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def closed(self) -> bool:
        return self._closed


class AmbiguousSends:
    """Message ids whose last send may have reached the provider, with the days they were tried
    (the provider's calendar day, where its lookup is indexed). Bounded: the oldest are dropped
    past `max_messages`."""

    def __init__(self, max_messages: int = 10_000) -> None:
        self.max_messages = max_messages
        self._days: OrderedDict[str, list[date]] = OrderedDict()

    def remember(self, message_id: str, day: date) -> None:
        days = self._days.pop(message_id, [])
        if day not in days:
            days.append(day)
        self._days[message_id] = days
        while len(self._days) > self.max_messages:
            self._days.popitem(last=False)

    def days(self, message_id: str) -> list[date]:
        return list(self._days.get(message_id, ()))

    def forget(self, message_id: str) -> None:
        self._days.pop(message_id, None)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._days

    def __len__(self) -> int:
        return len(self._days)


async def send_at_most_once(
    message: OutboundSms,
    *,
    send: Send,
    lookup: Lookup,
    ambiguous: AmbiguousSends,
    today: date,
    provider: str,
) -> SendResult:
    """`send(message)`, unless an earlier ambiguous send of this message id was accepted: then
    the provider's record of it (see the module docstring)."""
    for day in ambiguous.days(message.message_id):
        try:
            found = await lookup(message, day)
        except NotifyError as exc:
            raise TransientError(
                f"cannot tell whether {message.message_id} was already sent (an earlier try "
                f"failed ambiguously and the lookup failed: {exc.message}); not sending it again",
                code=exc.code,
                ambiguous=True,
                provider=provider,
            ) from exc
        if found is not None:
            ambiguous.forget(message.message_id)
            return found
    try:
        result = await send(message)
    except TransientError as exc:
        if exc.ambiguous:
            ambiguous.remember(message.message_id, today)
        raise
    except asyncio.CancelledError:
        ambiguous.remember(message.message_id, today)  # the thread may still send it
        raise
    ambiguous.forget(message.message_id)
    return result


def request_never_left(exc: BaseException) -> bool:
    """Whether a `requests` failure (both SDKs are built on requests) happened before the
    request was written: refused, unresolvable or timed out while connecting. A read time-out or
    a connection reset or abort afterwards may have reached the provider."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
        return isinstance(
            reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
        )
    return False


def transport_cause(exc: BaseException) -> BaseException | None:
    """The `requests` exception an SDK wrapped (as `__cause__` or `__context__`), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, requests.exceptions.RequestException | OSError):
            return current
        seen.add(id(current))
        inner = getattr(current, "inner_exception", None)
        current = (
            inner
            if isinstance(inner, BaseException)
            else (current.__cause__ or current.__context__)
        )
    return None
