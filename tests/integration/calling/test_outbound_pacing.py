"""An outbound campaign through the campaign service and a real store: calls paced per its
pacing mode against the free agents of its queue, its pacing and agent measures in its status."""

from __future__ import annotations

import asyncio

import pytest

from dialer.calling.options import RunnerOptions
from dialer.calling.ports import NewContact
from dialer.calling.service import CampaignService
from dialer.store import CampaignStore, Store
from tests.fakes.campaign_pbx import NOW, FakeClock, FakePbx, never, no_wait, settings_with
from tests.support import ALL_WEEK


def outbound(pacing: str) -> str:
    return f"""
proactive:
  kind: outbound
  channel: Local/{{number}}@customers
  agent_queue: sales
  max_concurrent_calls: 10
  max_calls_per_second: 100
  calling_windows: {ALL_WEEK}
  pacing: {pacing}
  retry: {{}}
  max_total_attempts: 1
"""


def two_free_agents() -> list[dict[str, str]]:
    return [
        {
            "Event": "QueueMember",
            "Queue": "sales",
            "Location": f"Local/{n}@agents/n",
            "Status": "1",
            "Paused": "0",
            "Wrapuptime": "5",
        }
        for n in (2001, 2002)
    ]


async def service_for(store: Store, pbx: FakePbx, yaml: str) -> CampaignService:
    service = CampaignService(
        settings_with(yaml),
        CampaignStore(store),
        CampaignStore(store),
        pbx,
        now=FakeClock(NOW),
        sleep=no_wait,
        timer=never,
        options=RunnerOptions(worker_id="test-worker", default_region="CN"),
    )
    pbx.handler = service.handle_event
    await service.open()
    await service.start()
    return service


@pytest.mark.parametrize(
    ("pacing", "calls_up"), [("{mode: progressive}", 2), ("{mode: power, ratio: 2}", 4)]
)
async def test_calls_up_follow_the_pacing_mode_against_free_agents(
    store: Store, pacing: str, calls_up: int
) -> None:
    pbx = FakePbx(hold=True, queue_members=two_free_agents())  # the calls ring until released
    service = await service_for(store, pbx, outbound(pacing))
    runner = service.runners["proactive"]
    phones = [f"+86138{n:04d}1003" for n in range(6)]  # never answer
    await service.repository.add_contacts(
        runner.campaign_id, [NewContact(phone) for phone in phones], NOW
    )
    dialling = asyncio.create_task(service.run_until_idle())

    await asyncio.wait_for(pbx.wait_originated(calls_up), 10)
    runner.decide(tick=True)  # a second later: still nothing more to place
    status = await service.status("proactive")
    pbx.hold = False
    await pbx.release()
    await asyncio.wait_for(dialling, 10)

    assert pbx.most_up == calls_up
    assert status["pacing"]["mode"] == pacing.split()[1].strip("{},")
    assert status["pacing"]["agents_on_duty"] == 2
    assert status["pacing"]["fell_back"] is False
    assert len(pbx.originated) == len(phones)  # the rest dialled as the first ones ended
