"""The order system's side of bench/sms_throughput.py: POSTs order events, in its own process.

    python -m bench.sms_load burst URL TOKEN RUN --count 3000 --workers 50 [--batch 100]
    python -m bench.sms_load paced URL TOKEN RUN --rate 200 --seconds 5

In production the order system is another process; so is this load generator, so that the
process measured by the benchmark is the daemon's shape (API, store, dispatcher) and does not
also pay for the client side of every POST.

It opens its HTTP session, prints `ready`, waits for a line on stdin (the parent starts its
clock when it writes it), then:

- `burst`: POSTs events `RUN-0` .. `RUN-{count-1}` to `URL/v1/events`, `workers` at a time
  (with `--batch N`, as JSON arrays of N events: the order system's batch push);
- `paced`: starts one POST every 1/rate s for `seconds` s, whatever the answers do;

and prints one JSON line: `{"posted": n, "failures": [...], "latencies_s": [...]}` (a failure
is any answer but 202; latencies only for `paced`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import aiohttp


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


class Poster:
    """POSTs events of one run and keeps what went wrong."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str, run: str) -> None:
        self.http = http
        self.url = f"{url}/v1/events"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.run = run
        self.posted = 0
        self.failures: list[str] = []

    async def post(self, i: int) -> None:
        async with self.http.post(self.url, json=event(i, self.run), headers=self.headers) as r:
            body = await r.read()
        self.posted += 1
        if r.status != 202:
            self.failures.append(f"{r.status}: {body[:200]!r}")

    async def post_batch(self, first: int, count: int) -> None:
        batch = [event(i, self.run) for i in range(first, first + count)]
        async with self.http.post(self.url, json=batch, headers=self.headers) as r:
            body = await r.json() if r.status == 200 else await r.read()
        if r.status != 200:
            self.failures.append(f"{r.status}: {body[:200]!r}")
            return
        self.posted += body["accepted"]
        self.failures += [str(result) for result in body["results"] if result["status"] != 202]


async def burst(poster: Poster, count: int, workers: int, batch: int) -> list[float]:
    todo = iter(range(0, count, batch))

    async def worker() -> None:
        for first in todo:
            if batch == 1:
                await poster.post(first)
            else:
                await poster.post_batch(first, min(batch, count - first))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return []


async def paced(poster: Poster, rate: float, seconds: float) -> list[float]:
    latencies_s: list[float] = []

    async def timed(i: int) -> None:
        started = time.perf_counter()
        await poster.post(i)
        latencies_s.append(time.perf_counter() - started)

    tasks = []
    begin = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay_s = begin + i / rate - time.perf_counter()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        tasks.append(asyncio.create_task(timed(i)))
    await asyncio.gather(*tasks)
    return latencies_s


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        poster = Poster(http, args.url, args.token, args.run)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if args.mode == "burst":
            latencies_s = await burst(poster, args.count, args.workers, args.batch)
        else:
            latencies_s = await paced(poster, args.rate, args.seconds)
    return {"posted": poster.posted, "failures": poster.failures, "latencies_s": latencies_s}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["burst", "paced"])
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("run")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1, help="events per POST (burst)")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=5)
    return parser.parse_args()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args()))), flush=True)
