"""Adding people to call: campaign rows and contacts merged by number.

Shared by everything that adds contacts (CSV import, the API, order events) and by the campaign
runner, so a number is merged the same way whichever door it came through. Every function takes
an open connection, so callers put it in their own transaction (the intake writes an event, its
messages and its contacts in one).

Merging: one contact per (campaign, number). Adding a number that is already waiting (pending or
being dialled) merges into it: the contexts are merged (the new values win), the priority is the
higher one, and the contact becomes due at the earlier of the two times. A contact that has
finished (done, failed, cancelled) is left as it is: the same number is not called again in that
campaign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.calling.ports import AddedContact, NewContact
from dialer.store.schema import UtcDateTime, campaigns, contacts, timeline

WAITING_STATES = ("pending", "dialling")


def upsert(conn: AsyncConnection, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT for the connection's dialect (both support it)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


async def ensure_campaign(conn: AsyncConnection, name: str, kind: str) -> int:
    """The id of campaign `name`, creating its row (state running) the first time."""
    await conn.execute(
        upsert(conn, campaigns)
        .values(name=name, kind=kind)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    campaign_id = await conn.scalar(sa.select(campaigns.c.id).where(campaigns.c.name == name))
    assert campaign_id is not None
    return int(campaign_id)


async def set_campaign_kind(conn: AsyncConnection, name: str, kind: str) -> None:
    """The config changed campaign `name`'s kind since its row was written: write it over."""
    await conn.execute(
        sa.update(campaigns)
        .where(campaigns.c.name == name, campaigns.c.kind != kind)
        .values(kind=kind)
    )


async def add_contact(
    conn: AsyncConnection,
    *,
    campaign_id: int,
    phone: str,
    due_at: datetime,
    now: datetime,
    name: str | None = None,
    timezone: str | None = None,
    priority: int = 0,
    context: Mapping[str, Any] | None = None,
) -> AddedContact:
    """Add `phone` (E.164) to the campaign, or merge it into the contact already there."""
    inserted = await conn.scalar(
        upsert(conn, contacts)
        .values(
            campaign_id=campaign_id,
            phone=phone,
            name=name,
            timezone=timezone,
            priority=priority,
            context=dict(context or {}),
            state="pending",
            next_attempt_at=due_at,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "phone"])
        .returning(contacts.c.id)
    )
    if inserted is not None:
        return AddedContact(contact_id=int(inserted), merged=False, waiting=True)
    existing = (
        await conn.execute(
            sa.select(contacts).where(
                contacts.c.campaign_id == campaign_id, contacts.c.phone == phone
            )
        )
    ).one()
    if existing.state not in WAITING_STATES:
        return AddedContact(contact_id=existing.id, merged=True, waiting=False)
    changes: dict[str, Any] = {
        "context": {**(existing.context or {}), **dict(context or {})},
        "priority": max(existing.priority, priority),
        "name": name or existing.name,
        "timezone": timezone or existing.timezone,
        "updated_at": now,
    }
    if existing.state == "pending" and (
        existing.next_attempt_at is None or due_at < existing.next_attempt_at
    ):
        changes["next_attempt_at"] = due_at
    await conn.execute(contacts.update().where(contacts.c.id == existing.id).values(**changes))
    return AddedContact(contact_id=existing.id, merged=True, waiting=True)


