"""SMS across worker processes on PostgreSQL: 1, 2 and 3 dispatchers. Prints figures; not a test.

    .venv/bin/python bench/sms_workers.py [--messages 6000] [--rounds 3] [--dispatchers 1 2 3]

Processes, as several workers run in production (README, "Running several workers"):

- the local Twilio stand-in (`python -m tests.fakes.twilio_server`);
- the order system: the load generator (`python -m bench.sms_load burst --batch 100`, 4 POSTs
  at a time), pushing `shipped` events;
- the intake: `dialer run --role api`;
- N dispatchers: `dialer run --role dispatcher` (concurrency 50 each), all on one fresh
  PostgreSQL database per round.

Each round is timed from the moment the load generator is told to start to the moment the
store counts every message `sent` (polled every 50 ms). The daemons log at WARNING, as in
`bench/sms_throughput.py`. CPU per message is the user + system time the dispatcher processes
used during the round (from /proc), over the messages; the intake's is printed apart. The peer
is the raw SDK loop of `bench/sms_throughput.py` (50 coroutines sending through one Twilio
client, in this process), measured in the same run before and after. Medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sms_throughput import load_generator, postgres_database, raw_sdk, twilio_stand_in
from tests.fakes.twilio_server import DEFAULT_AUTH_TOKEN, VALID_FROM
from tests.integration.sms_support import ACCOUNT_SID, TOKEN
from tests.support import REPO, free_port

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
POSTS_AT_ONCE = 4
EVENTS_PER_POST = 100


def worker_config(directory: Path, *, store_url: str, api_port: int, twilio_url: str) -> Path:
    (directory / "api-token").write_text(TOKEN + "\n")
    (directory / "twilio-token").write_text(DEFAULT_AUTH_TOKEN + "\n")
    (directory / "ami-secret").write_text("unused: no worker here dials\n")
    config = directory / "config.yaml"
    config.write_text(
        f"""\
ami: {{host: 127.0.0.1, port: {free_port()}, username: outreach, secret_file: ami-secret}}
store: {{url: "{store_url}"}}
api: {{host: 127.0.0.1, port: {api_port}, token_file: api-token, max_body_bytes: 262144}}
logging: {{level: WARNING, format: json}}
notifications:
  providers:
    twilio:
      type: twilio
      account_sid: {ACCOUNT_SID}
      auth_token_file: twilio-token
      from_number: "{VALID_FROM}"
      base_url: {twilio_url}
      timeout_s: 5
      messages_per_second: 100000
  primary: twilio
  quiet_hours: null
  dispatcher: {{concurrency: 50, poll_interval_s: 0.05}}
  signature: 【好物优选】
  stages:
    shipped:
      template: "{{signature}}订单{{order_id}}已由{{courier}}发出，运单号{{tracking_number}}。"
