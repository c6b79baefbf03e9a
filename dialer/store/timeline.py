"""The timeline of each phone number (`dialer.timeline`), and the follow-up that reads it.

- `add_entries(conn, entries)`: one executemany, in the caller's transaction (the store's other
  modules call it where they write the decision the entry records).
- `TimelineStore`: entries of a number, oldest first; pruning by age; replies recorded with the
  callbacks they could cancel; `follow_up(decide)`: takes the entries marked for the follow-up
  (FOR UPDATE SKIP LOCKED on PostgreSQL: two workers never take the same), lets the core decide
  what they cause, writes that (messages ON CONFLICT DO NOTHING, rule markers, cancellations)
  and unmarks them, all in ONE transaction: a crash before the commit leaves them marked, a
  crash after leaves nothing to do again. Nothing is lost, nothing done twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.store.engine import Store, writing
from dialer.store.schema import (
    campaigns,
    contacts,
    follow_ups,
    outbound_messages,
    templates_json,
    timeline,
)
from dialer.store.timeline_reports import entries_for, row_entry
from dialer.timeline import FollowUpAction, NewEntry, TimelineEntry

__all__ = ["TimelineStore", "add_entries"]

_t = timeline.c
_INSERT = timeline.insert()
PRUNE_BATCH = 5_000


async def add_entries(conn: AsyncConnection, entries: Sequence[NewEntry]) -> None:
    """Write `entries` in the caller's transaction (one executemany)."""
    if entries:
        await conn.execute(_INSERT, [entry.row() for entry in entries])


@functools.cache
def _insert(dialect: str, table: sa.Table) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


async def pending_callbacks(conn: AsyncConnection, phone: str) -> list[dict[str, Any]]:
    """The contacts of `phone` still waiting for a call: id, campaign, order_id."""
    rows = await conn.execute(
        sa.select(contacts.c.id, contacts.c.context, campaigns.c.name)
        .join(campaigns, campaigns.c.id == contacts.c.campaign_id)
        .where(contacts.c.phone == phone, contacts.c.state == "pending")
        .order_by(contacts.c.id)
    )
    return [
        {
            "contact_id": row.id,
            "campaign": row.name,
            "order_id": (row.context or {}).get("order_id"),
        }
        for row in rows
    ]


class TimelineStore:
    """The timeline on an open store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        self.dialect = store.dialect

    async def record(self, entries: Sequence[NewEntry]) -> None:
        async with writing(self.engine) as conn:
            await add_entries(conn, entries)

    async def record_reply(self, phone: str, text: str, *, now: datetime) -> None:
        """An inbound SMS that is no STOP/START word: kept with the callbacks it could cancel."""
        async with writing(self.engine) as conn:
            pending = await pending_callbacks(conn, phone)
            entry = NewEntry(
                phone, now, "sms_reply", reason=text[:160], detail={"pending": pending}
            )
            await add_entries(conn, [entry])

    async def entries_for(self, phone: str, *, limit: int = 500) -> list[TimelineEntry]:
        return await entries_for(self.store, phone, limit=limit)

    async def prune(self, *, before: datetime) -> int:
        """Forget entries older than `before` (already followed up), in batches; how many."""
        removed = 0
        while True:
            old = (
                sa.select(_t.id)
                .where(_t.at < before, _t.follow_up.is_(None))
                .order_by(_t.id)
                .limit(PRUNE_BATCH)
            )
            async with writing(self.engine) as conn:
                result = await conn.execute(
                    timeline.delete().where(_t.id.in_(old.scalar_subquery()))
                )
            removed += result.rowcount or 0
            if (result.rowcount or 0) < PRUNE_BATCH:
                return removed

    async def follow_up(
        self, decide: Callable[[list[TimelineEntry]], list[FollowUpAction]], *, limit: int = 100
    ) -> int:
        """Take up to `limit` entries marked for the follow-up, oldest first, and write what
        `decide` makes of them, in one transaction (see the module docstring); how many."""
        query = (
            sa.select(timeline)
            .where(_t.follow_up.is_not(None))
            .order_by(_t.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with writing(self.engine) as conn:
            entries = [row_entry(row) for row in await conn.execute(query)]
            if not entries:
                return 0
            for action in decide(entries):
                await self._apply(conn, action)
            await conn.execute(
                timeline.update()
                .where(_t.id.in_([entry.id for entry in entries]))
                .values(follow_up=None)
            )
        return len(entries)

    async def _apply(self, conn: AsyncConnection, action: FollowUpAction) -> None:
        now = action.at
        if action.rule is not None:
            marker = (
                _insert(self.dialect, follow_ups)
                .values(rule=action.rule, subject=action.subject, done_at=now)
                .on_conflict_do_nothing(index_elements=["rule", "subject"])
                .returning(follow_ups.c.id)
            )
            if await conn.scalar(marker) is None:
                return  # this rule already acted on this subject
        written: list[NewEntry] = list(action.entries)
        for message in action.messages:
            inserted = await conn.scalar(
                _insert(self.dialect, outbound_messages)
                .values(
                    event_id=f"follow-up:{action.rule or message.stage}:{action.subject}",
                    order_id=message.order_id,
                    stage=message.stage,
                    channel=message.channel,
                    phone=message.phone,
                    body=message.body,
                    segments=message.segments,
                    templates=templates_json(message.templates),
                    status="queued",
                    next_attempt_at=message.next_attempt_at,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["order_id", "stage"])
                .returning(outbound_messages.c.id)
            )
            if inserted is None:
                continue
            kind = "webhook_queued" if message.channel == "webhook" else "sms_queued"
            later = message.next_attempt_at > now  # held by the quiet hours
            what = message.stage.removeprefix("webhook:").split(":")[0]
            written.append(
                NewEntry(
                    message.phone,
                    now,
                    kind,
                    reason="quiet_hours" if later else what,
                    until=message.next_attempt_at if later else None,
                    order_id=message.order_id,
                    detail={"message_id": inserted, "stage": what},
                )
            )
        if action.cancel_contacts:
            cancelled = await conn.execute(
                contacts.update()
                .where(contacts.c.id.in_(action.cancel_contacts), contacts.c.state == "pending")
                .values(state="cancelled", disposition=action.cancel_reason, updated_at=now)
                .returning(contacts.c.id, contacts.c.phone, contacts.c.campaign_id)
            )
            names = dict((await conn.execute(sa.select(campaigns.c.id, campaigns.c.name))).all())
            written += [
                NewEntry(
                    row.phone,
                    now,
                    "contact_cancelled",
                    reason=action.cancel_reason,
                    campaign=names.get(row.campaign_id),
                    detail={"contact_id": row.id},
                )
                for row in cancelled
            ]
        await add_entries(conn, written)
