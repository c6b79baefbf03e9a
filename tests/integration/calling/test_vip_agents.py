"""A VIP campaign never has more calls up than agents free for it, whatever the order in which
Asterisk reports an agent taking a call (`AgentConnect` a few milliseconds before or after the
member's `QueueMemberStatus`); a call an agent took is answered, however long it waited.

The PBX is a small scripted world: agents in one queue; an answered call joins the queue, is
offered to a free agent and bridged; it stays up until the test hangs it up. Between events
the world yields to the event loop, as the real AMI stream does, so a runner that reads a
half-updated count acts on it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import pytest

from dialer.calling.options import RunnerOptions
from dialer.calling.ports import LiveChannel, NewContact, OriginateRequest
from dialer.calling.service import CampaignService
from dialer.store import CampaignStore, Store
from tests.fakes.campaign_pbx import NOW, FakeClock, never, no_wait, settings_with
from tests.support import ALL_WEEK

VIP = f"""
vip:
  kind: vip
  channel: Local/{{number}}@customers
  agent_queue: agents
  destination: {{queue: agents}}
  max_concurrent_calls: 10
  max_calls_per_second: 100
  calling_windows: {ALL_WEEK}
"""


async def yield_to_others(turns: int = 5) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool]) -> None:
    """Give the loop turns until `condition` holds (the store's I/O runs meanwhile)."""
    while not condition():  # noqa: ASYNC110 (store I/O runs in threads; no event to await)
        await asyncio.sleep(0)


@dataclass
class QueueWorld:
    """Agents of queue `agents`; `connect_first`: AgentConnect comes before the member's
    status says in use (the order that broke the count), else after."""

    agents: list[str]
    connect_first: bool
    agent_wait_s: float = 0.0
    clock: FakeClock | None = None
    handler: Callable[[Mapping[str, str]], Awaitable[None]] | None = None
    logged_in: bool = True
    busy: dict[str, str] = field(default_factory=dict)  # attempt id -> agent
    up: list[str] = field(default_factory=list)
    most_up: int = 0
    originated: list[OriginateRequest] = field(default_factory=list)
    ringing: asyncio.Lock = field(default_factory=asyncio.Lock)
    unserved: list[str] = field(default_factory=list)  # answered, no agent free for them
    connected: set[str] = field(default_factory=set)  # bridged with an agent
    answer_when: Callable[[], bool] | None = None
    """Each call rings until this holds (the test: the dialer waits to place its next call)."""

    async def wait_logged_in(self) -> None:
        return None

    async def queue_status(self, queue: str) -> list[Mapping[str, str]]:
        return [self._member(agent, "1", "QueueMember") for agent in self.agents]

    async def live_channels(self) -> list[LiveChannel]:
        return []

    def _member(self, agent: str, status: str, event: str = "QueueMemberStatus") -> dict[str, str]:
        return {"Event": event, "Queue": "agents", "StateInterface": agent, "Interface": agent,
                "Status": status, "Paused": "0"}  # fmt: skip

    def _agent(self, name: str, call: str, agent: str) -> dict[str, str]:
        return {"Event": name, "Queue": "agents", "Uniqueid": call, "Linkedid": call,
                "Interface": agent}  # fmt: skip

    async def _play(self, *events: Mapping[str, str]) -> None:
        assert self.handler is not None
        for event in events:
            await self.handler(event)
            await yield_to_others()

    async def originate(self, request: OriginateRequest) -> None:
        self.originated.append(request)
        self.up.append(request.channel_id)
        self.most_up = max(self.most_up, len(self.up))
        asyncio.get_running_loop().create_task(self._answer(request.channel_id))

    async def _answer(self, call: str) -> None:
        async with self.ringing:  # one call answered at a time; the others keep ringing
            if self.answer_when is not None:
                await until(self.answer_when)
            await self._answer_now(call)

    async def _answer_now(self, call: str) -> None:
        free = [agent for agent in self.agents if agent not in self.busy.values()]
        if not free:  # the dialer placed a call no agent was free for: the customer waits
            self.unserved.append(call)
            return
        agent = free[0]
        self.busy[call] = agent
        await self._play(
            {"Event": "Newchannel", "Uniqueid": call, "Linkedid": call},
            {"Event": "DialEnd", "DestUniqueid": call, "Linkedid": call, "DialStatus": "ANSWER"},
            {"Event": "OriginateResponse", "ActionID": call, "Response": "Success", "Reason": "4"},
            {"Event": "QueueCallerJoin", "Queue": "agents", "Uniqueid": call, "Linkedid": call},
            self._agent("AgentCalled", call, agent),
        )
        if self.clock is not None:
            self.clock.advance(self.agent_wait_s)
        # As the lab's Asterisk 22 sends them: the caller leaves the queue, then AgentConnect;
        # the member's in-use status comes before the caller leaves, or after AgentConnect.
        leave = {"Event": "QueueCallerLeave", "Queue": "agents", "Uniqueid": call, "Linkedid": call}
        connect = self._agent("AgentConnect", call, agent)
        in_use = self._member(agent, "2")
        await self._play(
            *([leave, connect, in_use] if self.connect_first else [in_use, leave, connect])
        )
        self.connected.add(call)

    async def hang_up_oldest(self) -> None:
        call = self.up.pop(0)
        agent = self.busy.pop(call, None)
        if agent is not None:
            await self._play(self._agent("AgentComplete", call, agent), self._member(agent, "1"))
        await self._play(
            {"Event": "Hangup", "Uniqueid": f"{call}-2", "Linkedid": call, "Cause": "16"},
            {"Event": "Hangup", "Uniqueid": call, "Linkedid": call, "Cause": "16"},
        )


async def vip_service(store: Store, world: QueueWorld, clock: FakeClock) -> CampaignService:
    service = CampaignService(
        settings_with(VIP),
        CampaignStore(store),
        CampaignStore(store),
        world,
        now=clock,
        sleep=no_wait,
        timer=never,
        options=RunnerOptions(worker_id="test", default_region="CN"),
    )
    world.handler = service.handle_event
    await service.open()
    await service.start()
    return service


@pytest.mark.parametrize("connect_first", [True, False], ids=["connect-first", "status-first"])
async def test_calls_up_never_exceed_free_agents_whatever_the_event_order(
    store: Store, connect_first: bool
) -> None:
    clock = FakeClock(NOW)
    world = QueueWorld(
        agents=["Local/2001@agents/n", "Local/2002@agents/n"], connect_first=connect_first
    )
    service = await vip_service(store, world, clock)
    runner = service.runners["vip"]
    await service.repository.add_contacts(
        runner.campaign_id, [NewContact(f"+86138{i:04d}1001") for i in range(8)], NOW
    )
    world.answer_when = lambda: runner.pacer.waiting > 0 or len(world.originated) == 8
    dialling = asyncio.create_task(service.run_until_idle())

    def blocked() -> bool:
        """The runner waits at its cap (or is done), every slot it was granted is a call up,
        and every call up is connected."""
        at_cap = runner.pacer.waiting > 0 or len(world.originated) == 8
        settled = all(call in world.connected or call in world.unserved for call in world.up)
        return at_cap and runner.pacer.in_flight == len(world.up) and settled

    async with asyncio.timeout(10):
        while len(world.originated) < 8 or world.up:
            await until(blocked)
            await yield_to_others(50)  # room for a grant over the cap, if the count allowed it
            if blocked() and world.up:
                await world.hang_up_oldest()
    await asyncio.wait_for(dialling, 5)
    states = await service.repository.contact_states(runner.campaign_id)
    assert world.most_up == 2
    assert world.unserved == []
    assert len(world.originated) == 8
    assert {state for state, _, _ in states.values()} == {"done"}


async def test_a_call_an_agent_took_late_is_answered_and_not_called_again(store: Store) -> None:
    clock = FakeClock(NOW)
    world = QueueWorld(
        agents=["Local/2001@agents/n"], connect_first=True, agent_wait_s=5.0, clock=clock
    )
    service = await vip_service(store, world, clock)
    runner = service.runners["vip"]
    await service.repository.add_contacts(runner.campaign_id, [NewContact("+8613800001001")], NOW)
    dialling = asyncio.create_task(service.run_until_idle())
    async with asyncio.timeout(10):
        await until(lambda: bool(world.connected))
        await world.hang_up_oldest()
    await asyncio.wait_for(dialling, 5)
    rows = await service.repository.attempt_rows(runner.campaign_id)
    states = await service.repository.contact_states(runner.campaign_id)
    assert [(row["outcome"], row["agent_wait_s"]) for row in rows] == [("answered", 5.0)]
    assert list(states.values()) == [("done", 1, None)]
