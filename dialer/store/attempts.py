"""The attempts of the campaigns: written before the Originate, settled once, recovered.

An attempt row is written (and the contact's `attempts_count` raised) before its Originate is
sent; it is settled once (`WHERE outcome IS NULL`), in the same transaction as the contact's
next step. After a crash, `unsettled_attempts` lists what a worker left in flight and
`release_orphans` puts back contacts leased but never dialled.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dialer.calling.ports import AttemptFacts, AttemptRow, DueContact, NextStep, Settlement
from dialer.outcomes import Outcome
from dialer.store.engine import reading, writing
from dialer.store.schema import attempts, campaigns, contacts
from dialer.store.timeline import add_entries
from dialer.timeline import NewEntry

__all__ = ["AttemptStore"]

# What an entry about a contact tells of it (the follow-up renders SMS from name and context).
_CONTACT_FACTS = sa.select(
    contacts.c.phone, contacts.c.campaign_id, contacts.c.name, contacts.c.context
)


class AttemptStore:
    """Attempt rows of an open store; a part of `dialer.store.campaigns.CampaignStore`."""

    engine: AsyncEngine
    campaign_names: dict[int, str]

    async def campaign_name(self, conn: AsyncConnection, campaign_id: int) -> str | None:
        """A campaign's name (kept: a campaign is never renamed)."""
        name = self.campaign_names.get(campaign_id)
        if name is None:
            name = await conn.scalar(
                sa.select(campaigns.c.name).where(campaigns.c.id == campaign_id)
            )
            if name is not None:
                self.campaign_names[campaign_id] = name
        return name

    async def _contact_entry(
        self, conn: AsyncConnection, contact_id: int, kind: str, now: datetime, **values: Any
    ) -> NewEntry | None:
        """An entry about a contact, with what the follow-up needs to know of it."""
        row = (await conn.execute(_CONTACT_FACTS.where(contacts.c.id == contact_id))).first()
        if row is None:
            return None
        return await self._entry_of(conn, row, contact_id, kind, now, **values)

    async def _entry_of(
        self,
        conn: AsyncConnection,
        row: Any,
        contact_id: int,
        kind: str,
        now: datetime,
        *,
        brief: bool = False,
        **values: Any,
    ) -> NewEntry:
        """An entry about the contact of `row` (`_CONTACT_FACTS`); `brief`: without its name
        and context (an entry no follow-up reads)."""
        context = dict(row.context or {})
        detail: dict[str, Any] = {"contact_id": contact_id}
        if not brief:
            detail.update(name=row.name, context=context)
        detail.update(values.pop("detail", None) or {})
        return NewEntry(
            row.phone,
            now,
            kind,
            campaign=await self.campaign_name(conn, row.campaign_id),
            order_id=context.get("order_id"),
            detail=detail,
            **values,
        )

    async def start_attempt(self, contact: DueContact, *, attempt_id: str, now: datetime) -> None:
        """Write the attempt row (before the Originate is sent) and count it on the contact."""
        async with writing(self.engine) as conn:
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
            entry = NewEntry(
                contact.phone,
                now,
                "dialled",
                f"attempt {contact.attempts_count + 1}",
                campaign=await self.campaign_name(conn, contact.campaign_id),
                order_id=contact.context.get("order_id"),
                detail={"attempt_id": attempt_id, "contact_id": contact.id},
            )
            await add_entries(conn, [entry])

    async def withdraw_attempt(
        self, attempt_id: str, contact_id: int, *, due_at: datetime, now: datetime
    ) -> None:
        """The Originate was certainly not sent (AMI down): forget the attempt, pending again."""
        async with writing(self.engine) as conn:
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
        async with writing(self.engine) as conn:
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
            entry = await self._contact_entry(
                conn,
                contact_id,
                "disposition",
                now,
                reason=disposition,
                detail={"attempt_id": attempt_id},
            )
            await add_entries(conn, [entry] if entry else [])
        return True

    async def attempt_facts(self, attempt_id: str, outcome: Outcome) -> AttemptFacts | None:
        """What the retry rule needs: the attempt's disposition, how many of the contact's
        attempts ended with `outcome` (this one counted) and in all. None when unknown or
        already settled."""
        async with reading(self.engine) as conn:
            row = (
                await conn.execute(
                    sa.select(attempts.c.contact_id, attempts.c.disposition).where(
                        attempts.c.attempt_id == attempt_id, attempts.c.outcome.is_(None)
                    )
                )
            ).first()
            if row is None:
                return None
            same_outcome = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(attempts)
                .where(attempts.c.contact_id == row.contact_id, attempts.c.outcome == outcome.value)
            )
            total = await conn.scalar(
                sa.select(contacts.c.attempts_count).where(contacts.c.id == row.contact_id)
            )
        return AttemptFacts(
            contact_id=row.contact_id,
            disposition=row.disposition,
            attempts_with_outcome=int(same_outcome or 0) + 1,
            attempts_total=int(total or 0),
        )

    async def settle(
        self, settlement: Settlement, step: NextStep, *, next_attempt_at: datetime | None
    ) -> bool:
        """Write the outcome once (`WHERE outcome IS NULL`) and apply the contact's next step,
        in one transaction. False: the attempt was already settled."""
        values = {
            "outcome": settlement.outcome.value,
            "ended_at": settlement.ended_at,
            "answered_at": settlement.answered_at,
            "reason_code": settlement.reason_code,
            "dial_status": settlement.dial_status,
            "hangup_cause": settlement.hangup_cause,
            "duration_s": settlement.duration_s,
            "agent_wait_s": settlement.agent_wait_s,
        }
        if settlement.disposition is not None:
            values["disposition"] = settlement.disposition
        async with writing(self.engine) as conn:
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
                return False
            facts = (
                await conn.execute(
                    contacts.update()
                    .where(contacts.c.id == row.contact_id, contacts.c.state == "dialling")
                    .values(
                        state=step.state,
                        next_attempt_at=next_attempt_at if step.state == "pending" else None,
                        last_outcome=settlement.outcome.value,
                        disposition=row.disposition,
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=settlement.ended_at,
                    )
                    .returning(*_CONTACT_FACTS.selected_columns)
                )
            ).first()
            if facts is None:  # no longer dialling (cancelled meanwhile): read what it is
                facts = (
                    await conn.execute(_CONTACT_FACTS.where(contacts.c.id == row.contact_id))
                ).first()
            if facts is not None:
                entries = await self._settled_entries(
                    conn, row, facts, settlement, step, next_attempt_at
                )
                await add_entries(conn, entries)
        return True

    async def answered_since(
        self, campaign_id: int, since: datetime, *, abandon_after_s: float
    ) -> list[tuple[datetime, bool]]:
        """(when answered, abandoned) of the campaign's calls answered since `since`, oldest
        first: abandoned when no agent took it, or one took it after `abandon_after_s`."""
        late = sa.and_(
            attempts.c.agent_wait_s.is_not(None), attempts.c.agent_wait_s > abandon_after_s
        )
        query = (
            sa.select(
                attempts.c.answered_at,
                sa.or_(attempts.c.outcome == Outcome.ABANDONED.value, late),
            )
            .where(
                attempts.c.campaign_id == campaign_id,
                attempts.c.answered_at >= since,
                attempts.c.outcome.in_([Outcome.ANSWERED.value, Outcome.ABANDONED.value]),
            )
            .order_by(attempts.c.answered_at)
        )
        async with reading(self.engine) as conn:
            rows = (await conn.execute(query)).all()
        return [(row[0], bool(row[1])) for row in rows]

    async def _settled_entries(
        self,
        conn: AsyncConnection,
        row: Any,
        facts: Any,
        settlement: Settlement,
        step: NextStep,
        next_attempt_at: datetime | None,
    ) -> list[NewEntry]:
        """The call's outcome, then the contact's next step, for the timeline."""
        at = settlement.ended_at
        outcome = settlement.outcome.value
        detail = {"attempt_id": settlement.attempt_id, "disposition": row.disposition}
        call = await self._entry_of(
            conn, facts, row.contact_id, "call_outcome", at, brief=True, reason=outcome,
            detail=detail,
        )  # fmt: skip
        if step.state == "pending":
            after = NewEntry(
                call.phone,
                at,
                "retry_scheduled",
                step.why,
                until=next_attempt_at,
                campaign=call.campaign,
                order_id=call.order_id,
                detail={"contact_id": row.contact_id},
            )
        else:
            detail = {**detail, "why": step.why, "outcome": outcome}
            after = await self._entry_of(
                conn, facts, row.contact_id, "contact_finished", at, reason=step.state,
                detail=detail,
            )  # fmt: skip
        return [call, after]

    async def unsettled_attempts(
        self, campaign_id: int, *, owner: str, now: datetime
    ) -> list[AttemptRow]:
        """Attempts in flight with no outcome, leased to this worker: its earlier life's, or a
        dead worker's adopted with the campaign's runner slot (`dialer.store.runner_slots`)."""
        query = (
            sa.select(attempts, contacts.c.lease_owner)
            .join(contacts, contacts.c.id == attempts.c.contact_id)
            .where(
                attempts.c.campaign_id == campaign_id,
                attempts.c.outcome.is_(None),
                sa.or_(contacts.c.lease_owner.is_(None), contacts.c.lease_owner == owner),
            )
            .order_by(attempts.c.started_at)
        )
        async with reading(self.engine) as conn:
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
        async with writing(self.engine) as conn:
            result = await conn.execute(
                contacts.update()
                .where(
                    contacts.c.campaign_id == campaign_id,
                    contacts.c.state == "dialling",
                    contacts.c.id.not_in(in_flight),
                    contacts.c.id.not_in(list(keep)),
                    sa.or_(contacts.c.lease_owner.is_(None), contacts.c.lease_owner == owner),
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
