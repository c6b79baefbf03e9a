"""Three campaign workers on one PostgreSQL and the lab PBX, one of them killed with -9 at
random moments and started again: each campaign's caps (10 calls up, 5 calls a second) hold
as the PBX sees them, no number rings twice, and every contact ends.

Three campaigns of 100 contacts each; every contact is a lab customer that answers, stays 2 s
in the refusal IVR and hangs up. Each campaign runs on one worker at a time (its runner slot);
a killed worker's campaigns move to the others once its lease runs out, with its calls still
up followed from the PBX or settled from the PBX's record. Everything is measured on the PBX's
side, by a separate AMI connection: Local channels created per number, and when."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dialer.pbx.client import AmiClient
from dialer.pbx.wire import AmiEvent
from tests.support import (
    ALL_WEEK,
    DaemonProcess,
    free_port,
    lab_ami_options,
    running,
    write_daemon_config,
)

pytestmark = [pytest.mark.pbx, pytest.mark.postgres, pytest.mark.usefixtures("lab_pbx_running")]

CAMPAIGNS = ("north", "south", "west")
PER_CAMPAIGN = 100
MAX_UP = 10
PER_SECOND = 5
KILLS = 5
SEED = 20261207
CUSTOMER_LEG = re.compile(r"^Local/(\+\d+)@customers-[0-9a-f]+;1$")


def number(campaign: int, index: int) -> str:
    return f"+86138{campaign}{index:03d}1001"  # the lab customer 1001: answers, IVR 2 s


def config_text() -> str:
    campaigns = "".join(
        f"""\
  {name}:
    kind: refusal_callback
    channel: Local/{{number}}@customers
    ring_timeout_s: 15
    max_concurrent_calls: {MAX_UP}
    max_calls_per_second: {PER_SECOND}
    calling_windows: {ALL_WEEK}
    retry: {{unknown: {{delay_s: 0, max_attempts: 3}}}}
    max_total_attempts: 3
"""
        for name in CAMPAIGNS
    )
    # a lease long enough that a loaded machine (other tests beside this one) declares no live
    # worker dead, short enough that a killed one is taken over within the test
    return f"worker:\n  lease_s: 5\n  heartbeat_s: 1\ncampaigns:\n{campaigns}"


class LegWatcher:
    """The customer legs Asterisk creates and ends, with when this process saw each."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str, str, str]] = []  # (time, event, channel, number)

    async def __call__(self, event: AmiEvent) -> None:
        if event.get("Event") not in ("Newchannel", "Hangup"):
            return
        match = CUSTOMER_LEG.match(event.get("Channel", ""))
        if match:
            self.seen.append((time.monotonic(), event["Event"], event["Channel"], match[1]))

    def campaign_of(self, phone: str) -> str:
        return CAMPAIGNS[int(phone[6])]

    def dials_per_number(self) -> Counter[str]:
        return Counter(phone for _, kind, _, phone in self.seen if kind == "Newchannel")

    def most_up(self, campaign: str) -> int:
        up: set[str] = set()
        most = 0
        for _, kind, channel, phone in self.seen:
            if self.campaign_of(phone) != campaign:
                continue
            if kind == "Newchannel":
                up.add(channel)
                most = max(most, len(up))
            else:
                up.discard(channel)
        return most

    def shortest_second(self, campaign: str) -> float:
        """The shortest time in which PER_SECOND + 1 calls of the campaign started."""
        starts = [
            at
            for at, kind, _, phone in self.seen
            if kind == "Newchannel" and self.campaign_of(phone) == campaign
        ]
        return min(b - a for a, b in zip(starts, starts[PER_SECOND:], strict=False))


def story(daemons: list[DaemonProcess]) -> str:
    """Each worker's exit status and its warnings, for a failure message."""
    return "; ".join(
        f"worker {index} exit {daemon.process.returncode}: "
        + str([line for line in daemon.log_lines if line.get("level") in ("warning", "error")])
        for index, daemon in enumerate(daemons)
    )


