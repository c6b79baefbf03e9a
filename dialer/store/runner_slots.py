"""Runner slots: which worker runs each campaign, one at a time (`dialer.calling.slots`).

A worker dials a campaign only while it holds the campaign's slot, so the campaign's caps
(`max_concurrent_calls`, `max_calls_per_second`) are those of one runner however many workers
share the store. `claim` takes a slot in one transaction when it is free or its holder is not
live, and then adopts the contacts the old holder left `dialling`, so the new holder's recovery
(live channels, the PBX's record) settles them. Rules of a claim:

- the claimant must be live (not declared dead): a worker paused past its lease claims nothing;
- campaigns dialling for the same agent queue on the same PBX run on one worker (a
  PostgreSQL advisory lock per queue serialises their claims), so free agents are never
  counted by two workers;
- a slot whose last holder ran on another PBX moves only once nothing of it is in flight there
  (its calls are settled by a worker of that PBX, which can see them).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.calling.ports import SlotRequest
from dialer.store.engine import Store, reading, writing
from dialer.store.schema import contacts, runner_slots, workers
from dialer.store.workers import database_now, live_worker_ids, not_live

__all__ = ["RunnerSlotStore"]

_s = runner_slots.c
QUEUE_LOCK_PREFIX = "pbx-outreach agent queue "


class RunnerSlotStore:
    """`dialer.calling.ports.RunnerSlots` on an open store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    async def claim(self, request: SlotRequest) -> bool:
        """Hold the campaign's slot (True), taking it from a holder that is not live; False
        while a live worker holds it or a rule above forbids it."""
        async with writing(self.engine) as conn:
            if request.agent_queue is not None and conn.dialect.name == "postgresql":
                key = f"{QUEUE_LOCK_PREFIX}{request.pbx}/{request.agent_queue}"
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(key))))
            claimant = await conn.scalar(
                sa.select(workers.c.declared_dead_at.is_(None)).where(workers.c.id == request.owner)
            )
            if not claimant:
                return False
            await conn.execute(_insert_missing(conn, request.campaign))
            query = sa.select(runner_slots).where(_s.campaign == request.campaign)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            slot = (await conn.execute(query)).one()
            if slot.owner != request.owner:
                if not await self._may_take(conn, slot, request):
                    return False
                await self._adopt(conn, request)
            await conn.execute(
                runner_slots.update()
                .where(_s.campaign == request.campaign)
                .values(
                    owner=request.owner,
                    pbx=request.pbx,
                    agent_queue=request.agent_queue,
                    claimed_at=(await database_now(conn))
                    if slot.owner != request.owner
                    else slot.claimed_at,
                )
            )
        return True

    async def _may_take(
        self, conn: AsyncConnection, slot: sa.Row[tuple[object, ...]], request: SlotRequest
    ) -> bool:
        if slot.owner is not None and await conn.scalar(
            sa.select(sa.func.count()).where(
                workers.c.id == slot.owner, workers.c.declared_dead_at.is_(None)
            )
        ):
            return False  # its holder is live
        if request.agent_queue is not None:
            same_queue_elsewhere = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(runner_slots)
                .where(
                    _s.agent_queue == request.agent_queue,
                    _s.pbx == request.pbx,
                    _s.owner != request.owner,
                    _s.owner.in_(live_worker_ids()),
                )
            )
            if same_queue_elsewhere:
                return False
        if slot.pbx is not None and slot.pbx != request.pbx:
            left_in_flight = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(contacts)
                .where(
                    contacts.c.campaign_id == request.campaign_id,
                    contacts.c.state == "dialling",
                    not_live(contacts.c.lease_owner),
                )
            )
            if left_in_flight:
                return False
        return True

    async def _adopt(self, conn: AsyncConnection, request: SlotRequest) -> None:
        """The contacts left `dialling` by holders that are gone are now this worker's: its
        recovery follows or settles them."""
        await conn.execute(
            contacts.update()
            .where(
                contacts.c.campaign_id == request.campaign_id,
                contacts.c.state == "dialling",
                not_live(contacts.c.lease_owner),
            )
            .values(lease_owner=request.owner)
        )

    async def holders(self) -> dict[str, str | None]:
        """Campaign -> the worker holding its slot (None: nobody yet)."""
        async with reading(self.engine) as conn:
            rows = (await conn.execute(sa.select(_s.campaign, _s.owner))).all()
        return {row.campaign: row.owner for row in rows}

    async def live_workers(self, role: str) -> list[str]:
        async with reading(self.engine) as conn:
            rows = (
                await conn.execute(
                    sa.select(workers.c.id, workers.c.roles).where(
                        workers.c.declared_dead_at.is_(None)
                    )
                )
            ).all()
        return sorted(row.id for row in rows if role in row.roles.split(","))

    async def release(self, owner: str) -> None:
        """A clean stop: the slots are free at once (the worker is declared dead too)."""
        async with writing(self.engine) as conn:
            await conn.execute(runner_slots.update().where(_s.owner == owner).values(owner=None))


def _insert_missing(conn: AsyncConnection, campaign: str) -> sa.Executable:
    if conn.dialect.name == "postgresql":
        return pg_insert(runner_slots).values(campaign=campaign).on_conflict_do_nothing()
    return sqlite_insert(runner_slots).values(campaign=campaign).on_conflict_do_nothing()
