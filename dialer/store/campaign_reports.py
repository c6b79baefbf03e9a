"""Read-only campaign queries for supervisors: counts, next due time, one row per attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dialer.store.engine import reading
from dialer.store.schema import attempts, campaigns, contacts, runner_slots, workers

__all__ = ["CampaignReportStore"]

# The live worker holding the campaign's runner slot: the one dialling it (none: not started,
# or its worker died and no other took it over yet).
_RUNS_ON = (
    sa.select(runner_slots.c.owner)
    .join(campaigns, campaigns.c.name == runner_slots.c.campaign)
    .join(workers, workers.c.id == runner_slots.c.owner)
    .where(campaigns.c.id == sa.bindparam("campaign_id"), workers.c.declared_dead_at.is_(None))
)


class CampaignReportStore:
    engine: AsyncEngine

    # -- what supervisors see ------------------------------------------------------------------

    async def next_due_at(self, campaign_id: int) -> datetime | None:
        async with reading(self.engine) as conn:
            value = await conn.scalar(
                sa.select(sa.func.min(contacts.c.next_attempt_at)).where(
                    contacts.c.campaign_id == campaign_id, contacts.c.state == "pending"
                )
            )
        return value if isinstance(value, datetime) else None

    async def summary(self, campaign_id: int) -> dict[str, Any]:
        """Counts of contacts by state, attempts by outcome and by disposition, next due time."""
        async with reading(self.engine) as conn:
            by_state = await _counts(conn, contacts.c.state, contacts.c.campaign_id == campaign_id)
            by_outcome = await _counts(
                conn, attempts.c.outcome, attempts.c.campaign_id == campaign_id
            )
            by_disposition = await _counts(
                conn,
                attempts.c.disposition,
                attempts.c.campaign_id == campaign_id,
                attempts.c.disposition.is_not(None),
            )
            state = await conn.scalar(
                sa.select(campaigns.c.state).where(campaigns.c.id == campaign_id)
            )
            runs_on = await conn.scalar(_RUNS_ON, {"campaign_id": campaign_id})
        in_flight = by_outcome.pop(None, 0)
        return {
            "state": state or "running",
            "contacts": {key: value for key, value in by_state.items() if key},
            "attempts": {key: value for key, value in by_outcome.items() if key},
            "attempts_in_flight": in_flight,
            "dispositions": {key: value for key, value in by_disposition.items() if key},
            "next_due_at": await self.next_due_at(campaign_id),
            "worker": runs_on,
        }

    async def attempt_rows(self, campaign_id: int) -> list[dict[str, Any]]:
        """One row per attempt, oldest first, with the contact's name."""
        query = (
            sa.select(
                attempts.c.attempt_id,
                attempts.c.contact_id,
                contacts.c.name,
                attempts.c.phone,
                attempts.c.started_at,
                attempts.c.answered_at,
                attempts.c.ended_at,
                attempts.c.outcome,
                attempts.c.disposition,
                attempts.c.duration_s,
                attempts.c.agent_wait_s,
                attempts.c.reason_code,
                attempts.c.dial_status,
                attempts.c.hangup_cause,
            )
            .join(contacts, contacts.c.id == attempts.c.contact_id)
            .where(attempts.c.campaign_id == campaign_id)
            .order_by(attempts.c.started_at, attempts.c.id)
        )
        async with reading(self.engine) as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def contact_states(self, campaign_id: int) -> dict[str, tuple[str, int, str | None]]:
        """phone -> (state, attempts_count, disposition): what tests and the demo look at."""
        async with reading(self.engine) as conn:
            rows = await conn.execute(
                sa.select(
                    contacts.c.phone,
                    contacts.c.state,
                    contacts.c.attempts_count,
                    contacts.c.disposition,
                ).where(contacts.c.campaign_id == campaign_id)
            )
            return {row.phone: (row.state, row.attempts_count, row.disposition) for row in rows}

    async def recent_attempts(self, campaign_id: int, limit: int = 10) -> list[dict[str, Any]]:
        """The latest attempts, newest first, with their contact's state and next due time."""
        query = (
            sa.select(
                attempts.c.attempt_id,
                attempts.c.phone,
                attempts.c.started_at,
                attempts.c.outcome,
                attempts.c.disposition,
                attempts.c.duration_s,
                contacts.c.state.label("contact_state"),
                contacts.c.next_attempt_at,
            )
            .join(contacts, contacts.c.id == attempts.c.contact_id)
            .where(attempts.c.campaign_id == campaign_id)
            .order_by(attempts.c.started_at.desc(), attempts.c.id.desc())
            .limit(limit)
        )
        async with reading(self.engine) as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]


async def _counts(
    conn: AsyncConnection, column: sa.Column[Any], *where: sa.ColumnElement[bool]
) -> dict[Any, int]:
    rows = await conn.execute(sa.select(column, sa.func.count()).where(*where).group_by(column))
    return {key: int(count) for key, count in rows.all()}
