"""Several daemons on one PostgreSQL, as real processes: the intake on its own, two SMS
dispatchers sharing the outbox with the Twilio stand-in (each message taken once; a dispatcher
killed with -9 is taken over after its lease, never before), a worker paused past its lease
stops; and a second daemon on one SQLite file is refused."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from dialer.store import Store
from dialer.store.schema import workers
from tests.fakes.twilio_server import DEFAULT_AUTH_TOKEN, VALID_FROM, FakeTwilioServer, Fault
from tests.integration.sms_support import ACCOUNT_SID
from tests.support import DaemonProcess, free_port, write_daemon_config

LEASE_S = 3
HEARTBEAT_S = 1


def workers_config(
    directory: Path,
    *,
    store_url: str,
    api_port: int,
    twilio_url: str = "http://127.0.0.1:9",
    poll_interval_s: float = 0.1,
) -> Path:
    """The daemon config of `write_daemon_config`, with Twilio, one stage, short leases."""
    config = write_daemon_config(
        directory, api_port=api_port, store_url=store_url, ami_port=free_port()
    )
    (directory / "twilio-token").write_text(DEFAULT_AUTH_TOKEN + "\n")
    config.write_text(
        config.read_text()
        + f"""\
worker:
  lease_s: {LEASE_S}
  heartbeat_s: {HEARTBEAT_S}
notifications:
  providers:
    twilio:
      type: twilio
      account_sid: {ACCOUNT_SID}
      auth_token_file: twilio-token
      from_number: "{VALID_FROM}"
      base_url: {twilio_url}
      timeout_s: 5
      messages_per_second: 1000
  primary: twilio
  quiet_hours: null
  dispatcher: {{concurrency: 10, poll_interval_s: {poll_interval_s}}}
  stages:
    shipped:
      template: "order {{order_id}} shipped"
