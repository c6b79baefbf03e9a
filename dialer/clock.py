"""Time, injected: the wall clock, and the waits that tests replace.

Every part of the daemon takes `now: Clock` and `sleep: Sleep` instead of reading the time or
sleeping itself, so tests run in virtual time (no test sleeps through a backoff or a window).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

__all__ = ["Clock", "Sleep", "sleep_unless_stopped", "utc_now"]

Clock = Callable[[], datetime]
"""The wall clock: an aware datetime (UTC) each call."""

Sleep = Callable[[float], Awaitable[object]]
"""Waits the given number of seconds (`asyncio.sleep`, or a test's stand-in)."""


def utc_now() -> datetime:
    """The real wall clock, in UTC."""
    return datetime.now(UTC)


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float, sleep: Sleep) -> None:
    """Wait `seconds` (with `sleep`), or less when `stop` is set meanwhile."""
    stopped = asyncio.ensure_future(stop.wait())
    slept = asyncio.ensure_future(sleep(seconds))
    try:
        await asyncio.wait([stopped, slept], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        slept.cancel()
