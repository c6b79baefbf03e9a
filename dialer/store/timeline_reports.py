"""Read-only views of the timeline (`dialer.timeline`): a number's entries, oldest first."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from dialer.store.engine import Store, reading
from dialer.store.schema import timeline
from dialer.timeline import TimelineEntry

__all__ = ["entries_for", "row_entry"]

_t = timeline.c


def row_entry(row: Any) -> TimelineEntry:
    return TimelineEntry(
        id=row.id,
        phone=row.phone,
        at=row.at,
        kind=row.kind,
        reason=row.reason,
        until=row.until,
        campaign=row.campaign,
        order_id=row.order_id,
        detail=dict(row.detail or {}),
    )


async def entries_for(store: Store, phone: str, *, limit: int = 500) -> list[TimelineEntry]:
    """The last `limit` entries of `phone` (E.164), oldest first."""
    query = (
        sa.select(timeline)
        .where(_t.phone == phone)
        .order_by(_t.at.desc(), _t.id.desc())
        .limit(limit)
    )
    async with reading(store.engine) as conn:
        rows = (await conn.execute(query)).all()
    return [row_entry(row) for row in reversed(rows)]
