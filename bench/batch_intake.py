"""Batch intake: order events posted 100 per POST, next to one per POST. Prints figures; not a test.

    .venv/bin/python bench/batch_intake.py [--events 2000] [--rounds 3] [--workers 8]
                                           [--batch-size 100]

Two processes, as in production:

- this one: the daemon's HTTP API with the SMS routes and its store, on a fresh PostgreSQL
  database (the measured process). Only the intake is measured: the dispatcher is not run, so
  nothing is sent and the queued messages stay queued.
- the order system: this script again (`client` mode, in its own process), which POSTs
  `--events` events to `/v1/events` from `--workers` concurrent clients, either one event per
  POST or `--batch-size` events per POST (a JSON array).

Each round posts the same number of new events both ways (single first, then batches, so the
growing tables weigh on both alike). Printed: per round and mode the events/s (from the moment
the client is told to start to its last answer) and this process's CPU seconds per 1,000
events (`process_time`: user + system, all threads; steadier than the rate on a shared
machine); then the medians of each mode and the ratio batch/single, all from the same run.
Every answer is checked (202 for a single event; `accepted` equal to the batch's size) and the
store's count of events at the end.
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

import aiohttp
import sqlalchemy as sa
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sms_load import event
from bench.sms_throughput import postgres_database
from dialer.http.server import make_web_app
from dialer.http.sms import add_sms_routes
from dialer.logs import configure_logging
from dialer.store import Store
from dialer.store.schema import events
from tests.integration.sms_support import AUTH, all_ready, sms_service, sms_settings
from tests.support import REPO, free_port

MODES = ("single", "batch")
THIS_SCRIPT = str(Path(__file__).resolve())


# --- the order system (client mode, its own process) ----------------------------------------


def answered_in_full(mode: str, status: int, answer: bytes, count: int) -> bool:
    """A single event queued (202), or a batch answered 200 with every event accepted."""
    if mode == "single":
        return status == 202
    return status == 200 and json.loads(answer)["accepted"] == count


async def post_all(
    url: str, token: str, run: str, *, mode: str, count: int, workers: int, batch_size: int
) -> list[str]:
    """POST events `run-0` .. `run-{count-1}`, `workers` requests at a time; what went wrong."""
    size = 1 if mode == "single" else batch_size
    todo = iter(range(0, count, size))
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(http: aiohttp.ClientSession) -> None:
        for start in todo:
            numbers = range(start, min(start + size, count))
            body: Any = event(start, run) if mode == "single" else [event(i, run) for i in numbers]
            async with http.post(f"{url}/v1/events", json=body, headers=headers) as response:
                answer = await response.read()
            if not answered_in_full(mode, response.status, answer, len(numbers)):
                failures.append(f"{response.status}: {answer[:200]!r}")

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=workers)) as http:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.gather(*(worker(http) for _ in range(workers)))
    return failures


def client_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="batch_intake.py client")
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("run")
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    args = parser.parse_args(argv)
    failures = asyncio.run(
        post_all(
            args.url,
            args.token,
            args.run,
            mode=args.mode,
            count=args.events,
            workers=args.workers,
            batch_size=args.batch_size,
        )
    )
    print(json.dumps({"failures": failures}), flush=True)


# --- the daemon's API (this process, measured) ----------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One mode of one round: events/s, and this process's CPU seconds per 1,000 events."""

    per_s: float
    cpu_s_per_1000: float


@contextlib.asynccontextmanager
async def api(store_url: str) -> AsyncIterator[tuple[str, Store, int]]:
    """The daemon's API with the SMS routes on `store_url` (no dispatcher): (url, store, the
    body limit it runs with)."""
    settings = sms_settings(Path(tempfile.mkdtemp()), store_url=store_url)
    store = await Store.open(settings.store.async_url)
    component = sms_service(settings, store, now=lambda: datetime.now(UTC))
    max_body_bytes = settings.api.max_body_bytes
    token = AUTH["Authorization"][7:]
    app = make_web_app(all_ready, max_body_bytes=max_body_bytes, api_token=token)
    add_sms_routes(app, component, store)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", store, max_body_bytes
    finally:
        await runner.cleanup()
        await store.close()


async def phase(url: str, mode: str, count: int, args: argparse.Namespace) -> Phase:
    """Start the client for `count` new events, tell it to go, and time it until it has its
    last answer."""
    token = AUTH["Authorization"][7:]
    run = uuid.uuid4().hex[:8]
    options = [f"--events={count}", f"--workers={args.workers}"]
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, THIS_SCRIPT, "client", url, token, run, mode),
        *options,
        f"--batch-size={args.batch_size}",
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        if await process.stdout.readline() != b"ready\n":
            raise RuntimeError("the client did not start")
        started, cpu = time.perf_counter(), time.process_time()
        process.stdin.write(b"go\n")
        await process.stdin.drain()
        line = await process.stdout.readline()
        elapsed_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        if await process.wait() != 0 or not line:
            raise RuntimeError(f"the client failed (exit {process.returncode})")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    failures = json.loads(line)["failures"]
    if failures:
        raise RuntimeError(f"POST /v1/events failed ({mode}): {failures[:5]}")
    return Phase(count / elapsed_s, cpu_s / count * 1000)


async def stored_events(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(events)) or 0)


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING", "json", stream=open(os.devnull, "w"))  # noqa: SIM115, ASYNC230
    async with postgres_database() as store_url, api(store_url) as (url, store, max_body):
        print(
            f"PostgreSQL, {args.events} events per mode and round, {args.rounds} rounds, "
            f"{args.workers} clients; batches of {args.batch_size}; "
            f"api.max_body_bytes {max_body}; no dispatcher"
        )
        warm_up = min(args.events, 500)
        for mode in MODES:
            await phase(url, mode, warm_up, args)
        posted = len(MODES) * warm_up
        phases: dict[str, list[Phase]] = {mode: [] for mode in MODES}
        for round_number in range(1, args.rounds + 1):
            for mode in MODES:
                result = await phase(url, mode, args.events, args)
                posted += args.events
                phases[mode].append(result)
                print(
                    f"round {round_number}, {mode:<6}: {result.per_s:7.0f} events/s, "
                    f"{result.cpu_s_per_1000:5.2f} CPU s per 1,000 events here"
                )
        if await stored_events(store) != posted:
            raise RuntimeError(f"the store does not hold the {posted} events posted")
    medians = {
        mode: (
            statistics.median(p.per_s for p in phases[mode]),
            statistics.median(p.cpu_s_per_1000 for p in phases[mode]),
        )
        for mode in MODES
    }
    for mode in MODES:
        per_s, cpu = medians[mode]
        print(f"median {mode:<6}: {per_s:7.0f} events/s, {cpu:5.2f} CPU s per 1,000 events")
    print(
        f"batch/single: {medians['batch'][0] / medians['single'][0]:.1f}x events/s, "
        f"{medians['single'][1] / medians['batch'][1]:.1f}x less CPU per event"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client_main(sys.argv[2:])
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--events", type=int, default=2000, help="per mode and round")
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--workers", type=int, default=8, help="concurrent clients")
        parser.add_argument("--batch-size", type=int, default=100)
        asyncio.run(main(parser.parse_args()))
