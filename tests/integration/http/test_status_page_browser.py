"""The status page in a real browser (Debian's chromium, headless) against the real daemon:
log in through the form, watch a live call on the lab PBX, pause the campaign from the page;
the SMS funnel and a dead message; the banner when the daemon stops answering.
Screenshots go to test-output/ (gitignored)."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from dialer.store import OutboxStore, Store
from tests.integration.browser_support import chromium_page, log_in, screenshot
from tests.integration.sms_support import Now, mark_dead, queue_message, record_sent
from tests.support import (
    ALL_WEEK,
    DAEMON_TOKEN,
    DaemonProcess,
    free_port,
    lab_pbx,
    write_daemon_config,
)

# One line: the first call (answered, then with an agent for 30 s) keeps the others due.
CAMPAIGNS = f"""
campaigns:
  refusal:
    kind: refusal_callback
    channel: Local/{{number}}@customers
    ring_timeout_s: 15
    agent_queue: agents
    max_concurrent_calls: 1
    max_calls_per_second: 5
    calling_windows: {ALL_WEEK}
"""
AGE = re.compile(r"^\d+ s$")  # how the page shows a call's age under a minute
STAYS_UP = ["+8613800001008", "+8613800011008", "+8613800021008"]  # answer, talk 30 s


async def campaign(http: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    async with http.get(f"{base_url}/v1/campaigns/refusal") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def until_settled(http: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    """The campaign once no contact is being dialled and no call is up."""
    async with asyncio.timeout(15):
        while True:
            status = await campaign(http, base_url)
            if status["calls_in_flight"] == 0 and "dialling" not in status["contacts"]:
                return status
            await asyncio.sleep(0.2)  # another process: poll its API


@pytest.mark.pbx
@pytest.mark.usefixtures("lab_pbx_running")
async def test_the_page_shows_a_live_call_and_pausing_it_stops_the_campaign(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    base_url = f"http://127.0.0.1:{api_port}"
    config = write_daemon_config(tmp_path, api_port=api_port)
    config.write_text(config.read_text() + CAMPAIGNS)
    daemon = await DaemonProcess.start(config)
    try:
        await daemon.wait_for_log("daemon.ready")
        url = f"{base_url}/v1/campaigns/refusal/contacts"
        async with http.post(url, json=[{"phone": phone} for phone in STAYS_UP]) as response:
            assert response.status == 200
        await daemon.wait_for_log("call.answered", timeout_s=10)
        async with chromium_page(tmp_path / "chromium") as page:
            await log_in(page, base_url, DAEMON_TOKEN)
            card = page.locator('[data-campaign="refusal"]')
            await expect(page.locator("#ami")).to_have_text("AMI: logged in")
            await expect(page.locator("#ami")).to_have_class("pill pill-up")
            await expect(card.locator(".campaign-state")).to_have_text("running")
            await expect(card.locator(".count-in-flight")).to_have_text("1")
            await expect(card.locator(".count-due")).to_have_text("2")
            live = card.locator(".campaign-live tbody tr")
            await expect(live).to_have_count(1)
            await expect(live.locator(".live-phone")).to_have_text("+86138****1008")
            await expect(live.locator(".live-age")).to_have_text(AGE)
            await expect(page.locator("#refreshed")).to_contain_text("Updated")

            await card.locator(".campaign-pause").click()
            await expect(card.locator(".campaign-state")).to_have_text("paused")
            await expect(card.locator(".campaign-resume")).to_be_visible()
            await expect(card.locator(".campaign-pause")).to_be_hidden()
            await screenshot(page, "status-page.png")
            paused = await campaign(http, base_url)
            # The call up ends; the line it frees must not carry a new call.
            await asyncio.to_thread(lab_pbx, "cli", "channel request hangup all")
            settled = await until_settled(http, base_url)
            await expect(card.locator(".campaign-live tbody tr")).to_have_text("No call in flight")
        assert await daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.kill()
        await asyncio.to_thread(lab_pbx, "cli", "channel request hangup all")
    assert paused["state"] == "paused"
    assert settled["state"] == "paused"
    assert settled["contacts"]["pending"] == 2
    assert sum(settled["attempts"].values()) + settled["attempts_in_flight"] == 1
    assert [line["event"] for line in daemon.log_lines].count("campaign.paused") == 1


async def seed_outbox(database: Path) -> None:
    """A dead message (the provider refused the number) and a sent one, before the daemon."""
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    try:
        now = Now(datetime.now(UTC))
        dead = await queue_message(store, now, phone="+8613812345678", order_id="D-1001")
        sent = await queue_message(store, now, phone="+8613812349999", order_id="D-1002")
        await OutboxStore(store).claim_due(now=now(), limit=10)
        await mark_dead(
            store,
            dead,
            reason="provider",
            error="The 'To' number is not a valid phone number",
            code="21211",
            now=now(),
        )
        await record_sent(store, sent, provider="outbox", provider_message_id="m-1", now=now())
    finally:
        await store.close()


@pytest.fixture
async def daemon_without_pbx(tmp_path: Path) -> AsyncIterator[tuple[DaemonProcess, str]]:
    """The real daemon with a seeded outbox and an AMI port nothing listens on."""
    api_port = free_port()
    config = write_daemon_config(tmp_path, api_port=api_port, ami_port=free_port())
    (tmp_path / "var").mkdir()
    await seed_outbox(tmp_path / "var" / "outreach.db")
    daemon = await DaemonProcess.start(config)
    try:
        await daemon.wait_for_log("api.listening")
        yield daemon, f"http://127.0.0.1:{api_port}"
    finally:
        daemon.kill()
        await daemon.process.wait()


async def test_the_page_shows_the_sms_funnel_a_dead_message_and_the_ami_link_down(
    tmp_path: Path, daemon_without_pbx: tuple[DaemonProcess, str]
) -> None:
    _, base_url = daemon_without_pbx
    async with chromium_page(tmp_path / "chromium") as page:
        await log_in(page, base_url, DAEMON_TOKEN)
        shipped = page.locator('#funnel tbody tr[data-stage="shipped"]')
        await expect(shipped.locator('[data-status="dead"]')).to_have_text("1")
        await expect(shipped.locator('[data-status="sent"]')).to_have_text("1")
        await expect(shipped.locator('[data-status="queued"]')).to_have_text("0")
        await expect(shipped.locator(".total")).to_have_text("2")
        dead = page.locator("#dead tbody tr")
        await expect(dead).to_have_count(1)
        await expect(dead.locator(".reason")).to_have_text(
            "provider: The 'To' number is not a valid phone number"
        )
        await expect(dead).to_contain_text("D-1001")
        await expect(dead).to_contain_text("+86138****5678")
        await expect(dead).not_to_contain_text("+8613812345678")
        await expect(page.locator("#ami")).to_have_class("pill pill-down")
        await expect(page.locator("#ami")).to_have_text("AMI: down")
        await expect(page.locator("#ami-detail")).to_contain_text("cannot reach AMI")
        await expect(page.locator("#campaigns")).to_have_text("No campaign is configured.")
        await screenshot(page, "status-page-sms.png")


async def test_the_page_says_so_when_the_daemon_stops_answering(
    tmp_path: Path, daemon_without_pbx: tuple[DaemonProcess, str]
) -> None:
    daemon, base_url = daemon_without_pbx
    async with chromium_page(tmp_path / "chromium") as page:
        await log_in(page, base_url, DAEMON_TOKEN)
        banner = page.locator("#banner")
        await expect(page.locator("#refreshed")).to_contain_text("Updated")
        await expect(banner).to_be_hidden()
        assert await daemon.stop(signal.SIGTERM) == 0
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("The daemon does not answer")
        await expect(banner).to_contain_text("Showing what was read at")
        await screenshot(page, "status-page-daemon-gone.png")
