"""Call outcomes: AMI events of a call folded and classified the way the lab PBX's calls end.

The event sequences are those the lab PBX (Asterisk 22.10.1) sent for its simulated customers,
recorded through dialer.pbx.client with Originate ChannelId set (lab/README.md, "Simulated
customers"), in their real order, without the VarSet/Newexten/NewCallerid noise except where
noted. Times are seconds after the Originate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.calling.classify import (
    ABANDON_AFTER_S,
    CallObservation,
    agent_wait_s,
    classify,
    is_abandoned,
    is_finished,
    observe,
    observe_link_lost,
    reached_agent_late,
)
from dialer.config.values import RetryOutcome
from dialer.outcomes import CALL_OUTCOMES, Outcome

CALL = "attempt-7f3a"  # the Originate ChannelId; OtherChannelId is CALL-2
Event = dict[str, str]
Timeline = Sequence[tuple[float, Event]]


def _leg(number: str, side: int) -> Event:
    return {
        "Channel": f"Local/{number}@customers-00000001;{side}",
        "Uniqueid": CALL if side == 1 else f"{CALL}-2",
        "Linkedid": CALL,
    }


def _agent_leg(side: int) -> Event:
    return {
        "Channel": f"Local/2001@agents-00000006;{side}",
        "Uniqueid": f"1795736287.{11 + side}",
        "Linkedid": CALL,
    }


def newchannel(number: str, side: int, state: str) -> Event:
    return {"Event": "Newchannel", **_leg(number, side), "ChannelStateDesc": state}


def newstate(number: str, side: int, state: str) -> Event:
    return {"Event": "Newstate", **_leg(number, side), "ChannelStateDesc": state}


def dial(event: str, number: str, status: str | None = None) -> Event:
    """DialBegin/DialState/DialEnd of the Originate itself: no caller, the ;1 leg is dialled."""
    headers = {
        "Event": event,
        "DestChannel": f"Local/{number}@customers-00000001;1",
        "DestUniqueid": CALL,
        "DestLinkedid": CALL,
    }
    return headers | ({"DialStatus": status} if status else {})


def hangup_request(event: str, number: str, side: int, cause: int) -> Event:
    return {"Event": event, **_leg(number, side), "Cause": str(cause)}


def hangup(number: str, side: int, cause: int, text: str) -> Event:
    return {"Event": "Hangup", **_leg(number, side), "Cause": str(cause), "Cause-txt": text}


def originate_response(number: str, response: str, reason: int) -> Event:
    channel = f"Local/{number}@customers" + ("-00000001;1" if response == "Success" else "")
    return {
        "Event": "OriginateResponse",
        "ActionID": CALL,
        "Response": response,
        "Channel": channel,
        "Context": "lab-outbound",
        "Exten": "hold",
        "Reason": str(reason),
        "Uniqueid": CALL,
    }


def ringing_start(number: str) -> list[tuple[float, Event]]:
    return [
        (0.006, newchannel(number, 1, "Down")),
        (0.006, newchannel(number, 2, "Ring")),
        (0.006, dial("DialBegin", number)),
    ]


ANSWERED_1001: Timeline = [
    *ringing_start("1001"),
    (0.007, {"Event": "VarSet", **_leg("1001", 1), "Variable": "ATTEMPT_ID", "Value": CALL}),
    (0.008, newstate("1001", 1, "Up")),
    (0.008, newstate("1001", 2, "Up")),
    (0.008, originate_response("1001", "Success", 4)),
    (0.008, dial("DialEnd", "1001", "ANSWER")),
    (0.009, {"Event": "Newexten", **_leg("1001", 1), "Application": "Wait", "AppData": "5"}),
    (2.509, hangup_request("SoftHangupRequest", "1001", 2, 16)),
    (2.509, hangup_request("HangupRequest", "1001", 1, 16)),
    (2.509, hangup("1001", 2, 16, "Normal Clearing")),
    (2.510, hangup("1001", 1, 16, "Normal Clearing")),
]
BUSY_1002: Timeline = [
    *ringing_start("1002"),
    (0.007, newstate("1002", 2, "Busy")),
    (0.007, dial("DialEnd", "1002", "BUSY")),
    (0.007, hangup_request("HangupRequest", "1002", 2, 0)),
    (0.007, hangup("1002", 1, 0, "Unknown")),
    (0.008, hangup_request("SoftHangupRequest", "1002", 2, 16)),
    (0.008, hangup("1002", 2, 17, "User busy")),
    (0.009, originate_response("1002", "Failure", 5)),
]
NO_ANSWER_1003: Timeline = [
    *ringing_start("1003"),
    (0.006, newstate("1003", 1, "Ringing")),
    (0.006, dial("DialState", "1003", "RINGING")),
    (8.013, hangup_request("HangupRequest", "1003", 2, 19)),
    (8.013, hangup_request("SoftHangupRequest", "1003", 2, 16)),
    (8.013, hangup("1003", 1, 19, "User alerting, no answer")),
    (8.013, originate_response("1003", "Failure", 3)),
    (8.014, hangup("1003", 2, 19, "User alerting, no answer")),
]
CONGESTION_1004: Timeline = [
    *ringing_start("1004"),
    (0.007, newstate("1004", 2, "Busy")),
    (0.007, dial("DialEnd", "1004", "CONGESTION")),
    (0.007, hangup_request("HangupRequest", "1004", 2, 0)),
    (0.007, originate_response("1004", "Failure", 8)),
    (0.008, hangup_request("SoftHangupRequest", "1004", 2, 16)),
    (0.008, hangup("1004", 2, 34, "Circuit/channel congestion")),
    (0.008, hangup("1004", 1, 0, "Unknown")),
]
REJECTED_1006: Timeline = [
    *ringing_start("1006"),
    (0.006, hangup_request("SoftHangupRequest", "1006", 2, 16)),
    (0.006, hangup_request("HangupRequest", "1006", 1, 21)),
    (0.006, hangup("1006", 2, 21, "Call Rejected")),
    (0.007, originate_response("1006", "Failure", 0)),
    (0.007, dial("DialEnd", "1006", "NOANSWER")),
    (0.007, hangup("1006", 1, 21, "Call Rejected")),
]
UNAVAILABLE_1007: Timeline = [
    *ringing_start("1007"),
    (0.006, hangup_request("SoftHangupRequest", "1007", 2, 16)),
    (0.006, hangup_request("HangupRequest", "1007", 1, 20)),
    (0.007, dial("DialEnd", "1007", "CHANUNAVAIL")),
    (0.007, hangup("1007", 2, 20, "Subscriber absent")),
    (0.007, hangup("1007", 1, 20, "Subscriber absent")),
    (0.008, originate_response("1007", "Failure", 0)),
]
UNALLOCATED_1234: Timeline = [
    *ringing_start("1234"),
    (0.006, hangup_request("SoftHangupRequest", "1234", 2, 16)),
    (0.006, hangup_request("HangupRequest", "1234", 1, 1)),
    (0.006, hangup("1234", 2, 1, "Unallocated (unassigned) number")),
    (0.007, originate_response("1234", "Failure", 0)),
    (0.007, dial("DialEnd", "1234", "NOANSWER")),
    (0.007, hangup("1234", 1, 1, "Unallocated (unassigned) number")),
]
NO_ROUTE_ABC: Timeline = [
    (0.006, newchannel("abc", 1, "Down")),
    (0.006, newchannel("abc", 2, "Ring")),
    (0.006, hangup("abc", 2, 0, "Unknown")),
    (0.007, originate_response("abc", "Failure", 0)),
    (0.007, hangup("abc", 1, 0, "Unknown")),
]


def queued_answer(number: str) -> list[tuple[float, Event]]:
    """1005/1008 with `Exten: queue`: answered, UserEvent, then into queue `agents`."""
    return [
        *ringing_start(number),
        (0.011, originate_response(number, "Success", 4)),
        (0.011, newstate(number, 1, "Up")),
        (0.011, dial("DialEnd", number, "ANSWER")),
        (0.011, {"Event": "UserEvent", **_leg(number, 1), "UserEvent": "CustomerAnswered"}),
        (0.012, {"Event": "QueueCallerJoin", **_leg(number, 1), "Queue": "agents"}),
        (0.012, {"Event": "Newchannel", **_agent_leg(1), "ChannelStateDesc": "Down"}),
        (0.012, {"Event": "Newchannel", **_agent_leg(2), "ChannelStateDesc": "Ring"}),
        (0.012, {"Event": "DialBegin", **_leg(number, 1), "DestUniqueid": "1795736287.12"}),
        (0.013, newstate(number, 2, "Up")),
    ]


def agent_answers(number: str, at: float) -> list[tuple[float, Event]]:
    agent = {"DestChannel": "Local/2001@agents-00000006;1", "DestUniqueid": "1795736287.12"}
    bridge = {"BridgeUniqueid": "fa50f26f-4c7a-4a80-bea3-bd2042601133"}
    return [
        (at, {"Event": "DialEnd", **_leg(number, 1), **agent, "DialStatus": "ANSWER"}),
        (at, {"Event": "QueueCallerLeave", **_leg(number, 1), "Queue": "agents"}),
        (at, {"Event": "AgentConnect", **_leg(number, 1), **agent, "Queue": "agents"}),
        (at, {"Event": "BridgeEnter", **_agent_leg(1), **bridge}),
        (at, {"Event": "BridgeEnter", **_leg(number, 1), **bridge}),
    ]


def customer_hangs_up(number: str, at: float) -> list[tuple[float, Event]]:
    return [
        (at, hangup_request("SoftHangupRequest", number, 2, 16)),
        (at, hangup(number, 2, 16, "Normal Clearing")),
        (at, hangup(number, 1, 16, "Normal Clearing")),
        (at + 0.001, {"Event": "Hangup", **_agent_leg(1), "Cause": "16"}),
        (at + 0.001, {"Event": "Hangup", **_agent_leg(2), "Cause": "16"}),
    ]


QUEUED_1005: Timeline = [
    *queued_answer("1005"),
    *agent_answers("1005", at=1.016),
    (10.032, {"Event": "AgentComplete", **_leg("1005", 1), "Reason": "caller"}),
    *customer_hangs_up("1005", at=10.032),
]


def fold(timeline: Timeline, start: CallObservation | None = None) -> CallObservation:
    observation = start or CallObservation.for_call(CALL)
    for at, event in timeline:
        observation = observe(observation, event, at=at)
    return observation


# ---------------------------------------------------------------------------- the lab table


LAB_TABLE = [
    pytest.param(ANSWERED_1001, "hold", Outcome.ANSWERED, 2.510, id="1001-answered"),
    pytest.param(BUSY_1002, "hold", Outcome.BUSY, 0.009, id="1002-busy"),
    pytest.param(NO_ANSWER_1003, "hold", Outcome.NO_ANSWER, 8.014, id="1003-no-answer"),
    pytest.param(CONGESTION_1004, "hold", Outcome.CONGESTION, 0.008, id="1004-congestion"),
    pytest.param(QUEUED_1005, "queue", Outcome.ANSWERED, 10.032, id="1005-queue-agent-after-1s"),
    pytest.param(REJECTED_1006, "hold", Outcome.REJECTED, 0.007, id="1006-rejected"),
    pytest.param(UNAVAILABLE_1007, "hold", Outcome.UNAVAILABLE, 0.008, id="1007-absent"),
    pytest.param(UNALLOCATED_1234, "hold", Outcome.UNAVAILABLE, 0.007, id="1234-unallocated"),
    pytest.param(NO_ROUTE_ABC, "hold", Outcome.FAILED, 0.007, id="abc-no-route"),
]


@pytest.mark.parametrize(("timeline", "exten", "outcome", "ended_at"), LAB_TABLE)
def test_lab_call_is_classified_as_the_lab_table_says(
    timeline: Timeline, exten: str, outcome: Outcome, ended_at: float
) -> None:
    assert classify(fold(timeline), routed_to_queue=exten == "queue") == outcome


@pytest.mark.parametrize(("timeline", "exten", "outcome", "ended_at"), LAB_TABLE)
def test_lab_call_is_finished_at_its_last_own_event_and_not_before(
    timeline: Timeline, exten: str, outcome: Outcome, ended_at: float
) -> None:
    observation = CallObservation.for_call(CALL)
    finished_at = []
    for at, event in timeline:
        observation = observe(observation, event, at=at)
        finished_at.append(is_finished(observation))
    first = finished_at.index(True)
    assert all(finished_at[first:])
    assert timeline[first][0] == ended_at
    assert observation.ended_at == ended_at


def test_hangup_causes_are_read_from_hangup_events_not_hangup_requests() -> None:
    observation = fold(BUSY_1002)

    assert (observation.channel_cause, observation.other_channel_cause) == (0, 17)
    assert observation.dial_status == "BUSY"
    assert (observation.originate_response, observation.reason) == ("Failure", 5)


def test_answer_time_is_the_first_answer_seen() -> None:
    observation = fold(QUEUED_1005)

    assert observation.answered_at == 0.011
    assert observation.agent_connected_at == 1.016


def test_a_dial_from_our_channel_to_an_agent_does_not_replace_the_customers_dial_status() -> None:
    agent_rings_out = {
        "Event": "DialEnd",
        **_leg("1005", 1),
        "DestChannel": "Local/2001@agents-00000006;1",
        "DestUniqueid": "1795736287.12",
        "DialStatus": "NOANSWER",
    }
    observation = fold([*queued_answer("1005"), (11.0, agent_rings_out)])

    assert observation.dial_status == "ANSWER"


def test_a_failure_without_any_channel_is_finished_at_once() -> None:
    observation = fold([(0.004, originate_response("1001", "Failure", 0))])

    assert is_finished(observation)
    assert classify(observation) == Outcome.FAILED


def test_a_call_still_up_is_not_finished() -> None:
    observation = fold(ANSWERED_1001[:-2])

    assert not is_finished(observation)
    assert observation.ended_at is None


# ------------------------------------------------------------------------------- abandonment


def test_call_an_agent_took_late_is_answered_and_counted_late() -> None:
    late_agent = [*queued_answer("1005"), *agent_answers("1005", at=3.1)]
    observation = fold([*late_agent, *customer_hangs_up("1005", at=12.0)])

    assert not is_abandoned(observation)
    assert classify(observation, routed_to_queue=True) == Outcome.ANSWERED
    assert agent_wait_s(observation) == pytest.approx(3.1 - 0.011)
    assert reached_agent_late(observation)


def test_call_into_queue_that_no_agent_ever_took_is_abandoned() -> None:
    gave_up = {"Event": "QueueCallerAbandon", **_leg("1005", 1), "Queue": "agents"}
    observation = fold([*queued_answer("1005"), (9.5, gave_up), *customer_hangs_up("1005", 9.5)])

    assert classify(observation, routed_to_queue=True) == Outcome.ABANDONED


def test_agent_connected_exactly_at_the_limit_is_not_late() -> None:
    at_limit = 0.011 + ABANDON_AFTER_S
    observation = fold([*queued_answer("1005"), *agent_answers("1005", at=at_limit)])

    assert not is_abandoned(observation)
    assert not reached_agent_late(observation)


def test_an_agent_leg_entering_the_bridge_counts_as_the_agent_connecting() -> None:
    bridge_enter = {"Event": "BridgeEnter", **_agent_leg(1), "BridgeUniqueid": "b1"}
    observation = fold([*queued_answer("1005"), (1.5, bridge_enter)])

    assert observation.agent_connected_at == 1.5
    assert classify(observation, routed_to_queue=True) == Outcome.ANSWERED


def test_our_own_leg_entering_a_bridge_is_not_an_agent() -> None:
    bridge_enter = {"Event": "BridgeEnter", **_leg("1005", 1), "BridgeUniqueid": "b1"}

    assert fold([*queued_answer("1005"), (1.5, bridge_enter)]).agent_connected_at is None


def test_answered_call_to_an_ivr_is_never_abandoned() -> None:
    observation = fold(ANSWERED_1001)

    assert observation.agent_connected_at is None
    assert classify(observation) == Outcome.ANSWERED


def test_the_late_limit_can_be_changed() -> None:
    observation = fold([*queued_answer("1005"), *agent_answers("1005", at=1.0)])

    assert reached_agent_late(observation, abandon_after_s=0.5)
    assert not reached_agent_late(observation)


# ---------------------------------------------------------------------------- link lost


def test_link_lost_while_an_answered_call_is_up_is_unknown() -> None:
    observation = observe_link_lost(fold(ANSWERED_1001[:-2]))

    assert classify(observation) == Outcome.UNKNOWN


def test_link_lost_while_ringing_is_unknown() -> None:
    observation = observe_link_lost(fold(NO_ANSWER_1003[:5]))

    assert classify(observation) == Outcome.UNKNOWN


def test_link_lost_after_a_busy_response_keeps_the_proven_outcome() -> None:
    busy_before_hangups = [
        *ringing_start("1002"),
        (0.007, originate_response("1002", "Failure", 5)),
    ]

    assert classify(observe_link_lost(fold(busy_before_hangups))) == Outcome.BUSY


def test_asterisk_restart_failing_a_ringing_call_with_reason_0_is_unknown() -> None:
    restart = [
        *ringing_start("1003"),
        (3.0, originate_response("1003", "Failure", 0)),
        (3.0, {"Event": "Shutdown", "Shutdown": "Cleanly", "Restart": "True"}),
    ]

    assert classify(observe_link_lost(fold(restart))) == Outcome.UNKNOWN


def test_link_lost_after_the_call_finished_changes_nothing() -> None:
    assert classify(observe_link_lost(fold(ANSWERED_1001))) == Outcome.ANSWERED


def test_events_after_the_link_came_back_settle_the_call() -> None:
    lost_mid_call = observe_link_lost(fold(ANSWERED_1001[:-2]))
    settled = fold(ANSWERED_1001[-2:], start=lost_mid_call)

    assert is_finished(settled)
    assert classify(settled) == Outcome.ANSWERED


def test_nothing_heard_at_all_is_unknown() -> None:
    assert classify(CallObservation.for_call(CALL)) == Outcome.UNKNOWN


# ------------------------------------------------------------------------ rules by evidence


@pytest.mark.parametrize(
    ("reason", "dial_status", "causes", "outcome"),
    [
        (5, None, (None, None), Outcome.BUSY),
        (3, None, (19, 19), Outcome.NO_ANSWER),
        (8, "CONGESTION", (0, 34), Outcome.CONGESTION),
        (0, "NOANSWER", (21, 21), Outcome.REJECTED),
        (0, "CHANUNAVAIL", (20, 20), Outcome.UNAVAILABLE),
        (0, "CHANUNAVAIL", (None, None), Outcome.UNAVAILABLE),
        (0, "NOANSWER", (1, 1), Outcome.UNAVAILABLE),
        (0, None, (3, 3), Outcome.UNAVAILABLE),
        (0, None, (0, 17), Outcome.BUSY),
        (0, None, (19, 17), Outcome.BUSY),  # the customer's leg (;2) is read first
        (1, None, (19, 19), Outcome.NO_ANSWER),
        (2, None, (0, 42), Outcome.CONGESTION),
        (0, None, (38, None), Outcome.CONGESTION),
        (0, "BUSY", (0, 16), Outcome.BUSY),
        (0, "CANCEL", (16, 16), Outcome.FAILED),
        (0, None, (31, 31), Outcome.FAILED),
        (0, None, (0, 0), Outcome.FAILED),
    ],
)
def test_unanswered_call_is_classified_by_reason_then_cause_then_dial_status(
    reason: int, dial_status: str | None, causes: tuple[int | None, int | None], outcome: Outcome
) -> None:
    observation = CallObservation(
        CALL,
        f"{CALL}-2",
        originate_response="Failure",
        reason=reason,
        dial_status=dial_status,
        channel_cause=causes[0],
        other_channel_cause=causes[1],
    )

    assert classify(observation) == outcome


def test_odd_header_values_are_kept_as_unknown_rather_than_raising() -> None:
    observation = fold(
        [
            (0.1, {"Event": "OriginateResponse", "Response": "Failure", "Reason": "n/a"}),
            (0.2, {"Event": "Hangup", "Uniqueid": CALL, "Cause": ""}),
        ]
    )

    assert (observation.reason, observation.channel_cause) == (None, 0)
    assert classify(observation) == Outcome.FAILED


def test_outcome_words_are_the_ones_of_the_design() -> None:
    assert list(CALL_OUTCOMES) == [
        "answered",
        "busy",
        "no_answer",
        "congestion",
        "unavailable",
        "failed",
        "rejected",
        "abandoned",
        "unknown",
    ]
    assert Outcome("no_answer") is Outcome.NO_ANSWER


def test_every_outcome_but_answered_may_have_a_retry_rule() -> None:
    assert set(get_args(RetryOutcome)) == set(CALL_OUTCOMES) - {"answered"}


# -------------------------------------------------------------------------------- properties

_maybe_int = st.none() | st.integers(min_value=-(2**40), max_value=2**40)
_maybe_time = st.none() | st.floats(allow_nan=True, allow_infinity=True)
_maybe_word = st.none() | st.sampled_from(["Success", "Failure", "ANSWER", "BUSY", ""]) | st.text()
observations = st.builds(
    CallObservation,
    channel_id=st.just(CALL),
    other_channel_id=st.just(f"{CALL}-2"),
    originate_response=_maybe_word,
    reason=_maybe_int,
    dial_status=_maybe_word
    | st.sampled_from(["NOANSWER", "CHANUNAVAIL", "CONGESTION", "CANCEL", "DONTCALL"]),
    channel_cause=_maybe_int,
    other_channel_cause=_maybe_int,
    channel_seen=st.booleans(),
    other_channel_seen=st.booleans(),
    answered_at=_maybe_time,
    agent_connected_at=_maybe_time,
    ended_at=_maybe_time,
    link_lost=st.booleans(),
)


@given(observations, st.booleans())
def test_classify_always_returns_an_outcome(
    observation: CallObservation, routed_to_queue: bool
) -> None:
    outcome = classify(observation, routed_to_queue=routed_to_queue)

    assert isinstance(outcome, Outcome)


_header_names = st.sampled_from(
    ["Event", "Response", "Reason", "DialStatus", "Cause", "Uniqueid", "DestUniqueid", "Channel"]
)
_header_values = (
    st.sampled_from([CALL, f"{CALL}-2", "4", "0", "17", "ANSWER", "Success"]) | st.text()
)
events = st.dictionaries(_header_names, _header_values) | st.fixed_dictionaries(
    {
        "Event": st.sampled_from(
            ["OriginateResponse", "DialEnd", "Hangup", "AgentConnect", "BridgeEnter", "VarSet"]
        ),
        "Uniqueid": st.sampled_from([CALL, f"{CALL}-2", "1795736287.12"]),
        "DestUniqueid": st.sampled_from([CALL, "1795736287.12"]),
    },
    optional={"Reason": st.text(), "Cause": st.text(), "Response": st.text()},
)


@given(st.lists(st.tuples(st.floats(allow_nan=False), events), max_size=12))
def test_observe_never_raises_and_a_finished_call_stays_finished(
    timeline: list[tuple[float, Event]],
) -> None:
    observation = CallObservation.for_call(CALL)
    was_finished = False
    for at, event in timeline:
        observation = observe(observation, event, at=at)
        assert is_finished(observation) or not was_finished
        was_finished = is_finished(observation)
    assert isinstance(classify(observation), Outcome)
