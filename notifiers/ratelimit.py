"""Rate limits per provider, in front of every send (each retry included).

- `SendWindow`: a hard cap: at most `limit` sends start in ANY window of `window_s` seconds
  (`messages_per_second: 5` -> 5 in every second, however the seconds are cut; 0.5 -> 1 in
  every 2 s). It starts as if the window before it had been used up, so a process restarted
  right after another one's burst still holds the cap. This is what the daemon uses.
- `TokenBucket`: at most `rate_per_s` a second on average, `burst` at once (it starts full,
  so over its first second it lets through up to `burst + rate_per_s`).

`acquire()` waits (with the injected `sleep`) until a send may start; waiters are served one at
a time, in arrival order. The clock and the sleep are injected, so a test drives time by hand.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from notifiers.base import Notifier, OutboundSms, SendResult

__all__ = ["Limiter", "RateLimitedNotifier", "SendWindow", "TokenBucket"]

_EPSILON = 1e-9


class TokenBucket:
    def __init__(
        self,
        rate_per_s: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not (math.isfinite(rate_per_s) and rate_per_s > 0):
            raise ValueError(f"rate_per_s must be > 0, not {rate_per_s!r}")
        if not (math.isfinite(burst) and burst >= 1):
            raise ValueError(f"burst must be >= 1, not {burst!r}")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._lock = asyncio.Lock()

    @property
    def tokens(self) -> float:
        """Tokens available now (after refilling for the time passed)."""
        self._refill()
        return self._tokens

    async def acquire(self, cost: float = 1.0) -> None:
        """Take `cost` tokens, waiting until they are there."""
        if not 0 < cost <= self.burst:
            raise ValueError(f"cost must be > 0 and <= burst ({self.burst}), not {cost!r}")
        async with self._lock:
            self._refill()
            while self._tokens < cost - _EPSILON:  # float refills may fall short by 1e-16
                await self._sleep((cost - self._tokens) / self.rate_per_s)
                self._refill()
            self._tokens -= cost

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate_per_s)


class Limiter(Protocol):
    async def acquire(self) -> None:
        """Wait until one more send may start."""


class SendWindow:
    """At most `limit` starts in any `window_s` seconds, from the rate of a provider's config:
    `floor(rate)` a second for a rate of 1 or more, else one every `1 / rate` seconds."""

    def __init__(
        self,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        full_at_start: bool = True,
    ) -> None:
        if not (math.isfinite(rate_per_s) and rate_per_s > 0):
            raise ValueError(f"rate_per_s must be > 0, not {rate_per_s!r}")
        self.limit = max(1, math.floor(rate_per_s))
        self.window_s = 1.0 if rate_per_s >= 1 else 1.0 / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque(maxlen=self.limit)
        if full_at_start:  # the last process may have sent `limit` just before we started
            self._starts.extend([clock()] * self.limit)
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a send may start. `sleep` is called at most once and must not return
        before the delay it is given has passed (the start is counted at its end)."""
        async with self._lock:
            start = self._clock()
            if len(self._starts) == self.limit:
                free_at = self._starts[0] + self.window_s
                if start < free_at:
                    await self._sleep(free_at - start)
                    start = max(free_at, self._clock())
            self._starts.append(start)


class RateLimitedNotifier:
    """A notifier whose every send (each retry included) first waits for `bucket`."""

    def __init__(self, inner: Notifier, bucket: Limiter) -> None:
        self.inner = inner
        self.bucket = bucket
        self.name = inner.name

    async def send(self, message: OutboundSms) -> SendResult:
        await self.bucket.acquire()
        return await self.inner.send(message)

    async def close(self) -> None:
        await self.inner.close()
