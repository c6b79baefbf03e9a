"""Pacing of a campaign's calls: how many are up at once, and how fast they start.

`CallPacer` hands out one slot per call. A slot is granted when both hold:

- **Concurrency**: fewer than `max_concurrent` slots are held. A slot is held from `acquire()`
  until `release()` (the end of the call), including its wait for a CPS turn, and `in_flight`
  counts it all that time. Waiters are served first come, first served.
- **Calls per second**: call starts are spaced at least `1 / max_calls_per_second` apart, a
  token bucket holding a single token: idle time earns no burst, so the cap holds over every
  window, however short (`math.inf` lifts the cap). A caller reserves its start time when it
  asks for its turn, so waiters get distinct start times in order; a turn is also never
  granted sooner than the interval after the previous turn was actually granted (a late
  wake-up of one waiter does not bunch it with the next).

`acquire()` takes both; a caller with work to do between the two (the attempt row is written
before the Originate) calls `take_slot()`, then `turn()` right before the call starts, so the
starts as the PBX sees them keep the spacing.

`set_max_concurrent(n)` changes the cap at run time (a VIP campaign follows the number of free
agents): lowering it never cancels a call in flight, new starts just wait until enough have
ended; raising it wakes waiters at once. A waiter cancelled while waiting (for a slot or for its
turn) holds nothing afterwards; its reserved turn is given back when no later one was reserved,
else it stays as a gap.

The clock and the sleep are injected (`time.monotonic` and `asyncio.sleep` by default), so tests
run in virtual time. `sleep` is called once per start that waits (twice when the turn before
was granted late), and must return no earlier than the delay it is given, on the injected
clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

from dialer.clock import Sleep

__all__ = ["CallPacer"]


class CallPacer:
    """Concurrency cap and calls-per-second cap for one campaign's call starts."""

    def __init__(
        self,
        max_calls_per_second: float,
        max_concurrent: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if math.isnan(max_calls_per_second) or max_calls_per_second <= 0:
            raise ValueError(f"max_calls_per_second must be > 0, got {max_calls_per_second}")
        self._interval_s = 1.0 / max_calls_per_second
        self._max_calls_per_second = max_calls_per_second
        self._max_concurrent = _checked_cap(max_concurrent)
        self._clock = clock
        self._sleep = sleep
        self._in_flight = 0
        self._next_start = -math.inf  # on the clock: the earliest time the next call may start
        self._last_granted = -math.inf  # on the clock: when the last turn was actually granted
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_flight(self) -> int:
        """Slots held: calls up, plus callers granted a slot and waiting for their CPS turn."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Callers waiting for a concurrency slot."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    @property
    def max_concurrent(self) -> int:
        return self._max_concurrent

    @property
    def max_calls_per_second(self) -> float:
        return self._max_calls_per_second

    def set_max_concurrent(self, max_concurrent: int) -> None:
        """Change the cap (0 stops new starts). Calls in flight are never cut; waiters that now
        fit are woken at once."""
        self._max_concurrent = _checked_cap(max_concurrent)
        self._wake_waiters()

    def set_max_calls_per_second(self, max_calls_per_second: float) -> None:
        """Change the start rate (a reloaded config); the next start keeps the new spacing."""
        if math.isnan(max_calls_per_second) or max_calls_per_second <= 0:
            raise ValueError(f"max_calls_per_second must be > 0, got {max_calls_per_second}")
        self._interval_s = 1.0 / max_calls_per_second
        self._max_calls_per_second = max_calls_per_second

    async def acquire(self) -> None:
        """Wait for a concurrency slot, then for this call's CPS turn; pair with `release()`."""
        await self.take_slot()
        try:
            await self.turn()
        except BaseException:
            self.release()
            raise

    async def take_slot(self) -> None:
        """Wait for a concurrency slot only; pair with `release()`, and call `turn()` right
        before the call starts."""
        await self._take_slot()

    async def turn(self) -> None:
        """Wait for this call's CPS turn (the slot is kept when cancelled)."""
        await self._wait_for_turn()

    def release(self) -> None:
        """The call ended: free its slot for the next waiter."""
        if self._in_flight == 0:
            raise RuntimeError("release() without a matching acquire()")
        self._in_flight -= 1
        self._wake_waiters()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """`async with pacer.slot():` place the call inside; the slot is freed on the way out."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def _take_slot(self) -> None:
        if not self._waiters and self._in_flight < self._max_concurrent:
            self._in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # `_wake_waiters` counts the slot as ours before it sets the result
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted, but cancelled before we could use it: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def _wake_waiters(self) -> None:
        while self._waiters and self._in_flight < self._max_concurrent:
            waiter = self._waiters.popleft()
            if waiter.done():  # cancelled while queued
                continue
            self._in_flight += 1
            waiter.set_result(None)

    async def _wait_for_turn(self) -> None:
        now = self._clock()
        reserved_before = self._next_start
        start_at = max(now, reserved_before)
        self._next_start = start_at + self._interval_s
        try:
            # Twice at most: once to the reserved turn, once more when the turn before this
            # one was granted late (a clock that a test does not move cannot loop here).
            for _ in range(2):
                wait_s = max(start_at, self._last_granted + self._interval_s) - now
                if wait_s <= 0:
                    break
                await self._sleep(wait_s)
                now = self._clock()
        except BaseException:
            if self._next_start == start_at + self._interval_s:  # nobody reserved a later turn
                self._next_start = reserved_before
            raise
        self._last_granted = now
        self._next_start = max(self._next_start, now + self._interval_s)


def _checked_cap(max_concurrent: int) -> int:
    if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
        raise TypeError(f"max_concurrent must be an int, got {max_concurrent!r}")
    if max_concurrent < 0:
        raise ValueError(f"max_concurrent must be >= 0, got {max_concurrent}")
    return max_concurrent
