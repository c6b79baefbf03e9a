"""Every SQL statement the campaigns need: leasing due contacts, attempts, settling, counts.

Leasing: a contact being dialled is `dialling` with `lease_owner` (the worker) and
`lease_expires_at`. A worker takes the next due contact in one transaction: on PostgreSQL with
`SELECT ... FOR UPDATE SKIP LOCKED` (workers sharing a campaign never wait on each other and
never take the same row), on SQLite with a guarded `UPDATE ... WHERE state = 'pending'` inside a
`BEGIN IMMEDIATE` transaction (one writer at a time). Only `pending` contacts are ever taken, so a
finished contact (done, failed, cancelled) is never dialled again, and a contact in flight is
never dialled twice at once.

An attempt row is written (and the contact's `attempts_count` raised) before its Originate is
sent; it is settled once (`WHERE outcome IS NULL`), in the same transaction as the contact's
next step.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.campaign_rules import NextStep
from dialer.campaign_stats_store import CampaignStatsStore
from dialer.contacts import (
    AddedContact,
    add_contact,
    ensure_campaign,
    is_opted_out,
    set_campaign_kind,
)
from dialer.outcomes import Outcome
from dialer.store import Store, attempts, campaigns, contacts

__all__ = ["AttemptRow", "CampaignStore", "DueContact", "NewContact", "Settled", "Settlement"]


@dataclass(frozen=True)
class DueContact:
    id: int
    campaign_id: int
    phone: str
    name: str | None
    timezone: str | None
    priority: int
    context: dict[str, Any]
    attempts_count: int


@dataclass(frozen=True)
class NewContact:
    """A contact to add, already checked (E.164 number, known zone)."""

    phone: str
    name: str | None = None
    timezone: str | None = None
    priority: int = 0
    context: dict[str, Any] | None = None


@dataclass(frozen=True)
class AttemptRow:
    attempt_id: str
    contact_id: int
    campaign_id: int
    phone: str
    channel_id: str
    started_at: datetime


@dataclass(frozen=True)
class Settlement:
    """What an attempt came to, as written to its row."""

    attempt_id: str
    outcome: Outcome
    ended_at: datetime
    answered_at: datetime | None = None
    disposition: str | None = None
    reason_code: int | None = None
    dial_status: str | None = None
    hangup_cause: int | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class Settled:
    """The contact's step after a settlement."""

    contact_id: int
    step: NextStep
    next_attempt_at: datetime | None
    disposition: str | None


Decide = Callable[[Outcome, str | None, int, int], NextStep]
"""(outcome, disposition, attempts with that outcome, attempts in all) -> the contact's step."""


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


