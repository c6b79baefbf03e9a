"""News of queued SMS between workers: PostgreSQL's NOTIFY and LISTEN.

The intake (and a replay) sends `NOTIFY outreach_outbox` in the transaction that queues
messages; PostgreSQL delivers it to every listener once that transaction commits, and never if
it rolls back. `OutboxNews` is the dispatcher's ear: one connection of its own that LISTENs and
calls `on_news` for each notice, so a dispatcher in its own process sends at once instead of at
its next poll (`notifications.dispatcher.poll_interval_s`). When the connection is lost the
dispatcher keeps polling, and `OutboxNews` connects again; after each (re)connection it calls
`on_news` once, for what was queued while nobody listened. SQLite has one worker: the intake
wakes its dispatcher in-process, and nothing here is used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.clock import Sleep, sleep_unless_stopped
from dialer.logs import get_logger

__all__ = ["OUTBOX_CHANNEL", "OutboxNews", "announce_queued"]

OUTBOX_CHANNEL = "outreach_outbox"

log = get_logger(__name__)

_NOTIFY = sa.text(f"NOTIFY {OUTBOX_CHANNEL}")


async def announce_queued(conn: AsyncConnection) -> None:
    """In the transaction that queues messages: the listeners hear of it at its commit."""
    if conn.dialect.name == "postgresql":
        await conn.execute(_NOTIFY)


class OutboxNews:
    """LISTENs on `OUTBOX_CHANNEL` with a connection of its own; `run(stop)` until stop."""

    name = "outbox-news"

    def __init__(
        self,
        url: URL,
        on_news: Callable[[], None],
        *,
        reconnect_s: float = 5.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.on_news = on_news
        self.reconnect_s = reconnect_s
        self.sleep = sleep
        self.listening = asyncio.Event()  # set while a connection listens (tests, status)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                connection = await asyncpg.connect(self.dsn, timeout=10)
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning("store.listen_failed", reason=str(exc) or type(exc).__name__)
                await sleep_unless_stopped(stop, self.reconnect_s, self.sleep)
                continue
            try:
                await self._listen(connection, stop)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)

    async def _listen(self, connection: Any, stop: asyncio.Event) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(OUTBOX_CHANNEL, self._heard)
        self.listening.set()
        self.on_news()  # whatever was queued while nobody listened
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if lost.is_set() and not stop.is_set():
            log.warning("store.listen_lost", message="polling until listening again")
            await sleep_unless_stopped(stop, self.reconnect_s, self.sleep)

    def _heard(self, *_notice: object) -> None:
        self.on_news()
