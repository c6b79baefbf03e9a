"""The timeline entries of outbox rows (SMS and webhooks): sent, retried, dead, delivered.

Called by `dialer.store.outbox` in the transaction of the change they record."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.messaging.ports import MessageOutcome
from dialer.store.schema import UtcDateTime, outbound_messages, timeline
from dialer.timeline import NewEntry

__all__ = ["message_entry", "record_outcomes_on_timeline"]

_m = outbound_messages.c
_KINDS = {
    ("sms", "sent"): "sms_sent",
    ("sms", "retry"): "sms_retry",
    ("sms", "hold"): "sms_held",
    ("sms", "dead"): "sms_dead",
    ("webhook", "sent"): "reported",
    ("webhook", "retry"): "webhook_retry",
    ("webhook", "hold"): "webhook_retry",  # no daily limit holds a webhook: never written
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


@functools.cache
def _from_outbox(dialect: str, kind: str) -> Any:
    """INSERT INTO timeline ... SELECT ... FROM outbound_messages WHERE id = :e_id: an entry
    about one message made by the database from its row (no read back, no Python per row)."""
    json_object = sa.func.jsonb_build_object if dialect == "postgresql" else sa.func.json_object
    webhook = _m.channel == "webhook"
    detail = json_object(
        sa.case((webhook, "event"), else_="stage"),
        sa.func.replace(_m.stage, "webhook:", ""),
        "message_id",
        _m.id,
    )
    followed = sa.case((webhook, sa.null()), else_=sa.true()) if kind == "dead" else sa.null()
    columns = ["phone", "at", "kind", "reason", "until", "order_id", "detail", "follow_up"]
    values = sa.select(
        _m.phone,
        sa.bindparam("e_at", type_=UtcDateTime()),
        sa.case((webhook, _KINDS[("webhook", kind)]), else_=_KINDS[("sms", kind)]),
        sa.bindparam("e_reason", type_=sa.Text()),
        sa.bindparam("e_until", type_=UtcDateTime()),
        _m.order_id,
        detail,
        followed,
    ).where(_m.id == sa.bindparam("e_id", type_=sa.Integer()))
    return timeline.insert().from_select(columns, values)


def _params(outcome: MessageOutcome) -> dict[str, Any]:
    reason = outcome.provider if outcome.kind == "sent" else outcome.error
    until = outcome.at if outcome.kind in ("retry", "hold") else None
    return {"e_id": outcome.message_id, "e_at": outcome.now, "e_reason": reason, "e_until": until}


async def record_outcomes_on_timeline(
    conn: AsyncConnection, outcomes: Sequence[MessageOutcome]
) -> None:
    """The outcomes on the timeline of their numbers: one INSERT ... SELECT (executemany) per
    kind of outcome, in the caller's transaction."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.kind, []).append(_params(outcome))
    for kind, params in by_kind.items():
        await conn.execute(_from_outbox(conn.dialect.name, kind), params)
