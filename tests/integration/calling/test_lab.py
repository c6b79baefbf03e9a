"""Campaigns against the lab PBX: real calls, real AMI events, a real store (SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.calling.options import RunnerOptions
from dialer.calling.ports import NewContact, OriginateRequest
from dialer.calling.service import CampaignService
from dialer.pbx.adapter import AmiPbx
from dialer.pbx.client import AmiClient
from dialer.pbx.wire import LinkState
from dialer.store import CampaignStore, Store
from tests.fakes.campaign_pbx import settings_with
from tests.support import ALL_WEEK, EventRecorder, lab_ami_options, lab_pbx, running

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("lab_pbx_running")]


def refusal(cap: int = 10, cps: float = 20) -> str:
    return f"""
refusal:
  kind: refusal_callback
  channel: Local/{{number}}@customers
  ring_timeout_s: 15
  max_concurrent_calls: {cap}
  max_calls_per_second: {cps}
  calling_windows: {ALL_WEEK}
  agent_queue: agents
  retry: {{}}
  max_total_attempts: 1
"""


VIP = f"""
vip:
  kind: vip
  channel: Local/{{number}}@customers
  ring_timeout_s: 15
  destination: {{queue: agents}}
  agent_queue: agents
  max_concurrent_calls: 4
  max_calls_per_second: 10
  calling_windows: {ALL_WEEK}
  retry: {{}}
  max_total_attempts: 1
"""


class Originates:
    """Wraps the client's originate to note when each call was sent."""

    def __init__(self, client: AmiClient) -> None:
        self.sent_at: list[float] = []
        self._originate = client.originate
        client.originate = self  # type: ignore[method-assign]

    async def __call__(self, request: OriginateRequest) -> None:
        self.sent_at.append(asyncio.get_running_loop().time())
        await self._originate(request)


@contextlib.asynccontextmanager
async def campaign_service(
    tmp_path: Path, yaml: str
) -> AsyncIterator[tuple[CampaignService, EventRecorder, Originates]]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'outreach.db'}")
    client = AmiClient(lab_ami_options())
    recorder = EventRecorder()
    client.add_event_handler(recorder)
    originates = Originates(client)
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
            yield service, recorder, originates
    finally:
        await store.close()


async def add(service: CampaignService, name: str, phones: list[str]) -> None:
    runner = service.runners[name]
    await service.repository.add_contacts(
        runner.campaign_id,
        [NewContact(phone) for phone in phones],
        datetime.now(UTC),
    )


def most_up_at_once(recorder: EventRecorder, attempt_ids: set[str]) -> int:
    """Most customer legs (`<attempt>-2`) of these attempts up at the same time."""
    up = most = 0
    for event in recorder.events:
        uniqueid = event.get("Uniqueid", "")
        if not uniqueid.endswith("-2") or uniqueid[:-2] not in attempt_ids:
            continue
        if event.get("Event") == "Newchannel":
            up += 1
            most = max(most, up)
        elif event.get("Event") == "Hangup":
            up -= 1
    return most


async def test_each_lab_customer_gets_its_outcome_from_a_real_call(tmp_path: Path) -> None:
    suffixes = ["1001", "1002", "1003", "1004", "1006", "1007", "1234"]
    async with campaign_service(tmp_path, refusal()) as (service, _, _):
        await add(service, "refusal", [f"+861380000{s}" for s in suffixes])
        async with asyncio.timeout(40):
            await service.run_until_idle()
        rows = await service.repository.attempt_rows(service.runners["refusal"].campaign_id)
    found = {row["phone"][-4:]: row["outcome"] for row in rows}
    assert found == {
        "1001": "answered",
        "1002": "busy",
        "1003": "no_answer",
        "1004": "congestion",
        "1006": "rejected",
        "1007": "unavailable",
        "1234": "unavailable",
    }


async def test_the_ivr_records_the_digit_the_customer_presses(tmp_path: Path) -> None:
    async with campaign_service(tmp_path, refusal()) as (service, recorder, _):
        await add(service, "refusal", ["+8613800001103"])
        async with asyncio.timeout(30):
            await service.run_until_idle()
        states = await service.repository.contact_states(service.runners["refusal"].campaign_id)
        rows = await service.repository.attempt_rows(service.runners["refusal"].campaign_id)
    assert states == {"+8613800001103": ("done", 1, "price")}
    assert (rows[0]["outcome"], rows[0]["disposition"]) == ("answered", "price")
    assert any(e.get("UserEvent") == "OutreachDisposition" for e in recorder.events)