"""
    )
    return config


def shipped(order: int) -> dict[str, Any]:
    return {
        "event_id": f"e-{order}",
        "order_id": f"O{order:05d}",
        "stage": "shipped",
        "phone": f"+86138{order:04d}5678",
        "occurred_at": "2026-12-06T12:00:00+08:00",
    }


async def post_events(http: aiohttp.ClientSession, api_port: int, orders: range) -> None:
    url = f"http://127.0.0.1:{api_port}/v1/events"
    batch = [shipped(order) for order in orders]
    async with http.post(url, json=batch) as response:
        assert response.status == 200, await response.text()
        answer = await response.json()
    assert answer["accepted"] == len(batch), answer


async def worker_rows(store_url: str) -> list[Any]:
    store = await Store.open(store_url)
    try:
        async with store.engine.connect() as conn:
            return list((await conn.execute(sa.select(workers))).all())
    finally:
        await store.close()


def creates_per_order(twilio: FakeTwilioServer) -> Counter[str]:
    return Counter(create.form["Body"].split()[1] for create in twilio.received)


async def ended(*daemons: DaemonProcess) -> None:
    """Killed if still running, and reaped."""
    for daemon in daemons:
        daemon.kill()
        await daemon.process.wait()


async def until(condition: Any, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (another process's work: nothing to wait on)
            await asyncio.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.timeout(300)
async def test_two_dispatchers_send_each_message_once_and_take_over_a_dead_ones_after_its_lease(
    tmp_path: Path, postgres_url: str, http: aiohttp.ClientSession
) -> None:
    orders = range(600)
    api_port = free_port()
    async with FakeTwilioServer() as twilio:
        twilio.fail_next(Fault(delay_s=0.2), count=10 * len(orders))  # sends take a while
        config = workers_config(
            tmp_path, store_url=postgres_url, api_port=api_port, twilio_url=twilio.base_url
        )
        intake = await DaemonProcess.start(config, "--role", "api")
        first = await DaemonProcess.start(config, "--role", "dispatcher")
        second = await DaemonProcess.start(config, "--role", "dispatcher")
        daemons = [intake, first, second]
        readers: list[asyncio.Task[None]] = []
        try:
            for daemon in daemons:
                await daemon.wait_for_log("daemon.ready", timeout_s=30)
            readers = [asyncio.create_task(daemon.read_logs()) for daemon in daemons]
            for start in range(0, len(orders), 200):
                await post_events(http, api_port, orders[start : start + 200])
            await until(lambda: len(twilio.received) >= 150, timeout_s=60)
            first.process.send_signal(signal.SIGKILL)  # mid-send
            killed_at = datetime.now(UTC)
            await first.process.wait()
            await until(lambda: len(creates_per_order(twilio)) == len(orders), timeout_s=120)
            for reader in readers:
                reader.cancel()
            assert await second.stop() == 0
            assert await intake.stop() == 0
        finally:
            await ended(*daemons)
    sent = creates_per_order(twilio)
    resent = {
        str(line["order_id"])
        for line in second.log_lines
        if line.get("event") == "sms.resend_after_crash"
    }
    twice = {order for order, count in sent.items() if count > 1}
    worked = Counter(
        str(line.get("worker_id"))
        for daemon in (first, second)
        for line in daemon.log_lines
        if line.get("event") == "worker.joined"
    )
    assert sorted(sent) == [shipped(order)["order_id"] for order in orders]  # none lost
    assert max(sent.values()) <= 2
    assert twice <= resent  # a duplicate only where the dead one had it in flight
    assert len(worked) == 2  # two workers, each its own id
    resent_at = [
        datetime.fromisoformat(str(line["timestamp"]))
        for line in second.log_lines
        if line.get("event") == "sms.resend_after_crash"
    ]
    killed_id = next(
        line["worker_id"] for line in first.log_lines if line.get("event") == "worker.joined"
    )
    [dead] = [row for row in await worker_rows(postgres_url) if row.id == killed_id]
    assert resent_at  # it had messages in flight when it was killed
    assert dead.declared_dead_at - dead.heartbeat_at >= timedelta(seconds=LEASE_S)
    assert min(resent_at) >= dead.declared_dead_at >= killed_at  # never before its lease ran out
    declared = [
        line["dead_worker"]
        for daemon in (intake, second)
        for line in daemon.log_lines
        if line.get("event") == "worker.declared_dead"
    ]
    assert declared == [killed_id]


@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_a_dispatcher_in_its_own_process_sends_at_once_what_the_intake_queued(
    tmp_path: Path, postgres_url: str, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    async with FakeTwilioServer() as twilio:
        config = workers_config(
            tmp_path,
            store_url=postgres_url,
            api_port=api_port,
            twilio_url=twilio.base_url,
            poll_interval_s=3600,  # it would not look for an hour: only the news wakes it
        )
        intake = await DaemonProcess.start(config, "--role", "api")
        dispatcher = await DaemonProcess.start(config, "--role", "dispatcher")
        try:
            for daemon in (intake, dispatcher):
                await daemon.wait_for_log("daemon.ready", timeout_s=30)
            reading = asyncio.create_task(dispatcher.read_logs())
            for order in range(3):  # one after the other, each heard on its own
                await post_events(http, api_port, range(order, order + 1))
                await until(lambda n=order: len(twilio.received) == n + 1, timeout_s=30)
            reading.cancel()
        finally:
            await ended(intake, dispatcher)
    assert sorted(creates_per_order(twilio)) == ["O00000", "O00001", "O00002"]


@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_a_worker_paused_past_its_lease_finds_it_taken_and_stops(
    tmp_path: Path, postgres_url: str
) -> None:
    config = workers_config(tmp_path, store_url=postgres_url, api_port=free_port())
    survivor = await DaemonProcess.start(config, "--role", "dispatcher")
    paused = await DaemonProcess.start(config, "--role", "dispatcher")
    try:
        await survivor.wait_for_log("daemon.ready", timeout_s=30)
        joined = await paused.wait_for_log("worker.joined", timeout_s=30)
        reading = asyncio.create_task(survivor.read_logs())
        paused.process.send_signal(signal.SIGSTOP)  # a VM freeze, a long GC pause...
        await until(
            lambda: any(line.get("event") == "worker.declared_dead" for line in survivor.log_lines),
            timeout_s=30,
        )
        paused.process.send_signal(signal.SIGCONT)
        lost = await paused.wait_for_log("worker.lease_lost", timeout_s=30)
        async with asyncio.timeout(30):
            status = await paused.process.wait()
        reading.cancel()
    finally:
        if paused.process.returncode is None:
            paused.process.send_signal(signal.SIGCONT)
        await ended(survivor, paused)
    assert lost["worker_id"] == joined["worker_id"]
    assert status == 3


@pytest.mark.timeout(60)
async def test_a_second_daemon_on_one_sqlite_file_is_refused_naming_postgresql(
    tmp_path: Path,
) -> None:
    config = workers_config(
        tmp_path, store_url=f"sqlite:///{tmp_path}/outreach.db", api_port=free_port()
    )
    first = await DaemonProcess.start(config, "--role", "api")
    try:
        await first.wait_for_log("api.listening", timeout_s=30)
        second = await DaemonProcess.start(config, "--role", "dispatcher")
        async with asyncio.timeout(30):
            _, errors = await second.process.communicate()
    finally:
        await ended(first)
    lines = errors.decode().splitlines()
    assert second.process.returncode == 2
    assert len(lines) == 1
    assert "SQLite serves one worker: to run several, use PostgreSQL" in lines[0]
    assert f"{tmp_path}/outreach.db" in lines[0]