async def contact_states(http: aiohttp.ClientSession, api_port: int, name: str) -> Any:
    async with http.get(f"http://127.0.0.1:{api_port}/v1/campaigns/{name}") as response:
        assert response.status == 200
        return (await response.json())["contacts"]


@pytest.mark.timeout(600)
async def test_three_workers_dial_under_the_caps_and_a_kill_9_loses_and_repeats_nothing(
    tmp_path: Path, postgres_url: str, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    config = write_daemon_config(tmp_path, api_port=api_port, store_url=postgres_url)
    config.write_text(config.read_text() + config_text())
    moments = random.Random(SEED)
    watcher, legs = AmiClient(lab_ami_options()), LegWatcher()
    watcher.add_event_handler(legs)
    async with running(watcher):
        await watcher.wait_logged_in(5)
        api = await DaemonProcess.start(config, "--role", "api")
        workers = [await DaemonProcess.start(config, "--role", "campaigns") for _ in range(3)]
        every = list(workers)  # with those killed
        readers: list[asyncio.Task[None]] = []
        try:
            for daemon in [api, *workers]:
                await daemon.wait_for_log("daemon.ready", timeout_s=30)
            readers = [asyncio.create_task(d.read_logs()) for d in [api, *workers]]
            for index, name in enumerate(CAMPAIGNS):
                url = f"http://127.0.0.1:{api_port}/v1/campaigns/{name}/contacts"
                body = [{"phone": number(index, i)} for i in range(PER_CAMPAIGN)]
                async with http.post(url, json=body) as response:
                    assert response.status == 200
            for _ in range(KILLS):
                await asyncio.sleep(moments.uniform(2.0, 6.0))  # a random moment
                victim = moments.randrange(len(workers))
                workers[victim].process.send_signal(signal.SIGKILL)
                await workers[victim].process.wait()
                workers[victim] = await DaemonProcess.start(config, "--role", "campaigns")
                every.append(workers[victim])
                await workers[victim].wait_for_log("daemon.ready", timeout_s=30)
                readers.append(asyncio.create_task(workers[victim].read_logs()))
            states: list[Any] = []
            try:
                async with asyncio.timeout(300):
                    while True:  # another process: poll its API until every contact has ended
                        states = [await contact_states(http, api_port, n) for n in CAMPAIGNS]
                        if all(state == {"done": PER_CAMPAIGN} for state in states):
                            break
                        await asyncio.sleep(1)
            except TimeoutError:
                raise AssertionError(f"not every contact ended: {states}; {story(every)}") from None
            for reader in readers:
                reader.cancel()
            for daemon in [*workers, api]:
                assert await daemon.stop(signal.SIGTERM, timeout_s=30) == 0
        finally:
            for daemon in [api, *workers]:
                daemon.kill()
                await daemon.process.wait()
        await asyncio.sleep(1)  # the last Hangup events of the watcher's stream
    claims = [
        line["campaign"]
        for daemon in every
        for line in daemon.log_lines
        if line.get("event") == "campaign.slot_claimed"
    ]
    assert sorted(set(claims)) == sorted(CAMPAIGNS)
    assert len(claims) > len(CAMPAIGNS)  # some moved to another worker after a kill
    dialled = legs.dials_per_number()
    everyone = [number(c, i) for c in range(len(CAMPAIGNS)) for i in range(PER_CAMPAIGN)]
    assert {phone: n for phone, n in dialled.items() if n > 1} == {}  # none twice
    assert [phone for phone in everyone if phone not in dialled] == []  # none lost
    for name in CAMPAIGNS:
        assert legs.most_up(name) <= MAX_UP, name
        assert legs.most_up(name) >= MAX_UP // 2, name  # the cap was reached for, not idle
        # As the PBX saw them: Asterisk starts an async Originate on a thread of its own, and
        # the events reach us through a loaded machine, so a start may show up to 0.05 s late.
        assert legs.shortest_second(name) >= 1.0 - 0.05, name
