"""SMS through the real Aliyun and Tencent SDKs, to their local stand-ins. Prints figures.

    .venv/bin/python bench/mainland_sms.py [--messages 400]

For each provider and SDK pool size (`pool_size` 4 and 16; the dispatcher's concurrency 32):

Each send at the stand-in takes 20 ms (a round trip to the provider).

- send: N queued order-stage messages sent by the daemon's dispatcher (claim, template,
  the SDK in its thread pool, the stand-in checking its signature, the outcome saved), on
  SQLite; messages/s, and the most requests the stand-in saw at once (bounded by `pool_size`);
- lookup: the same N marked as sends whose answer was lost (`ambiguous_since`), dispatched
  again: each is looked up (QuerySendDetails / PullSmsSendStatusByPhoneNumber) and found,
  nothing sent twice; lookups/s (the stand-in answers them without the 20 ms) and the
  duplicates (must be 0).

The stand-ins run in this process, on the same event loop as the dispatcher: the figures are a
floor for what a real network would allow, and they compare pool sizes, not providers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.logs import configure_logging
from dialer.messaging.ports import IncomingEvent, NewMessage, StageTemplate
from dialer.messaging.providers import build_provider_stack
from dialer.messaging.service import dispatcher_for
from dialer.store import EventStore, OutboxStore, Store
from dialer.store.engine import writing
from dialer.store.schema import outbound_messages
from tests.fakes.aliyun_sms_server import FakeAliyunSms
from tests.fakes.cloud_sms_common import CloudSmsServer
from tests.fakes.tencent_sms_server import FakeTencentSms
from tests.integration.mainland_support import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    TENCENT_ID,
    TENCENT_KEY,
    mainland_settings,
)

LATENCY_S = 0.02  # each send at the stand-in takes this long, as a round trip to the provider


def stand_in(provider: str) -> CloudSmsServer:
    if provider == "aliyun":
        return FakeAliyunSms(secrets={ALIYUN_KEY_ID: ALIYUN_SECRET})
    return FakeTencentSms(secrets={TENCENT_ID: TENCENT_KEY})


async def queue(store: Store, count: int, now: datetime) -> None:
    template = {
        "aliyun": StageTemplate("SMS_100001", {"order": "A1"}),
        "tencent": StageTemplate("100001", {"order": "A1"}),
    }
    batch = [
        IncomingEvent(
            event_id=f"e{i}",
            order_id=f"A{i}",
            stage="shipped",
            phone=f"+86139{i:08d}",
            payload={"i": i},
            message=NewMessage(f"+86139{i:08d}", "text", 1, now, template),
            new_contacts=[],
            now=now,
            respond=lambda _: {},
        )
        for i in range(count)
    ]
    for start in range(0, count, 100):
        await EventStore(store).accept_events(batch[start : start + 100])


async def run(provider: str, pool_size: int, count: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = await Store.open(f"sqlite+aiosqlite:///{directory}/bench.db")
        async with stand_in(provider) as fake:
            fake.gate.latency_s = LATENCY_S
            settings = mainland_settings(
                Path(directory),
                store_url="sqlite+aiosqlite:///x",
                primary=provider,
                aliyun_endpoint=fake.endpoint,
                tencent_endpoint=fake.endpoint,
                timeout_s=10,
                pool_size=pool_size,
                concurrency=32,
            )
            now = datetime.now(UTC)
            await queue(store, count, now)
            stack = await build_provider_stack(settings.notifications)
            sender = dispatcher_for(
                settings, OutboxStore(store), stack.notifier, now=lambda: now, lookups=stack.lookups
            )
            started = time.perf_counter()
            sent = await sender.run_until_idle()
            send_s = time.perf_counter() - started
            async with writing(store.engine) as conn:
                await conn.execute(
                    outbound_messages.update().values(
                        status="queued", next_attempt_at=now, ambiguous_since=now
                    )
                )
            started = time.perf_counter()
            looked_up = await sender.run_until_idle()
            lookup_s = time.perf_counter() - started
            await stack.notifier.close()
            duplicates = len(fake.accepted) - len({sms.our_id for sms in fake.accepted})
            async with store.engine.connect() as conn:
                done = await conn.scalar(
                    sa.select(sa.func.count()).where(outbound_messages.c.status == "sent")
                )
                errors = set(await conn.scalars(sa.select(outbound_messages.c.last_error)))
            if done != count:
                print(f"  not sent: {sorted(map(str, errors))[:3]}")
        await store.close()
    print(
        f"{provider:<8} pool_size {pool_size:>2}: send {sent / send_s:7.1f} msg/s "
        f"(max {fake.gate.max_in_flight} on the wire), lookup {looked_up / lookup_s:7.1f}/s, "
        f"sent {done}/{count}, duplicates {duplicates}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400)
    count = parser.parse_args().messages
    for provider in ("aliyun", "tencent"):
        for pool_size in (4, 16):
            await run(provider, pool_size, count)


if __name__ == "__main__":
    configure_logging(level="WARNING")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    asyncio.run(main())
