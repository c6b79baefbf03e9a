"""The status page's search box, its charts of the last 24 hours and its two languages, in a
real browser (headless chromium) against the real daemon (no PBX needed: the store is seeded
before the daemon starts). Screenshots go to test-output/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from dialer.calling.ports import NewContact, NextStep, Settlement
from dialer.outcomes import Outcome
from dialer.store import CampaignStore, OutboxStore, Store
from dialer.store.timeline import TimelineStore
from dialer.timeline import NewEntry
from tests.integration.browser_support import chromium_page, log_in, screenshot
from tests.integration.sms_support import Now, queue_message, record_sent
from tests.support import DAEMON_TOKEN, DaemonProcess, free_port, write_daemon_config

PHONE = "+8613812345678"


async def seed(database: Path) -> None:
    """Two calls (one answered) and one SMS sent within the hour; a number's timeline."""
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    try:
        now = datetime.now(UTC)
        campaigns = CampaignStore(store)
        campaign_id = await campaigns.ensure_campaign("refusal", "refusal_callback")
        contacts = [NewContact(PHONE), NewContact("+8613800001002")]
        await campaigns.add_contacts(campaign_id, contacts, now)
        for number, outcome in enumerate((Outcome.ANSWERED, Outcome.BUSY)):
            contact = await campaigns.claim_next(campaign_id, owner="w", now=now, lease_s=60)
            assert contact is not None
            await campaigns.start_attempt(contact, attempt_id=f"a{number}", now=now)
            settled = Settlement(f"a{number}", outcome, now + timedelta(seconds=5))
            await campaigns.settle(settled, NextStep("done"), next_attempt_at=None)
        clock = Now(now)
        sent = await queue_message(store, clock, phone=PHONE, order_id="T-1")
        await OutboxStore(store).claim_due(now=now, limit=10)
        await record_sent(store, sent, provider="outbox", provider_message_id="m-1", now=now)
        until = now + timedelta(hours=2)
        await TimelineStore(store).record(
            [NewEntry(PHONE, now, "held_back", "outside_calling_window", until=until)]
        )
    finally:
        await store.close()


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    api_port = free_port()
    config = write_daemon_config(tmp_path, api_port=api_port, ami_port=free_port())
    (tmp_path / "var").mkdir()
    await seed(tmp_path / "var" / "outreach.db")
    daemon = await DaemonProcess.start(config)
    try:
        await daemon.wait_for_log("api.listening")
        yield f"http://127.0.0.1:{api_port}"
    finally:
        daemon.kill()
        await daemon.process.wait()


async def test_the_search_box_shows_the_timeline_of_a_number_in_any_format(
    tmp_path: Path, base_url: str
) -> None:
    async with chromium_page(tmp_path / "chromium") as page:
        await log_in(page, base_url, DAEMON_TOKEN)
        await page.fill("#timeline-phone", "138 1234 5678")
        await page.click("#timeline-form button[type=submit]")
        rows = page.locator("#timeline tbody tr")
        await expect(page.locator("#timeline-message")).to_contain_text(PHONE)
        kinds = await rows.evaluate_all("rows => rows.map(r => r.dataset.kind)")
        assert kinds == [
            "contact_added",
            "dialled",
            "event_received",
            "sms_queued",
            "sms_sent",
            "held_back",
            "call_outcome",  # the call ended 5 s later
            "contact_finished",
        ]
        held = page.locator('#timeline tbody tr[data-kind="held_back"] .timeline-reason')
        await expect(held).to_contain_text("outside_calling_window (until")
        await screenshot(page, "status-page-timeline.png")

        await page.fill("#timeline-phone", "12ab")
        await page.click("#timeline-form button[type=submit]")
        await expect(page.locator("#timeline-message")).to_contain_text("Not a phone number")
        await expect(page.locator("#timeline")).to_be_hidden()


async def test_the_charts_count_the_last_24_hours_per_campaign_and_stage(
    tmp_path: Path, base_url: str
) -> None:
    async with chromium_page(tmp_path / "chromium") as page:
        await log_in(page, base_url, DAEMON_TOKEN)
        calls = page.locator('#trends [data-series="calls:refusal"]')
        await expect(calls.locator(".trend-total")).to_have_text("2 in 24 h")
        await expect(calls.locator("rect.trend-bar")).to_have_count(24)
        rate = page.locator('#trends [data-series="answer_rate:refusal"]')
        await expect(rate.locator("polyline.trend-line")).to_have_count(1)
        await expect(rate.locator(".trend-total")).to_have_text("50% over 24 h")
        sent = page.locator('#trends [data-series="sent:shipped"]')
        await expect(sent.locator(".trend-total")).to_have_text("1 in 24 h")
        abandoned = page.locator('#trends [data-series="abandoned:refusal"]')
        await expect(abandoned.locator(".trend-total")).to_have_text("0 in 24 h")
        await screenshot(page, "status-page-trends.png")


async def test_a_chinese_browser_gets_the_page_in_chinese_and_can_switch_to_english(
    tmp_path: Path, base_url: str
) -> None:
    async with chromium_page(tmp_path / "chromium", locale="zh-CN") as page:
        await log_in(page, base_url, DAEMON_TOKEN)
        await expect(page.locator("#campaigns-title")).to_have_text("外呼任务")
        await expect(page.locator("#timeline-title")).to_have_text("号码时间线")
        await expect(page.locator("#ami")).to_have_text("AMI: 断开")
        sent = page.locator('#trends [data-series="sent:shipped"]')
        await expect(sent.locator(".trend-title")).to_have_text("短信 shipped：已发送")
        assert await page.evaluate("document.documentElement.lang") == "zh-CN"
        await screenshot(page, "status-page-zh.png")

        await page.select_option("#lang", "en")
        await expect(page.locator("#campaigns-title")).to_have_text("Campaigns")
        await expect(sent.locator(".trend-title")).to_have_text("SMS shipped: sent")
        await expect(page.locator("#ami")).to_have_text("AMI: down")
        await page.reload()  # the choice is kept
        await expect(page.locator("#timeline-title")).to_have_text("Timeline of a number")
