"""Intake.accept_batch: each event of a batch answered as if posted alone, the valid ones written
together, the dispatcher woken once, one event's failed write its own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic
import pytest

from dialer.config import Settings, parse_settings
from dialer.health import StoreUnavailable
from dialer.messaging.intake import WRITE_BATCH, Intake
from tests.fakes.event_repository import MemoryEvents

CONFIG = """\
ami: {username: outreach, secret: "${AMI_SECRET}"}
api: {token: "${API_TOKEN}"}
notifications:
  providers:
    outbox: {type: outbox, path: outbox.jsonl}
  primary: outbox
  stages:
    shipped: {template: "Order {order_id} shipped by {courier}"}
"""
NOW = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)


def settings() -> Settings:
    return parse_settings(
        CONFIG, source="t.yaml", base_dir=Path("."), environ={"AMI_SECRET": "a", "API_TOKEN": "t"}
    )


def event(event_id: str, *, order_id: str = "A1", stage: str = "shipped") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "order_id": order_id,
        "stage": stage,
        "phone": "+8613812345678",
        "occurred_at": "2025-06-02T12:00:00+08:00",
        "data": {"courier": "SF"},
    }


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def intake(events: MemoryEvents, wakes: Wakes | None = None) -> Intake:
    return Intake(settings(), events, now=lambda: NOW, on_queued=wakes)


async def test_each_event_of_a_batch_gets_the_answer_it_gets_alone() -> None:
    bodies = [
        event("e1"),
        event("e2", stage="teleported"),
        event("e1"),
        event("e1", order_id="B2"),
        event("e3", order_id="A3"),
    ]
    results = await intake(MemoryEvents()).accept_batch(bodies)
    alone = intake(MemoryEvents())
    for body, result in zip(bodies, results, strict=True):
        if result.invalid is None:
            assert (result.status, result.answer) == await alone.accept(body)
        else:
            with pytest.raises(pydantic.ValidationError) as refused:
                await alone.accept(body)
            worded = {"include_context": False, "include_url": False}
            assert result.invalid.errors(**worded) == refused.value.errors(**worded)
    assert [result.status for result in results] == [202, 422, 200, 409, 202]


async def test_the_valid_events_of_a_batch_are_written_together() -> None:
    events = MemoryEvents()
    bodies = [event("e1"), event("bad", stage="teleported"), event("e1"), event("e2", order_id="A")]
    await intake(events).accept_batch(bodies)
    assert events.batches == [["e1", "e1", "e2"]]  # the invalid one never reaches the writer


async def test_a_large_batch_is_written_in_transactions_of_write_batch_events() -> None:
    events = MemoryEvents()
    count = 2 * WRITE_BATCH + 7
    bodies = [event(f"e{i}", order_id=f"A{i}") for i in range(count)]
    results = await intake(events).accept_batch(bodies)
    assert [len(batch) for batch in events.batches] == [WRITE_BATCH, WRITE_BATCH, 7]
    assert [result.answer["event_id"] for result in results] == [f"e{i}" for i in range(count)]


async def test_a_batch_wakes_the_dispatcher_once_and_single_events_once_each() -> None:
    wakes = Wakes()
    accepting = intake(MemoryEvents(), wakes)
    await accepting.accept_batch([event(f"e{i}", order_id=f"A{i}") for i in range(5)])
    assert wakes.count == 1
    await accepting.accept(event("s1", order_id="S1"))
    await accepting.accept(event("s2", order_id="S2"))
    assert wakes.count == 3


async def test_a_batch_that_queues_nothing_wakes_nobody() -> None:
    wakes = Wakes()
    accepting = intake(MemoryEvents(), wakes)
    await accepting.accept(event("e1"))
    results = await accepting.accept_batch([event("e1"), event("e2", stage="teleported")])
    assert [result.status for result in results] == [200, 422]
    assert wakes.count == 1  # the single event's


async def test_an_event_whose_write_fails_alone_is_500_and_its_neighbours_are_written() -> None:
    events = MemoryEvents(poisoned=frozenset({"e2"}))
    bodies = [event(f"e{i}", order_id=f"A{i}") for i in (1, 2, 3)]
    results = await intake(events).accept_batch(bodies)
    assert [result.status for result in results] == [202, 500, 202]
    assert results[1].answer["event_id"] == "e2"
    assert set(events.events) == {"e1", "e3"}


async def test_a_store_failure_fails_the_whole_batch() -> None:
    events = MemoryEvents()
    events.unavailable = True
    with pytest.raises(StoreUnavailable):
        await intake(events).accept_batch([event("e1"), event("e2", order_id="A2")])
    assert events.batches == [["e1", "e2"]]  # one try for the lot, not one per event
    assert events.events == {}
