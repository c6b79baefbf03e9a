"""The outbox of messages and their fate: claims, outcomes, delivery reports, dead letters.

The statuses a message row moves through are drawn in `dialer.messaging.ports`.

- `claim_due` marks due rows `sending` (attempts + 1) in their own transaction before any
  provider is called. On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so workers
  never claim the same row; on SQLite the transaction is BEGIN IMMEDIATE (see engine.py), so
  the claim is atomic.
- Outcome writes only touch a row still `sending`; delivery statuses only move forward, so a
  late `sent` never undoes `delivered` (`DELIVERY_STATUS_RANK`). `record_outcomes` writes the
  outcomes of many messages in one transaction (one executemany per kind).
- `last_error` of a dead message starts with its reason: `number: ...`, `opted_out: ...`,
  `provider: ...`, `expired: ...`.

The statements of the hot path are built once, with bind parameters, so running one skips
SQLAlchemy's statement construction and cache-key computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.messaging.ports import (
    DELIVERY_STATUS_RANK,
    ClaimedMessage,
    DeliveryReport,
    MessageOutcome,
    StageTemplate,
)
from dialer.store import opt_outs as opt_out_rows
from dialer.store.engine import Store, batch_fails_alone, reading, writing
from dialer.store.message_timeline import message_entry, record_outcomes_on_timeline
from dialer.store.notify import announce_queued
from dialer.store.outbox_outcomes import (
    OUTCOME_STATEMENTS,
    now_param,
    outcome_params,
)
from dialer.store.schema import opt_outs, outbound_messages
from dialer.store.timeline import add_entries
from dialer.store.workers import declared_dead, not_live

__all__ = ["OutboxStore"]

_m = outbound_messages.c


_OWNER = sa.bindparam("owner", type_=sa.String())
_DUE = (
    sa.select(_m.id)
    .where(
        _m.status == "queued",
        _m.next_attempt_at <= now_param(),
        _m.channel == sa.bindparam("b_channel", type_=sa.String()),
        ~declared_dead(_OWNER),
    )
    .order_by(_m.next_attempt_at, _m.id)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
    .with_for_update(skip_locked=True)
    # Materialised once: an IN (subquery ... LIMIT ... SKIP LOCKED) may be re-run by the
    # PostgreSQL planner and then claim more rows than the limit.
    .cte("due")
    .prefix_with("MATERIALIZED", dialect="postgresql")
)
_CLAIM = (
    outbound_messages.update()
    .where(_m.id == _DUE.c.id, _m.status == "queued")
    .values(
        status="sending",
        attempts=_m.attempts + 1,
        lease_owner=_OWNER,
        held_until=None,
        updated_at=now_param(),
    )
    .returning(
        _m.id,
        _m.event_id,
        _m.order_id,
        _m.stage,
        _m.phone,
        _m.body,
        _m.attempts,
        sa.func.coalesce(_m.replayed_at, _m.created_at).label("age_from"),
        _m.templates,
        _m.ambiguous_since,
    )
)
# Read in the claim's transaction: the number may have opted out since it was queued. (Not a
# correlated EXISTS in RETURNING: SQLite renders RETURNING without table names, and there
# `opt_outs.phone = outbound_messages.phone` became `phone = phone`, true for any opt-out.)
_OPTED_OUT_OF_SMS = sa.select(opt_outs.c.phone).where(
    opt_outs.c.phone.in_(sa.bindparam("phones", expanding=True)),
    opt_outs.c.scope.in_(["sms", "all"]),
)


async def _opted_out_of_sms(conn: AsyncConnection, phones: set[str]) -> set[str]:
    """Which of these numbers are opted out of SMS (scope `sms` or `all`)."""
    if not phones:
        return set()
    return set(await conn.scalars(_OPTED_OUT_OF_SMS, {"phones": sorted(phones)}))


def _templates(stored: Any) -> dict[str, StageTemplate]:
    """A message's provider templates as stored by the intake (`dialer.store.events`: the
    variables as [name, value] pairs, in order)."""
    if not isinstance(stored, dict):
        return {}
    return {
        name: StageTemplate(str(value["code"]), {k: v for k, v in value.get("params") or []})
        for name, value in stored.items()
    }


class OutboxStore:
    """The outbox on an open store (the messaging core's Outbox), for worker `owner`: the
    messages it claims are leased to it, and its outcomes are written only to rows it still
    holds (a worker declared dead while paused cannot undo the work of the one that took its
    messages over). Without an owner: one worker, and no fence."""

    def __init__(self, store: Store, *, owner: str | None = None, channel: str = "sms") -> None:
        self.store = store
        self.owner = owner
        self.channel = channel
        self.engine = store.engine
        self.dialect = store.dialect

    def fails_alone(self, exc: Exception) -> bool:
        return batch_fails_alone(exc)

    async def claim_due(self, *, now: datetime, limit: int) -> list[ClaimedMessage]:
        """Mark up to `limit` due queued messages `sending` (attempts + 1), leased to this
        worker, and return them, each with whether its number has opted out of SMS since it
        was queued. Nothing once this worker was declared dead (paused past its lease)."""
        async with writing(self.engine) as conn:
            params = {"now": now, "limit": limit, "owner": self.owner, "b_channel": self.channel}
            rows = (await conn.execute(_CLAIM, params)).all()
            # A webhook about an opted-out number (sms.opted_out) still goes to the order system.
            phones = {row.phone for row in rows} if self.channel == "sms" else set()
            opted_out = await _opted_out_of_sms(conn, phones)
        claimed = [
            ClaimedMessage(
                row.id,
                row.event_id,
                row.order_id,
                row.stage,
                row.phone,
                row.body,
                row.attempts,
                row.age_from,
                row.phone in opted_out,
                _templates(row.templates),
                row.ambiguous_since,
            )
            for row in rows
        ]
        return sorted(claimed, key=lambda message: message.id)

    async def record_outcomes(self, outcomes: Sequence[MessageOutcome]) -> None:
        """The outcomes of many messages in one transaction (see `MessageOutcome`)."""
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for outcome in outcomes:
            by_kind.setdefault(outcome.kind, []).append(outcome_params(outcome, self.owner))
        async with writing(self.engine) as conn:
            for kind, params in by_kind.items():
                await conn.execute(OUTCOME_STATEMENTS[kind], params)
            await record_outcomes_on_timeline(conn, outcomes)
            for outcome in outcomes:
                if outcome.opt_out_phone is not None:
                    await opt_out_rows.opt_out(
                        conn, outcome.opt_out_phone, source="provider", now=outcome.now
                    )

    async def sent_today(self, phone: str, *, since: datetime, besides: int) -> int:
        """Messages to `phone` sent since `since`, or `sending` now by another worker with a
        lower id than `besides` (in flight, it counts before its answer is in; of two, the
        older goes first, never both held). This worker's own sends to one number go one at a
        time (`dialer.messaging.limits.NumberTurns`)."""
        in_flight_elsewhere = sa.and_(
            _m.status == "sending",
            _m.id < besides,
            _m.lease_owner.is_distinct_from(self.owner),
        )
        query = sa.select(sa.func.count()).where(
            _m.phone == phone, sa.or_(_m.sent_at >= since, in_flight_elsewhere)
        )
        async with reading(self.engine) as conn:
            return int(await conn.scalar(query) or 0)

    async def record_outcome(self, outcome: MessageOutcome) -> bool:
        """The outcome of one claimed message; False when its row was not `sending`."""
        async with writing(self.engine) as conn:
            statement = OUTCOME_STATEMENTS[outcome.kind]
            result = await conn.execute(statement, outcome_params(outcome, self.owner))
            if result.rowcount:
                await record_outcomes_on_timeline(conn, [outcome])
            if outcome.opt_out_phone is not None:
                await opt_out_rows.opt_out(
                    conn, outcome.opt_out_phone, source="provider", now=outcome.now
                )
        return bool(result.rowcount)

    async def settle_sending(
        self, *, now: datetime, own: bool = True
    ) -> list[tuple[int, str, str]]:
        """Rows left `sending` by a crash go back to queued, due now: (id, order_id, stage) each:
        those of workers that are not live (declared dead: their lease ran out) and, with
        `own`, this worker's (its earlier life: only before claiming). Without an owner (one
        worker), every row `sending`. The provider may have taken such a message before the
        crash: it may have gone out: `ambiguous_since` (the claim's time) has it looked up at
        the providers that can tell (`dialer.messaging.dispatcher`) before it is sent again."""
        if self.owner is None:
            which = sa.and_(_m.status == "sending", _m.channel == self.channel)
        else:
            left = not_live(_m.lease_owner)
            mine = sa.or_(left, _m.lease_owner == self.owner) if own else left
            which = sa.and_(_m.status == "sending", _m.channel == self.channel, mine)
        async with writing(self.engine) as conn:
            rows = (
                await conn.execute(
                    outbound_messages.update()
                    .where(which)
                    .values(
                        status="queued",
                        lease_owner=None,
                        next_attempt_at=now,
                        last_error="resend_after_crash: was sending when the dispatcher stopped",
                        ambiguous_since=sa.func.coalesce(_m.ambiguous_since, _m.updated_at),
                        updated_at=now,
                    )
                    .returning(_m.id, _m.order_id, _m.stage)
                )
            ).all()
        return [(row.id, row.order_id, row.stage) for row in rows]

    async def record_delivery_status(
        self,
        *,
        status: str,
        now: datetime,
        message_id: int | None = None,
        provider_message_id: str | None = None,
        error_code: str | None = None,
        phone: str | None = None,
    ) -> DeliveryReport | None:
        """A provider's delivery report; the status only moves forward; with `phone`, only a
        message to that number. None: no row moved."""
        rank = DELIVERY_STATUS_RANK[status]
        lower = [name for name, value in DELIVERY_STATUS_RANK.items() if value < rank]
        which = (
            _m.id == message_id
            if message_id is not None
            else (_m.provider_message_id == provider_message_id)
        )
        if phone is not None:
            which = sa.and_(which, _m.phone == phone)
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if error_code:
            values["error_code"] = error_code
        if provider_message_id is not None:
            values["provider_message_id"] = sa.func.coalesce(
                _m.provider_message_id, provider_message_id
            )
        async with writing(self.engine) as conn:
            row = (
                await conn.execute(
                    outbound_messages.update()
                    .where(which, _m.status.in_(lower))
                    .values(**values)
                    .returning(
                        _m.id,
                        _m.stage,
                        _m.provider,
                        _m.attempts,
                        sa.func.coalesce(_m.replayed_at, _m.created_at).label("age_from"),
                        _m.phone,
                        _m.order_id,
                        _m.channel,
                    )
                )
            ).first()
            if row is not None:
                kind = "sms_delivered" if status == "delivered" else "sms_failed"
                if status in ("delivered", "undelivered", "failed"):
                    entry = message_entry(row, kind, now, reason=error_code or status)
                    await add_entries(conn, [entry])
        if row is None:
            return None
        return DeliveryReport(row.id, row.stage, row.provider, row.attempts, row.age_from)

    async def after_delivery_failure(
        self,
        message_id: int,
        *,
        retry_at: datetime | None,
        error: str,
        code: str | None,
        now: datetime,
    ) -> bool:
        """An undelivered or failed message queued again (`retry_at`) or dead."""
        values: dict[str, Any] = {
            "status": "queued" if retry_at is not None else "dead",
            "next_attempt_at": retry_at,
            "last_error": error,
            "error_code": code,
            "updated_at": now,
        }
        async with writing(self.engine) as conn:
            row = (
                await conn.execute(
                    outbound_messages.update()
                    .where(_m.id == message_id, _m.status.in_(["undelivered", "failed"]))
                    .values(**values)
                    .returning(_m.id, _m.phone, _m.order_id, _m.stage, _m.channel)
                )
            ).first()
            if row is not None:
                kind = "dead" if retry_at is None else "retry"
                await add_entries(
                    conn, [message_entry(row, kind, now, reason=error, until=retry_at)]
                )
        return row is not None

    async def replay_dead(self, message_id: int, *, now: datetime) -> bool:
        """A dead message queued again, due now; `max_age_s` counts from now (`replayed_at`),
        `created_at` stays when it was first queued. False: no such dead row."""
        async with writing(self.engine) as conn:
            result = await conn.execute(
                outbound_messages.update()
                .where(_m.id == message_id, _m.status == "dead")
                .values(
                    status="queued",
                    next_attempt_at=now,
                    replayed_at=now,
                    updated_at=now,
                    last_error=sa.literal("replayed; was ") + _m.last_error,
                )
            )
            await announce_queued(conn)
        return bool(result.rowcount)
