"""Outbound pacing: the agents' ledger, permits from the pacer, the abandon rule's fall-back."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from dialer.calling.agent_ledger import AgentLedger
from dialer.calling.calls import Call
from dialer.calling.outbound import OutboundPacing
from dialer.config import PacingRule
from dialer.logs import get_logger

QUEUE = "sales"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def member(interface: str, **headers: str) -> dict[str, str]:
    status = {"Event": "QueueMemberStatus", "Queue": QUEUE, "Interface": interface, "Paused": "0"}
    return status | headers


def agent(event: str, interface: str, **headers: str) -> dict[str, str]:
    return {"Event": event, "Queue": QUEUE, "Interface": interface, **headers}


def rule(mode: str = "predictive", **changes: float) -> PacingRule:
    values = dict(
        mode=mode,
        ratio=1.5,
        max_abandon_rate=0.03,
        min_attempts=200,
        min_talks=30,
        abandon_after_s=2.0,
        abandon_cap=0.03,
        abandon_window_s=86400.0,
        intro_s=0.0,
    )
    return PacingRule(**{**values, **changes})  # type: ignore[arg-type]


def test_ledger_follows_talk_then_wrap_up_then_idle() -> None:
    clock = Clock()
    talks: list[float] = []
    ledger = AgentLedger(QUEUE, clock, on_talk=talks.append)
    ledger.handle(member("a1", Wrapuptime="10"))
    clock.now += 30
    ledger.handle(agent("AgentConnect", "a1"))
    clock.now += 100
    ledger.handle(agent("AgentComplete", "a1", TalkTime="100"))
    clock.now += 4

    assert ledger.in_state("wrapping", clock.now) == [4.0]
    assert talks == [100.0]
    clock.now += 6
    assert ledger.in_state("idle", clock.now) == [0.0]
    busy_s, idle_s = ledger.busy_and_idle_s(clock.now)
    assert (busy_s, idle_s) == (110.0, 30.0)
    assert (ledger.idle_gaps, ledger.idle_gap_s) == (1, 30.0)


def test_ledger_counts_a_paused_agent_nowhere_once_its_call_is_over() -> None:
    clock = Clock()
    ledger = AgentLedger(QUEUE, clock)
    ledger.handle(member("a1"))
    ledger.handle(agent("AgentConnect", "a1"))
    ledger.handle(member("a1", Paused="1"))

    assert ledger.in_state("talking", clock.now) == []  # leaving: not counted on
    ledger.handle(agent("AgentComplete", "a1"))
    assert ledger.on_duty == 0


def call(attempt_id: str, started_s: float) -> Call:
    return Call(
        attempt_id=attempt_id,
        campaign="c",
        contact_id=1,
        phone="+8613800000000",
        started_at=datetime.fromtimestamp(started_s, UTC),
    )


def pacing(mode: str, clock: Clock, agents: int) -> OutboundPacing:
    outbound = OutboundPacing(rule(mode), QUEUE, clock=clock, log=get_logger("test"))
    for number in range(agents):
        outbound.ledger.handle(member(f"a{number}"))
    return outbound


def test_progressive_grants_one_permit_per_idle_agent_and_counts_permits_as_ringing() -> None:
    clock = Clock()
    outbound = pacing("progressive", clock, agents=3)

    assert outbound.decide([], callers_waiting=0) == 3
    assert outbound.decide([], callers_waiting=0) == 0  # the three permits ring at 0 s
    assert outbound.tick([call("x", clock.now - 5)], callers_waiting=0) == 2  # lapsed, re-decided


def test_power_grants_its_ratio_of_idle_agents() -> None:
    clock = Clock()
    outbound = pacing("power", clock, agents=4)

    assert outbound.decide([], callers_waiting=1) == 4  # floor(1.5 x (4 - 1))


async def test_a_permit_is_waited_for_until_a_decision_grants_it() -> None:
    clock = Clock()
    outbound = pacing("progressive", clock, agents=0)
    waiting = asyncio.ensure_future(outbound.take_permit())
    await asyncio.sleep(0)
    assert not waiting.done()

    outbound.ledger.handle(member("a0"))
    outbound.decide([], callers_waiting=0)
    await asyncio.wait_for(waiting, 1)

    assert outbound.decide([], callers_waiting=0) == 0  # the one being placed counts
    outbound.placed(sent=True)
    assert outbound.counts.placed == 1


def test_abandon_cap_reached_falls_back_to_progressive_and_says_so() -> None:
    clock = Clock()
    outbound = pacing("power", clock, agents=4)
    for number in range(40):  # 40 answered, 2 abandoned: 5% over the window, cap 3%
        answered = call(f"c{number}", clock.now - 10)
        answered.observation = replace(answered.observation, answered_at=clock.now - 5)
        if number >= 2:
            connected = replace(answered.observation, agent_connected_at=clock.now - 4)
            answered.observation = connected
        answered.finished.set()
        outbound.call_changed(answered)

    with capture_logs() as logs:
        granted = outbound.decide([], callers_waiting=0)

    assert granted == 4  # progressive: one per idle agent, not power's 6
    assert outbound.fell_back
    assert [entry["event"] for entry in logs] == ["campaign.pacing_fell_back"]
    measures = outbound.measures()
    assert measures["pacing_now"] == "progressive"
    assert measures["abandon_rule"]["abandon_rate"] == pytest.approx(0.05)
    assert (measures["answered"], measures["connected"], measures["abandoned"]) == (40, 38, 2)


def test_ledger_ignores_caller_events_of_its_queue() -> None:
    ledger = AgentLedger(QUEUE, Clock())
    ledger.handle(member("a1"))

    ledger.handle({"Event": "QueueCallerJoin", "Queue": QUEUE, "Uniqueid": "x", "Count": "1"})

    assert list(ledger.agents) == ["a1"]


def test_a_reload_changes_the_pacer_and_keeps_the_abandon_window() -> None:
    clock = Clock()
    outbound = pacing("progressive", clock, agents=4)
    outbound.guard.observe_answered(abandoned=True, at_s=clock.now)

    outbound.reconfigure(rule("power", abandon_cap=0.05, abandon_window_s=3600.0))

    assert outbound.pacer.mode == "power"
    assert (outbound.guard.max_abandon_rate, outbound.guard.window_s) == (0.05, 3600.0)
    assert outbound.guard.abandon_rate(clock.now) == 1.0  # the call seen before is kept
    assert outbound.decide([], callers_waiting=0) == 6
