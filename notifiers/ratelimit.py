"""A token bucket per provider: at most `rate_per_s` messages a second, `burst` at once.

The bucket starts full. `acquire()` takes a token, waiting (with the injected `sleep`) until one
has been refilled; waiters are served one at a time, in arrival order. The clock and the sleep
are injected, so a test drives time by hand.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from notifiers.base import Notifier, OutboundSms, SendResult

__all__ = ["RateLimitedNotifier", "TokenBucket"]

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


class RateLimitedNotifier:
    """A notifier whose every send (each retry included) first takes a token from `bucket`."""

    def __init__(self, inner: Notifier, bucket: TokenBucket) -> None:
        self.inner = inner
        self.bucket = bucket
        self.name = inner.name

    async def send(self, message: OutboundSms) -> SendResult:
        await self.bucket.acquire()
        return await self.inner.send(message)

    async def close(self) -> None:
        await self.inner.close()
