"""GET /metrics over real HTTP: no token, Prometheus' text format, and the counters a call and
an SMS flow move, with their labels; the outbox gauges read from the store at scrape time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from dialer.app import metrics_page
from dialer.calling.options import RunnerOptions
from dialer.calling.ports import NewContact
from dialer.calling.service import CampaignService
from dialer.http.server import make_web_app
from dialer.http.sms import add_sms_routes
from dialer.messaging.providers import build_notifier
from dialer.messaging.service import SmsService, dispatcher_for
from dialer.metrics import Metrics
from dialer.store import CampaignStore, Store
from tests.fakes.campaign_pbx import NOW, FakeClock, FakePbx, never, no_wait, settings_with
from tests.fakes.twilio_server import DEFAULT_AUTH_TOKEN
from tests.integration.sms_support import (
    AUTH,
    TOKEN,
    Now,
    all_ready,
    event,
    queue_message,
    sms_service,
    sms_settings,
)
from tests.support import ALL_WEEK

PUBLIC = "https://outreach.example.com"
STATUS = "/v1/sms/twilio/status"
REFUSAL = f"""
refusal:
  kind: refusal_callback
  channel: Local/{{number}}@customers
  max_concurrent_calls: 10
  max_calls_per_second: 100
  calling_windows: {ALL_WEEK}
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
Client = TestClient[web.Request, web.Application]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def at(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


class Rig:
    def __init__(self, client: Client, sms: SmsService, metrics: Metrics) -> None:
        self.client, self.sms, self.metrics = client, sms, metrics

    async def scrape(self) -> tuple[int, str, Samples]:
        response = await self.client.get("/metrics")
        text = await response.text()
        return response.status, response.headers["Content-Type"], parse(text)


@pytest.fixture
async def rig(store: Store, store_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    """The daemon's web app with the SMS routes and one Metrics, over real HTTP."""
    metrics = Metrics()
    now = Now()
    settings = sms_settings(tmp_path, store_url=store_url, public_url=PUBLIC)
    sms = sms_service(settings, store, now=now, metrics=metrics)
    app = make_web_app(
        all_ready,
        max_body_bytes=settings.api.max_body_bytes,
        api_token=TOKEN,
        metrics_page=lambda: metrics_page(metrics, store, now()),
    )
    add_sms_routes(app, sms, store)
    async with TestClient(TestServer(app)) as client:
        yield Rig(client, sms, metrics)


async def test_metrics_answer_without_a_token_in_prometheus_text_format(rig: Rig) -> None:
    status, content_type, samples = await rig.scrape()
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    assert at(samples, "outreach_ami_connected") == 0
    assert at(samples, "outreach_outbox_depth") == 0


async def test_an_sms_flow_moves_its_counters_with_stage_and_provider(rig: Rig) -> None:
    accepted = await rig.client.post("/v1/events", json=event("E1"), headers=AUTH)
    assert accepted.status == 202
    message_id = (await accepted.json())["message"]["id"]
    again = await rig.client.post("/v1/events", json=event("E1"), headers=AUTH)
    assert again.status == 200
    notifier = await build_notifier(rig.sms.settings.notifications, metrics=rig.metrics)
    try:
        dispatcher = dispatcher_for(
            rig.sms.settings,
            rig.sms.outbox,
            notifier,
            now=rig.sms.now,
            metrics=rig.metrics,
        )
        assert await dispatcher.run_until_idle() == 1
    finally:
        await notifier.close()
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    url = f"{STATUS}?message_id={message_id}"
    signature = RequestValidator(DEFAULT_AUTH_TOKEN).compute_signature(PUBLIC + url, params)
    reported = await rig.client.post(url, data=params, headers={"X-Twilio-Signature": signature})
    assert reported.status == 204
    _, _, samples = await rig.scrape()
    sent = {"stage": "shipped", "provider": "outbox"}
    assert at(samples, "outreach_events_received_total", stage="shipped") == 1
    assert at(samples, "outreach_sms_queued_total", stage="shipped") == 1
    assert at(samples, "outreach_sms_sent_total", **sent) == 1
    assert at(samples, "outreach_sms_delivered_total", **sent) == 1
    assert at(samples, "outreach_sms_provider_latency_seconds_count", provider="outbox") == 1
    assert at(samples, "outreach_outbox_depth") == 0


async def test_calls_move_originated_finished_and_abandon_ratio_by_campaign(
    rig: Rig, store: Store
) -> None:
    clock, pbx = FakeClock(NOW), FakePbx()
    service = CampaignService(
        settings_with(REFUSAL),
        CampaignStore(store),
        CampaignStore(store),
        pbx,
        now=clock,
        sleep=no_wait,
        timer=never,
        options=RunnerOptions(worker_id="test-worker", default_region="CN"),
        metrics=rig.metrics,
    )
    pbx.handler = service.handle_event
    await service.open()
    await service.start()
    runner = service.runners["refusal"]
    phones = ["+8613800001001", "+8613800001002"]  # the lab's answering and busy customers
    await service.repository.add_contacts(runner.campaign_id, [NewContact(p) for p in phones], NOW)
    await service.run_until_idle()
    _, _, samples = await rig.scrape()
    assert at(samples, "outreach_calls_originated_total", campaign="refusal") == 2
    assert at(samples, "outreach_calls_in_flight", campaign="refusal") == 0
    finished = "outreach_calls_finished_total"
    assert at(samples, finished, campaign="refusal", outcome="answered") == 1
    assert at(samples, finished, campaign="refusal", outcome="busy") == 1
    assert at(samples, "outreach_call_abandon_ratio", campaign="refusal") == 0


async def test_outbox_gauges_count_waiting_rows_and_the_age_of_the_oldest_due(
    rig: Rig, store: Store
) -> None:
    now = rig.sms.now
    assert isinstance(now, Now)
    await queue_message(store, now, order_id="A1")
    now.advance(90)
    await queue_message(store, now, order_id="A2")
    not_due_yet = now() + timedelta(hours=1)
    later = Now(not_due_yet)
    await queue_message(store, later, order_id="A3")
    _, _, samples = await rig.scrape()
    assert at(samples, "outreach_outbox_depth") == 3
    assert at(samples, "outreach_outbox_oldest_due_age_seconds") == 90
