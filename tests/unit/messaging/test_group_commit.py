"""GroupCommit: what arrives together is written together; one bad item fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from dialer.messaging.group_commit import GroupCommit


class Writer:
    """A batch writer that records its batches; `bad` items make a batch fail; `gate`, when
    set, holds each write until it is opened."""

    def __init__(self, bad: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.bad = bad
        self.gate: asyncio.Event | None = None
        self.writing = asyncio.Event()

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.writing.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.bad.intersection(items):
            raise ValueError(f"bad item in {list(items)}")
        return [item * 10 for item in items]


async def test_items_submitted_in_the_same_turn_are_written_in_one_batch() -> None:
    writer = Writer()
    group = GroupCommit(writer)
    results = await asyncio.gather(*(group.submit(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert writer.batches == [[0, 1, 2, 3, 4]]


async def test_items_arriving_during_a_write_go_together_in_the_next_batch() -> None:
    writer = Writer()
    writer.gate = asyncio.Event()
    group = GroupCommit(writer)
    first = asyncio.create_task(group.submit(1))
    await writer.writing.wait()
    later = [asyncio.create_task(group.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    writer.gate.set()
    assert await asyncio.gather(first, *later) == [10, 20, 30, 40]
    assert writer.batches == [[1], [2, 3, 4]]


async def test_batches_are_cut_at_max_batch() -> None:
    writer = Writer()
    group = GroupCommit(writer, max_batch=2)
    await asyncio.gather(*(group.submit(i) for i in range(5)))
    assert writer.batches == [[0, 1], [2, 3], [4]]


async def test_a_bad_item_fails_alone_and_the_others_are_written() -> None:
    writer = Writer(bad=frozenset({2}))
    group = GroupCommit(writer)
    results = await asyncio.gather(*(group.submit(i) for i in range(4)), return_exceptions=True)
    assert results[:2] == [0, 10]
    assert results[3] == 30
    assert isinstance(results[2], ValueError)
    assert writer.batches == [[0, 1, 2, 3], [0], [1], [2], [3]]


async def test_a_cancelled_caller_does_not_stop_its_item_from_being_written() -> None:
    writer = Writer()
    writer.gate = asyncio.Event()
    group = GroupCommit(writer)
    caller = asyncio.create_task(group.submit(7))
    await writer.writing.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    writer.gate.set()
    assert await group.submit(8) == 80
    assert writer.batches == [[7], [8]]


def test_max_batch_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(Writer(), max_batch=0)


async def test_a_failure_that_is_not_an_items_fault_fails_the_batch_at_once() -> None:
    writer = Writer(bad=frozenset({2}))
    group = GroupCommit(writer, fails_alone=lambda exc: False)
    results = await asyncio.gather(*(group.submit(i) for i in range(4)), return_exceptions=True)
    assert all(isinstance(result, ValueError) for result in results)
    assert writer.batches == [[0, 1, 2, 3]]