class CampaignStore(CampaignStatsStore):
    """The campaigns' queries on an open `Store` (SQLite or PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # -- campaigns -----------------------------------------------------------------------------

    async def ensure_campaign(self, name: str, kind: str) -> int:
        """The campaign's id; its row created, or its kind brought up to the config's."""
        async with self.engine.begin() as conn:
            campaign_id = await ensure_campaign(conn, name, kind)
            await set_campaign_kind(conn, name, kind)
            return campaign_id

    async def campaign_state(self, campaign_id: int) -> str:
        async with self.engine.connect() as conn:
            state = await conn.scalar(
                sa.select(campaigns.c.state).where(campaigns.c.id == campaign_id)
            )
        return str(state or "running")

    async def set_campaign_state(self, campaign_id: int, state: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                campaigns.update()
                .where(campaigns.c.id == campaign_id)
                .values(state=state, updated_at=now)
            )

    async def is_opted_out(self, phone: str) -> bool:
        async with self.engine.connect() as conn:
            return await is_opted_out(conn, phone, "call")

    async def add_contacts(
        self, campaign_id: int, items: Sequence[NewContact], now: datetime
    ) -> list[AddedContact]:
        """Add (or merge) every item in one transaction, in order."""
        added = []
        async with self.engine.begin() as conn:
            for item in items:
                added.append(
                    await add_contact(
                        conn,
                        campaign_id=campaign_id,
                        phone=item.phone,
                        due_at=now,
                        now=now,
                        name=item.name,
                        timezone=item.timezone,
                        priority=item.priority,
                        context=item.context,
                    )
                )
        return added

    # -- leasing -------------------------------------------------------------------------------

    async def claim_next(
        self, campaign_id: int, *, owner: str, now: datetime, lease_s: float
    ) -> DueContact | None:
        """Take the most urgent due contact of the campaign (pending -> dialling), or None."""
        lease_until = now + timedelta(seconds=lease_s)
        async with self.engine.begin() as conn:
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
                        .where(contacts.c.id == contact_id, contacts.c.state == "pending")
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
        async with self.engine.begin() as conn:
            await conn.execute(
                contacts.update()
                .where(
                    contacts.c.campaign_id == campaign_id,
                    contacts.c.lease_owner == owner,
                    contacts.c.state == "dialling",
                )
                .values(lease_expires_at=until)
            )

    async def put_back(self, contact_id: int, *, due_at: datetime, now: datetime) -> None:
        """Not called after all (window closed, Originate not sent): pending again at `due_at`."""
        async with self.engine.begin() as conn:
            await conn.execute(
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

    async def cancel(self, contact_id: int, *, reason: str, now: datetime) -> None:
        """Never to be called (not allowed country, DNC, opted out); the reason is kept."""
        async with self.engine.begin() as conn:
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

    # -- attempts ------------------------------------------------------------------------------

    async def start_attempt(self, contact: DueContact, *, attempt_id: str, now: datetime) -> None:
        """Write the attempt row (before the Originate is sent) and count it on the contact."""
        async with self.engine.begin() as conn:
            await conn.execute(
                attempts.insert().values(
                    attempt_id=attempt_id,
                    contact_id=contact.id,
                    campaign_id=contact.campaign_id,
                    phone=contact.phone,
                    channel_id=attempt_id,
                    started_at=now,
                )
            )
            await conn.execute(
                contacts.update()
                .where(contacts.c.id == contact.id)
                .values(attempts_count=contacts.c.attempts_count + 1, updated_at=now)
            )

    async def withdraw_attempt(
        self, attempt_id: str, contact_id: int, *, due_at: datetime, now: datetime
    ) -> None:
        """The Originate was certainly not sent (AMI down): forget the attempt, pending again."""
        async with self.engine.begin() as conn:
            deleted = await conn.execute(
                attempts.delete().where(
                    attempts.c.attempt_id == attempt_id, attempts.c.outcome.is_(None)
                )
            )
            if deleted.rowcount:
                await conn.execute(
                    contacts.update()
                    .where(contacts.c.id == contact_id, contacts.c.state == "dialling")
                    .values(
                        state="pending",
                        attempts_count=contacts.c.attempts_count - 1,
                        next_attempt_at=due_at,
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                )

    async def record_disposition(self, attempt_id: str, disposition: str, now: datetime) -> bool:
        """Keep the disposition on the attempt and its contact (also after it settled)."""
        async with self.engine.begin() as conn:
            contact_id = await conn.scalar(
                attempts.update()
                .where(attempts.c.attempt_id == attempt_id)
                .values(disposition=disposition)
                .returning(attempts.c.contact_id)
            )
            if contact_id is None:
                return False
            await conn.execute(
                contacts.update()
                .where(contacts.c.id == contact_id)
                .values(disposition=disposition, updated_at=now)
            )
        return True

    async def settle(self, settlement: Settlement, decide: Decide) -> Settled | None:
        """Write the outcome once and apply the contact's next step; None if already settled."""
        values = {
            "outcome": settlement.outcome.value,
            "ended_at": settlement.ended_at,
            "answered_at": settlement.answered_at,
            "reason_code": settlement.reason_code,
            "dial_status": settlement.dial_status,
            "hangup_cause": settlement.hangup_cause,
            "duration_s": settlement.duration_s,
        }
        if settlement.disposition is not None:
            values["disposition"] = settlement.disposition
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    attempts.update()
                    .where(
                        attempts.c.attempt_id == settlement.attempt_id,
                        attempts.c.outcome.is_(None),
                    )
                    .values(**values)
                    .returning(attempts.c.contact_id, attempts.c.disposition)
                )
            ).first()
            if row is None:
                return None
            return await self._apply_step(conn, row.contact_id, row.disposition, settlement, decide)

    async def _apply_step(
        self,
        conn: AsyncConnection,
        contact_id: int,
        disposition: str | None,
        settlement: Settlement,
        decide: Decide,
    ) -> Settled:
        same_outcome = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(attempts)
            .where(
                attempts.c.contact_id == contact_id,
                attempts.c.outcome == settlement.outcome.value,
            )
        )
        total = await conn.scalar(
            sa.select(contacts.c.attempts_count).where(contacts.c.id == contact_id)
        )
        step = decide(settlement.outcome, disposition, int(same_outcome or 0), int(total or 0))
        due_at = None
        if step.state == "pending":
            due_at = settlement.ended_at + timedelta(seconds=step.delay_s or 0)
        await conn.execute(
            contacts.update()
            .where(contacts.c.id == contact_id, contacts.c.state == "dialling")
            .values(
                state=step.state,
                next_attempt_at=due_at,
                last_outcome=settlement.outcome.value,
                disposition=disposition,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=settlement.ended_at,
            )
        )
        return Settled(contact_id, step, due_at, disposition)

    # -- recovery ------------------------------------------------------------------------------

    async def unsettled_attempts(
        self, campaign_id: int, *, owner: str, now: datetime
    ) -> list[AttemptRow]:
        """Attempts in flight with no outcome, of this worker (an earlier life) or whose lease
        expired (a dead worker's)."""
        query = (
            sa.select(attempts, contacts.c.lease_owner)
            .join(contacts, contacts.c.id == attempts.c.contact_id)
            .where(
                attempts.c.campaign_id == campaign_id,
                attempts.c.outcome.is_(None),
                sa.or_(
                    contacts.c.lease_owner.is_(None),
                    contacts.c.lease_owner == owner,
                    contacts.c.lease_expires_at < now,
                ),
            )
            .order_by(attempts.c.started_at)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AttemptRow(
                attempt_id=row.attempt_id,
                contact_id=row.contact_id,
                campaign_id=row.campaign_id,
                phone=row.phone,
                channel_id=row.channel_id or row.attempt_id,
                started_at=row.started_at,
            )
            for row in rows
        ]

    async def release_orphans(
        self, campaign_id: int, *, owner: str, now: datetime, keep: Collection[int] = ()
    ) -> int:
        """Contacts left `dialling` with no attempt in flight (killed between the lease and the
        attempt row): pending again, due now. `keep`: contacts this process is dialling right
        now (claimed, attempt not yet written). Returns how many."""
        in_flight = sa.select(attempts.c.contact_id).where(attempts.c.outcome.is_(None))
        async with self.engine.begin() as conn:
            result = await conn.execute(
                contacts.update()
                .where(
                    contacts.c.campaign_id == campaign_id,
                    contacts.c.state == "dialling",
                    contacts.c.id.not_in(in_flight),
                    contacts.c.id.not_in(list(keep)),
                    sa.or_(
                        contacts.c.lease_owner.is_(None),
                        contacts.c.lease_owner == owner,
                        contacts.c.lease_expires_at < now,
                    ),
                )
                .values(
                    state="pending",
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
        return int(result.rowcount or 0)
