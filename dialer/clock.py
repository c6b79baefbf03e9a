"""Time, injected: the wall clock, and the waits that tests replace.

Every part of the daemon takes `now: Clock` and `sleep: Sleep` instead of reading the time or
sleeping itself, so tests run in virtual time (no test sleeps through a backoff or a window).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

__all__ = ["Clock", "Sleep", "utc_now"]

Clock = Callable[[], datetime]
"""The wall clock: an aware datetime (UTC) each call."""

Sleep = Callable[[float], Awaitable[object]]
"""Waits the given number of seconds (`asyncio.sleep`, or a test's stand-in)."""


def utc_now() -> datetime:
    """The real wall clock, in UTC."""
    return datetime.now(UTC)
