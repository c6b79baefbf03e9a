"""A proactive outbound campaign on the lab PBX: real calls to random lab customers (answer and
talk time drawn from a seeded generator and written in the number, dialplan behaviour 7RTT), five
agents in queue `outbound` who talk until the customer hangs up and then wrap up 3 s.
Run it only under the lab PBX lock: `flock /tmp/pbx-tests.lock scripts/with-lab-pbx
.venv/bin/pytest tests/integration/calling/test_lab_outbound.py`.

The same customers are dialled progressive, then predictive: the predictive campaign keeps the
abandon rate under its rule's cap while its agents are busier. About 5 minutes."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dialer.calling.options import RunnerOptions
from dialer.calling.ports import NewContact
from dialer.calling.service import CampaignService
from dialer.pbx.adapter import AmiPbx
from dialer.pbx.client import AmiClient
from dialer.store import CampaignStore, Store
from tests.fakes.campaign_pbx import settings_with
from tests.support import ALL_WEEK, lab_ami_options, running

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("lab_pbx_running")]

AGENTS = 5
CONTACTS = 300
ABANDON_CAP = 0.1


def outbound(name: str, pacing: str) -> str:
    return f"""
{name}:
  kind: outbound
  channel: Local/{{number}}@customers
  agent_queue: outbound
  ring_timeout_s: 15
  max_concurrent_calls: 30
  max_calls_per_second: 10
  calling_windows: {ALL_WEEK}
  pacing: {pacing}
  abandon_after_s: 2
  abandon_message: beep
  abandon_rule: {{max_rate: {ABANDON_CAP}, window: 24h}}
  retry: {{}}
  max_total_attempts: 1
"""


def random_customers(seed: int) -> list[str]:
    """CONTACTS numbers ending in 7RTT: R 0-4 answers after R+2 s and talks TT+5 s (50%), R 5
    busy (10%), R 6-9 never answers (40%); TT 5-34 (talks 10-39 s)."""
    draw = random.Random(seed)
    return [
        f"+86138{index:04d}7{draw.randrange(10)}{draw.randrange(5, 35):02d}"
        for index in range(CONTACTS)
    ]


@contextlib.asynccontextmanager
async def campaign_service(tmp_path: Path, yaml: str) -> AsyncIterator[CampaignService]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'outreach.db'}")
    client = AmiClient(lab_ami_options())
    service = CampaignService(
        settings_with(yaml),
        CampaignStore(store),
        CampaignStore(store),
        AmiPbx(client),
        now=lambda: datetime.now(UTC),
        options=RunnerOptions(worker_id="lab-test", default_region="CN"),
    )
    client.add_event_handler(service.handle_event)
    client.add_link_listener(lambda state: service.on_link_change(state.logged_in))
    try:
        async with running(client):
            await client.wait_logged_in(5)
            await service.open()
            await service.start()
            yield service
    finally:
        await store.close()


async def dial_for(
    tmp_path: Path, name: str, pacing: str, phones: list[str], seconds: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the campaign `seconds`, then stop it and let its calls end: (measures, attempts)."""
    async with campaign_service(tmp_path / name, outbound(name, pacing)) as service:
        runner = service.runners[name]
        assert runner.outbound is not None
        assert runner.outbound.ledger.on_duty == AGENTS, "queue `outbound` of the lab PBX"
        await service.repository.add_contacts(
            runner.campaign_id, [NewContact(phone) for phone in phones], datetime.now(UTC)
        )
        stop = asyncio.Event()
        dialling = asyncio.create_task(runner.run(stop))
        await asyncio.sleep(seconds)
        measures = runner.outbound.measures()
        wrap_ups = {agent.wrap_up_s for agent in runner.outbound.ledger.agents.values()}
        stop.set()
        async with asyncio.timeout(90):
            await dialling
        rows = await service.repository.attempt_rows(runner.campaign_id)
    assert wrap_ups == {3.0}  # learnt from the members' Wrapuptime
    return measures, rows


def abandon_rate(rows: list[dict[str, Any]]) -> float:
    answered = [row for row in rows if row["outcome"] in ("answered", "abandoned")]
    late = [row for row in answered if (row["agent_wait_s"] or 0) > 2.0]
    abandoned = [row for row in answered if row["outcome"] == "abandoned"]
    return (len(abandoned) + len(late)) / len(answered)


@pytest.mark.timeout(480)
async def test_predictive_keeps_abandons_under_the_cap_and_agents_busier_than_progressive(
    tmp_path: Path,
) -> None:
    phones = random_customers(seed=12)

    progressive, progressive_rows = await dial_for(
        tmp_path, "progressive", "{mode: progressive}", phones, seconds=90
    )
    predictive, predictive_rows = await dial_for(
        tmp_path,
        "predictive",
        "{mode: predictive, max_abandon_rate: 0.05, min_attempts: 24, min_talks: 6}",
        phones,
        seconds=180,
    )

    print(f"progressive: {progressive}\npredictive: {predictive}")  # shown with -s
    assert abandon_rate(progressive_rows) == 0.0
    assert predictive["predictive"]["warming_up"] is False  # it predicted for a while
    assert abandon_rate(predictive_rows) <= ABANDON_CAP
    assert predictive["occupancy"] > progressive["occupancy"] + 0.05
    assert predictive["calls_per_agent_hour"] > progressive["calls_per_agent_hour"]


@pytest.mark.timeout(120)
async def test_callers_no_agent_takes_in_time_are_abandoned_and_the_rule_falls_back(
    tmp_path: Path,
) -> None:
    # power 5 with five agents: 25 calls to customers who answer at once (1005: talk 10 s);
    # five reach an agent, the others wait 2 s, hear the abandon message and are hung up; the
    # abandon rate passes the 10% cap, so the campaign paces progressive from then on
    yaml = outbound("power", "{mode: power, ratio: 5}")
    yaml = yaml.replace("retry: {}", "retry: {abandoned: {delay_s: 3600, max_attempts: 2}}")
    yaml = yaml.replace("max_total_attempts: 1", "max_total_attempts: 3")
    async with campaign_service(tmp_path, yaml) as service:
        runner = service.runners["power"]
        assert runner.outbound is not None
        phones = [f"+86138{index:04d}1005" for index in range(25)]
        await service.repository.add_contacts(
            runner.campaign_id, [NewContact(phone) for phone in phones], datetime.now(UTC)
        )
        stop = asyncio.Event()
        dialling = asyncio.create_task(runner.run(stop))
        async with asyncio.timeout(60):
            while runner.outbound.counts.ended < 20:  # noqa: ASYNC110 (real calls end)
                await asyncio.sleep(0.5)
        status = await service.status("power")
        stop.set()
        async with asyncio.timeout(60):
            await dialling
        rows = await service.repository.attempt_rows(runner.campaign_id)
        states = await service.repository.contact_states(runner.campaign_id)

    abandoned = [row for row in rows if row["outcome"] == "abandoned"]
    answered = [row for row in rows if row["outcome"] == "answered"]
    assert len(rows) >= 20  # fewer than 25: paced progressive once the rule tripped
    assert len(abandoned) >= 10
    assert all(row["agent_wait_s"] <= 2.0 for row in answered)
    assert all(row["duration_s"] < 6 for row in abandoned)  # 2 s in the queue, the message
    assert all(states[row["phone"]][0] == "pending" for row in abandoned)  # retried by the rule
    assert status["pacing"]["fell_back"] is True  # the rate is far over the 10% cap
    assert status["pacing"]["pacing_now"] == "progressive"
