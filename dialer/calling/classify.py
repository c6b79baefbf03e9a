"""What became of one call: its AMI events folded into a `CallObservation`, then one `Outcome`.

Pure: no I/O, no clock. The runner matches events to a call elsewhere (the OriginateResponse by
ActionID; the others by the Originate ChannelId, which is the Uniqueid of the first channel, the
DestUniqueid of the Originate's own DialBegin/DialEnd, and the Linkedid of every leg, agents'
legs included), feeds each one to `observe(observation, event, at=now)`, stops when
`is_finished(observation)`, and records `classify(observation)`. After the AMI link drops it
calls `observe_link_lost`; a call it can no longer follow is then classified as it stands.

The two channels of a call (`Local/<number>@customers` in the lab, so two Local legs)::

    channel_id        Uniqueid = Originate ChannelId       lab: Local ;1 (runs the destination)
                                                           production: the trunk channel itself
    other_channel_id  Uniqueid = Originate OtherChannelId  lab: Local ;2 (the customer's side)
                                                           production: absent

What the lab PBX (Asterisk 22.10.1, `lab/README.md`) sends for each customer, and the outcome::

    customer        OriginateResponse  DialEnd      Hangup cause ;1 / ;2   outcome
    1001 answers    Success / 4        ANSWER       16 / 16                answered (or abandoned)
    1002 busy       Failure / 5        BUSY          0 / 17                busy
    1003 no answer  Failure / 3        (none)       19 / 19                no_answer
    1004 congested  Failure / 8        CONGESTION    0 / 34                congestion
    1006 rejects    Failure / 0        NOANSWER     21 / 21                rejected
    1007 absent     Failure / 0        CHANUNAVAIL  20 / 20                unavailable
    1234 no such    Failure / 0        NOANSWER      1 / 1                 unavailable
    abc  no route   Failure / 0        (none)        0 / 0                 failed

The rules, first match wins:

1. Answered (OriginateResponse Success / Reason 4, or the Originate's own DialEnd ANSWER):
   `unknown` if the AMI link was lost before the call finished; `abandoned` if the call went
   straight to an agent queue (`routed_to_queue=True`) and no agent ever took it (also when the
   customer hung up first); else `answered`. A call an agent took is answered however long it
   waited: the customer was served and is not called again. How long it waited
   (`agent_wait_s`) is kept; past `abandon_after_s` (2 s) it counts against the abandon rate
   (`reached_agent_late`), as the rules on abandoned calls measure them.
2. Reason 5 `busy`, 3 `no_answer`, 8 `congestion`.
3. Reason 0 (and 1, 2, anything else) says only "not answered": the Hangup cause decides, read on
   the other leg first (the ;1 leg says 0 for busy and congestion), 0 and 16 saying nothing:
   1 unallocated, 3 no route, 20 subscriber absent `unavailable`; 17 `busy`; 18, 19 `no_answer`;
   21 call rejected `rejected` (the customer's doing, not an absence: its own retry rule, none
   by default); 34, 38, 42 `congestion`.
4. Else the Originate's DialEnd DialStatus: BUSY `busy`, CONGESTION `congestion`, CHANUNAVAIL
   `unavailable`, NOANSWER `no_answer`, DONTCALL/TORTURE/INVALIDARGS `failed` (CANCEL says
   nothing).
5. Else `unknown` if the link was lost (an Asterisk restart fails a ringing call with Reason 0
   and no other evidence) or no evidence arrived at all; else `failed`.

Times (`at`, `answered_at`...) are seconds on whatever clock the runner injects (monotonic).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from dialer.outcomes import Outcome

__all__ = [
    "ABANDON_AFTER_S",
    "CallObservation",
    "agent_wait_s",
    "classify",
    "is_abandoned",
    "is_finished",
    "observe",
    "observe_link_lost",
    "reached_agent_late",
]

ABANDON_AFTER_S = 2.0
"""A call answered into a queue is abandoned when no agent connects within this many seconds."""


@dataclass(frozen=True)
class CallObservation:
    """What the AMI events said so far about one call; build it with `for_call`, grow it with
    `observe`. Every field but the two ids starts empty."""

    channel_id: str
    other_channel_id: str
    originate_response: str | None = None
    """OriginateResponse `Response`: "Success" or "Failure"."""
    reason: int | None = None
    """OriginateResponse `Reason`: 4 answered, 5 busy, 3 no answer, 8 congestion, 0 other."""
    dial_status: str | None = None
    """`DialStatus` of the Originate's own DialEnd (its DestUniqueid is `channel_id`)."""
    channel_cause: int | None = None
    """Hangup `Cause` of `channel_id` (lab: Local ;1); set means that channel is gone."""
    other_channel_cause: int | None = None
    """Hangup `Cause` of `other_channel_id` (lab: Local ;2, the customer's side)."""
    channel_seen: bool = False
    other_channel_seen: bool = False
    answered_at: float | None = None
    agent_connected_at: float | None = None
    """First AgentConnect, or BridgeEnter of a channel that is not ours (an agent's leg)."""
    ended_at: float | None = None
    """When `is_finished` first held; set, the call counts as finished whatever comes later."""
    link_lost: bool = False
    """The AMI link dropped while this call was being observed."""

    @classmethod
    def for_call(cls, channel_id: str, other_channel_id: str | None = None) -> CallObservation:
        """A call not heard of yet; OtherChannelId defaults to `<channel_id>-2` like dialer.pbx."""
        return cls(channel_id, other_channel_id or f"{channel_id}-2")


