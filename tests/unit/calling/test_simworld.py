"""The simulated call centre: the standard world's figures, its rules, and its AMI side."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable

import pytest

from dialer.calling.classify import CallObservation, classify, is_finished, observe
from dialer.calling.ports import OriginateRequest
from dialer.calling.predictive import (
    PacingSnapshot,
    PredictivePacer,
    ProgressivePacer,
    progressive_calls,
)
from dialer.calling.queues import AgentQueue
from dialer.calling.simday import run_day
from dialer.calling.simpbx import AmiEvent, SimulatedPbx
from dialer.calling.simworld import Happening, World, WorldConfig
from dialer.calling.virtual_time import run_virtual
from dialer.outcomes import Outcome

HOUR_S = 3600.0
SHORT_DAY = WorldConfig(agents=5, warm_up_s=1800.0, measured_s=HOUR_S)

# One agent, every attempt answered after exactly 10 s, talks of exactly 90 s, wrap-up 10 s.
CLOCKWORK = WorldConfig(
    agents=1, answer_rate=1.0, answer_ring_s=(10.0, 10.0), talk_mean_s=90.0, talk_cv=0.0
)


def happenings_of(config: WorldConfig, *, seed: int, place_at: list[float]) -> list[Happening]:
    """What the world tells when attempts are placed at `place_at` (then run for a day)."""
    heard: list[Happening] = []
    world = World(config, seed=seed, listener=heard.append)
    for at_s in place_at:
        world.run_until(at_s)
        world.place()
    world.run_until(24 * HOUR_S)
    return heard


def test_the_same_seed_gives_the_same_day() -> None:
    first = run_day(PredictivePacer(0.03, min_attempts=50, min_talks=10), SHORT_DAY, seed=9)
    second = run_day(PredictivePacer(0.03, min_attempts=50, min_talks=10), SHORT_DAY, seed=9)

    assert first == second


def test_another_seed_gives_another_day() -> None:
    assert run_day(ProgressivePacer(), SHORT_DAY, seed=1) != run_day(
        ProgressivePacer(), SHORT_DAY, seed=2
    )


def test_progressive_occupancy_matches_the_theory_of_the_standard_world() -> None:
    # One call at a time per agent: the idle gap is 3 unanswered attempts (20.4 s each) plus
    # an answered ring (10 s): 190 / (190 + 71.2) = 72.7%.
    metrics = run_day(ProgressivePacer(), WorldConfig(agents=20), seed=0)

    assert metrics.occupancy == pytest.approx(0.727, abs=0.012)
    assert metrics.agent_idle_s_mean == pytest.approx(71.2, abs=4.0)
    assert metrics.answer_rate == pytest.approx(0.25, abs=0.015)
    assert metrics.abandon_rate == 0.0


def test_occupancy_is_talk_and_wrap_up_over_logged_in_time() -> None:
    metrics = run_day(ProgressivePacer(), CLOCKWORK, seed=0)

    assert metrics.occupancy == pytest.approx(100 / 110, abs=0.005)  # ring 10, talk 90, wrap 10
    assert metrics.agent_idle_s_mean == pytest.approx(10.0)
    assert metrics.contacts_finished in (261, 262)  # 8 h / 110 s
    assert metrics.logged_in_s == 8 * HOUR_S


def test_the_warm_up_is_not_measured() -> None:
    placed_after_warm_up = 0

    def count(now_s: float, snapshot: PacingSnapshot, placed: int) -> None:
        nonlocal placed_after_warm_up
        if now_s >= SHORT_DAY.warm_up_s:
            placed_after_warm_up += placed

    metrics = run_day(ProgressivePacer(), SHORT_DAY, seed=4, on_decision=count)

    assert metrics.calls == placed_after_warm_up
    assert metrics.logged_in_s == SHORT_DAY.agents * HOUR_S


def test_attempts_end_busy_after_2_s_or_unanswered_at_the_ring_timeout() -> None:
    heard = happenings_of(WorldConfig(), seed=1, place_at=[float(n) for n in range(2000)])
    ends = [h for h in heard if h.kind in ("answered", "busy", "no_answer")]
    kinds = Counter(h.kind for h in ends)

    assert len(ends) == 2000
    assert kinds["answered"] / 2000 == pytest.approx(0.25, abs=0.03)
    assert kinds["busy"] / 2000 == pytest.approx(0.15, abs=0.03)
    assert {h.duration_s for h in ends if h.kind == "busy"} == {2.0}
    assert {h.duration_s for h in ends if h.kind == "no_answer"} == {25.0}
    assert all(5.0 <= h.duration_s <= 15.0 for h in ends if h.kind == "answered")


def test_talk_times_are_lognormal_with_mean_180_s_and_cv_0_6() -> None:
    heard: list[Happening] = []
    world = World(WorldConfig(agents=50, answer_rate=1.0), seed=3, listener=heard.append)
    for second in range(4 * 3600):
        world.run_until(float(second))
        for _ in range(progressive_calls(world.snapshot())):
            world.place()
    talks = [h.duration_s for h in heard if h.kind == "talk_ended"]

    assert len(talks) > 3000
    assert statistics.mean(talks) == pytest.approx(180.0, rel=0.04)
    assert statistics.stdev(talks) / statistics.mean(talks) == pytest.approx(0.6, abs=0.05)
    assert statistics.median(talks) == pytest.approx(155.0, rel=0.05)


def test_a_caller_with_no_agent_for_2_s_is_abandoned() -> None:
    heard = happenings_of(CLOCKWORK, seed=0, place_at=[0.0, 1.0, 2.0])
    connected = [h for h in heard if h.kind == "connected"]
    abandoned = [h for h in heard if h.kind == "abandoned"]

    assert [h.attempt for h in connected] == [0]
    assert [h.attempt for h in abandoned] == [1, 2]
    assert [h.at_s for h in abandoned] == [11.0 + 2.0, 12.0 + 2.0]
    assert {h.duration_s for h in abandoned} == {2.0}


def test_a_waiting_caller_gets_the_agent_freed_within_its_2_s() -> None:
    # answered at 108.5, the agent is free at 10 + 90 + 10 = 110: 1.5 s later
    heard = happenings_of(CLOCKWORK, seed=0, place_at=[0.0, 98.5])
    connected = [h for h in heard if h.kind == "connected"]

    assert [h.attempt for h in connected] == [0, 1]
    assert [h.at_s for h in connected] == pytest.approx([10.0, 110.0])
    assert [h.duration_s for h in connected] == pytest.approx([0.0, 1.5])


def test_agents_who_pause_finish_their_call_and_take_no_other() -> None:
    world_config = WorldConfig(
        agents=2,
        answer_rate=1.0,
        answer_ring_s=(5.0, 5.0),
        talk_mean_s=100.0,
        talk_cv=0.0,
        staffing_changes=((50.0, 0),),
    )
    heard: list[Happening] = []
    world = World(world_config, seed=0, listener=heard.append)
    world.place()
    world.place()
    world.run_until(60.0)
    snapshot = world.snapshot()
    world.place()
    world.run_until(HOUR_S)

    assert snapshot.agents_available == 0  # both still talk, but will not take another call
    assert [h.kind for h in heard if h.at_s >= 50.0].count("agent_left") == 2
    assert [h.attempt for h in heard if h.kind == "abandoned"] == [2]
    assert [h.at_s for h in heard if h.kind == "wrap_up_ended"] == pytest.approx([115.0, 115.0])
    assert all(h.kind != "connected" for h in heard if h.at_s >= 50.0)


# ------------------------------------------------------------------------------------- AMI side


def request(number: int) -> OriginateRequest:
    return OriginateRequest(
        action_id=f"action-{number}",
        channel_id=f"call-{number}",
        channel=f"Local/{number:04d}@customers",
        context="outreach-vip",
        exten="s",
    )


async def a_virtual_hour(
    pbx_events: list[tuple[float, AmiEvent]],
    truth: dict[str, str],
    each_second: Callable[[SimulatedPbx], None] = lambda pbx: None,
) -> float:
    """Three agents, paced progressive by a small runner loop that reads the world, for an hour
    of virtual time; returns the wall time it took."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    calls = iter(range(10_000))
    channel_of: dict[int, str] = {}

    def note(happening: Happening) -> None:
        if happening.kind in ("connected", "abandoned", "busy", "no_answer"):
            truth[channel_of[happening.attempt]] = happening.kind

    pbx = SimulatedPbx(
        WorldConfig(agents=3),
        seed=8,
        on_event=lambda event: pbx_events.append((loop.time(), event)),
        on_happening=note,
    )
    pacer = ProgressivePacer()
    player = asyncio.create_task(pbx.run())
    while loop.time() < HOUR_S:
        await pbx.catch_up()
        each_second(pbx)
        for _ in range(pacer.calls_to_place(pbx.world.snapshot())):
            number = next(calls)
            channel_of[number] = f"call-{number}"
            await pbx.originate(request(number))
        await asyncio.sleep(1.0)
    await asyncio.sleep(HOUR_S)  # let the last calls end
    player.cancel()
    with pytest.raises(asyncio.CancelledError):
        await player
    return time.perf_counter() - started


