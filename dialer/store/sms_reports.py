"""Read-only SMS queries for supervisors and monitoring: the funnel (messages of each order
stage by status), the backlog (for the outbox gauges), dead letters, one message's row. The
funnel and the backlog count SMS only; the dead letters include webhooks to the order system
(rows of channel `webhook`, stage `webhook:<event>:<subject>`), replayed the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dialer.store.engine import Store, reading
from dialer.store.schema import MESSAGE_STATUSES, outbound_messages

__all__ = [
    "Backlog",
    "DeadMessage",
    "HeldMessage",
    "StageCounts",
    "backlog",
    "funnel",
    "list_dead",
    "list_held",
    "message_status",
]

_m = outbound_messages.c

StageCounts = dict[str, dict[str, int]]
"""stage -> status -> number of messages now in that status (every status of
`store.MESSAGE_STATUSES` present, 0 when none)."""


async def funnel(store: Store) -> StageCounts:
    """Messages by order stage and current status, one GROUP BY over the outbox."""
    query = (
        sa.select(_m.stage, _m.status, sa.func.count())
        .where(_m.channel == "sms")  # webhooks to the order system share the outbox
        .group_by(_m.stage, _m.status)
    )
    async with reading(store.engine) as conn:
        rows = (await conn.execute(query)).all()
    counts: StageCounts = {}
    for stage, status, count in rows:
        by_status = counts.setdefault(stage, dict.fromkeys(MESSAGE_STATUSES, 0))
        by_status[status] = int(count)
    return counts


@dataclass(frozen=True)
class DeadMessage:
    id: int
    order_id: str
    stage: str
    phone: str
    error_code: str | None
    last_error: str | None
    attempts: int
    updated_at: datetime


@dataclass(frozen=True)
class HeldMessage:
    id: int
    order_id: str
    stage: str
    phone: str
    held_until: datetime
    reason: str | None


@dataclass(frozen=True)
class Backlog:
    """What waits in the outbox: rows queued or sending, and how overdue the oldest due one is."""

    depth: int
    oldest_due_age_s: float


async def backlog(store: Store, *, now: datetime) -> Backlog:
    """Rows queued or sending, and now minus the oldest `next_attempt_at` already due."""
    waiting = _m.status.in_(["queued", "sending"])
    due = sa.and_(_m.status == "queued", _m.next_attempt_at <= now)
    query = sa.select(
        sa.func.count().filter(waiting),
        sa.func.min(_m.next_attempt_at).filter(due),
    ).where(_m.channel == "sms")
    async with reading(store.engine) as conn:
        depth, oldest = (await conn.execute(query)).one()
    age_s = (now - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(depth=int(depth or 0), oldest_due_age_s=max(0.0, age_s))


async def message_status(store: Store, message_id: int) -> Mapping[str, Any] | None:
    async with reading(store.engine) as conn:
        row = (
            await conn.execute(sa.select(outbound_messages).where(_m.id == message_id))
        ).one_or_none()
    return None if row is None else dict(row._mapping)


async def list_dead(store: Store, *, limit: int = 1000) -> list[DeadMessage]:
    async with reading(store.engine) as conn:
        rows = (
            await conn.execute(
                sa.select(
                    _m.id,
                    _m.order_id,
                    _m.stage,
                    _m.phone,
                    _m.error_code,
                    _m.last_error,
                    _m.attempts,
                    _m.updated_at,
                )
                .where(_m.status == "dead")
                .order_by(_m.updated_at.desc(), _m.id.desc())
                .limit(limit)
            )
        ).all()
    return [DeadMessage(*row) for row in rows]


async def list_held(store: Store, *, now: datetime, limit: int = 1000) -> list[HeldMessage]:
    """Messages the daily limit per number holds back now (queued, due at `held_until`),
    those released first."""
    query = (
        sa.select(_m.id, _m.order_id, _m.stage, _m.phone, _m.held_until, _m.last_error)
        .where(_m.status == "queued", _m.held_until > now)
        .order_by(_m.held_until, _m.id)
        .limit(limit)
    )
    async with reading(store.engine) as conn:
        rows = (await conn.execute(query)).all()
    return [HeldMessage(*row) for row in rows]
