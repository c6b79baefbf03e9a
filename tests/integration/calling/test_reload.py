"""Reloading the campaigns while the service dials (real store, fake PBX and clock): a campaign
added starts, a changed one takes its new limits and DNC list, a removed one places no new call
and its call in flight still ends with its outcome. No sleeping: the fake PBX says when it was
asked to dial, and stopping the service waits for every call to be settled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from dialer.calling.service import CampaignService
from dialer.store import Store
from tests.fakes.campaign_pbx import NOW, FakeClock, FakePbx, settings_with
from tests.integration.calling.test_runner import (
    REFUSAL,
    add,
    number,
    outcomes,
    service_for,
    states,
)

WAIT_S = 10.0


def second_campaign(max_concurrent: int = 10, dnc: str | None = None) -> str:
    body = REFUSAL.replace("refusal:", "second:", 1).replace(
        "max_concurrent_calls: 10", f"max_concurrent_calls: {max_concurrent}"
    )
    return body + (f"  dnc_file: {dnc}\n" if dnc else "")


@asynccontextmanager
async def dialling(
    store: Store, pbx: FakePbx, yaml: str, tmp_path: Path
) -> AsyncIterator[CampaignService]:
    """The service running as the daemon runs it (`run(stop)`); on the way out the calls held
    up are released and the service is stopped, which waits until every call is settled."""
    service = await service_for(store, FakeClock(NOW), pbx, yaml, tmp_path=tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        async with asyncio.timeout(WAIT_S):
            yield service
    finally:
        stop.set()
        await pbx.release()
        async with asyncio.timeout(WAIT_S):
            await task


async def test_a_campaign_added_by_a_reload_dials_its_contacts(
    store: Store, tmp_path: Path
) -> None:
    pbx = FakePbx()
    async with dialling(store, pbx, REFUSAL, tmp_path) as service:
        changes = await service.reload(settings_with(REFUSAL + second_campaign()))
        await add(service, number("1001"), name="second")
        service.runners["second"].wake()
        await pbx.wait_originated(1)
    assert changes == {
        "campaigns_added": ["second"],
        "campaigns_changed": [],
        "campaigns_removed": [],
    }
    assert pbx.originated[0].variables["CAMPAIGN"] == "second"
    assert await outcomes(service, "second") == {number("1001"): ["answered"]}


async def test_a_removed_campaign_ends_its_call_and_places_no_new_one(
    store: Store, tmp_path: Path
) -> None:
    pbx = FakePbx(hold=True)  # calls stay up until released
    one_at_a_time = REFUSAL.replace("max_concurrent_calls: 10", "max_concurrent_calls: 1")
    async with dialling(store, pbx, one_at_a_time + second_campaign(), tmp_path) as service:
        removed = service.runners["refusal"]
        await add(service, number("1001", 1), number("1001", 2))
        removed.wake()
        await pbx.wait_originated(1)
        changes = await service.reload(settings_with(second_campaign()))
        in_flight_at_reload = len(removed.calls)
        await pbx.release()  # the call in flight ends after the reload
    found = await service.repository.attempt_rows(removed.campaign_id)
    left = await service.repository.contact_states(removed.campaign_id)
    assert changes["campaigns_removed"] == ["refusal"]
    assert "refusal" not in service.runners
    assert service.retiring == {}
    assert in_flight_at_reload == 1
    assert len(pbx.originated) == 1  # nothing dialled after the reload
    assert [row["outcome"] for row in found] == ["answered"]  # settled, not dropped
    assert sorted(state for state, _, _ in left.values()) == ["done", "pending"]


async def test_a_changed_campaign_takes_its_new_concurrency_without_dropping_calls(
    store: Store, tmp_path: Path
) -> None:
    pbx = FakePbx(hold=True)
    async with dialling(store, pbx, second_campaign(max_concurrent=1), tmp_path) as service:
        runner = service.runners["second"]
        await add(service, *(number("1001", i) for i in range(3)), name="second")
        runner.wake()
        await pbx.wait_originated(1)
        up_before = pbx.up_now
        changes = await service.reload(settings_with(second_campaign(max_concurrent=3)))
        await pbx.wait_originated(3)
        up_after = pbx.up_now
    found = await outcomes(service, "second")
    assert changes["campaigns_changed"] == ["second"]
    assert service.runners["second"] is runner  # the same runner, with its calls
    assert (up_before, up_after) == (1, 3)
    assert sorted(values[0] or "" for values in found.values()) == ["answered"] * 3


async def test_a_reload_reads_the_dnc_file_again(store: Store, tmp_path: Path) -> None:
    dnc = tmp_path / "dnc.txt"
    dnc.write_text("# nobody yet\n")
    yaml = second_campaign(dnc=str(dnc))
    pbx = FakePbx()
    service = await service_for(store, FakeClock(NOW), pbx, yaml, tmp_path=tmp_path)
    dnc.write_text(number("1001") + "\n")
    changes = await service.reload(settings_with(yaml, base_dir=tmp_path))
    await add(service, number("1001"), name="second")
    await service.run_until_idle()
    found = await states(service, "second")
    assert changes["campaigns_changed"] == []  # the same config; only the file changed
    assert pbx.originated == []
    state, _, reason = found[number("1001")]
    assert (state, reason) == ("cancelled", "do_not_call")


def vip_campaign(queue: str) -> str:
    return f"""
vip:
  kind: vip
  channel: Local/{{number}}@customers
  agent_queue: {queue}
  destination: {{queue: {queue}}}
  calling_windows: {{mon: [00:00-23:59], tue: [00:00-23:59], wed: [00:00-23:59]}}
"""


def member_event(queue: str, status: str) -> dict[str, str]:
    return {"Event": "QueueMemberStatus", "Queue": queue, "StateInterface": "Local/2001@a/n",
            "Status": status, "Paused": "0"}  # fmt: skip


async def test_a_renamed_agent_queue_is_read_and_the_old_one_heard_no_more(
    store: Store, tmp_path: Path
) -> None:
    pbx = FakePbx(queue_members=[{**member_event("agents", "1"), "Event": "QueueMember"}])
    service = await service_for(
        store, FakeClock(NOW), pbx, vip_campaign("agents"), tmp_path=tmp_path
    )
    listeners_before = len(service.router._queue_listeners)
    pbx.queue_members = [{**member_event("vip2", "1"), "Event": "QueueMember"}]
    await service.reload(settings_with(vip_campaign("vip2")))
    queue = service.runners["vip"].agent_queue
    assert queue is not None
    await service.handle_event(member_event("agents", "2"))  # the old queue: no longer ours
    free_after_old_event = queue.free_agents
    await service.handle_event(member_event("vip2", "2"))
    assert (queue.name, free_after_old_event, queue.free_agents) == ("vip2", 1, 0)
    assert len(service.router._queue_listeners) == listeners_before == 1
