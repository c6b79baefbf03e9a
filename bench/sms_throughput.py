"""SMS throughput: order events end to end, next to raw SDK sends. Prints figures; not a test.

    .venv/bin/python bench/sms_throughput.py [--messages 3000] [--skip-postgres] [--no-timeline]

`--no-timeline`: the store writes no timeline entry (`bench/timeline_switch.py`), to compare the
CPU per message with and without recording it.

Three processes, as in production:

- the local Twilio stand-in (`python -m tests.fakes.twilio_server`);
- the order system: a load generator (`python -m bench.sms_load`) that POSTs the events;
- this process: the daemon's API, store and dispatcher (the measured one), and the raw-SDK peer.

Phases, one after the other:

- raw SDK: 50 coroutines in this process looping `messages.create_async` through one shared
  client (our `TwilioNotifier`, no retry or rate limit around it), to the stand-in.
- end to end (SQLite, then PostgreSQL): the load generator POSTs the events (50 at a time, over
  HTTP) to `/v1/events` of the daemon in this process, which stores them, claims them as
  `sending` (the dispatcher, concurrency 50), checks opt-outs, sends them through the
  configured notifier stack (retry, rate limit, the SDK) to the stand-in, and saves each
  outcome. Timed from the moment the load generator is told to start to the last message saved
  as sent (seen on the dispatcher's counter, so the watching costs the store nothing; the
  store's count is checked after).
- latency: the load generator POSTs to /v1/events at 200 requests/s for 5 s (SQLite, the
  dispatcher running) and times each answer.

Each phase also prints this process's CPU time per message (`process_time`, all its threads),
a steadier figure than the rate on a shared machine. Logging is at WARNING (the per-message
INFO lines are not part of the figure).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.http.server import make_web_app
from dialer.http.sms import add_sms_routes
from dialer.logs import configure_logging
from dialer.messaging.service import SmsService
from dialer.store import Store
from dialer.store.schema import outbound_messages
from notifiers import OutboundSms, TwilioNotifier
from tests.integration.sms_support import ACCOUNT_SID, AUTH, all_ready, sms_service, sms_settings
from tests.support import REPO, free_port

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
WORKERS = 50
RESULT_LINE_LIMIT = 2**24  # the load generator's JSON line holds every latency


@dataclass(frozen=True)
class Rate:
    """Messages per second over a phase, and this process's CPU time per message."""

    per_s: float
    cpu_us: float

    @classmethod
    def of(cls, count: int, elapsed_s: float, cpu_s: float) -> Rate:
        return cls(count / elapsed_s, cpu_s / count * 1e6)


async def raw_sdk(base_url: str, count: int) -> Rate:
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

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    rate = Rate.of(count, time.perf_counter() - started, time.process_time() - cpu)
    await twilio.close()
    return rate


@contextlib.asynccontextmanager
async def daemon(store_url: str, base_url: str) -> AsyncIterator[tuple[str, Store, SmsService]]:
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
    component = sms_service(settings, store, now=lambda: datetime.now(UTC))
    app = make_web_app(all_ready, max_body_bytes=65536, api_token=AUTH["Authorization"][7:])
    add_sms_routes(app, component, store)
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


