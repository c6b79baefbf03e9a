"""SMS throughput: order events end to end, next to raw SDK sends. Prints figures; not a test.

    .venv/bin/python bench/sms_throughput.py [--messages 3000] [--skip-postgres]

- The local Twilio stand-in runs in its own process (`python -m tests.fakes.twilio_server`).
- raw SDK: 50 coroutines looping `messages.create_async` through one shared client.
- end to end (SQLite, then PostgreSQL): events POSTed (50 at a time, over HTTP) to
  `/v1/events`, stored, claimed by the dispatcher (concurrency 50), sent with the SDK to the
  stand-in, outcome saved; timed from the first POST to the last message saved as sent (seen
  on the dispatcher's counter, so the watching costs the store nothing; the store's count is
  checked after). The API, the dispatcher and the load generator share this one process (the
  daemon's shape).
- latency: POST /v1/events at 200 requests/s for 5 s on SQLite with the dispatcher running.
Logging is at WARNING (the per-message INFO lines are not part of the figure).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.api import make_web_app
from dialer.logs import configure_logging
from dialer.sms import SmsComponent
from dialer.store import Store, outbound_messages
from notifiers import OutboundSms, TwilioNotifier
from tests.integration.sms_support import ACCOUNT_SID, AUTH, all_ready, sms_settings
from tests.support import REPO, free_port

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
WORKERS = 50


async def raw_sdk(base_url: str, count: int) -> float:
    twilio = TwilioNotifier(
        account_sid=ACCOUNT_SID,
        auth_token="test_auth_token",
        from_number="+15005550006",
        base_url=base_url,
    )
    todo = iter(range(count))

    async def worker() -> None:
        for i in todo:
            await twilio.send(OutboundSms(f"raw-{i}", "+8613812345678", "您的订单已发货"))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    elapsed = time.perf_counter() - started
    await twilio.close()
    return count / elapsed


@contextlib.asynccontextmanager
async def daemon(store_url: str, base_url: str) -> AsyncIterator[tuple[str, Store, SmsComponent]]:
    """The API and the dispatcher of the daemon, in this process."""
    directory = Path(tempfile.mkdtemp())
    settings = sms_settings(
        directory,
        store_url=store_url,
        primary="twilio",
        twilio_base_url=base_url,
        concurrency=WORKERS,
    )
    store = await Store.open(settings.store.async_url)
    component = SmsComponent(settings, store, now=lambda: datetime.now(UTC))
    app = make_web_app(all_ready, max_body_bytes=65536, api_token=AUTH["Authorization"][7:])
    component.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    task = asyncio.create_task(component.run(stop))
    try:
        yield f"http://127.0.0.1:{port}", store, component
    finally:
        stop.set()
        await task
        await runner.cleanup()
        await store.close()


def event(i: int, run: str) -> dict[str, object]:
    return {
        "event_id": f"{run}-{i}",
        "order_id": f"{run}-{i}",
        "stage": "shipped",
        "phone": f"+86138{i % 100_000_000:08d}",
        "customer": {"name": "王女士"},
        "occurred_at": "2025-06-02T12:00:00+08:00",
        "data": {"courier": "顺丰", "tracking_number": f"SF{i}"},
    }


async def sent_count(store: Store) -> int:
    async with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(outbound_messages.c.status == "sent")
        return int(await conn.scalar(query.select_from(outbound_messages)) or 0)


def sent_so_far(component: SmsComponent) -> int:
    """Messages saved as sent, from the dispatcher's counter (bumped after the write commits),
    so that watching for the end puts no load on the store being measured."""
    return 0 if component.dispatcher is None else component.dispatcher.counters.sent


async def end_to_end(store_url: str, base_url: str, count: int) -> float:
    async with (
        daemon(store_url, base_url) as (api, store, component),
        aiohttp.ClientSession() as http,
    ):
        run = uuid.uuid4().hex[:8]
        todo = iter(range(count))

        async def poster() -> None:
            for i in todo:
                async with http.post(f"{api}/v1/events", json=event(i, run), headers=AUTH) as r:
                    assert r.status == 202, await r.text()

        started = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(WORKERS)))
        while sent_so_far(component) < count:  # noqa: ASYNC110 (polls a counter)
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        assert await sent_count(store) == count
        return count / elapsed


async def latency(store_url: str, base_url: str, rate: int = 200, seconds: int = 5) -> list[float]:
    async with daemon(store_url, base_url) as (api, _, _), aiohttp.ClientSession() as http:
        run = uuid.uuid4().hex[:8]
        timings: list[float] = []

        async def one(i: int) -> None:
            started = time.perf_counter()
            async with http.post(f"{api}/v1/events", json=event(i, run), headers=AUTH) as r:
                await r.read()
                assert r.status == 202
            timings.append(time.perf_counter() - started)

        tasks = []
        begin = time.perf_counter()
        for i in range(rate * seconds):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        return timings


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    name = f"sms_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


async def main(count: int, skip_postgres: bool) -> None:
    configure_logging("WARNING", "json", stream=open(os.devnull, "w"))  # noqa: SIM115, ASYNC230
    port = free_port()
    server = subprocess.Popen(  # noqa: ASYNC220 (started once, before timing)
        [sys.executable, "-m", "tests.fakes.twilio_server", str(port)], cwd=REPO
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        await raw_sdk(base_url, 300)  # warm-up
        raw = await raw_sdk(base_url, count)
        print(
            f"raw SDK create_async:        {raw:8.0f} msgs/s  ({count} messages, {WORKERS} workers)"
        )
        with tempfile.TemporaryDirectory() as directory:
            sqlite_url = f"sqlite:///{directory}/bench.db"
            e2e = await end_to_end(sqlite_url, base_url, count)
            print(
                f"end to end, SQLite:          {e2e:8.0f} notifications/s  ({e2e / raw:.2f}x raw)"
            )
        if not skip_postgres:
            async with postgres_database() as pg_url:
                e2e_pg = await end_to_end(pg_url, base_url, count)
            ratio = e2e_pg / raw
            print(f"end to end, PostgreSQL:      {e2e_pg:8.0f} notifications/s  ({ratio:.2f}x raw)")
        raw_again = await raw_sdk(base_url, count)
        print(f"raw SDK again (drift check): {raw_again:8.0f} msgs/s")
        with tempfile.TemporaryDirectory() as directory:
            timings = await latency(f"sqlite:///{directory}/latency.db", base_url)
        print(
            f"POST /v1/events at 200/s, SQLite: p50 {percentile(timings, 50) * 1000:.1f} ms, "
            f"p99 {percentile(timings, 99) * 1000:.1f} ms ({len(timings)} requests)"
        )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.skip_postgres))
