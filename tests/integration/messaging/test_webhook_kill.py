"""kill -9 during webhook delivery: the real daemon in a child process, its webhooks held by the
order system's stand-in, SIGKILL, restart: every webhook reaches the order system (at least
once: a request the order system took just before the kill may come twice, with the same
Idempotency-Key), none lost. On SQLite and on PostgreSQL.

The webhooks are `sms.failed`: SMS that the Twilio stand-in refuses for good (21211, invalid
To), so no PBX is needed (the daemon runs as `--role api --role dispatcher`)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import sqlalchemy as sa

from dialer.store import Store
from dialer.store.schema import outbound_messages
from tests.fakes.order_system import OrderSystem
from tests.fakes.twilio_server import FakeTwilioServer, Fault
from tests.integration.messaging.test_kill import post_confirmed_orders, wait_until
from tests.integration.sms_support import ACCOUNT_SID, ENV, STAGES, TOKEN
from tests.support import DaemonProcess, free_port

ORDERS = 6
CONCURRENCY = 3
ROLES = ("--role", "api", "--role", "dispatcher")


def write_config(
    directory: Path, *, store_url: str, api_port: int, twilio_url: str, hook_url: str
) -> Path:
    (directory / "api-token").write_text(TOKEN + "\n")
    (directory / "ami-secret").write_text("not-used\n")
    (directory / "twilio-token").write_text("test_auth_token\n")
    (directory / "webhook-secret").write_text(ENV["WEBHOOK_SECRET"] + "\n")
    config = directory / "config.yaml"
    config.write_text(
        f"""\
ami: {{host: 127.0.0.1, port: {free_port()}, username: outreach, secret_file: ami-secret}}
store: {{url: "{store_url}"}}
api: {{host: 127.0.0.1, port: {api_port}, token_file: api-token, shutdown_grace_s: 2}}
logging: {{level: INFO, format: json}}
worker: {{id: webhook-worker, lease_s: 3, heartbeat_s: 1}}  # restarted: the same worker
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
  dispatcher: {{concurrency: 10, poll_interval_s: 0.05}}
  quiet_hours: null
{STAGES}
webhooks:
  url: {hook_url}
  secret_file: webhook-secret
  events: [sms.failed]
  concurrency: {CONCURRENCY}
  poll_interval_s: 0.05
  timeout_s: 60
"""
    )
    return config


async def webhook_statuses(store_url: str) -> list[str]:
    store = await Store.open(store_url, migrate=False)
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(outbound_messages.c.status).where(
                    outbound_messages.c.channel == "webhook"
                )
            )
            return sorted(row.status for row in rows)
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def daemon_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(the url in the daemon's config, the url this test reads the store with)."""
    if request.param == "sqlite":
        return "sqlite:///outreach.db", f"sqlite+aiosqlite:///{tmp_path / 'outreach.db'}"
    url = request.getfixturevalue("postgres_url")
    return url, url


async def test_kill_9_mid_webhook_delivery_then_restart_loses_none(
    tmp_path: Path, daemon_store: tuple[str, str]
) -> None:
    config_url, read_url = daemon_store
    api_port = free_port()
    async with FakeTwilioServer() as twilio, OrderSystem(ENV["WEBHOOK_SECRET"]) as orders:
        twilio.fail_next(Fault(status=400, code=21211, message="invalid To"), count=ORDERS)
        orders.stalling = True
        config = write_config(
            tmp_path,
            store_url=config_url,
            api_port=api_port,
            twilio_url=twilio.base_url,
            hook_url=orders.url,
        )
        daemon = await DaemonProcess.start(config, *ROLES)
        try:
            await daemon.wait_for_log("api.listening")
            await post_confirmed_orders(api_port, ORDERS, prefix="W")
            await wait_until(lambda: orders.stalled >= CONCURRENCY)
            daemon.process.send_signal(signal.SIGKILL)
            await daemon.process.wait()
        finally:
            daemon.kill()
        left = await webhook_statuses(read_url)
        assert len(left) == ORDERS
        assert left.count("sending") == CONCURRENCY
        assert set(left) <= {"queued", "sending"}
        orders.release()

        restarted = await DaemonProcess.start(config, *ROLES)
        try:
            await restarted.wait_for_log("sms.resend_after_crash")
            await wait_until(lambda: len(orders.accepted) >= ORDERS)
            assert await restarted.stop() == 0
        finally:
            restarted.kill()
    assert await webhook_statuses(read_url) == ["sent"] * ORDERS
    assert sorted(document["order_id"] for document in orders.events("sms.failed")) == [
        f"W{i}" for i in range(ORDERS)
    ]
    assert orders.refused == []
    assert orders.duplicates() <= CONCURRENCY  # only the ones held when the daemon died
