"""A property of the dispatcher on a real SQLite store, with random faults: transient and
permanent failures, successes, and crashes between the claim and the saved outcome (before or
after the provider took the message). Whatever happens, every message ends sent or dead with
a reason, none is lost, and none is sent twice unless a crash came between."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.messaging.dispatcher import Dispatcher, RetryPolicy
from dialer.store import OutboxStore, Store
from dialer.store.schema import outbound_messages
from notifiers import OutboundSms, PermanentError, SendResult, TransientError
from tests.fakes.notifier import ScriptedNotifier
from tests.integration.sms_support import Now, queue_message

STEPS = [
    "ok",
    "transient",
    "transient_ambiguous",
    "retry_after",
    "number",
    "provider",
    "opted_out",
    "crash_before",
    "crash_after",
]
ITEMS: dict[str, SendResult | BaseException] = {
    "transient": TransientError("503", code=503),
    "transient_ambiguous": TransientError("time-out", ambiguous=True),
    "retry_after": TransientError("429", code=20429, retry_after_s=600),
    "number": PermanentError("invalid To", code=21211, reason="number"),
    "provider": PermanentError("auth", code=20003, reason="provider"),
    "opted_out": PermanentError("unsubscribed", code=21610, reason="opted_out"),
}


class Crashing:
    """Plays `steps` in order over a ScriptedNotifier; a crash step never returns: the test
    then kills the "process" (cancels every task of the dispatcher)."""

    def __init__(self, steps: list[str]) -> None:
        self.steps = list(steps)
        self.inner = ScriptedNotifier("fake")
        self.name = "fake"
        self.crashed = asyncio.Event()
        self.delivered: Counter[str] = Counter()  # message -> times the provider took it
        self.crashes_after: Counter[str] = Counter()

    async def send(self, message: OutboundSms) -> SendResult:
        step = self.steps.pop(0) if self.steps else "ok"
        if step == "crash_before":
            self.crashed.set()
            await asyncio.Event().wait()
        self.inner.script = [ITEMS[step]] if step in ITEMS else []
        result = await self.inner.send(message)  # raises the scripted error
        self.delivered[message.message_id] += 1
        if step == "crash_after":
            self.crashes_after[message.message_id] += 1
            self.crashed.set()
            await asyncio.Event().wait()
        return result

    async def close(self) -> None:
        pass


async def scenario(messages: int, steps: list[str], concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = await Store.open(f"sqlite+aiosqlite:///{Path(directory) / 'p.db'}")
        try:
            await check(store, messages, steps, concurrency)
        finally:
            await store.close()


async def check(store: Store, messages: int, steps: list[str], concurrency: int) -> None:
    now = Now()
    ids = [
        await queue_message(store, now, order_id=f"O{i}", phone=f"+1415555{100 + i:04d}")
        for i in range(messages)
    ]
    notifier = Crashing(steps)
    policy = RetryPolicy(backoff_initial_s=30, backoff_max_s=600, max_age_s=10**7)
    for _ in range(4 * len(steps) + 10):  # each round: a process that may crash
        notifier.crashed = asyncio.Event()
        dispatcher = Dispatcher(
            OutboxStore(store), notifier, now=now, policy=policy, concurrency=concurrency
        )
        await dispatcher.start()
        run = asyncio.create_task(dispatcher.run_until_idle())
        crash = asyncio.create_task(notifier.crashed.wait())
        await asyncio.wait({run, crash}, return_when=asyncio.FIRST_COMPLETED)
        crash.cancel()
        if notifier.crashed.is_set():  # kill -9: nothing more is written
            victims = [t for t in asyncio.all_tasks() if t.get_name().startswith("sms-")]
            for task in [run, *victims]:
                task.cancel()
            for task in [run, *victims]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        now.advance(600)
        async with store.engine.connect() as conn:
            left = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(outbound_messages)
                .where(outbound_messages.c.status.in_(["queued", "sending"]))
            )
        if not left and not notifier.crashed.is_set():
            break
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(outbound_messages))).all()
    assert sorted(row.id for row in rows) == ids  # none lost
    for row in rows:
        key = f"msg-{row.id}"
        assert row.status in ("sent", "dead"), row
        if row.status == "dead":
            assert row.last_error.split(":")[0] in ("number", "provider", "opted_out"), row
        else:
            assert notifier.delivered[key] >= 1
        # a second send only after a crash that followed a send
        assert notifier.delivered[key] <= 1 + notifier.crashes_after[key], row


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    messages=st.integers(min_value=1, max_value=4),
    steps=st.lists(st.sampled_from(STEPS), max_size=12),
    concurrency=st.integers(min_value=1, max_value=3),
)
def test_every_message_ends_sent_or_dead_none_lost_none_sent_twice_without_a_crash(
    messages: int, steps: list[str], concurrency: int
) -> None:
    asyncio.run(scenario(messages, steps, concurrency))