# ------------------------------------------------------------------------------------- folding

_Fold = Callable[[CallObservation, Mapping[str, str], float], CallObservation]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _first(known: float | None, at: float) -> float:
    return known if known is not None else at


def _originate_response(
    observation: CallObservation, event: Mapping[str, str], at: float
) -> CallObservation:
    updated = replace(
        observation,
        originate_response=event.get("Response"),
        reason=_int(event.get("Reason")),
    )
    if _was_answered(updated):
        updated = replace(updated, answered_at=_first(observation.answered_at, at))
    return updated


def _dial_end(observation: CallObservation, event: Mapping[str, str], at: float) -> CallObservation:
    if event.get("DestUniqueid") != observation.channel_id:
        return observation  # a dial made by our channel (to an agent), not the Originate's own
    status = event.get("DialStatus")
    answered_at = observation.answered_at
    if status is not None and status.upper() == "ANSWER":
        answered_at = _first(observation.answered_at, at)
    return replace(observation, dial_status=status, answered_at=answered_at)


def _hangup(observation: CallObservation, event: Mapping[str, str], at: float) -> CallObservation:
    cause = _int(event.get("Cause"))
    cause = 0 if cause is None else cause  # still gone, for a reason not given
    uniqueid = event.get("Uniqueid")
    if uniqueid == observation.channel_id and observation.channel_cause is None:
        return replace(observation, channel_cause=cause)
    if uniqueid == observation.other_channel_id and observation.other_channel_cause is None:
        return replace(observation, other_channel_cause=cause)
    return observation


def _agent_connect(
    observation: CallObservation, event: Mapping[str, str], at: float
) -> CallObservation:
    if observation.agent_connected_at is not None:
        return observation
    return replace(observation, agent_connected_at=at)


def _bridge_enter(
    observation: CallObservation, event: Mapping[str, str], at: float
) -> CallObservation:
    if event.get("Uniqueid") in (observation.channel_id, observation.other_channel_id):
        return observation  # our own leg entering the bridge; the agent's leg says more
    return _agent_connect(observation, event, at)


_FOLDS: dict[str, _Fold] = {
    "OriginateResponse": _originate_response,
    "DialEnd": _dial_end,
    "Hangup": _hangup,
    "AgentConnect": _agent_connect,
    "BridgeEnter": _bridge_enter,
}


def _mark_seen(observation: CallObservation, event: Mapping[str, str]) -> CallObservation:
    """Note which of our channels exist: their Hangup is awaited before the call is finished.

    OriginateResponse does not count: a failed one names ChannelId even when no channel was made.
    """
    if event.get("Event") == "OriginateResponse":
        return observation
    ids = (event.get("Uniqueid"), event.get("DestUniqueid"))
    channel_seen = observation.channel_seen or observation.channel_id in ids
    other_seen = observation.other_channel_seen or observation.other_channel_id in ids
    if (channel_seen, other_seen) == (observation.channel_seen, observation.other_channel_seen):
        return observation
    return replace(observation, channel_seen=channel_seen, other_channel_seen=other_seen)


def observe(
    observation: CallObservation, event: Mapping[str, str], *, at: float
) -> CallObservation:
    """Fold one AMI event of this call (header names as Asterisk spells them) into what we know.

    Events that say nothing about the outcome (VarSet, Newexten, HangupRequest, whose Cause is a
    request, not the result...) only mark a channel as seen. Never raises on odd values.
    """
    updated = _mark_seen(observation, event)
    fold = _FOLDS.get(event.get("Event", ""))
    if fold is not None:
        updated = fold(updated, event, at)
    if updated.ended_at is None and is_finished(updated):
        updated = replace(updated, ended_at=at)
    return updated


def observe_link_lost(observation: CallObservation) -> CallObservation:
    """The AMI link dropped: what has not arrived yet may never arrive."""
    return replace(observation, link_lost=True)


