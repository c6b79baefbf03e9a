"""The outbox of messages and their fate: claims, outcomes, delivery reports, dead letters.

A message row moves through these statuses (store.MESSAGE_STATUSES)::

    queued --claim--> sending --> sent --> delivered | undelivered | failed   (status callbacks)
      ^                  |  \\--> queued (transient: next_attempt_at later)
      |                  \\----> dead   (permanent, opted out, or too old; last_error says why)
      +---- replay (dead) / settle after a crash (sending) -----+

- `claim_due` marks due rows `sending` (attempts + 1) in their own transaction before any
  provider is called. On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so workers
  never claim the same row; on SQLite the transaction is BEGIN IMMEDIATE (see store.py), so
  the claim is atomic.
- Outcome writes only touch a row still `sending`; delivery statuses only move forward, so a
  late `sent` never undoes `delivered` (`STATUS_RANK`). `record_outcomes` writes the outcomes
  of many messages in one transaction (one executemany per kind).
- `last_error` of a dead message starts with its reason: `number: ...`, `opted_out: ...`,
  `provider: ...`, `expired: ...`.

The statements of the hot path are built once, with bind parameters, so running one skips
SQLAlchemy's statement construction and cache-key computation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer import contacts as contact_rows
from dialer.store import Store, UtcDateTime, opt_outs, outbound_messages

__all__ = [
    "STATUS_RANK",
    "Backlog",
    "ClaimedMessage",
    "DeadMessage",
    "DeliveryReport",
    "Outcome",
    "backlog",
    "claim_due",
    "list_dead",
    "mark_dead",
    "message_status",
    "record_delivery_status",
    "record_outcomes",
    "record_sent",
    "replay_dead",
    "schedule_retry",
    "settle_sending",
]

STATUS_RANK: Mapping[str, int] = {
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
}

_m = outbound_messages.c
_PAST_SENDING = ("sent", "delivered", "undelivered", "failed")


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    event_id: str
    order_id: str
    stage: str
    phone: str
    body: str
    attempts: int
    created_at: datetime
    opted_out: bool


@dataclass(frozen=True)
class DeadMessage:
    id: int
    order_id: str
    stage: str
    phone: str
    error_code: str | None
    last_error: str | None
    attempts: int
    updated_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed message, for `record_outcomes`: `kind` is `sent` (with the
    provider and its id), `retry` (due again at `at`) or `dead` (`error` starts with the
    reason; with `opt_out_phone`, that number is opted out too)."""

    kind: str
    message_id: int
    now: datetime
    provider: str | None = None
    provider_message_id: str | None = None
    at: datetime | None = None
    error: str | None = None
    code: str | None = None
    opt_out_phone: str | None = None


@dataclass(frozen=True)
class Backlog:
    """What waits in the outbox: rows queued or sending, and how overdue the oldest due one is."""

    depth: int
    oldest_due_age_s: float


@dataclass(frozen=True)
class DeliveryReport:
    """A delivery report that moved a message: which stage, through which provider."""

    stage: str
    provider: str | None


def _now_param(name: str = "now") -> sa.BindParameter[datetime]:
    return sa.bindparam(name, type_=UtcDateTime())