class LoadGenerator:
    """`python -m bench.sms_load` (the order system) in its own process: started, waiting for
    `go()`; `result()` is its JSON answer once it has posted everything."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()

    async def result(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if await self.process.wait() != 0 or not line:
            raise RuntimeError(f"the load generator failed (exit {self.process.returncode})")
        answer: dict[str, Any] = json.loads(line)
        if answer["failures"]:
            raise RuntimeError(f"POST /v1/events failed: {answer['failures'][:5]}")
        return answer


@contextlib.asynccontextmanager
async def load_generator(api: str, *options: str) -> AsyncIterator[LoadGenerator]:
    token = AUTH["Authorization"][7:]
    run = uuid.uuid4().hex[:8]
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.sms_load", *options, api, token, run),
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        limit=RESULT_LINE_LIMIT,
    )
    try:
        assert process.stdout is not None
        if await process.stdout.readline() != b"ready\n":
            raise RuntimeError("the load generator did not start")
        yield LoadGenerator(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def sent_count(store: Store) -> int:
    async with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(outbound_messages.c.status == "sent")
        return int(await conn.scalar(query.select_from(outbound_messages)) or 0)


def sent_so_far(component: SmsService) -> int:
    """Messages saved as sent, from the dispatcher's counter (bumped after the write commits),
    so that watching for the end puts no load on the store being measured."""
    return 0 if component.dispatcher is None else component.dispatcher.counters.sent


async def end_to_end(store_url: str, base_url: str, count: int) -> Rate:
    async with (
        daemon(store_url, base_url) as (api, store, component),
        load_generator(api, "burst", f"--count={count}", f"--workers={WORKERS}") as load,
    ):
        started, cpu = time.perf_counter(), time.process_time()
        await load.go()
        while sent_so_far(component) < count:  # noqa: ASYNC110 (polls a counter)
            await asyncio.sleep(0.005)
        rate = Rate.of(count, time.perf_counter() - started, time.process_time() - cpu)
        assert (await load.result())["posted"] == count
        assert await sent_count(store) == count
        return rate


async def latency(store_url: str, base_url: str, rate: int = 200, seconds: int = 5) -> list[float]:
    async with (
        daemon(store_url, base_url) as (api, _, _),
        load_generator(api, "paced", f"--rate={rate}", f"--seconds={seconds}") as load,
    ):
        await load.go()
        timings: list[float] = (await load.result())["latencies_s"]
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


def report(label: str, rate: Rate, raw: Rate | None = None) -> None:
    ratio = f"  ({rate.per_s / raw.per_s:.2f}x raw)" if raw else ""
    print(f"{label:<29}{rate.per_s:8.0f} msgs/s, {rate.cpu_us:5.0f} µs CPU/msg here{ratio}")


@contextlib.asynccontextmanager
async def twilio_stand_in() -> AsyncIterator[tuple[str, int]]:
    """The local Twilio stand-in in a process of its own: (its base url, its pid)."""
    port = free_port()
    server = subprocess.Popen(  # noqa: ASYNC220 (started once, before timing)
        [sys.executable, "-m", "tests.fakes.twilio_server", str(port)], cwd=REPO
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        server.wait()


async def main(count: int, skip_postgres: bool) -> None:
    configure_logging("WARNING", "json", stream=open(os.devnull, "w"))  # noqa: SIM115, ASYNC230
    async with twilio_stand_in() as (base_url, _):
        await raw_sdk(base_url, 300)  # warm-up
        print(f"{count} messages, {WORKERS} workers")
        raw = await raw_sdk(base_url, count)
        report("raw SDK create_async:", raw)
        with tempfile.TemporaryDirectory() as directory:
            report(
                "end to end, SQLite:",
                await end_to_end(f"sqlite:///{directory}/bench.db", base_url, count),
                raw,
            )
        if not skip_postgres:
            async with postgres_database() as pg_url:
                report("end to end, PostgreSQL:", await end_to_end(pg_url, base_url, count), raw)
        report("raw SDK again (drift check):", await raw_sdk(base_url, count))
        with tempfile.TemporaryDirectory() as directory:
            timings = await latency(f"sqlite:///{directory}/latency.db", base_url)
        print(
            f"POST /v1/events at 200/s, SQLite: p50 {percentile(timings, 50) * 1000:.1f} ms, "
            f"p99 {percentile(timings, 99) * 1000:.1f} ms ({len(timings)} requests)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--no-timeline", action="store_true", help="record no timeline entry")
    args = parser.parse_args()
    if args.no_timeline:
        from bench.timeline_switch import disable_timeline

        disable_timeline()
    print(f"timeline recording: {'off' if args.no_timeline else 'on'}")
    asyncio.run(main(args.messages, args.skip_postgres))
