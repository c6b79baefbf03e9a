"""Account-level throttling backs off every message of the provider, not only the one refused.

`AccountBackoffNotifier` remembers the latest `TransientError(scope="account")` that came with
a wait (`retry_after_s`: Aliyun `Throttling.User`, Tencent `RequestLimitExceeded`, a daily cap
of the account or app "until the next day"): until that moment, every send through this
provider fails at once with the same kind of error and the time left, without a request. The
layers around it decide what that means: `RetryingNotifier` waits a short pause out
in-process, and gives a long one back to the store; `FallbackNotifier` hands the message to the
fallback provider. A per-number flow control (`scope="message"`) only ever delays its own
message, and a throttling without a wait changes nothing here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from notifiers.base import Notifier, OutboundSms, SendResult
from notifiers.errors import TransientError

__all__ = ["AccountBackoffNotifier"]


class AccountBackoffNotifier:
    """A notifier that stops sending while its provider asked the whole account to wait."""

    def __init__(self, inner: Notifier, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.name = inner.name
        self._clock = clock
        self._until = float("-inf")
        self._code: int | str | None = None

    @property
    def backing_off_s(self) -> float:
        """Seconds left of the current backoff (0: sending)."""
        return max(0.0, self._until - self._clock())

    async def send(self, message: OutboundSms) -> SendResult:
        left_s = self.backing_off_s
        if left_s > 0:
            raise TransientError(
                f"{self.name} throttled the account; backing off {left_s:.1f} s more",
                code=self._code,
                retry_after_s=left_s,
                provider=self.name,
            )
        try:
            return await self.inner.send(message)
        except TransientError as exc:
            if exc.scope == "account" and exc.retry_after_s:
                until = self._clock() + exc.retry_after_s
                if until > self._until:
                    self._until, self._code = until, exc.code
            raise

    async def close(self) -> None:
        await self.inner.close()