_DUE = (
    sa.select(_m.id)
    .where(_m.status == "queued", _m.next_attempt_at <= _now_param())
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
    .values(status="sending", attempts=_m.attempts + 1, updated_at=_now_param())
    .returning(
        _m.id,
        _m.event_id,
        _m.order_id,
        _m.stage,
        _m.phone,
        _m.body,
        _m.attempts,
        _m.created_at,
    )
)
# Read in the claim's transaction: the number may have opted out since it was queued. (Not a
# correlated EXISTS in RETURNING: SQLite renders RETURNING without table names, and there
# `opt_outs.phone = outbound_messages.phone` became `phone = phone`, true for any opt-out.)
_OPTED_OUT_OF_SMS = sa.select(opt_outs.c.phone).where(
    opt_outs.c.phone.in_(sa.bindparam("phones", expanding=True)),
    opt_outs.c.scope.in_(["sms", "all"]),
)
_SENT = (
    outbound_messages.update()
    .where(
        _m.id == sa.bindparam("b_id"),
        # Any status from `sending` on but `dead` (no IN list: executemany takes no expanding
        # parameter).
        sa.or_(*(_m.status == status for status in ("sending", *_PAST_SENDING))),
    )
    .values(
        status=sa.case((_m.status == "sending", "sent"), else_=_m.status),
        provider=sa.bindparam("b_provider"),
        provider_message_id=sa.bindparam("b_provider_message_id"),
        sent_at=_now_param("b_now"),
        next_attempt_at=None,
        last_error=None,
        error_code=None,
        updated_at=_now_param("b_now"),
    )
)
_RETRY = (
    outbound_messages.update()
    .where(_m.id == sa.bindparam("b_id"), _m.status == "sending")
    .values(
        status="queued",
        next_attempt_at=_now_param("b_at"),
        last_error=sa.bindparam("b_error"),
        error_code=sa.bindparam("b_code"),
        updated_at=_now_param("b_now"),
    )
)
_DEAD = (
    outbound_messages.update()
    .where(_m.id == sa.bindparam("b_id"), _m.status == "sending")
    .values(
        status="dead",
        next_attempt_at=None,
        last_error=sa.bindparam("b_error"),
        error_code=sa.bindparam("b_code"),
        updated_at=_now_param("b_now"),
    )
)


