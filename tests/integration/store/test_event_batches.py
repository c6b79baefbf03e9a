"""The batch writes of the SMS store, on both stores: a batch of events in one transaction
gives each event what it would have got alone; a batch of outcomes moves each row as its own
write would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from dialer.messaging.ports import AcceptedEvent, IncomingEvent, MessageOutcome, NewMessage
from dialer.store import EventStore, OptOutStore, OutboxStore, Store
from dialer.store.engine import batch_fails_alone
from dialer.store.schema import events, opt_outs, outbound_messages
from tests.integration.sms_support import Now, message_row, queue_message


def incoming(
    event_id: str, now: Now, *, order_id: str = "A1", phone: str = "+14155550100"
) -> IncomingEvent:
    def respond(done: AcceptedEvent) -> dict[str, Any]:
        return {"event_id": event_id, "message": done.message_id, "skipped": done.message_skipped}

    return IncomingEvent(
        event_id=event_id,
        order_id=order_id,
        stage="shipped",
        phone=phone,
        payload={"event_id": event_id, "order_id": order_id},
        message=NewMessage(phone, f"body of {event_id}", 1, now()),
        new_contacts=[],
        now=now(),
        respond=respond,
    )


async def count(store: Store, table: sa.Table) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def test_a_batch_of_events_gives_each_what_it_would_get_alone(store: Store) -> None:
    now = Now()
    await OptOutStore(store).opt_out("+14155550199", source="test", now=now())
    first, again, same_order, opted_out, other = await EventStore(store).accept_events(
        [
            incoming("e1", now),
            incoming("e1", now),  # the same event twice in one batch
            incoming("e2", now),  # same order and stage as e1
            incoming("e3", now, order_id="A3", phone="+14155550199"),
            incoming("e4", now, order_id="A4"),
        ],
    )
    assert first.created
    assert first.message_id is not None
    assert first.stored.response == {"event_id": "e1", "message": first.message_id, "skipped": None}
    assert (again.created, again.stored, again.message_id) == (False, first.stored, None)
    assert (same_order.created, same_order.message_id) == (True, None)
    assert same_order.message_skipped == "already_queued"
    assert (opted_out.message_id, opted_out.message_skipped) == (None, "opted_out")
    assert other.message_id is not None
    assert other.message_id != first.message_id
    assert (await message_row(store, other.message_id))["body"] == "body of e4"
    assert await count(store, events) == 4
    assert await count(store, outbound_messages) == 2
    async with store.engine.connect() as conn:
        stored = dict((await conn.execute(sa.select(events.c.event_id, events.c.response))).all())
    assert stored["e2"] == {"event_id": "e2", "message": None, "skipped": "already_queued"}


async def test_an_event_already_stored_writes_nothing_and_the_rest_of_its_batch_is_written(
    store: Store,
) -> None:
    now = Now()
    [stored] = await EventStore(store).accept_events([incoming("e1", now)])
    known, new = await EventStore(store).accept_events(
        [incoming("e1", now, order_id="B1"), incoming("e2", now, order_id="B2")]
    )
    assert (known.created, known.stored, known.message_id) == (False, stored.stored, None)
    assert new.created
    assert new.message_id is not None
    assert await count(store, events) == 2
    assert await count(store, outbound_messages) == 2


async def test_a_batch_of_outcomes_moves_each_row_as_its_own_write_would(store: Store) -> None:
    now = Now()
    sent, retried, dead, delivered = [
        await queue_message(store, now, order_id=f"O{i}", phone=f"+1415555{100 + i:04d}")
        for i in range(4)
    ]
    await OutboxStore(store).claim_due(now=now(), limit=10)
    await OutboxStore(store).record_delivery_status(
        status="delivered", now=now(), message_id=delivered
    )
    later = now() + timedelta(seconds=30)
    await OutboxStore(store).record_outcomes(
        [
            MessageOutcome("sent", sent, now(), provider="twilio", provider_message_id="SM1"),
            MessageOutcome("retry", retried, now(), at=later, error="503", code="503"),
            MessageOutcome(
                "dead", dead, now(), error="opted_out: STOP", code="21610", opt_out_phone="+1"
            ),
            MessageOutcome("sent", delivered, now(), provider="twilio", provider_message_id="SM4"),
        ],
    )
    rows = {message_id: await message_row(store, message_id) for message_id in (sent, retried)}
    assert (rows[sent]["status"], rows[sent]["provider_message_id"]) == ("sent", "SM1")
    assert (rows[retried]["status"], rows[retried]["next_attempt_at"]) == ("queued", later)
    dead_row = await message_row(store, dead)
    assert (dead_row["status"], dead_row["last_error"]) == ("dead", "opted_out: STOP")
    delivered_row = await message_row(store, delivered)
    assert (delivered_row["status"], delivered_row["provider_message_id"]) == ("delivered", "SM4")
    async with store.engine.connect() as conn:
        assert (await conn.execute(sa.select(opt_outs.c.phone))).scalars().all() == ["+1"]


def test_a_constraint_fails_alone_and_an_unreachable_store_fails_the_batch() -> None:
    constraint = sa.exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
    unreachable = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert batch_fails_alone(constraint)
    assert not batch_fails_alone(unreachable)
    assert not batch_fails_alone(ConnectionResetError())
