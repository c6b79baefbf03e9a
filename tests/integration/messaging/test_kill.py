"""kill -9 during dispatch: the real daemon in a child process, sends stalled at the Twilio
stand-in, SIGKILL, restart: every accepted event's message ends sent, none lost."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import sqlalchemy as sa

from dialer.store import Store
from dialer.store.schema import outbound_messages
from tests.fakes.twilio_server import FakeTwilioServer, Fault
from tests.integration.sms_support import ACCOUNT_SID, STAGES, TOKEN
from tests.support import DaemonProcess, free_port

MESSAGES = 8
CONCURRENCY = 3


def write_config(directory: Path, *, api_port: int, twilio_url: str) -> Path:
    (directory / "api-token").write_text(TOKEN + "\n")
    (directory / "ami-secret").write_text("not-used\n")
    (directory / "twilio-token").write_text("test_auth_token\n")
    config = directory / "config.yaml"
    config.write_text(
        f"""\
ami: {{host: 127.0.0.1, port: {free_port()}, username: outreach, secret_file: ami-secret}}
store: {{url: "sqlite:///outreach.db"}}
api: {{host: 127.0.0.1, port: {api_port}, token_file: api-token, shutdown_grace_s: 2}}
logging: {{level: INFO, format: json}}
campaigns:
  refusal-callback: {{kind: refusal_callback, channel: "Local/{{number}}@customers"}}
  vip-care:
    kind: vip
    channel: "Local/{{number}}@customers"
    agent_queue: agents
    destination: {{queue: agents}}
notifications:
  providers:
    twilio:
      type: twilio
      account_sid: {ACCOUNT_SID}
      auth_token_file: twilio-token
      from_number: "+15005550006"
      base_url: {twilio_url}
      timeout_s: 30
      messages_per_second: 1000
  primary: twilio
  dispatcher: {{concurrency: {CONCURRENCY}, poll_interval_s: 0.05}}
  quiet_hours: null
{STAGES}"""
    )
    return config


async def wait_until(condition: object, timeout_s: float = 15.0) -> None:
    """Poll a condition of another process (the daemon, the stand-in), briefly."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.02)


async def statuses(db: Path) -> list[str]:
    store = await Store.open(f"sqlite+aiosqlite:///{db}", migrate=False)
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(sa.select(outbound_messages.c.status))
            return sorted(row.status for row in rows)
    finally:
        await store.close()


async def post_confirmed_orders(api_port: int, count: int, *, prefix: str) -> None:
    """`count` order_confirmed events, one POST each, to the daemon at `api_port`: each 202."""
    async with aiohttp.ClientSession() as http:
        for i in range(count):
            body = {
                "event_id": f"e{i}",
                "order_id": f"{prefix}{i}",
                "stage": "order_confirmed",
                "phone": f"+861381234{i:04d}",
                "occurred_at": "2025-06-02T12:00:00+08:00",
            }
            async with http.post(
                f"http://127.0.0.1:{api_port}/v1/events",
                json=body,
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as response:
                assert response.status == 202, await response.text()


async def test_kill_9_mid_dispatch_then_restart_loses_nothing(tmp_path: Path) -> None:
    api_port = free_port()
    async with FakeTwilioServer() as fake:
        fake.fail_next(Fault(stall=True), count=CONCURRENCY)
        config = write_config(tmp_path, api_port=api_port, twilio_url=fake.base_url)
        daemon = await DaemonProcess.start(config)
        try:
            await daemon.wait_for_log("api.listening")
            await post_confirmed_orders(api_port, MESSAGES, prefix="K")
            await wait_until(lambda: fake.creates_seen >= CONCURRENCY)
            daemon.process.send_signal(signal.SIGKILL)
            await daemon.process.wait()
        finally:
            daemon.kill()
        assert (
            await statuses(tmp_path / "outreach.db")
            == ["queued"] * (MESSAGES - CONCURRENCY) + ["sending"] * CONCURRENCY
        )
        fake.release_stalls()

        restarted = await DaemonProcess.start(config)
        try:
            settled = await restarted.wait_for_log("sms.resend_after_crash")
            assert settled["order_id"] in {f"K{i}" for i in range(MESSAGES)}
            await wait_until(lambda: len(fake.messages) >= MESSAGES)
            assert await restarted.stop() == 0
        finally:
            restarted.kill()
    assert await statuses(tmp_path / "outreach.db") == ["sent"] * MESSAGES
    sent_to = sorted(message["to"] for message in fake.messages.values())
    assert sent_to == sorted(f"+861381234{i:04d}" for i in range(MESSAGES))  # each once
