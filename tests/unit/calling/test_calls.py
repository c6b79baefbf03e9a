"""Matching AMI events to calls in flight, and counting free agents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialer.calling.calls import Call, CallRouter
from dialer.calling.queues import AgentQueue

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def router_with(*attempt_ids: str) -> tuple[CallRouter, dict[str, Call]]:
    router = CallRouter(clock=lambda: 0.0, wall=lambda: NOW)
    calls = {}
    for attempt_id in attempt_ids:
        calls[attempt_id] = Call(attempt_id, "c", 1, "+8613800001001", NOW)
        router.track(calls[attempt_id])
    return router, calls


async def test_an_originate_response_is_matched_by_action_id() -> None:
    router, calls = router_with("a1", "b2")
    await router.handle(
        {"Event": "OriginateResponse", "ActionID": "b2", "Response": "Failure", "Reason": "5"}
    )
    assert calls["b2"].observation.reason == 5
    assert calls["a1"].observation.reason is None


async def test_an_agent_leg_is_matched_by_its_linkedid() -> None:
    router, calls = router_with("a1")
    await router.handle({"Event": "AgentConnect", "Uniqueid": "999.1", "Linkedid": "a1"})
    assert calls["a1"].observation.agent_connected_at is not None


async def test_the_call_finishes_once_its_channels_hung_up() -> None:
    router, calls = router_with("a1")
    for event in (
        {"Event": "Newchannel", "Uniqueid": "a1", "Linkedid": "a1"},
        {"Event": "OriginateResponse", "ActionID": "a1", "Response": "Success", "Reason": "4"},
        {"Event": "Hangup", "Uniqueid": "a1", "Linkedid": "a1", "Cause": "16"},
    ):
        assert not calls["a1"].finished.is_set()
        await router.handle(event)
    assert calls["a1"].answered.is_set()
    assert calls["a1"].finished.is_set()


async def test_a_disposition_goes_to_the_listener_with_its_attempt_id() -> None:
    router, _ = router_with()
    heard = []
    router.on_disposition(lambda attempt_id, event: heard.append((attempt_id, event["Digit"])))
    await router.handle(
        {"Event": "UserEvent", "UserEvent": "OutreachDisposition", "AttemptId": "a1", "Digit": "3"}
    )
    await router.handle(
        {"Event": "UserEvent", "UserEvent": "Other", "AttemptId": "a1", "Digit": "4"}
    )
    assert heard == [("a1", "3")]


def member(
    interface: str, status: str = "1", paused: str = "0", event: str = "QueueMember"
) -> dict[str, str]:
    return {
        "Event": event,
        "Queue": "agents",
        "StateInterface": interface,
        "Status": status,
        "Paused": paused,
    }


def test_free_agents_are_unpaused_and_not_in_use() -> None:
    queue = AgentQueue("agents")
    queue.reset([member("A"), member("B", paused="1"), member("C", status="2"), member("D")])
    assert queue.free_agents == 2


def test_member_events_keep_the_count_current() -> None:
    queue = AgentQueue("agents")
    queue.reset([member("A"), member("B")])
    queue.handle(member("A", status="2", event="QueueMemberStatus"))
    assert queue.free_agents == 1
    queue.handle(member("B", paused="1", event="QueueMemberPause"))
    assert queue.free_agents == 0
    queue.handle(member("A", status="1", event="QueueMemberStatus"))
    assert queue.free_agents == 1


def test_a_caller_waiting_takes_a_free_agent() -> None:
    queue = AgentQueue("agents")
    queue.reset([member("A"), member("B")])
    queue.handle({"Event": "QueueCallerJoin", "Queue": "agents", "Uniqueid": "c1", "Count": "1"})
    assert queue.free_agents == 1
    assert queue.waiting_unassigned(["c1", "c2"]) == 1


def test_nothing_is_free_while_the_queue_is_unknown() -> None:
    queue = AgentQueue("agents")
    queue.reset([member("A")])
    queue.forget()
    assert queue.free_agents == 0


def test_events_of_another_queue_are_ignored() -> None:
    queue = AgentQueue("agents")
    queue.reset([member("A")])
    queue.handle({**member("A", status="2", event="QueueMemberStatus"), "Queue": "other"})
    assert queue.free_agents == 1


def agent_event(name: str, caller: str, interface: str) -> dict[str, str]:
    return {
        "Event": name,
        "Queue": "agents",
        "Uniqueid": caller,
        "Linkedid": caller,
        "Interface": interface,
        "MemberName": interface,
    }


def in_use(interface: str) -> dict[str, str]:
    return member(interface, status="2", event="QueueMemberStatus")


CONNECT_FIRST = [
    agent_event("AgentCalled", "c1", "A"),
    agent_event("AgentConnect", "c1", "A"),
    in_use("A"),
]
STATUS_FIRST = [
    agent_event("AgentCalled", "c1", "A"),
    in_use("A"),
    agent_event("AgentConnect", "c1", "A"),
]


@pytest.mark.parametrize(
    "events", [CONNECT_FIRST, STATUS_FIRST], ids=["connect-first", "status-first"]
)
def test_an_agent_taken_by_a_caller_is_counted_once_whatever_the_event_order(
    events: list[dict[str, str]],
) -> None:
    queue = AgentQueue("agents")
    queue.reset([member("A"), member("B")])
    seen = []
    for event in events:
        queue.handle(event)
        seen.append((queue.free_agents, queue.engaged(["c1"])))
    assert seen == [(1, 1), (1, 1), (1, 1)]


def test_an_agent_is_free_again_once_the_caller_left_it() -> None:
    queue = AgentQueue("agents")
    queue.reset([member("A"), member("B")])
    for event in CONNECT_FIRST:
        queue.handle(event)
    queue.handle(agent_event("AgentComplete", "c1", "A"))
    assert (queue.free_agents, queue.engaged(["c1"])) == (1, 0)  # A still says in use
    queue.handle(member("A", status="1", event="QueueMemberStatus"))
    assert queue.free_agents == 2


def test_an_offer_the_agent_does_not_answer_puts_the_caller_back_waiting() -> None:
    queue = AgentQueue("agents")
    queue.reset([member("A"), member("B")])
    queue.handle({"Event": "QueueCallerJoin", "Queue": "agents", "Uniqueid": "c1"})
    queue.handle(agent_event("AgentCalled", "c1", "A"))
    assert (queue.free_agents, queue.waiting_unassigned(["c1"])) == (1, 0)
    queue.handle(agent_event("AgentRingNoAnswer", "c1", "A"))
    assert (queue.free_agents, queue.waiting_unassigned(["c1"])) == (1, 1)


def test_a_call_that_ended_releases_what_it_held_even_without_the_events() -> None:
    queue = AgentQueue("agents")
    queue.reset([member("A"), member("B")])
    queue.handle(agent_event("AgentConnect", "c1", "A"))
    queue.call_ended("c1")
    assert queue.engaged(["c1"]) == 0
    assert queue.free_agents == 2


def test_a_reset_reads_the_callers_waiting_from_the_queue_entries() -> None:
    queue = AgentQueue("agents")
    queue.reset(
        [member("A"), member("B"), {"Event": "QueueEntry", "Queue": "agents", "Uniqueid": "c9"}]
    )
    assert queue.free_agents == 1
    assert queue.waiting_unassigned(["c9"]) == 1