"""
    )
    return config


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def reaped_children_cpu_s() -> float:
    """CPU seconds of this process's children that ended and were waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postgres_cpu_s() -> float:
    """CPU seconds of every PostgreSQL process alive now (the server and its backends)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            if text.split("(", 1)[1].startswith("postgres)"):
                total += cpu_s(int(stat.parent.name))
    return total


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (not idle, not waiting), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_S


@contextlib.asynccontextmanager
async def worker(config: Path, role: str, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "dialer", "run", "--config", str(config), "--role", role),
            cwd=REPO,
            stdout=stderr,
            stderr=stderr,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def until_true(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60
) -> None:
    """Poll `check` (another process's work: nothing here to wait on) until it holds."""
    try:
        async with asyncio.timeout(timeout_s):
            while not await check():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise RuntimeError(f"{what}: not after {timeout_s:g} s") from None


@dataclass(frozen=True)
class Round:
    """One round's rate and CPU microseconds per message: the dispatchers', the intake's,
    PostgreSQL's, the Twilio stand-in's and the load generator's (together: the test rig), and
    the whole machine's (every process, other work on the machine included)."""

    per_s: float
    dispatcher_cpu_us: float
    intake_cpu_us: float
    postgres_cpu_us: float
    rig_cpu_us: float
    machine_cpu_us: float


async def one_round(
    pg_url: str, twilio_url: str, stand_in_pid: int, dispatchers: int, count: int
) -> Round:
    directory = Path(tempfile.mkdtemp(prefix="sms-workers-"))
    api_port = free_port()
    config = worker_config(directory, store_url=pg_url, api_port=api_port, twilio_url=twilio_url)
    engine = create_async_engine(pg_url)
    api = f"http://127.0.0.1:{api_port}"
    log = directory / "workers.log"

    async def scalar(query: str) -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text(query))).scalar_one())

    async def all_joined() -> bool:
        with contextlib.suppress(Exception):  # the schema is not there before the first start
            live = "SELECT count(*) FROM workers WHERE declared_dead_at IS NULL"
            return await scalar(live) == dispatchers + 1
        return False

    async def intake_ready() -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            async with aiohttp.ClientSession() as http, http.get(f"{api}/readyz") as answer:
                return answer.status == 200
        return False

    sent = "SELECT count(*) FROM outbound_messages WHERE status = 'sent'"
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(worker(config, "api", log))
        await until_true(intake_ready, "the intake")  # migrations done before the others start
        senders = [
            await stack.enter_async_context(worker(config, "dispatcher", log))
            for _ in range(dispatchers)
        ]
        await until_true(all_joined, "every worker")
        load = await stack.enter_async_context(
            load_generator(
                api,
                "burst",
                f"--count={count}",
                f"--workers={POSTS_AT_ONCE}",
                f"--batch={EVENTS_PER_POST}",
            )
        )
        measured = [intake.pid, *(sender.pid for sender in senders)]
        cpu_before = [cpu_s(pid) for pid in measured]
        rig_before = cpu_s(stand_in_pid) + reaped_children_cpu_s()
        postgres_before, machine_before = postgres_cpu_s(), machine_busy_s()
        started = time.perf_counter()
        await load.go()

        async def all_sent() -> bool:
            return await scalar(sent) >= count

        await until_true(all_sent, "every message sent", timeout_s=600)
        elapsed_s = time.perf_counter() - started
        cpu_after = [cpu_s(pid) for pid in measured]
        stand_in_s = cpu_s(stand_in_pid)
        postgres_s = postgres_cpu_s() - postgres_before
        machine_s = machine_busy_s() - machine_before
        assert (await load.result())["posted"] == count  # the load generator is reaped here
        rig_s = stand_in_s + reaped_children_cpu_s() - rig_before
    await engine.dispose()
    used = [after - before for before, after in zip(cpu_before, cpu_after, strict=True)]
    per_message_us = [sum(used[1:]), used[0], postgres_s, rig_s, machine_s]
    return Round(count / elapsed_s, *(cpu / count * 1e6 for cpu in per_message_us))


async def main(count: int, rounds: int, dispatcher_counts: Sequence[int]) -> None:
    async with twilio_stand_in() as (twilio_url, stand_in_pid):
        await raw_sdk(twilio_url, 300)  # warm-up
        raw_before = await raw_sdk(twilio_url, count)
        results: dict[int, list[Round]] = {n: [] for n in dispatcher_counts}
        for _ in range(rounds):
            for n in dispatcher_counts:  # interleaved, so drift hits every setting alike
                async with postgres_database() as pg_url:
                    results[n].append(await one_round(pg_url, twilio_url, stand_in_pid, n, count))
        raw_after = await raw_sdk(twilio_url, count)
    raw_cpu_us = statistics.median([raw_before.cpu_us, raw_after.cpu_us])
    print(
        f"{count} messages per round, {rounds} rounds, PostgreSQL, {os.cpu_count()} cores; "
        f"events posted {EVENTS_PER_POST} per request"
    )
    print(
        f"raw SDK loop: {raw_before.per_s:.0f} / {raw_after.per_s:.0f} msgs/s (before / after), "
        f"{raw_cpu_us:.0f} µs CPU/msg"
    )
    base = statistics.median(r.per_s for r in results[dispatcher_counts[0]])
    for n, measured in results.items():
        per_s = statistics.median(r.per_s for r in measured)
        cpu_us = statistics.median(r.dispatcher_cpu_us for r in measured)
        intake_us = statistics.median(r.intake_cpu_us for r in measured)
        postgres_us = statistics.median(r.postgres_cpu_us for r in measured)
        rig_us = statistics.median(r.rig_cpu_us for r in measured)
        machine_us = statistics.median(r.machine_cpu_us for r in measured)
        rates = ", ".join(f"{r.per_s:.0f}" for r in measured)
        # Amdahl: what the machine would do if the dispatchers cost nothing at all
        ceiling_per_s = (os.cpu_count() or 1) * 1e6 / max(1.0, machine_us - cpu_us)
        print(
            f"{n} dispatcher(s): {per_s:6.0f} msgs/s end to end ({per_s / base:.2f}x of "
            f"{dispatcher_counts[0]}; rounds {rates}); machine {per_s * machine_us / 1e4:.0f}% "
            f"busy\n    CPU µs/msg: dispatchers {cpu_us:.0f} ({cpu_us / raw_cpu_us:.1f}x raw SDK), "
            f"intake {intake_us:.0f}, PostgreSQL {postgres_us:.0f}, stand-in + load generator "
            f"{rig_us:.0f}, whole machine {machine_us:.0f}; with free dispatchers at most "
            f"{ceiling_per_s:.0f} msgs/s"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dispatchers", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.rounds, args.dispatchers))
