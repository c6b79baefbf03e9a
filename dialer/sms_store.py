"""Every SQL statement of the SMS side: accepted events, the outbox of messages, their fate.

A message row moves through these statuses (store.MESSAGE_STATUSES)::

    queued --claim--> sending --> sent --> delivered | undelivered | failed   (status callbacks)
      ^                  |  \\--> queued (transient: next_attempt_at later)
      |                  \\----> dead   (permanent, opted out, or too old; last_error says why)
      +---- replay (dead) / settle after a crash (sending) -----+

- `accept_event` writes an event, its message and its contacts in ONE transaction.
- `claim_due` marks due rows `sending` (attempts + 1) in their own transaction before any
  provider is called. On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so workers
  never claim the same row; on SQLite the transaction is BEGIN IMMEDIATE (see store.py), so
  the claim is atomic.
- Outcome writes only touch a row still `sending`; delivery statuses only move forward, so a
  late `sent` never undoes `delivered` (`STATUS_RANK`).
- `last_error` of a dead message starts with its reason: `number: ...`, `opted_out: ...`,
  `provider: ...`, `expired: ...`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer import contacts as contact_rows
from dialer.store import Store, events, opt_outs, outbound_messages

__all__ = [
    "STATUS_RANK",
    "ClaimedMessage",
    "DeadMessage",
    "NewContact",
    "NewMessage",
    "StoredEvent",
    "accept_event",
    "claim_due",
    "find_event",
    "list_dead",
    "mark_dead",
    "message_status",
    "opt_in_number",
    "opt_out_number",
    "record_delivery_status",
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


@dataclass(frozen=True)
class StoredEvent:
    payload: dict[str, Any]
    response: dict[str, Any] | None


@dataclass(frozen=True)
class NewMessage:
    phone: str
    body: str
    segments: int
    next_attempt_at: datetime


@dataclass(frozen=True)
class NewContact:
    campaign: str
    kind: str
    phone: str
    name: str | None
    context: Mapping[str, Any]


@dataclass(frozen=True)
class AcceptedEvent:
    """What `accept_event` did: `created` False means the event_id was already there."""

    created: bool
    stored: StoredEvent
    message_id: int | None
    message_skipped: str | None  # "opted_out" | "already_queued" when no row was written
    contacts: list[dict[str, Any]]


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


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT for the connection's dialect (both support it)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


async def find_event(store: Store, event_id: str) -> StoredEvent | None:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(events.c.payload, events.c.response).where(events.c.event_id == event_id)
            )
        ).one_or_none()
    return None if row is None else StoredEvent(row.payload, row.response)


async def accept_event(
    store: Store,
    *,
    event_id: str,
    order_id: str,
    stage: str,
    phone: str,
    payload: Mapping[str, Any],
    message: NewMessage | None,
    new_contacts: Sequence[NewContact],
    now: datetime,
    respond: Callable[[AcceptedEvent], dict[str, Any]],
) -> AcceptedEvent:
    """Write the event, its message (at most one per order and stage; none to an opted-out
    number) and its contacts (none opted out of calls) in one transaction. When the event_id
    is already stored, write nothing and return the stored event. `respond` makes the answer
    from what was written; it is stored with the event, in the same transaction."""
    async with store.engine.begin() as conn:
        event_row = await conn.scalar(
            _insert(conn, events)
            .values(
                event_id=event_id,
                order_id=order_id,
                stage=stage,
                phone=phone,
                payload=dict(payload),
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(events.c.id)
        )
        if event_row is None:
            row = (
                await conn.execute(
                    sa.select(events.c.payload, events.c.response).where(
                        events.c.event_id == event_id
                    )
                )
            ).one()
            return AcceptedEvent(False, StoredEvent(row.payload, row.response), None, None, [])
        message_id, skipped = None, None
        if message is not None:
            if await contact_rows.is_opted_out(conn, phone, "sms"):
                skipped = "opted_out"
            else:
                message_id = await conn.scalar(
                    _insert(conn, outbound_messages)
                    .values(
                        event_id=event_id,
                        order_id=order_id,
                        stage=stage,
                        phone=message.phone,
                        body=message.body,
                        segments=message.segments,
                        status="queued",
                        next_attempt_at=message.next_attempt_at,
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["order_id", "stage"])
                    .returning(_m.id)
                )
                skipped = None if message_id is not None else "already_queued"
        added: list[dict[str, Any]] = []
        for contact in new_contacts:
            if await contact_rows.is_opted_out(conn, contact.phone, "call"):
                added.append({"campaign": contact.campaign, "skipped": "opted_out"})
                continue
            campaign_id = await contact_rows.ensure_campaign(conn, contact.campaign, contact.kind)
            result = await contact_rows.add_contact(
                conn,
                campaign_id=campaign_id,
                phone=contact.phone,
                due_at=now,
                now=now,
                name=contact.name,
                context=contact.context,
            )
            added.append(
                {
                    "campaign": contact.campaign,
                    "contact_id": result.contact_id,
                    "merged": result.merged,
                    "waiting": result.waiting,
                }
            )
        accepted = AcceptedEvent(True, StoredEvent(dict(payload), None), message_id, skipped, added)
        response = respond(accepted)
        await conn.execute(
            events.update().where(events.c.id == event_row).values(response=response)
        )
    return AcceptedEvent(True, StoredEvent(dict(payload), response), message_id, skipped, added)


async def claim_due(store: Store, *, now: datetime, limit: int) -> list[ClaimedMessage]:
    """Mark up to `limit` due queued messages `sending` (attempts + 1) and return them, each
    with whether its number has opted out of SMS since it was queued."""
    due = (
        sa.select(_m.id)
        .where(_m.status == "queued", _m.next_attempt_at <= now)
        .order_by(_m.next_attempt_at, _m.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        # Materialised once: an IN (subquery ... LIMIT ... SKIP LOCKED) may be re-run by the
        # PostgreSQL planner and then claim more rows than the limit.
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    async with store.engine.begin() as conn:
        rows = (
            await conn.execute(
                outbound_messages.update()
                .where(_m.id == due.c.id, _m.status == "queued")
                .values(status="sending", attempts=_m.attempts + 1, updated_at=now)
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
        ).all()
        if not rows:
            return []
        phones = {row.phone for row in rows}
        blocked = set(
            (
                await conn.execute(
                    sa.select(opt_outs.c.phone).where(
                        opt_outs.c.phone.in_(phones), opt_outs.c.scope.in_(["sms", "all"])
                    )
                )
            ).scalars()
        )
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
            row.phone in blocked,
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda message: message.id)


async def record_sent(
    store: Store, message_id: int, *, provider: str, provider_message_id: str, now: datetime
) -> bool:
    """The provider took the message. A delivery status that arrived first is kept."""
    async with store.engine.begin() as conn:
        result = await conn.execute(
            outbound_messages.update()
            .where(
                _m.id == message_id,
                _m.status.in_(["sending", "sent", "delivered", "undelivered", "failed"]),
            )
            .values(
                status=sa.case((_m.status == "sending", "sent"), else_=_m.status),
                provider=provider,
                provider_message_id=provider_message_id,
                sent_at=now,
                next_attempt_at=None,
                last_error=None,
                error_code=None,
                updated_at=now,
            )
        )
    return bool(result.rowcount)


async def schedule_retry(
    store: Store, message_id: int, *, at: datetime, error: str, code: str | None, now: datetime
) -> bool:
    """Back to queued, due at `at`."""
    async with store.engine.begin() as conn:
        result = await conn.execute(
            outbound_messages.update()
            .where(_m.id == message_id, _m.status == "sending")
            .values(
                status="queued",
                next_attempt_at=at,
                last_error=error,
                error_code=code,
                updated_at=now,
            )
        )
    return bool(result.rowcount)


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
    async with store.engine.begin() as conn:
        result = await conn.execute(
            outbound_messages.update()
            .where(_m.id == message_id, _m.status == "sending")
            .values(
                status="dead",
                next_attempt_at=None,
                last_error=f"{reason}: {error}",
                error_code=code,
                updated_at=now,
            )
        )
        if opt_out_phone is not None:
            await contact_rows.opt_out(conn, opt_out_phone, source="provider", now=now)
    return bool(result.rowcount)


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
) -> bool:
    """A provider's delivery report; the status only moves forward. False: no row moved."""
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
        result = await conn.execute(
            outbound_messages.update().where(which, _m.status.in_(lower)).values(**values)
        )
    return bool(result.rowcount)


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


async def opt_out_number(store: Store, phone: str, *, source: str, now: datetime) -> None:
    async with store.engine.begin() as conn:
        await contact_rows.opt_out(conn, phone, source=source, now=now)


async def opt_in_number(store: Store, phone: str) -> None:
    async with store.engine.begin() as conn:
        await contact_rows.opt_in(conn, phone)