def is_finished(observation: CallObservation) -> bool:
    """The call is over and no more evidence is due; once true, it stays true (`ended_at`).

    True once the OriginateResponse arrived (Asterisk always sends it for an async Originate; it
    may come before or after the Hangups) and every channel of ours that showed up has hung up,
    and at least one has, or the Originate failed (a failure may come with no channel at all).
    """
    if observation.ended_at is not None:
        return True
    if observation.originate_response is None:
        return False
    channel_up = observation.channel_seen and observation.channel_cause is None
    other_up = observation.other_channel_seen and observation.other_channel_cause is None
    if channel_up or other_up:
        return False
    hung_up = observation.channel_cause is not None or observation.other_channel_cause is not None
    return hung_up or _originate_failed(observation)


# ---------------------------------------------------------------------------------- classifying

_REASON_OUTCOMES = {
    5: Outcome.BUSY,
    3: Outcome.NO_ANSWER,
    8: Outcome.CONGESTION,
}
"""OriginateResponse Reason -> outcome; 4 is answered, 0 (and 1, 2) says only "not answered"."""

_CAUSE_OUTCOMES = {
    1: Outcome.UNAVAILABLE,  # unallocated (unassigned) number
    3: Outcome.UNAVAILABLE,  # no route to destination
    20: Outcome.UNAVAILABLE,  # subscriber absent
    17: Outcome.BUSY,  # user busy
    18: Outcome.NO_ANSWER,  # no user responding
    19: Outcome.NO_ANSWER,  # user alerting, no answer
    21: Outcome.REJECTED,  # call rejected
    34: Outcome.CONGESTION,  # no circuit/channel available
    38: Outcome.CONGESTION,  # network out of order
    42: Outcome.CONGESTION,  # switching equipment congestion
}
"""Q.850 Hangup cause -> outcome, for a call not answered; other causes (0, 16...) say nothing."""

_DIAL_STATUS_OUTCOMES = {
    "BUSY": Outcome.BUSY,
    "CONGESTION": Outcome.CONGESTION,
    "CHANUNAVAIL": Outcome.UNAVAILABLE,
    "NOANSWER": Outcome.NO_ANSWER,
    "DONTCALL": Outcome.FAILED,
    "TORTURE": Outcome.FAILED,
    "INVALIDARGS": Outcome.FAILED,
}
"""DialEnd DialStatus -> outcome, when no Hangup cause decided; ANSWER is answered."""


def _was_answered(observation: CallObservation) -> bool:
    response = (observation.originate_response or "").lower()
    status = (observation.dial_status or "").upper()
    return (
        response == "success"
        or observation.reason == 4
        or status == "ANSWER"
        or observation.answered_at is not None
    )


def _originate_failed(observation: CallObservation) -> bool:
    return (observation.originate_response or "").lower() == "failure"


def is_abandoned(observation: CallObservation) -> bool:
    """Answered, and no agent ever took the call.

    Meaningful only for a call sent straight to an agent queue; `classify` asks it only then.
    """
    return _was_answered(observation) and observation.agent_connected_at is None


def agent_wait_s(observation: CallObservation) -> float | None:
    """Seconds from the answer to an agent taking the call; None when none did (or when the
    answer was not timed)."""
    if observation.agent_connected_at is None or observation.answered_at is None:
        return None
    return max(0.0, observation.agent_connected_at - observation.answered_at)


def reached_agent_late(
    observation: CallObservation, *, abandon_after_s: float = ABANDON_AFTER_S
) -> bool:
    """An agent took the call, but later than `abandon_after_s` after the answer: answered for
    the contact, an abandoned call for the abandon rate."""
    wait_s = agent_wait_s(observation)
    return wait_s is not None and wait_s > abandon_after_s


def _not_answered_outcome(observation: CallObservation) -> Outcome | None:
    """The outcome the evidence proves for a call that was not answered, or None."""
    if observation.reason is not None and observation.reason in _REASON_OUTCOMES:
        return _REASON_OUTCOMES[observation.reason]
    for cause in (observation.other_channel_cause, observation.channel_cause):
        if cause is not None and cause in _CAUSE_OUTCOMES:
            return _CAUSE_OUTCOMES[cause]
    return _DIAL_STATUS_OUTCOMES.get((observation.dial_status or "").upper())


def classify(observation: CallObservation, *, routed_to_queue: bool = False) -> Outcome:
    """The outcome word for this call (rules in the module docstring). Never raises.

    `routed_to_queue`: the answered call went straight to an agent queue (a VIP campaign), so it
    is `abandoned` when no agent ever took it. An IVR destination is not.
    """
    if _was_answered(observation):
        if observation.link_lost and not is_finished(observation):
            return Outcome.UNKNOWN
        if routed_to_queue and is_abandoned(observation):
            return Outcome.ABANDONED
        return Outcome.ANSWERED
    proven = _not_answered_outcome(observation)
    if proven is not None:
        return proven
    heard_anything = (
        observation.originate_response is not None
        or observation.channel_cause is not None
        or observation.other_channel_cause is not None
    )
    if observation.link_lost or not heard_anything:
        return Outcome.UNKNOWN
    return Outcome.FAILED
