"""Login attempts, per client: a few wrong tokens are free, then each next try waits longer.

After `free_failures` wrong tokens from one client (its remote address), the client must wait
2 s before its next try, then 4 s after the next failure, 8 s... up to `max_delay_s` (15 min);
a try in the wait is refused (429 with Retry-After) without looking at the token, so it cannot
guess faster. A right token resets the client. Memory is bounded: at most `max_clients`
clients are remembered (the oldest forgotten first), and a client whose wait ended long ago
is forgotten.

Behind a reverse proxy every client has the proxy's address: they share one allowance (the
price of not trusting X-Forwarded-For, which any client can write).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dialer.clock import Clock

__all__ = ["LoginThrottle"]


@dataclass
class _Client:
    failures: int = 0
    blocked_until: datetime | None = None


@dataclass
class LoginThrottle:
    now: Clock
    free_failures: int = 5
    max_delay_s: float = 900.0
    max_clients: int = 10_000
    _clients: dict[str, _Client] = field(default_factory=dict)

    def retry_after_s(self, client: str) -> int:
        """Whole seconds `client` must wait before its next try; 0 when it may try now."""
        known = self._clients.get(client)
        if known is None or known.blocked_until is None:
            return 0
        left_s = (known.blocked_until - self.now()).total_seconds()
        return max(0, math.ceil(left_s))

    def failed(self, client: str) -> None:
        """A wrong token from `client`."""
        known = self._clients.pop(client, None) or _Client()
        known.failures += 1
        beyond = known.failures - self.free_failures + 1
        if beyond > 0:
            delay_s = min(2.0 ** min(beyond, 64), self.max_delay_s)
            known.blocked_until = self.now() + timedelta(seconds=delay_s)
        self._clients[client] = known  # last in the dict: the most recent
        self._forget_some()

    def succeeded(self, client: str) -> None:
        """The right token from `client`: it starts afresh."""
        self._clients.pop(client, None)

    def _forget_some(self) -> None:
        if len(self._clients) <= self.max_clients:
            return
        stale = self.now() - timedelta(seconds=self.max_delay_s)
        for client, known in list(self._clients.items()):
            if known.blocked_until is None or known.blocked_until < stale:
                del self._clients[client]
        while len(self._clients) > self.max_clients:
            del self._clients[next(iter(self._clients))]