async def add_contacts(
    conn: AsyncConnection,
    campaign_id: int,
    items: Sequence[NewContact],
    *,
    due_at: datetime,
    now: datetime,
) -> list[AddedContact]:
    """`add_contact` for a whole batch, in a few statements: one insert of the new numbers,
    one read and one update of those already there. The same number twice in the batch is
    merged as if the items came one after the other. One result per item, in order."""
    firsts: dict[str, NewContact] = {}
    for item in items:
        earlier = firsts.get(item.phone)
        firsts[item.phone] = item if earlier is None else _merged(earlier, item)
    if not firsts:
        return []
    rows = [
        {
            "campaign_id": campaign_id,
            "phone": item.phone,
            "name": item.name,
            "timezone": item.timezone,
            "priority": item.priority,
            "context": dict(item.context or {}),
            "state": "pending",
            "next_attempt_at": due_at,
            "created_at": now,
            "updated_at": now,
        }
        for item in firsts.values()
    ]
    insert = upsert(conn, contacts).on_conflict_do_nothing(index_elements=["campaign_id", "phone"])
    inserted = {
        row.phone: row.id
        for row in await conn.execute(insert.returning(contacts.c.id, contacts.c.phone), rows)
    }
    existing = await _merge_existing(
        conn, campaign_id, [firsts[p] for p in firsts if p not in inserted], due_at, now
    )
    seen: set[str] = set()
    results = []
    for item in items:
        if item.phone in inserted:
            result = AddedContact(inserted[item.phone], merged=item.phone in seen, waiting=True)
        else:
            result = existing[item.phone]
        seen.add(item.phone)
        results.append(result)
    await _on_timeline(conn, campaign_id, list(firsts), now)
    return results


async def _on_timeline(
    conn: AsyncConnection, campaign_id: int, phones: Sequence[str], now: datetime
) -> None:
    """Each number of the batch added to (or merged into) the campaign, on its timeline: one
    INSERT ... SELECT of the contacts this batch wrote (no Python per row)."""
    name = await conn.scalar(sa.select(campaigns.c.name).where(campaigns.c.id == campaign_id))
    touched = sa.select(
        contacts.c.phone,
        sa.literal(now, UtcDateTime()),
        sa.literal("contact_added"),
        sa.case((contacts.c.created_at == now, "new"), else_="merged"),
        sa.literal(name, sa.String()),
    ).where(
        contacts.c.campaign_id == campaign_id,
        contacts.c.updated_at == now,
        contacts.c.phone.in_(phones),
    )
    await conn.execute(
        timeline.insert().from_select(["phone", "at", "kind", "reason", "campaign"], touched)
    )


def _merged(earlier: NewContact, later: NewContact) -> NewContact:
    return NewContact(
        phone=earlier.phone,
        name=later.name or earlier.name,
        timezone=later.timezone or earlier.timezone,
        priority=max(earlier.priority, later.priority),
        context={**(earlier.context or {}), **(later.context or {})},
    )


async def _merge_existing(
    conn: AsyncConnection,
    campaign_id: int,
    items: Sequence[NewContact],
    due_at: datetime,
    now: datetime,
) -> dict[str, AddedContact]:
    """Merge items into the contacts already in the campaign; the result of each, by number."""
    if not items:
        return {}
    found = {
        row.phone: row
        for row in await conn.execute(
            sa.select(contacts).where(
                contacts.c.campaign_id == campaign_id,
                contacts.c.phone.in_([item.phone for item in items]),
            )
        )
    }
    results: dict[str, AddedContact] = {}
    changes = []
    for item in items:
        row = found[item.phone]
        waiting = row.state in WAITING_STATES
        results[item.phone] = AddedContact(contact_id=row.id, merged=True, waiting=waiting)
        if not waiting:
            continue
        earlier_due = row.state == "pending" and (
            row.next_attempt_at is None or due_at < row.next_attempt_at
        )
        changes.append(
            {
                "b_id": row.id,
                "b_context": {**(row.context or {}), **dict(item.context or {})},
                "b_priority": max(row.priority, item.priority),
                "b_name": item.name or row.name,
                "b_timezone": item.timezone or row.timezone,
                "b_due": due_at if earlier_due else row.next_attempt_at,
                "b_now": now,
            }
        )
    if changes:
        await conn.execute(_MERGE, changes)
    return results


_MERGE = (
    contacts.update()
    .where(contacts.c.id == sa.bindparam("b_id"))
    .values(
        context=sa.bindparam("b_context", type_=contacts.c.context.type),
        priority=sa.bindparam("b_priority"),
        name=sa.bindparam("b_name"),
        timezone=sa.bindparam("b_timezone"),
        next_attempt_at=sa.bindparam("b_due", type_=contacts.c.next_attempt_at.type),
        updated_at=sa.bindparam("b_now", type_=contacts.c.updated_at.type),
    )
)
