"""Helpers of the SMS integration tests: settings, a clock, the API over real HTTP."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dialer.clock import Clock
from dialer.config import Settings, parse_settings
from dialer.http.server import Check, make_web_app
from dialer.http.sms import add_sms_routes
from dialer.messaging.ports import IncomingEvent, MessageOutcome, NewMessage
from dialer.messaging.service import SmsService
from dialer.metrics import Metrics
from dialer.store import CallbackStore, EventStore, OptOutStore, OutboxStore, Store, sms_reports
from tests.fakes.twilio_server import DEFAULT_AUTH_TOKEN, VALID_FROM

TOKEN = "sms-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACCOUNT_SID = "AC" + "0" * 32
MOBILE = "+8613812345678"  # a Chinese mobile
LANDLINE = "+861012345678"  # a Beijing fixed line
ENV = {
    "AMI_SECRET": "x",
    "API_TOKEN": TOKEN,
    "TWILIO_TOKEN": DEFAULT_AUTH_TOKEN,
    "WRONG_TOKEN": "wrong-token",
    "WEBHOOK_SECRET": "order-system-shared-secret",
}

STAGES = """\
  stages:
    order_confirmed:
      template: "{signature}您好{customer_name}，您的订单{order_id}已确认。"
    shipped:
      template: "{signature}订单{order_id}已由{courier}发出，运单号{tracking_number}，{eta}送达。"
    delivered:
      template: "{signature}订单{order_id}已签收，欢迎再次选购！{opt_out_hint}"
      marketing: true
      add_to_campaign: vip-care
      only_vip: true
    refused:
      template: "{signature}您好{customer_name}，订单{order_id}已拒收，客服稍后致电。"
      urgent: true
      add_to_campaign: refusal-callback
    refund_issued:
      template: "Order {order_id}: refund of {refund_amount} issued."
"""


CAMPAIGNS = """\
campaigns:
  refusal-callback: {kind: refusal_callback, channel: "Local/{number}@customers"}
  vip-care:
    kind: vip
    channel: "Local/{number}@customers"
    agent_queue: agents
    destination: {queue: agents}"""


def sms_settings(
    directory: Path,
    *,
    store_url: str,
    primary: str = "outbox",
    fallback: str | None = None,
    twilio_base_url: str = "http://127.0.0.1:9",
    public_url: str | None = None,
    api_port: int = 8080,
    quiet_hours: str = "null",
    retry: str = "{backoff_initial_s: 30, backoff_max_s: 3600, max_age_s: 86400}",
    concurrency: int = 10,
    twilio_token: str = "${TWILIO_TOKEN}",
    stages: str = STAGES,
    extra: str = "",
    campaigns: str = CAMPAIGNS,
) -> Settings:
    callback = f"status_callback_url: {public_url}/v1/sms/twilio/status" if public_url else ""
    text = f"""\
ami: {{host: 127.0.0.1, port: 15038, username: outreach, secret: "${{AMI_SECRET}}"}}
store: {{url: "{store_url}"}}
api:
  host: 127.0.0.1
  port: {api_port}
  token: "${{API_TOKEN}}"
  {f"public_url: {public_url}" if public_url else ""}
{campaigns}
notifications:
  providers:
    outbox: {{type: outbox, path: outbox.jsonl, messages_per_second: 100000}}
    twilio:
      type: twilio
      account_sid: {ACCOUNT_SID}
      auth_token: "{twilio_token}"
      from_number: "{VALID_FROM}"
      base_url: {twilio_base_url}
      timeout_s: 2
      messages_per_second: 100000
      {callback}
  primary: {primary}
  {f"fallback: {fallback}" if fallback else ""}
  retry: {retry}
  dispatcher: {{concurrency: {concurrency}, poll_interval_s: 0.05}}
  quiet_hours: {quiet_hours}
  signature: 【好物优选】
{stages}{extra}"""
    return parse_settings(text, source="test.yaml", base_dir=directory, environ=ENV)


class Now:
    """A datetime clock moved by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.value = start or datetime(2025, 6, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


def event(
    event_id: str,
    *,
    order_id: str = "A1001",
    stage: str = "shipped",
    phone: str = MOBILE,
    vip: bool = False,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "order_id": order_id,
        "stage": stage,
        "phone": phone,
        "customer": {"name": "王女士", "vip": vip},
        "occurred_at": "2025-06-02T12:00:00+08:00",
        "data": data if data is not None else {"courier": "顺丰", "tracking_number": "SF123"},
    }


async def all_ready() -> list[Check]:
    return []


def sms_service(
    settings: Settings,
    store: Store,
    *,
    now: Clock,
    metrics: Metrics | None = None,
) -> SmsService:
    """The SMS component on the store's repositories, as the daemon builds it."""
    return SmsService(
        settings,
        events=EventStore(store),
        outbox=OutboxStore(store),
        opt_outs=OptOutStore(store),
        callbacks=CallbackStore(store),
        now=now,
        metrics=metrics,
    )


@contextlib.asynccontextmanager
async def api_client(
    settings: Settings,
    store: Store,
    now: Now,
    *,
    port: int | None = None,
    metrics: Metrics | None = None,
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], SmsService]]:
    """The daemon's web app with the SMS routes, served over real HTTP."""
    component = sms_service(settings, store, now=now, metrics=metrics)
    app = make_web_app(all_ready, max_body_bytes=settings.api.max_body_bytes, api_token=TOKEN)
    add_sms_routes(app, component, store)
    server = TestServer(app, host="127.0.0.1", port=port) if port else TestServer(app)
    async with TestClient(server) as client:
        yield client, component


async def message_row(store: Store, message_id: int) -> dict[str, Any]:
    row = await sms_reports.message_status(store, message_id)
    assert row is not None
    return dict(row)


def outbox_lines(directory: Path) -> list[dict[str, Any]]:
    path = directory / "outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def queue_message(
    store: Store,
    now: Now,
    *,
    phone: str = "+14155550100",
    order_id: str = "A1",
    stage: str = "shipped",
    body: str = "Your order shipped",
) -> int:
    """Queue one message as the intake does, to any number (Twilio's magic test numbers are
    not mobiles, so the intake itself would not queue to them)."""
    [accepted] = await EventStore(store).accept_events(
        [
            IncomingEvent(
                event_id=f"{order_id}-{stage}",
                order_id=order_id,
                stage=stage,
                phone=phone,
                payload={"order_id": order_id},
                message=NewMessage(phone, body, 1, now()),
                new_contacts=[],
                now=now(),
                respond=lambda _: {},
            )
        ]
    )
    assert accepted.message_id is not None
    return accepted.message_id


async def record_sent(
    store: Store, message_id: int, *, provider: str, provider_message_id: str, now: datetime
) -> bool:
    """A claimed message accepted by `provider`, as the dispatcher records it."""
    sent = MessageOutcome(
        "sent", message_id, now, provider=provider, provider_message_id=provider_message_id
    )
    return await OutboxStore(store).record_outcome(sent)


async def mark_dead(
    store: Store,
    message_id: int,
    *,
    reason: str,
    error: str,
    code: str | None,
    now: datetime,
    opt_out_phone: str | None = None,
) -> bool:
    """A claimed message given up on, as the dispatcher records it."""
    dead = MessageOutcome(
        "dead", message_id, now, error=f"{reason}: {error}", code=code, opt_out_phone=opt_out_phone
    )
    return await OutboxStore(store).record_outcome(dead)