@pytest.fixture
def two_free_agents() -> object:
    lab_pbx("agents", "2")
    yield
    lab_pbx("agents", "4")


@pytest.mark.usefixtures("two_free_agents")
@pytest.mark.parametrize("run", range(3))  # the order of the agents' events varies run to run
async def test_vip_never_has_more_calls_up_than_free_agents_and_abandons_none(
    tmp_path: Path, run: int
) -> None:
    async with campaign_service(tmp_path, VIP) as (service, recorder, _):
        assert service.runners["vip"].agent_queue is not None
        assert service.runners["vip"].agent_queue.free_agents == 2
        await add(service, "vip", [f"+86138{i:04d}1001" for i in range(10)])
        async with asyncio.timeout(55):
            await service.run_until_idle()
        rows = await service.repository.attempt_rows(service.runners["vip"].campaign_id)
    assert [row["outcome"] for row in rows] == ["answered"] * 10
    assert most_up_at_once(recorder, {row["attempt_id"] for row in rows}) == 2


async def test_the_cps_and_concurrency_caps_hold_on_real_calls(tmp_path: Path) -> None:
    async with campaign_service(tmp_path, refusal(cap=3, cps=5)) as (service, recorder, sent):
        await add(service, "refusal", [f"+86138{i:04d}1001" for i in range(12)])
        async with asyncio.timeout(50):
            await service.run_until_idle()
        rows = await service.repository.attempt_rows(service.runners["refusal"].campaign_id)
    assert len(rows) == 12
    gaps = [b - a for a, b in itertools.pairwise(sent.sent_at)]
    assert min(gaps) >= 0.2 - 0.01  # 5 calls per second at most
    assert most_up_at_once(recorder, {row["attempt_id"] for row in rows}) == 3


HOLD_5_S = f"""
refusal:
  kind: refusal_callback
  channel: Local/{{number}}@customers
  destination: {{context: lab-outbound, exten: hold}}
  ring_timeout_s: 15
  max_concurrent_calls: 2
  max_calls_per_second: 5
  calling_windows: {ALL_WEEK}
  retry: {{unknown: {{delay_s: 0, max_attempts: 2}}}}
  max_total_attempts: 2
"""


async def test_an_asterisk_restart_mid_call_is_settled_and_the_campaign_goes_on(
    tmp_path: Path,
) -> None:
    async with campaign_service(tmp_path, HOLD_5_S) as (service, recorder, _):
        pbx = service.pbx
        assert isinstance(pbx, AmiPbx)
        client = pbx.client
        logged_in_again = asyncio.Event()

        def on_link(state: LinkState) -> None:
            if state.logged_in and client.link.reconnects >= 1:
                logged_in_again.set()

        client.add_link_listener(on_link)
        await add(service, "refusal", ["+8613800001008"])  # answers and stays on the line
        campaign = asyncio.create_task(service.run_until_idle())
        await recorder.wait_for(
            lambda e: e.get("Event") == "OriginateResponse" and e.get("Response") == "Success"
        )
        await asyncio.to_thread(lab_pbx, "restart-asterisk")
        async with asyncio.timeout(20):
            await logged_in_again.wait()
        await add(service, "refusal", ["+8613800001001"])  # added after the restart
        # Well inside the 30 s guard (ring time-out + 15 s) that would settle it anyway: the
        # settling must come from the reconnect.
        async with asyncio.timeout(20):
            await campaign
            await service.run_until_idle()
        campaign_id = service.runners["refusal"].campaign_id
        rows = await service.repository.attempt_rows(campaign_id)
        states = await service.repository.contact_states(campaign_id)
    by_phone: dict[str, list[str | None]] = {}
    for row in rows:
        by_phone.setdefault(row["phone"], []).append(row["outcome"])
    lost = by_phone["+8613800001008"]
    assert None not in lost, "the call lost in the restart was settled"
    assert lost[0] in {"unknown", "answered"}, lost  # Hangup events may beat the Shutdown
    assert by_phone["+8613800001001"] == ["answered"], "the campaign went on after the restart"
    assert states["+8613800001008"][0] != "dialling"
    assert client.link.reconnects == 1
