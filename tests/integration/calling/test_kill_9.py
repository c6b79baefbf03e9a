"""`kill -9` of the daemon at 20 random moments of a campaign of 200 contacts on the lab PBX:
no number is called twice and none is lost.

Every contact is a lab customer that answers, stays 2 s in the refusal IVR and hangs up. The
daemon is killed and restarted again and again while it dials; calls that were up when it died
are followed on after the restart (their channels are still up) or, when they ended while it
was down, settled from the PBX's own record of them (the dialplan's `outreach-record`, in
AstDB). How often each number was dialled is counted on the PBX's side: the Local channels the
lab's Asterisk created for it, seen by a separate AMI connection."""

from __future__ import annotations

import asyncio
import random
import re
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dialer.pbx.client import AmiClient
from tests.support import (
    ALL_WEEK,
    DaemonProcess,
    EventRecorder,
    free_port,
    lab_ami_options,
    running,
    write_daemon_config,
)

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("lab_pbx_running")]

CONTACTS = 200
KILLS = 20
SEED = 20261206
CAMPAIGN = f"""
campaigns:
  refusal:
    kind: refusal_callback
    channel: Local/{{number}}@customers
    ring_timeout_s: 15
    max_concurrent_calls: 10
    max_calls_per_second: 5
    calling_windows: {ALL_WEEK}
    retry: {{unknown: {{delay_s: 0, max_attempts: 3}}}}
    max_total_attempts: 3
"""
CUSTOMER_LEG = re.compile(r"^Local/(\+\d+)@customers-[0-9a-f]+;1$")


async def contacts(http: aiohttp.ClientSession, api_port: int) -> dict[str, Any]:
    async with http.get(f"http://127.0.0.1:{api_port}/v1/campaigns/refusal") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
    return body


def dials_per_number(recorder: EventRecorder) -> Counter[str]:
    """Calls Asterisk placed to each number: the Local channels it created for it."""
    found: Counter[str] = Counter()
    for event in recorder.events:
        if event.get("Event") == "Newchannel":
            match = CUSTOMER_LEG.match(event.get("Channel", ""))
            if match:
                found[match.group(1)] += 1
    return found


@pytest.mark.timeout(600)
async def test_kill_9_at_twenty_moments_calls_no_number_twice_and_loses_none(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    config = write_daemon_config(tmp_path, api_port=api_port)
    config.write_text(config.read_text() + CAMPAIGN)
    phones = [f"+86138{i:04d}1001" for i in range(CONTACTS)]
    moments = random.Random(SEED)
    recorder = EventRecorder()
    watcher = AmiClient(lab_ami_options())
    watcher.add_event_handler(recorder)
    kills = 0
    async with running(watcher):
        await watcher.wait_logged_in(5)
        daemon = await DaemonProcess.start(config)
        try:
            await daemon.wait_for_log("daemon.ready", timeout_s=30)
            url = f"http://127.0.0.1:{api_port}/v1/campaigns/refusal/contacts"
            async with http.post(url, json=[{"phone": phone} for phone in phones]) as response:
                assert response.status == 200
            for kills in range(1, KILLS + 1):  # noqa: B007 (kills counts them, for the message)
                await asyncio.sleep(moments.uniform(0.3, 3.0))  # a random moment of the campaign
                daemon.process.send_signal(signal.SIGKILL)
                await daemon.process.wait()
                await asyncio.sleep(moments.uniform(0.0, 3.0))  # down a while: calls end
                daemon = await DaemonProcess.start(config)
                await daemon.wait_for_log("daemon.ready", timeout_s=30)
            reading = asyncio.create_task(daemon.read_logs())
            async with asyncio.timeout(240):
                while True:  # another process: poll its API until every contact has finished
                    shown = await contacts(http, api_port)
                    print(
                        "PROGRESS",
                        shown["contacts"],
                        shown["attempts"],
                        len(shown["live_calls"]),
                        flush=True,
                    )
                    if shown["contacts"].get("done", 0) == CONTACTS and not shown["live_calls"]:
                        break
                    await asyncio.sleep(1)
            reading.cancel()
            assert await daemon.stop(signal.SIGTERM) == 0
        finally:
            daemon.kill()
            for line in daemon.log_lines[-40:]:  # shown when the test fails
                print(line)
        await asyncio.sleep(1)  # the last Newchannel events of the watcher's stream
    dialled = dials_per_number(recorder)
    twice = {phone: count for phone, count in dialled.items() if count > 1}
    never = [phone for phone in phones if phone not in dialled]
    assert kills == KILLS
    assert twice == {}
    assert never == []
    assert shown["contacts"] == {"done": CONTACTS}
