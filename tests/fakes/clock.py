"""A clock moved by hand and a sleep that records its delays and moves that clock instead of
waiting: a backoff or a rate limit runs in no time, and the test reads what it would have slept."""

from __future__ import annotations


class FakeClock:
    """`clock()` returns the current fake time, in seconds; `advance(s)` moves it."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class RecordingSleep:
    """Stands in for `asyncio.sleep`: records each delay, advances `clock` by it (if given), and
    returns at once."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.delays_s: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays_s.append(delay_s)
        if self.clock is not None:
            self.clock.advance(delay_s)
