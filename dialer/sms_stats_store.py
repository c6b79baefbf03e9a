"""Read-only SMS queries for supervisors: how many messages of each order stage are in each
status (the funnel of the status page and `GET /v1/sms/funnel`)."""

from __future__ import annotations

import sqlalchemy as sa

from dialer.store import MESSAGE_STATUSES, Store, outbound_messages

__all__ = ["StageCounts", "funnel"]

_m = outbound_messages.c

StageCounts = dict[str, dict[str, int]]
"""stage -> status -> number of messages now in that status (every status of
`store.MESSAGE_STATUSES` present, 0 when none)."""


async def funnel(store: Store) -> StageCounts:
    """Messages by order stage and current status, one GROUP BY over the outbox."""
    query = sa.select(_m.stage, _m.status, sa.func.count()).group_by(_m.stage, _m.status)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    counts: StageCounts = {}
    for stage, status, count in rows:
        by_status = counts.setdefault(stage, dict.fromkeys(MESSAGE_STATUSES, 0))
        by_status[status] = int(count)
    return counts
