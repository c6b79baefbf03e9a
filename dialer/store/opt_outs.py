"""Opt-outs: numbers that said stop (to SMS, to calls, or to everything).

Every function takes an open connection, so callers put it in their own transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.store.contacts import upsert
from dialer.store.engine import Store, reading, writing
from dialer.store.schema import opt_outs
from dialer.store.timeline import add_entries
from dialer.timeline import NewEntry

__all__ = ["OptOutStore", "is_opted_out", "opt_in", "opt_out"]


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
    """Record that `phone` opted out of `scope` (on its timeline); doing it twice changes
    nothing."""
    created = await conn.scalar(
        upsert(conn, opt_outs)
        .values(phone=phone, scope=scope, source=source, created_at=now)
        .on_conflict_do_nothing(index_elements=["phone", "scope"])
        .returning(opt_outs.c.id)
    )
    if created is not None:
        await add_entries(
            conn, [NewEntry(phone, now, "opted_out", source, detail={"scope": scope})]
        )


async def opt_in(conn: AsyncConnection, phone: str) -> None:
    """Undo every opt-out of `phone` (a START reply)."""
    await conn.execute(opt_outs.delete().where(opt_outs.c.phone == phone))


class OptOutStore:
    """Opt-outs on an open store, each in its own transaction (messaging's `OptOutRegistry`)."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    async def opt_out(self, phone: str, *, source: str, now: datetime) -> None:
        async with writing(self.engine) as conn:
            await opt_out(conn, phone, source=source, now=now)

    async def opt_in(self, phone: str) -> None:
        async with writing(self.engine) as conn:
            await opt_in(conn, phone)

    async def is_opted_out(self, phone: str, scope: Literal["sms", "call"]) -> bool:
        async with reading(self.engine) as conn:
            return await is_opted_out(conn, phone, scope)
