"""No store failure stops the daemon: a SQLite file locked longer than the busy time-out (what a
long import used to do), and a PostgreSQL server that goes away and comes back (through a TCP
relay the test cuts, so the machine's PostgreSQL stays up for the other tests). The daemon keeps
running, says in /readyz and /metrics what waits and why, and once the store is back it sends
what it accepted. Real processes; no PBX needed (the AMI port is closed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import fresh_postgres_database
from tests.support import DaemonProcess, free_port, write_daemon_config

NOTIFICATIONS = """
notifications:
  providers:
    outbox: {type: outbox, path: var/outbox.jsonl, messages_per_second: 1000}
  dispatcher: {poll_interval_s: 0.2}
  quiet_hours: null
  stages:
    shipped: {template: "Order {order_id} shipped", urgent: true}
"""


def order_event(number: int) -> dict[str, Any]:
    return {
        "event_id": f"e-{number}",
        "order_id": f"A{number}",
        "stage": "shipped",
        "phone": "+8613812345678",
        "occurred_at": "2026-12-06T12:00:00+08:00",
    }


async def readiness(http: aiohttp.ClientSession, api: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{api}/readyz") as response:
        return response.status, await response.json()


async def post_until_accepted(http: aiohttp.ClientSession, api: str, number: int) -> int:
    """POST an event; a 503 (store unavailable) is sent again, as the order system would."""
    while True:
        async with http.post(f"{api}/v1/events", json=order_event(number)) as response:
            if response.status != 503:
                return response.status
            assert response.headers["Retry-After"] == "5"
        await asyncio.sleep(0.2)


async def poll_until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    """Ask another process again and again (0.2 s apart) until `condition` holds."""
    async with asyncio.timeout(timeout_s):
        while not await condition():  # noqa: ASYNC110 (another process: there is no event)
            await asyncio.sleep(0.2)


def outbox(directory: Path) -> list[dict[str, Any]]:
    path = directory / "var" / "outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@contextlib.asynccontextmanager
async def daemon_on(directory: Path, store_url: str) -> AsyncIterator[tuple[DaemonProcess, str]]:
    api_port = free_port()
    config = write_daemon_config(
        directory, api_port=api_port, ami_port=free_port(), store_url=store_url
    )
    config.write_text(config.read_text() + NOTIFICATIONS)
    daemon = await DaemonProcess.start(config)
    try:
        await daemon.wait_for_log("api.listening")
        reading = asyncio.create_task(daemon.read_logs())
        yield daemon, f"http://127.0.0.1:{api_port}"
        reading.cancel()
        assert await daemon.stop() == 0
    finally:
        daemon.kill()


@pytest.mark.timeout(60)
async def test_a_sqlite_file_locked_past_the_busy_timeout_stops_nothing(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    seen: list[tuple[int, dict[str, Any]]] = []

    async def dispatcher_waits() -> bool:
        seen.append(await readiness(http, api))
        return "dispatcher" in seen[-1][1]["checks"]

    async def all_sent_and_well() -> bool:
        well = "dispatcher" not in (await readiness(http, api))[1]["checks"]
        return well and len(outbox(tmp_path)) == 2

    async with daemon_on(tmp_path, "sqlite:///var/outreach.db") as (daemon, api):
        assert await post_until_accepted(http, api, 1) == 202
        locker = sqlite3.connect(tmp_path / "var" / "outreach.db", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another writer holds the file (busy time-out: 5 s)
        refused = asyncio.create_task(post_until_accepted(http, api, 2))
        await poll_until(dispatcher_waits)
        status, waiting = seen[-1]
        locker.execute("ROLLBACK")
        locker.close()
        assert await asyncio.wait_for(refused, 20) == 202
        await poll_until(all_sent_and_well)
        assert daemon.process.returncode is None
    check = waiting["checks"]["dispatcher"]
    assert status == 503
    assert check["ok"] is False
    assert "database is locked" in check["detail"]
    assert sorted(line["body"] for line in outbox(tmp_path)) == [
        "Order A1 shipped",
        "Order A2 shipped",
    ]
    events = [line["event"] for line in daemon.log_lines]
    assert "component.store_unavailable" in events
    assert "component.recovered" in events


class Relay:
    """A TCP relay to PostgreSQL that the test can cut (and mend): the daemon's store."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for writer in list(self.links):
            writer.transport.abort()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.links.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_postgresql_gone_and_back_stops_nothing(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async def store_down() -> bool:
        return not (await readiness(http, api))[1]["checks"]["store"]["ok"]

    async def both_sent() -> bool:
        return len(outbox(tmp_path)) == 2

    relay = Relay()
    await relay.start()
    async with fresh_postgres_database() as url:
        relayed = url.replace(":5432/", f":{relay.port}/")
        async with daemon_on(tmp_path, relayed) as (daemon, api):
            assert await post_until_accepted(http, api, 1) == 202
            await relay.cut()
            await poll_until(store_down)
            async with http.post(f"{api}/v1/events", json=order_event(2)) as response:
                while_down = response.status
            await relay.start()
            assert await post_until_accepted(http, api, 2) == 202
            await poll_until(both_sent)
            status, _ = await readiness(http, api)
            alive = daemon.process.returncode is None
        await relay.cut()
    assert while_down == 503
    assert alive
    assert status == 503  # the AMI port is closed; the store and the components are fine
    assert sorted(line["body"] for line in outbox(tmp_path)) == [
        "Order A1 shipped",
        "Order A2 shipped",
    ]