async def claim_due(store: Store, *, now: datetime, limit: int) -> list[ClaimedMessage]:
    """Mark up to `limit` due queued messages `sending` (attempts + 1) and return them, each
    with whether its number has opted out of SMS since it was queued."""
    async with store.engine.begin() as conn:
        rows = (await conn.execute(_CLAIM, {"now": now, "limit": limit})).all()
        opted_out = await _opted_out_of_sms(conn, {row.phone for row in rows})
    claimed = [
        ClaimedMessage(
            row.id,
            row.event_id,
            row.order_id,
            row.stage,
            row.phone,
            row.body,
            row.attempts,
            row.created_at,
            row.phone in opted_out,
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda message: message.id)


async def _opted_out_of_sms(conn: AsyncConnection, phones: set[str]) -> set[str]:
    """Which of these numbers are opted out of SMS (scope `sms` or `all`)."""
    if not phones:
        return set()
    return set(await conn.scalars(_OPTED_OUT_OF_SMS, {"phones": sorted(phones)}))


def _params(outcome: Outcome) -> dict[str, Any]:
    if outcome.kind == "sent":
        return {
            "b_id": outcome.message_id,
            "b_provider": outcome.provider,
            "b_provider_message_id": outcome.provider_message_id,
            "b_now": outcome.now,
        }
    params = {
        "b_id": outcome.message_id,
        "b_error": outcome.error,
        "b_code": outcome.code,
        "b_now": outcome.now,
    }
    return {**params, "b_at": outcome.at} if outcome.kind == "retry" else params


_STATEMENTS = {"sent": _SENT, "retry": _RETRY, "dead": _DEAD}


async def record_outcomes(store: Store, outcomes: Sequence[Outcome]) -> None:
    """The outcomes of many messages in one transaction (see `Outcome`)."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.kind, []).append(_params(outcome))
    async with store.engine.begin() as conn:
        for kind, params in by_kind.items():
            await conn.execute(_STATEMENTS[kind], params)
        for outcome in outcomes:
            if outcome.opt_out_phone is not None:
                await contact_rows.opt_out(
                    conn, outcome.opt_out_phone, source="provider", now=outcome.now
                )


async def _record_one(store: Store, outcome: Outcome) -> bool:
    async with store.engine.begin() as conn:
        result = await conn.execute(_STATEMENTS[outcome.kind], _params(outcome))
        if outcome.opt_out_phone is not None:
            await contact_rows.opt_out(
                conn, outcome.opt_out_phone, source="provider", now=outcome.now
            )
    return bool(result.rowcount)


async def record_sent(
    store: Store, message_id: int, *, provider: str, provider_message_id: str, now: datetime
) -> bool:
    """The provider took the message. A delivery status that arrived first is kept."""
    outcome = Outcome(
        "sent", message_id, now, provider=provider, provider_message_id=provider_message_id
    )
    return await _record_one(store, outcome)


async def schedule_retry(
    store: Store, message_id: int, *, at: datetime, error: str, code: str | None, now: datetime
) -> bool:
    """Back to queued, due at `at`."""
    return await _record_one(
        store, Outcome("retry", message_id, now, at=at, error=error, code=code)
    )


async def mark_dead(
    store: Store,
    message_id: int,
    *,
    reason: str,
    error: str,
    code: str | None,
    now: datetime,
    opt_out_phone: str | None = None,
) -> bool:
    """Dead with its reason; with `opt_out_phone`, that number is opted out in the same
    transaction (Twilio said the recipient replied STOP)."""
    outcome = Outcome(
        "dead", message_id, now, error=f"{reason}: {error}", code=code, opt_out_phone=opt_out_phone
    )
    return await _record_one(store, outcome)


async def settle_sending(store: Store, *, now: datetime) -> list[tuple[int, str, str]]:
    """Rows left `sending` by a crash go back to queued, due now: (id, order_id, stage) each.
    The provider may have taken such a message before the crash: it may go out twice."""
    async with store.engine.begin() as conn:
        rows = (
            await conn.execute(
                outbound_messages.update()
                .where(_m.status == "sending")
                .values(
                    status="queued",
                    next_attempt_at=now,
                    last_error="resend_after_crash: was sending when the dispatcher stopped",
                    updated_at=now,
                )
                .returning(_m.id, _m.order_id, _m.stage)
            )
        ).all()
    return [(row.id, row.order_id, row.stage) for row in rows]


async def record_delivery_status(
    store: Store,
    *,
    status: str,
    now: datetime,
    message_id: int | None = None,
    provider_message_id: str | None = None,
    error_code: str | None = None,
) -> DeliveryReport | None:
    """A provider's delivery report; the status only moves forward. None: no row moved."""
    rank = STATUS_RANK[status]
    lower = [name for name, value in STATUS_RANK.items() if value < rank]
    which = (
        _m.id == message_id
        if message_id is not None
        else (_m.provider_message_id == provider_message_id)
    )
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if error_code:
        values["error_code"] = error_code
    if provider_message_id is not None:
        values["provider_message_id"] = sa.func.coalesce(
            _m.provider_message_id, provider_message_id
        )
    async with store.engine.begin() as conn:
        row = (
            await conn.execute(
                outbound_messages.update()
                .where(which, _m.status.in_(lower))
                .values(**values)
                .returning(_m.stage, _m.provider)
            )
        ).first()
    return None if row is None else DeliveryReport(row.stage, row.provider)


async def backlog(store: Store, *, now: datetime) -> Backlog:
    """Rows queued or sending, and now minus the oldest `next_attempt_at` already due."""
    waiting = _m.status.in_(["queued", "sending"])
    due = sa.and_(_m.status == "queued", _m.next_attempt_at <= now)
    query = sa.select(
        sa.func.count().filter(waiting),
        sa.func.min(_m.next_attempt_at).filter(due),
    )
    async with store.engine.connect() as conn:
        depth, oldest = (await conn.execute(query)).one()
    age_s = (now - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(depth=int(depth or 0), oldest_due_age_s=max(0.0, age_s))


async def message_status(store: Store, message_id: int) -> Mapping[str, Any] | None:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(sa.select(outbound_messages).where(_m.id == message_id))
        ).one_or_none()
    return None if row is None else dict(row._mapping)


async def list_dead(store: Store, *, limit: int = 1000) -> list[DeadMessage]:
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    _m.id,
                    _m.order_id,
                    _m.stage,
                    _m.phone,
                    _m.error_code,
                    _m.last_error,
                    _m.attempts,
                    _m.updated_at,
                )
                .where(_m.status == "dead")
                .order_by(_m.updated_at.desc(), _m.id.desc())
                .limit(limit)
            )
        ).all()
    return [DeadMessage(*row) for row in rows]


async def replay_dead(store: Store, message_id: int, *, now: datetime) -> bool:
    """A dead message queued again, due now, its age counted anew. False: no such dead row."""
    async with store.engine.begin() as conn:
        result = await conn.execute(
            outbound_messages.update()
            .where(_m.id == message_id, _m.status == "dead")
            .values(
                status="queued",
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
                last_error=sa.literal("replayed; was ") + _m.last_error,
            )
        )
    return bool(result.rowcount)
