"""News of queued SMS between workers on PostgreSQL: the intake's NOTIFY reaches a listener on
its own connection at commit, a replay too, and a listener whose connection is killed listens
again (and says so, for what was queued meanwhile)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from dialer.store import OutboxStore, Store
from dialer.store.notify import OutboxNews
from dialer.store.schema import outbound_messages
from tests.integration.sms_support import Now, queue_message

pytestmark = pytest.mark.postgres


class Heard:
    """Counts the news; `more_than(n)` waits until the count passes n."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Condition()

    def __call__(self) -> None:
        self.count += 1
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def more_than(self, count: int) -> None:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: self.count > count)


async def no_wait(_seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
async def listening(postgres_store: Store) -> AsyncIterator[tuple[OutboxNews, Heard]]:
    heard = Heard()
    news = OutboxNews(postgres_store.engine.url, heard, sleep=no_wait)
    stop = asyncio.Event()
    task = asyncio.create_task(news.run(stop))
    async with asyncio.timeout(10):
        await news.listening.wait()
    try:
        yield news, heard
    finally:
        stop.set()
        await task


async def test_messages_queued_by_another_worker_are_heard_at_commit(
    postgres_store: Store, listening: tuple[OutboxNews, Heard]
) -> None:
    _, heard = listening
    assert heard.count == 1  # on listening: whatever was queued meanwhile
    now = Now()
    await queue_message(postgres_store, now, order_id="A1")
    await heard.more_than(1)
    message_id = await queue_message(postgres_store, now, order_id="A2")
    await heard.more_than(2)
    async with postgres_store.engine.begin() as conn:
        await conn.execute(
            outbound_messages.update()
            .where(outbound_messages.c.id == message_id)
            .values(status="dead", last_error="test")
        )
    before = heard.count
    assert await OutboxStore(postgres_store).replay_dead(message_id, now=now())
    await heard.more_than(before)


async def test_a_listener_whose_connection_is_killed_listens_again(
    postgres_store: Store, listening: tuple[OutboxNews, Heard]
) -> None:
    news, heard = listening
    async with postgres_store.engine.begin() as conn:
        killed = await conn.scalar(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
            )
        )
    assert killed == 1
    await heard.more_than(1)  # listening again: it tells of what may have been queued meanwhile
    assert news.listening.is_set()
    before = heard.count
    await queue_message(postgres_store, Now(), order_id="B1")
    await heard.more_than(before)
