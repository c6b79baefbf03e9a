"""The daily limit per number: hold low-priority stages back rather than hit a provider's cap.

Aliyun and Tencent Cloud cap how many messages one number gets per day (by default, and per
console setting); a message past the cap fails with a flow-control error and waits anyway. The
daemon counts what it sent each number since the start of the day (`timezone`, Beijing for
both providers) and, before sending, holds a message whose stage may not use more:

- an urgent stage may use all of `limit`;
- any other stage only `limit - urgent_reserve`, so urgent messages still find room.

A held message of a non-urgent stage goes when the next day's quiet hours end, not at midnight.

One dispatcher sends to one number one message at a time while a limit is set (`NumberTurns`):
each counts what the one before it sent. Another worker's message in flight to the number counts
too when its id is lower (of two, the older goes first; never both held).

A held message is queued again, due at the start of the next day (never dropped: its age for
`max_age_s` counts from then), visible in `GET /v1/sms/held` and `outreach_sms_held_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dialer.config import QuietHours
from dialer.messaging.ports import ClaimedMessage, Outbox
from dialer.messaging.templates import quiet_hours_end

__all__ = ["DailyLimit", "Hold", "NumberTurns"]


@dataclass(frozen=True)
class Hold:
    """A message held back: until when, why (the reason first), and what its number had."""

    until: datetime
    why: str
    sent_today: int


@dataclass(frozen=True)
class DailyLimit:
    limit: int
    urgent_reserve: int
    timezone: str
    urgent_stages: frozenset[str]
    quiet_hours: QuietHours | None = None

    @classmethod
    def of(
        cls,
        limit: int,
        urgent_reserve: int,
        timezone: str,
        urgent_stages: Iterable[str],
        quiet_hours: QuietHours | None = None,
    ) -> DailyLimit:
        if not 0 <= urgent_reserve < limit:
            raise ValueError(f"urgent_reserve must be in [0, {limit}), not {urgent_reserve!r}")
        return cls(limit, urgent_reserve, timezone, frozenset(urgent_stages), quiet_hours)

    def allowed(self, stage: str) -> int:
        """Messages a number may have had today for a message of `stage` still to go."""
        if stage in self.urgent_stages:
            return self.limit
        return self.limit - self.urgent_reserve

    def day_start(self, now: datetime) -> datetime:
        """The start of `now`'s day, in UTC."""
        local = now.astimezone(ZoneInfo(self.timezone))
        start = datetime.combine(local.date(), datetime.min.time(), local.tzinfo)
        return start.astimezone(UTC)

    def next_day(self, now: datetime) -> datetime:
        """The start of the day after `now`'s, in UTC (a DST day is not 24 h long)."""
        zone = ZoneInfo(self.timezone)
        tomorrow = now.astimezone(zone).date() + timedelta(days=1)
        return datetime.combine(tomorrow, datetime.min.time(), zone).astimezone(UTC)

    async def hold(self, outbox: Outbox, message: ClaimedMessage, *, now: datetime) -> Hold | None:
        """The hold of `message`, or None when its number may still get it today."""
        allowed = self.allowed(message.stage)
        sent = await outbox.sent_today(message.phone, since=self.day_start(now), besides=message.id)
        if sent < allowed:
            return None
        until = self.next_day(now)
        if message.stage not in self.urgent_stages:
            until = quiet_hours_end(until, self.quiet_hours) or until
        why = (
            f"held: daily limit per number: {sent} sent today, {allowed} allowed for stage "
            f"{message.stage}; due {until.isoformat()}"
        )
        return Hold(until, why, sent)


@dataclass
class NumberTurns:
    """One message at a time per number: a lock per number, dropped when nobody waits."""

    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _users: dict[str, int] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def turn(self, phone: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(phone, asyncio.Lock())
        self._users[phone] = self._users.get(phone, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[phone] -= 1
            if not self._users[phone]:
                del self._users[phone], self._locks[phone]
