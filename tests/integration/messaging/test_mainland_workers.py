"""Two workers on PostgreSQL: one dies while Aliyun or Tencent holds its send unanswered; the
other takes the message over only once the first is declared dead (the lease fence of issue 13
kept), looks it up, and sends nothing twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.store import Store
from dialer.store.schema import workers
from dialer.store.workers import WorkerStore
from dialer.workers import WorkerIdentity
from tests.fakes.aliyun_sms_server import FakeAliyunSms
from tests.fakes.cloud_sms_common import CloudSmsServer, Fault, eventually
from tests.fakes.tencent_sms_server import FakeTencentSms
from tests.integration.mainland_support import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    TENCENT_ID,
    TENCENT_KEY,
    dispatcher,
    mainland_settings,
    real_now,
)
from tests.integration.sms_support import event, message_row, sms_service

pytestmark = pytest.mark.postgres


async def declare_dead(store: Store, registry: WorkerStore, worker_id: str) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            workers.update()
            .where(workers.c.id == worker_id)
            .values(lease_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert await registry.declare_expired() == [worker_id]


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_a_message_taken_over_from_a_dead_worker_is_looked_up_not_sent_twice(
    postgres_store: Store, postgres_url: str, tmp_path: Path, provider: str
) -> None:
    store = postgres_store
    fake: CloudSmsServer = (
        FakeAliyunSms(secrets={ALIYUN_KEY_ID: ALIYUN_SECRET})
        if provider == "aliyun"
        else FakeTencentSms(secrets={TENCENT_ID: TENCENT_KEY})
    )
    registry = WorkerStore(store)
    for worker_id in ("a", "b"):
        identity = WorkerIdentity(worker_id, pbx="site-a", host="host-1", pid=4_000_000)
        await registry.register(identity, lease_s=30.0)
    async with fake:
        settings = mainland_settings(
            tmp_path,
            store_url=postgres_url,
            primary=provider,
            aliyun_endpoint=fake.endpoint,
            tencent_endpoint=fake.endpoint,
            timeout_s=30,
        )
        now = real_now()
        status, answer = await sms_service(settings, store, now=now).accept_event(event("e1"))
        assert status == 202
        message_id = answer["message"]["id"]
        fake.fail_next(Fault(accept_then_stall=True))
        async with dispatcher(settings, store, now, owner="a") as worker_a:
            running = asyncio.create_task(worker_a.run_until_idle())
            await eventually(lambda: len(fake.accepted) == 1)
            async with dispatcher(settings, store, now, owner="b") as worker_b:
                assert await worker_b.take_over() == 0  # a is alive: its message stays its own
                await declare_dead(store, registry, "a")
                for task in list(worker_a._in_flight):  # a is gone
                    task.cancel()
                await asyncio.gather(running, return_exceptions=True)
                assert await worker_b.take_over() == 1
                await worker_b.run_until_idle()
            fake.release_stalls()
    assert len(fake.accepted_for(f"msg-{message_id}")) == 1  # 0 duplicates
    row = await message_row(store, message_id)
    assert (row["status"], row["lease_owner"]) == ("delivered", "b")
