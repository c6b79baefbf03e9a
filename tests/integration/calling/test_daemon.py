"""The campaigns in the real daemon process: the HTTP API, and `kill -9` mid-campaign."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dialer.store import CampaignStore, Store
from tests.support import ALL_WEEK, DaemonProcess, free_port, lab_pbx, write_daemon_config

CAMPAIGNS = f"""
campaigns:
  refusal:
    kind: refusal_callback
    channel: Local/{{number}}@customers
    ring_timeout_s: 15
    agent_queue: agents
    max_concurrent_calls: 2
    max_calls_per_second: 5
    calling_windows: {ALL_WEEK}
    retry: {{unknown: {{delay_s: 0, max_attempts: 2}}}}
    max_total_attempts: 2
"""


def daemon_config(tmp_path: Path, api_port: int) -> Path:
    config = write_daemon_config(tmp_path, api_port=api_port)
    config.write_text(config.read_text() + CAMPAIGNS)
    return config


async def campaign(http: aiohttp.ClientSession, api_port: int) -> dict[str, Any]:
    async with http.get(f"http://127.0.0.1:{api_port}/v1/campaigns/refusal") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def test_contacts_added_by_api_are_reported_row_by_row(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    daemon = await DaemonProcess.start(daemon_config(tmp_path, api_port))
    try:
        await daemon.wait_for_log("daemon.ready")
        async with http.post(f"http://127.0.0.1:{api_port}/v1/campaigns/refusal/pause") as r:
            assert (await r.json())["state"] == "paused"
        body = [
            {"phone": "13800001001", "name": "王小明", "context": {"order_id": "A1"}},
            {"phone": "+8613800001001"},
            {"phone": "+12025550123"},
            {"phone": "not a number"},
        ]
        url = f"http://127.0.0.1:{api_port}/v1/campaigns/refusal/contacts"
        async with http.post(url, json=body) as response:
            status, answer = response.status, await response.json()
        shown = await campaign(http, api_port)
        async with http.get(f"http://127.0.0.1:{api_port}/v1/campaigns/nope") as response:
            missing = response.status
        assert await daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.kill()
    assert status == 200
    assert (answer["added"], answer["merged"], answer["refused"]) == (1, 1, 2)
    assert [row["status"] for row in answer["rows"]] == ["added", "merged", "refused", "refused"]
    assert "not an allowed country" in answer["rows"][2]["reason"]
    assert answer["rows"][0]["phone"] == "+86138****1001"
    assert shown["contacts"] == {"pending": 1}
    assert shown["state"] == "paused"
    assert missing == 404


@pytest.mark.pbx
@pytest.mark.usefixtures("lab_pbx_running")
@pytest.mark.timeout(90)  # real calls of 10 s through the IVR, before and after a restart
async def test_kill_9_mid_campaign_and_a_restart_lose_and_double_nothing(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    config = daemon_config(tmp_path, api_port)
    phones = [f"+86138{i:04d}1005" for i in range(4)]
    first = await DaemonProcess.start(config)
    try:
        await first.wait_for_log("daemon.ready")
        url = f"http://127.0.0.1:{api_port}/v1/campaigns/refusal/contacts"
        async with http.post(url, json=[{"phone": p} for p in phones]) as response:
            assert response.status == 200
        await first.wait_for_log("call.answered", timeout_s=10)
        first.process.send_signal(signal.SIGKILL)
        await first.process.wait()
    finally:
        first.kill()
    second = await DaemonProcess.start(config)
    try:
        await second.wait_for_log("daemon.ready")
        async with asyncio.timeout(50):
            # another process: poll its API while the real calls end
            while (await campaign(http, api_port))["contacts"] != {"done": 4}:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
        async with http.get(f"http://127.0.0.1:{api_port}/metrics") as response:
            metrics = await response.text()
        assert await second.stop(signal.SIGTERM) == 0
    finally:
        second.kill()
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'outreach.db'}")
    try:
        campaigns = CampaignStore(store)
        campaign_id = await campaigns.ensure_campaign("refusal", "refusal_callback")
        rows = await campaigns.attempt_rows(campaign_id)
    finally:
        await store.close()
    assert sorted(row["phone"] for row in rows) == sorted(phones)  # each dialled once
    assert [row["outcome"] for row in rows] == ["answered"] * 4
    recovered = [line for line in second.log_lines if line.get("event") == "campaign.recovered"]
    assert recovered
    assert recovered[0]["followed"] >= 1
    # The real PBX stamps its events (timestampevents = yes): their lag is measured.
    assert "\noutreach_ami_event_lag_seconds_count 0.0\n" not in metrics
    assert "\noutreach_ami_event_lag_seconds_count " in metrics
    assert 'outreach_calls_finished_total{campaign="refusal",outcome="answered"}' in metrics


@pytest.mark.pbx
@pytest.mark.usefixtures("lab_pbx_running")
async def test_sigterm_with_a_call_up_waits_the_grace_then_says_what_was_left(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    daemon = await DaemonProcess.start(daemon_config(tmp_path, api_port))
    try:
        await daemon.wait_for_log("daemon.ready")
        url = f"http://127.0.0.1:{api_port}/v1/campaigns/refusal/contacts"
        async with http.post(url, json=[{"phone": "+8613800001008"}]) as response:
            assert response.status == 200  # answers, then stays on the line for 30 s
        await daemon.wait_for_log("call.answered", timeout_s=10)
        async with http.get(f"http://127.0.0.1:{api_port}/v1/campaigns/refusal") as response:
            live_calls = (await response.json())["live_calls"]
        exit_status = await daemon.stop(signal.SIGTERM, timeout_s=15)
    finally:
        daemon.kill()
        # the call outlives the daemon on purpose: end it, so it keeps no agent busy for others
        await asyncio.to_thread(lab_pbx, "cli", "channel request hangup all")
    events = [line["event"] for line in daemon.log_lines]
    summary = daemon.log_lines[-1]
    assert [(call["phone"], call["stage"]) for call in live_calls] == [
        ("+86138****1008", "answered")
    ]
    assert live_calls[0]["age_s"] >= 0
    assert exit_status == 0
    assert "daemon.component_cancelled" in events  # the 5 s grace ran out before the call ended
    assert summary["event"] == "daemon.stopped"
    assert summary["calls_in_flight"] == 1
    assert summary["cancelled"] != []
    assert "shutdown grace ran out" in str(summary["why"])
