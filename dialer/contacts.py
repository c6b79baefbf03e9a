"""Adding people to call: campaign rows, contacts merged by number, opt-out checks.

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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.store import campaigns, contacts, opt_outs

WAITING_STATES = ("pending", "dialling")


@dataclass(frozen=True)
class AddedContact:
    contact_id: int
    merged: bool  # the number was already in the campaign
    waiting: bool  # it will be called (False: it had already finished)


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT for the connection's dialect (both support it)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


async def ensure_campaign(conn: AsyncConnection, name: str, kind: str) -> int:
    """The id of campaign `name`, creating its row (state running) the first time."""
    await conn.execute(
        _insert(conn, campaigns)
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
        _insert(conn, contacts)
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


async def is_opted_out(conn: AsyncConnection, phone: str, scope: Literal["sms", "call"]) -> bool:
    """True when `phone` opted out of `scope` (or of everything)."""
    found = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(opt_outs)
        .where(opt_outs.c.phone == phone, opt_outs.c.scope.in_([scope, "all"]))
    )
    return bool(found)


async def opt_out(
    conn: AsyncConnection,
    phone: str,
    *,
    source: str,
    now: datetime,
    scope: Literal["sms", "call", "all"] = "all",
) -> None:
    """Record that `phone` opted out of `scope`; doing it twice changes nothing."""
    await conn.execute(
        _insert(conn, opt_outs)
        .values(phone=phone, scope=scope, source=source, created_at=now)
        .on_conflict_do_nothing(index_elements=["phone", "scope"])
    )


async def opt_in(conn: AsyncConnection, phone: str) -> None:
    """Undo every opt-out of `phone` (a START reply)."""
    await conn.execute(opt_outs.delete().where(opt_outs.c.phone == phone))
