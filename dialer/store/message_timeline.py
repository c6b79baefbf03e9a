"""The timeline entries of outbox rows (SMS and webhooks): sent, retried, dead, delivered.

Called by `dialer.store.outbox` in the transaction of the change they record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.messaging.ports import MessageOutcome
from dialer.store.schema import outbound_messages
from dialer.store.timeline import add_entries
from dialer.timeline import NewEntry

__all__ = ["message_entry", "record_outcomes_on_timeline"]

_m = outbound_messages.c
_ROWS = sa.select(_m.id, _m.phone, _m.order_id, _m.stage, _m.channel).where(
    _m.id.in_(sa.bindparam("ids", expanding=True))
)
_KINDS = {
    ("sms", "sent"): "sms_sent",
    ("sms", "retry"): "sms_retry",
    ("sms", "dead"): "sms_dead",
    ("webhook", "sent"): "reported",
    ("webhook", "retry"): "webhook_retry",
    ("webhook", "dead"): "webhook_dead",
}


def message_entry(row: Any, kind: str, now: datetime, **values: Any) -> NewEntry:
    """A timeline entry about the message of `row` (phone, order_id, stage, channel, id)."""
    webhook = row.channel == "webhook"
    return NewEntry(
        row.phone,
        now,
        _KINDS.get((row.channel, kind), kind),
        order_id=row.order_id,
        detail={
            "event" if webhook else "stage": row.stage.removeprefix("webhook:"),
            "message_id": row.id,
        },
        **values,
    )


def _outcome_entry(row: Any, outcome: MessageOutcome) -> NewEntry:
    if outcome.kind == "sent":
        return message_entry(row, "sent", outcome.now, reason=outcome.provider)
    if outcome.kind == "retry":
        return message_entry(row, "retry", outcome.now, reason=outcome.error, until=outcome.at)
    return message_entry(row, "dead", outcome.now, reason=outcome.error)


async def record_outcomes_on_timeline(
    conn: AsyncConnection, outcomes: Sequence[MessageOutcome]
) -> None:
    """The outcomes on the timeline of their numbers: one SELECT, one executemany."""
    ids = sorted({outcome.message_id for outcome in outcomes})
    rows = {row.id: row for row in await conn.execute(_ROWS, {"ids": ids})}
    await add_entries(
        conn,
        [_outcome_entry(rows[o.message_id], o) for o in outcomes if o.message_id in rows],
    )
