"""Read-only per-hour counts of the last hours, for the status page's charts.

`hourly_trends(store, now=..., hours=24)`: for each hour (UTC, the current one last):

- calls per campaign: attempts started, answered (answered or abandoned: a person picked up),
  abandoned, and settled (with an outcome), from `attempts`;
- SMS per stage: sent (`sent_at`) and delivered (the report's time, `updated_at` of a row now
  `delivered`), from `outbound_messages` of channel `sms`.

The rows of the window are read and counted here (a few thousand an hour at most), so the same
code serves SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dialer.store.engine import Store, reading
from dialer.store.schema import attempts, campaigns, outbound_messages

__all__ = ["hourly_trends"]

_a = attempts.c
_m = outbound_messages.c
PICKED_UP = ("answered", "abandoned")


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def hourly_trends(store: Store, *, now: datetime, hours: int = 24) -> dict[str, Any]:
    first = _hour(now) - timedelta(hours=hours - 1)
    slots = [first + timedelta(hours=index) for index in range(hours)]
    index = {slot: position for position, slot in enumerate(slots)}
    calls: dict[str, dict[str, list[Any]]] = {}
    sms: dict[str, dict[str, list[Any]]] = {}

    def series(table: dict[str, dict[str, list[Any]]], name: str, keys: tuple[str, ...]) -> Any:
        if name not in table:
            table[name] = {key: [0] * hours for key in keys}
        return table[name]

    call_keys = ("calls", "answered", "abandoned", "settled")
    sms_keys = ("sent", "delivered")
    async with reading(store.engine) as conn:
        call_rows = await conn.execute(
            sa.select(campaigns.c.name, _a.started_at, _a.outcome)
            .join(campaigns, campaigns.c.id == _a.campaign_id)
            .where(_a.started_at >= first)
        )
        for name, started_at, outcome in call_rows:
            slot = index.get(_hour(started_at))
            if slot is None:
                continue
            counts = series(calls, name, call_keys)
            counts["calls"][slot] += 1
            if outcome is not None:
                counts["settled"][slot] += 1
                counts["answered"][slot] += outcome in PICKED_UP
                counts["abandoned"][slot] += outcome == "abandoned"
        sent_rows = await conn.execute(
            sa.select(_m.stage, _m.sent_at, _m.status, _m.updated_at).where(
                _m.channel == "sms", _m.sent_at >= first
            )
        )
        for stage, sent_at, status, updated_at in sent_rows:
            counts = series(sms, stage, sms_keys)
            slot = index.get(_hour(sent_at))
            if slot is not None:
                counts["sent"][slot] += 1
            delivered = index.get(_hour(updated_at)) if status == "delivered" else None
            if delivered is not None:
                counts["delivered"][delivered] += 1
    for counts in calls.values():
        counts["answer_rate"] = [
            round(picked / settled, 3) if settled else None
            for picked, settled in zip(counts["answered"], counts["settled"], strict=True)
        ]
    return {
        "hours": [slot.isoformat() for slot in slots],
        "calls": dict(sorted(calls.items())),
        "sms": dict(sorted(sms.items())),
    }