def test_the_simulated_pbx_speaks_ami_the_outcome_rules_understand() -> None:
    events: list[tuple[float, AmiEvent]] = []
    truth: dict[str, str] = {}

    wall_s = run_virtual(a_virtual_hour(events, truth))

    calls = {channel: CallObservation.for_call(channel) for channel in truth}
    by_action = {f"action-{channel.split('-')[1]}": channel for channel in truth}
    for at_s, event in events:
        channel = event.get("Linkedid") or by_action.get(event.get("ActionID", ""))
        if channel in calls:
            calls[channel] = observe(calls[channel], event, at=at_s)
    outcomes = {
        channel: classify(observation, routed_to_queue=True)
        for channel, observation in calls.items()
    }
    expected = {
        "connected": Outcome.ANSWERED,
        "abandoned": Outcome.ABANDONED,
        "busy": Outcome.BUSY,
        "no_answer": Outcome.NO_ANSWER,
    }

    assert len(truth) > 100
    assert all(is_finished(observation) for observation in calls.values())
    assert outcomes == {channel: expected[kind] for channel, kind in truth.items()}
    assert wall_s < 5.0


def test_the_simulated_pbx_reports_queue_members_pausing() -> None:
    events: list[AmiEvent] = []
    pbx = SimulatedPbx(
        WorldConfig(agents=2, staffing_changes=((10.0, 1),)), seed=0, on_event=events.append
    )

    async def main() -> None:
        player = asyncio.create_task(pbx.run())
        await asyncio.sleep(60.0)
        player.cancel()

    run_virtual(main())

    pauses = [event for event in events if event["Event"] == "QueueMemberPause"]
    assert [event["Paused"] for event in pauses] == ["0", "0", "1"]
    assert pauses[-1]["Queue"] == "agents"


def test_the_agent_queue_kept_from_the_simulated_pbx_agrees_with_the_world() -> None:
    queue = AgentQueue("agents")
    queue.reset([])
    compared = []

    def compare(pbx: SimulatedPbx) -> None:
        snapshot = pbx.world.snapshot()
        free = snapshot.agents_idle + len(snapshot.agents_wrapping)  # wrap-up looks free
        compared.append((queue.free_agents, max(0, free - snapshot.callers_waiting)))

    def feed(pbx_events: list[tuple[float, AmiEvent]]) -> None:
        for _, event in pbx_events:
            queue.handle(event)
        pbx_events.clear()

    events: list[tuple[float, AmiEvent]] = []
    run_virtual(a_virtual_hour(events, {}, lambda pbx: (feed(events), compare(pbx))))

    assert len(compared) == 3600
    assert all(seen == truth for seen, truth in compared)
    assert any(seen > 0 for seen, _ in compared)
