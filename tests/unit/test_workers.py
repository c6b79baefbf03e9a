"""Workers: the heartbeat that keeps a lease, a lease found taken, sharing campaigns out, the
`worker` section and `dialer run --role`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from dialer.calling.ports import SlotRequest
from dialer.calling.slots import Candidate, SlotKeeper
from dialer.cli.main import roles_from
from dialer.config import ConfigError, parse_settings
from dialer.workers import Membership, WorkerIdentity
from tests.support import until

REQUIRED = "ami:\n  username: u\n  secret: ${S}\napi:\n  token: ${S}\n"


class FakeRegistry:
    def __init__(self) -> None:
        self.registered: list[str] = []
        self.dead: set[str] = set()
        self.expired: list[str] = []
        self.stopped: list[str] = []

    async def register(
        self, worker: WorkerIdentity, *, lease_s: float, replace_live: bool = False
    ) -> None:
        self.registered.append(worker.id)

    async def renew(self, worker_id: str, *, lease_s: float) -> bool:
        return worker_id not in self.dead

    async def declare_expired(self) -> list[str]:
        found, self.expired = self.expired, []
        return found

    async def stop(self, worker_id: str) -> None:
        self.stopped.append(worker_id)


async def no_wait(_seconds: float) -> None:
    await asyncio.sleep(0)


async def test_each_heartbeat_tells_the_components_which_workers_died() -> None:
    registry = FakeRegistry()
    membership = Membership(registry, WorkerIdentity("me"), lease_s=30, heartbeat_s=5)
    told: list[Sequence[str]] = []

    async def component(dead: Sequence[str]) -> None:
        told.append(list(dead))

    membership.on_tick(component)
    await membership.join()
    assert await membership.tick() is True
    registry.expired = ["other"]
    assert await membership.tick() is True
    assert told == [[], ["other"]]
    assert registry.registered == ["me"]


class CountingRegistry(FakeRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.renewals = 0

    async def renew(self, worker_id: str, *, lease_s: float) -> bool:
        self.renewals += 1
        return await super().renew(worker_id, lease_s=lease_s)


async def test_a_component_slow_to_take_over_never_holds_the_heartbeat_back() -> None:
    registry = CountingRegistry()
    heartbeats = asyncio.Queue[None]()

    async def next_heartbeat(_seconds: float) -> None:
        await heartbeats.get()

    membership = Membership(
        registry, WorkerIdentity("me"), lease_s=30, heartbeat_s=5, sleep=next_heartbeat
    )
    told: list[list[str]] = []
    taking_over = asyncio.Event()

    async def slow_component(dead: Sequence[str]) -> None:
        told.append(list(dead))
        if dead == ["first"]:
            await taking_over.wait()  # following a dead worker's calls: longer than a lease

    membership.on_tick(slow_component)
    await membership.join()
    stop = asyncio.Event()
    registry.expired = ["first"]
    running = asyncio.create_task(membership.run(stop))
    await until(lambda: told == [["first"]])
    registry.expired = ["second"]
    for round_ in range(1, 4):
        heartbeats.put_nowait(None)
        renewals = round_ + 1  # the heartbeat goes on meanwhile
        await until(lambda renewals=renewals: registry.renewals == renewals)
    assert told == [["first"]]  # one round of callbacks at a time
    taking_over.set()
    heartbeats.put_nowait(None)
    await until(lambda: len(told) == 2)
    assert told[1] == ["second"]  # declared meanwhile, told at the next round
    stop.set()
    await running
    assert not membership.lost.is_set()


async def test_after_a_silence_of_its_own_a_worker_declares_nobody_dead_at_first() -> None:
    registry = FakeRegistry()
    seconds = [0.0]
    membership = Membership(
        registry, WorkerIdentity("me"), lease_s=30, heartbeat_s=5, monotonic=lambda: seconds[0]
    )
    await membership.join()
    registry.expired = ["other"]
    seconds[0] = 60.0  # the store was unreachable for a minute, for every worker
    assert await membership.tick() is True
    assert registry.expired == ["other"]  # not declared: it may renew now too
    seconds[0] = 65.0
    assert await membership.tick() is True
    assert registry.expired == []


async def test_a_worker_that_finds_its_lease_taken_stops_and_says_so() -> None:
    registry = FakeRegistry()
    membership = Membership(
        registry, WorkerIdentity("me"), lease_s=30, heartbeat_s=5, sleep=no_wait
    )
    stop = asyncio.Event()
    registry.dead.add("me")
    async with asyncio.timeout(5):
        await membership.run(stop)
    assert stop.is_set()
    assert membership.lost.is_set()
    await membership.leave()
    assert registry.stopped == []  # it was declared dead already: nothing to leave


async def test_a_clean_stop_declares_the_worker_dead_at_once() -> None:
    registry = FakeRegistry()
    membership = Membership(registry, WorkerIdentity("me"), lease_s=30, heartbeat_s=5)
    stop = asyncio.Event()
    stop.set()
    await membership.run(stop)
    await membership.leave()
    assert registry.stopped == ["me"]
    assert not membership.lost.is_set()


def test_a_heartbeat_longer_than_half_the_lease_is_refused() -> None:
    with pytest.raises(ValueError, match="at most half of lease_s"):
        Membership(FakeRegistry(), WorkerIdentity("me"), lease_s=10, heartbeat_s=6)


class FakeSlots:
    def __init__(self, workers: int, taken: Sequence[str] = ()) -> None:
        self.workers = workers
        self.taken = set(taken)
        self.asked: list[SlotRequest] = []

    async def claim(self, request: SlotRequest) -> bool:
        self.asked.append(request)
        return request.campaign not in self.taken

    async def holders(self) -> dict[str, str | None]:
        return {}

    async def live_workers(self, role: str) -> list[str]:
        assert role == "campaigns"
        return [f"w{number}" for number in range(self.workers)]

    async def release(self, owner: str) -> None:
        pass


CAMPAIGNS = [Candidate(name, number) for number, name in enumerate("abcdef", start=1)]


async def test_three_workers_take_a_third_of_the_campaigns_each() -> None:
    keeper = SlotKeeper(FakeSlots(workers=3), "w0", "site-a")
    assert await keeper.claim(CAMPAIGNS, held=set()) == ["a", "b"]
    assert await keeper.claim(CAMPAIGNS, held={"a", "b"}) == []


async def test_a_worker_passes_over_the_slots_others_hold() -> None:
    keeper = SlotKeeper(FakeSlots(workers=3, taken=["a", "b", "c"]), "w0", "site-a")
    assert await keeper.claim(CAMPAIGNS, held=set()) == ["d", "e"]


async def test_the_campaigns_of_a_queue_already_held_come_along_beyond_the_share() -> None:
    campaigns = [
        Candidate("gold", 1, agent_queue="vip"),
        Candidate("platinum", 2, agent_queue="vip"),
        Candidate("refusal", 3),
        Candidate("survey", 4),
    ]
    keeper = SlotKeeper(FakeSlots(workers=3), "w0", "site-a")
    assert await keeper.claim(campaigns, held={"gold"}) == ["platinum"]


async def test_campaigns_of_another_pbx_are_never_asked_for() -> None:
    slots = FakeSlots(workers=1)
    keeper = SlotKeeper(slots, "w0", "site-a")
    campaigns = [Candidate("here", 1, pbx="site-a"), Candidate("there", 2, pbx="site-b")]
    assert await keeper.claim(campaigns, held=set()) == ["here"]
    assert [request.campaign for request in slots.asked] == ["here"]
    assert slots.asked[0].pbx == "site-a"


def test_run_roles_from_the_command_line() -> None:
    assert roles_from(None) is None
    assert roles_from(["all"]) == ("api", "dispatcher", "campaigns")
    assert roles_from(["campaigns", "api", "api"]) == ("api", "campaigns")


def test_the_worker_section_is_checked_where_it_is_written() -> None:
    text = REQUIRED + "worker:\n  lease_s: 10\n  heartbeat_s: 6\n  roles: [api, dialing]\n"
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, source="c.yaml", base_dir=Path("/srv"), environ={"S": "s3cret"})
    assert [str(issue) for issue in caught.value.issues] == [
        "c.yaml:9: worker.roles[1]: Input should be 'api', 'dispatcher' or 'campaigns'",
    ]
    text = REQUIRED + "worker:\n  lease_s: 10\n  heartbeat_s: 6\n"
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, source="c.yaml", base_dir=Path("/srv"), environ={"S": "s3cret"})
    assert [str(issue) for issue in caught.value.issues] == [
        "c.yaml:8: worker.heartbeat_s: must be at most half of lease_s (10)",
    ]
