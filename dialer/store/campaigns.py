"""Every SQL statement the campaigns need: leasing due contacts, attempts, settling, counts.

Leasing: a contact being dialled is `dialling` with `lease_owner` (the worker) and
`lease_expires_at`. A worker takes the next due contact in one transaction: on PostgreSQL with
`SELECT ... FOR UPDATE SKIP LOCKED` (workers sharing a campaign never wait on each other and
never take the same row), on SQLite with a guarded `UPDATE ... WHERE state = 'pending'` inside a
`BEGIN IMMEDIATE` transaction (one writer at a time). Only `pending` contacts are ever taken, so a
finished contact (done, failed, cancelled) is never dialled again, and a contact in flight is
never dialled twice at once.

Attempts are `dialer.store.attempts`; read-only views `dialer.store.campaign_reports`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dialer.calling.ports import AddedContact, DueContact, NewContact
from dialer.store.attempts import AttemptStore
from dialer.store.campaign_reports import CampaignReportStore
from dialer.store.contacts import add_contacts, ensure_campaign, set_campaign_kind
from dialer.store.engine import Store, reading, writing
from dialer.store.opt_outs import is_opted_out
from dialer.store.schema import campaigns, contacts
from dialer.store.timeline import add_entries
from dialer.store.workers import declared_dead

__all__ = ["CampaignStore"]


def _due_contact(row: Any) -> DueContact:
    return DueContact(
        id=row.id,
        campaign_id=row.campaign_id,
        phone=row.phone,
        name=row.name,
        timezone=row.timezone,
        priority=row.priority,
        context=dict(row.context or {}),
        attempts_count=row.attempts_count,
    )


def _due(campaign_id: int, now: datetime) -> sa.Select[Any]:
    return (
        sa.select(contacts.c.id)
        .where(
            contacts.c.campaign_id == campaign_id,
            contacts.c.state == "pending",
            sa.or_(contacts.c.next_attempt_at.is_(None), contacts.c.next_attempt_at <= now),
        )
        .order_by(contacts.c.priority.desc(), contacts.c.next_attempt_at, contacts.c.id)
        .limit(1)
    )


class CampaignStore(AttemptStore, CampaignReportStore):
    """The campaigns' queries on an open `Store` (SQLite or PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        self.campaign_names: dict[int, str] = {}

    # -- campaigns -----------------------------------------------------------------------------

    async def ensure_campaign(self, name: str, kind: str) -> int:
        """The campaign's id; its row created, or its kind brought up to the config's."""
        async with writing(self.engine) as conn:
            campaign_id = await ensure_campaign(conn, name, kind)
            await set_campaign_kind(conn, name, kind)
            return campaign_id

    async def campaign_state(self, campaign_id: int) -> str:
        async with reading(self.engine) as conn:
            state = await conn.scalar(
                sa.select(campaigns.c.state).where(campaigns.c.id == campaign_id)
            )
        return str(state or "running")

    async def set_campaign_state(self, campaign_id: int, state: str, now: datetime) -> None:
        async with writing(self.engine) as conn:
            await conn.execute(
                campaigns.update()
                .where(campaigns.c.id == campaign_id)
                .values(state=state, updated_at=now)
            )

    async def is_opted_out(self, phone: str) -> bool:
        async with reading(self.engine) as conn:
            return await is_opted_out(conn, phone, "call")

    async def add_contacts(
        self, campaign_id: int, items: Sequence[NewContact], now: datetime
    ) -> list[AddedContact]:
        """Add (or merge) every item in one transaction, in order (a few statements for the
        whole batch, however long: `dialer.store.contacts.add_contacts`)."""
        async with writing(self.engine) as conn:
            return await add_contacts(conn, campaign_id, items, due_at=now, now=now)

    # -- leasing -------------------------------------------------------------------------------

    async def claim_next(
        self, campaign_id: int, *, owner: str, now: datetime, lease_s: float
    ) -> DueContact | None:
        """Take the most urgent due contact of the campaign (pending -> dialling), or None."""
        lease_until = now + timedelta(seconds=lease_s)
        async with writing(self.engine) as conn:
            for _ in range(3):  # SQLite: another writer may have taken it between the two steps
                query = _due(campaign_id, now)
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                contact_id = await conn.scalar(query)
                if contact_id is None:
                    return None
                row = (
                    await conn.execute(
                        contacts.update()
                        .where(
                            contacts.c.id == contact_id,
                            contacts.c.state == "pending",
                            ~declared_dead(sa.literal(owner)),
                        )
                        .values(
                            state="dialling",
                            lease_owner=owner,
                            lease_expires_at=lease_until,
                            updated_at=now,
                        )
                        .returning(*contacts.c)
                    )
                ).first()
                if row is not None:
                    return _due_contact(row)
        return None

    async def renew_leases(self, campaign_id: int, *, owner: str, until: datetime) -> None:
        async with writing(self.engine) as conn:
            await conn.execute(
                contacts.update()
                .where(
                    contacts.c.campaign_id == campaign_id,
                    contacts.c.lease_owner == owner,
                    contacts.c.state == "dialling",
                )
                .values(lease_expires_at=until)
            )

    async def put_back(
        self, contact_id: int, *, due_at: datetime, now: datetime, reason: str = "deferred"
    ) -> None:
        """Not called after all (window closed, Originate not sent): pending again at `due_at`;
        held back on the timeline, with `reason`."""
        async with writing(self.engine) as conn:
            result = await conn.execute(
                contacts.update()
                .where(contacts.c.id == contact_id, contacts.c.state == "dialling")
                .values(
                    state="pending",
                    next_attempt_at=due_at,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
            if result.rowcount:
                entry = await self._contact_entry(
                    conn, contact_id, "held_back", now, reason=reason, until=due_at
                )
                await add_entries(conn, [entry] if entry else [])

    async def cancel(self, contact_id: int, *, reason: str, now: datetime) -> None:
        """Never to be called (not allowed country, DNC, opted out); the reason is kept."""
        async with writing(self.engine) as conn:
            await conn.execute(
                contacts.update()
                .where(contacts.c.id == contact_id)
                .values(
                    state="cancelled",
                    disposition=reason,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
            entry = await self._contact_entry(conn, contact_id, "held_back", now, reason=reason)
            await add_entries(conn, [entry] if entry else [])
