"""Reloading the real daemon's config against the lab PBX: SIGHUP with a broken file is refused
(errors logged with file and line, the old config kept); `POST /v1/reload` with a campaign added
and a restart-only key changed applies the campaign at once and names the key."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dialer.app import build
from dialer.config import load_settings
from tests.integration.calling.test_daemon import CAMPAIGNS, daemon_config
from tests.support import DaemonProcess, free_port

SECOND = CAMPAIGNS.replace("campaigns:\n", "").replace("  refusal:", "  second:", 1)


async def campaign_names(http: aiohttp.ClientSession, api_port: int) -> list[str]:
    async with http.get(f"http://127.0.0.1:{api_port}/v1/campaigns") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
    return [campaign["name"] for campaign in body["campaigns"]]


@pytest.mark.pbx
@pytest.mark.usefixtures("lab_pbx_running")
async def test_sighup_refuses_a_broken_config_and_reload_applies_a_good_one(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    config = daemon_config(tmp_path, api_port)
    good = config.read_text()
    daemon = await DaemonProcess.start(config)
    try:
        await daemon.wait_for_log("daemon.ready")
        config.write_text(good.replace("max_calls_per_second: 5", "max_calls_per_second: fast"))
        daemon.process.send_signal(signal.SIGHUP)
        refused = await daemon.wait_for_log("config.reload_refused")
        errors = [line for line in daemon.log_lines if line.get("event") == "config.reload_error"]
        names_after_refusal = await campaign_names(http, api_port)
        async with http.get(f"http://127.0.0.1:{api_port}/metrics") as response:
            metrics_after_refusal = await response.text()

        config.write_text(good.replace(f"port: {api_port}", f"port: {free_port()}") + SECOND)
        async with http.post(f"http://127.0.0.1:{api_port}/v1/reload") as response:
            status, outcome = response.status, await response.json()
        names_after_reload = await campaign_names(http, api_port)
        url = f"http://127.0.0.1:{api_port}/v1/campaigns/second/contacts"
        async with http.post(url, json=[{"phone": "+8613800001001"}]) as response:
            assert response.status == 200
        finished = await daemon.wait_for_log("call.finished", timeout_s=20)

        config.write_text("ami: [not, a, mapping\n")
        async with http.post(f"http://127.0.0.1:{api_port}/v1/reload") as response:
            broken_status, broken = response.status, await response.json()
        still_there = await campaign_names(http, api_port)
        async with http.get(f"http://127.0.0.1:{api_port}/metrics") as response:
            metrics_at_end = await response.text()
        exit_status = await daemon.stop(signal.SIGTERM)
    finally:
        daemon.kill()
    assert refused["errors"] == 1
    assert len(errors) == 1
    assert f"{config}:" in str(errors[0]["error"])
    assert "campaigns.refusal.max_calls_per_second" in str(errors[0]["error"])
    assert names_after_refusal == ["refusal"]
    assert "\noutreach_config_last_reload_successful 0.0\n" in metrics_after_refusal
    assert 'outreach_config_reloads_total{result="refused"} 1.0' in metrics_after_refusal

    assert status == 200
    assert outcome["applied"] is True
    assert outcome["changes"]["campaigns_added"] == ["second"]
    assert outcome["needs_restart"] == ["api"]
    assert names_after_reload == ["refusal", "second"]
    assert (finished["campaign"], finished["outcome"]) == ("second", "answered")

    assert broken_status == 422
    assert broken["applied"] is False
    assert str(config) in broken["errors"][0]
    assert still_there == ["refusal", "second"]
    assert 'outreach_config_reloads_total{result="applied"} 1.0' in metrics_at_end
    assert 'outreach_config_reloads_total{result="refused"} 2.0' in metrics_at_end
    assert exit_status == 0


async def test_reload_needs_the_token(tmp_path: Path) -> None:
    api_port = free_port()
    daemon = await DaemonProcess.start(daemon_config(tmp_path, api_port))
    try:
        await daemon.wait_for_log("api.listening")
        async with (
            aiohttp.ClientSession() as anonymous,
            anonymous.post(f"http://127.0.0.1:{api_port}/v1/reload") as response,
        ):
            status = response.status
        await asyncio.wait_for(daemon.stop(signal.SIGTERM), 15)
    finally:
        daemon.kill()
    assert status == 401


async def test_a_reload_while_stopping_changes_nothing(tmp_path: Path) -> None:
    config = daemon_config(tmp_path, free_port())
    daemon = build(load_settings(config), config_path=config)
    before = daemon.settings
    config.write_text(config.read_text() + SECOND)
    daemon.stopping = True
    refused = await daemon.reloader.reload()
    daemon.stopping = False
    applied = await daemon.reloader.reload()
    assert (refused.applied, refused.errors) == (False, ["the daemon is stopping"])
    assert before is not daemon.settings
    assert applied.applied is True
    assert list(daemon.settings.campaigns) == ["refusal", "second"]
