"""A non-idempotent send is not repeated after an ambiguous failure when the provider says it
took the message; the blocking SDK calls run in a bounded pool, off the event loop."""

from __future__ import annotations

import asyncio
import threading
from datetime import date

import pytest

from notifiers import OutboundSms, PermanentError, SendResult, TransientError
from notifiers.blocking import AmbiguousSends, BlockingCalls, send_at_most_once

MESSAGE = OutboundSms("msg-42", "+8613812345678", "【优品购】您的订单已发货")
TODAY = date(2026, 12, 6)
SENT = SendResult("aliyun", "biz-1", "queued")
FOUND = SendResult("aliyun", "msg-42", "delivered")


class Provider:
    """A scripted send and a scripted lookup, recording their calls."""

    def __init__(
        self,
        sends: list[SendResult | BaseException],
        lookups: list[SendResult | BaseException | None] | None = None,
    ) -> None:
        self.sends = sends
        self.lookups = lookups or []
        self.sent = 0
        self.looked_up: list[date] = []

    async def send(self, message: OutboundSms) -> SendResult:
        self.sent += 1
        item = self.sends.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    async def lookup(self, message: OutboundSms, day: date) -> SendResult | None:
        self.looked_up.append(day)
        item = self.lookups.pop(0) if self.lookups else None
        if isinstance(item, BaseException):
            raise item
        return item


async def attempt(provider: Provider, memory: AmbiguousSends, today: date = TODAY) -> SendResult:
    return await send_at_most_once(
        MESSAGE,
        send=provider.send,
        lookup=provider.lookup,
        ambiguous=memory,
        today=today,
        provider="aliyun",
    )


async def test_a_send_that_passes_asks_nothing_first() -> None:
    provider, memory = Provider([SENT]), AmbiguousSends()
    assert await attempt(provider, memory) == SENT
    assert provider.looked_up == []


async def test_after_an_ambiguous_failure_the_next_send_returns_what_the_provider_took() -> None:
    provider = Provider([TransientError("timed out", ambiguous=True)], lookups=[FOUND])
    memory = AmbiguousSends()
    with pytest.raises(TransientError):
        await attempt(provider, memory)
    assert await attempt(provider, memory) == FOUND
    assert provider.sent == 1  # never sent again
    assert provider.looked_up == [TODAY]
    assert "msg-42" not in memory


async def test_when_the_provider_has_no_record_the_message_is_sent_again() -> None:
    provider = Provider([TransientError("reset", ambiguous=True), SENT], lookups=[None])
    memory = AmbiguousSends()
    with pytest.raises(TransientError):
        await attempt(provider, memory)
    assert await attempt(provider, memory) == SENT
    assert provider.sent == 2
    assert "msg-42" not in memory


async def test_when_the_lookup_fails_nothing_is_sent_and_the_doubt_remains() -> None:
    provider = Provider(
        [TransientError("timed out", ambiguous=True)], lookups=[TransientError("down")]
    )
    memory = AmbiguousSends()
    with pytest.raises(TransientError):
        await attempt(provider, memory)
    with pytest.raises(TransientError) as raised:
        await attempt(provider, memory)
    assert raised.value.ambiguous is True
    assert provider.sent == 1
    assert "msg-42" in memory


async def test_a_failure_that_did_not_reach_the_provider_leaves_no_doubt() -> None:
    provider = Provider([TransientError("refused", ambiguous=False), SENT])
    memory = AmbiguousSends()
    with pytest.raises(TransientError):
        await attempt(provider, memory)
    assert await attempt(provider, memory) == SENT
    assert provider.looked_up == []


async def test_a_permanent_failure_leaves_no_doubt() -> None:
    provider, memory = Provider([PermanentError("bad number", reason="number")]), AmbiguousSends()
    with pytest.raises(PermanentError):
        await attempt(provider, memory)
    assert len(memory) == 0


async def test_a_cancelled_send_is_remembered_as_ambiguous() -> None:
    class Cancelled(Provider):
        async def send(self, message: OutboundSms) -> SendResult:
            raise asyncio.CancelledError

    memory = AmbiguousSends()
    with pytest.raises(asyncio.CancelledError):
        await attempt(Cancelled([]), memory)
    assert memory.days("msg-42") == [TODAY]


async def test_each_day_an_ambiguous_try_was_made_is_looked_up() -> None:
    provider = Provider(
        [TransientError("t1", ambiguous=True), TransientError("t2", ambiguous=True)],
        lookups=[None, None, FOUND],
    )
    memory = AmbiguousSends()
    with pytest.raises(TransientError):
        await attempt(provider, memory, date(2026, 12, 6))
    with pytest.raises(TransientError):
        await attempt(provider, memory, date(2026, 12, 7))
    assert await attempt(provider, memory, date(2026, 12, 7)) == FOUND
    assert provider.looked_up == [date(2026, 12, 6), date(2026, 12, 6), date(2026, 12, 7)]


def test_the_memory_is_bounded_and_forgets_the_oldest() -> None:
    memory = AmbiguousSends(max_messages=2)
    for message_id in ("a", "b", "c"):
        memory.remember(message_id, TODAY)
    assert ("a" in memory, "b" in memory, "c" in memory) == (False, True, True)


# --------------------------------------------------------------------------- the pool


async def test_blocking_calls_run_off_the_event_loop_and_at_most_n_at_once() -> None:
    calls = BlockingCalls(2, thread_name_prefix="test")
    lock = threading.Lock()
    running, most = 0, 0
    both_running = threading.Barrier(2, timeout=5)
    loop_thread = threading.get_ident()

    def work(index: int) -> int:
        nonlocal running, most
        assert threading.get_ident() != loop_thread
        with lock:
            running += 1
            most = max(most, running)
        if index < 2:
            both_running.wait()  # the first two are on the wire together
        with lock:
            running -= 1
        return index

    results = await asyncio.gather(*(calls.run(work, index) for index in range(5)))
    calls.close()
    assert results == [0, 1, 2, 3, 4]
    assert most == 2


async def test_a_call_cancelled_while_it_waits_for_a_thread_leaves_the_queue() -> None:
    calls = BlockingCalls(1, thread_name_prefix="test")
    release = threading.Event()
    first = asyncio.create_task(calls.run(release.wait, 5))
    second = asyncio.create_task(calls.run(lambda: "never"))
    while calls.running != 1 or calls.queued != 1:  # noqa: ASYNC110  (set by the thread)
        await asyncio.sleep(0.001)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert calls.queued == 0
    release.set()
    assert await first is True
    assert (calls.running, calls.queued) == (0, 0)
    calls.close()


async def test_a_closed_pool_refuses_new_calls() -> None:
    calls = BlockingCalls(1, thread_name_prefix="test")
    calls.close()
    assert calls.closed
    with pytest.raises(RuntimeError, match="closed"):
        await calls.run(lambda: 1)


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        BlockingCalls(0, thread_name_prefix="test")
