"""Calls in flight, and the one AMI event handler that matches events to them.

Every Originate we send uses the attempt id as its ActionID *and* its ChannelId, so:

- `OriginateResponse` is matched by `ActionID`;
- every other event of the call carries the id as `Linkedid` (every leg, agents' legs too), as
  `Uniqueid` (the first channel) or as `DestUniqueid` (the Originate's own DialBegin/DialEnd);
- the IVR's and the agents' `UserEvent(OutreachDisposition)` carry it as `AttemptId`.

So one dict lookup finds the call, whichever campaign placed it; events of other calls cost a
few lookups and nothing else. A matched event is folded into the call's `CallObservation`
(`dialer.calling.classify`); the call's `answered` and `finished` events are set as soon as
that is true. Queue and agent events (`Queue*`, `Agent*`) also go to the listener that takes
them (the campaign service, for the queues whose free agents gate dialling).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from dialer.calling.classify import CallObservation, is_finished, observe, observe_link_lost
from dialer.clock import Clock

__all__ = ["DISPOSITION_EVENT", "Call", "CallRouter"]

DISPOSITION_EVENT = "OutreachDisposition"
"""`UserEvent(OutreachDisposition,AttemptId: ...,Digit: ...)` from the IVR (or `Disposition:`
from an agent's desktop)."""

AmiEventLike = Mapping[str, str]
DispositionListener = Callable[[str, AmiEventLike], Awaitable[None] | None]
EventListener = Callable[[AmiEventLike], None]


@dataclass
class Call:
    """One attempt being followed: who, since when, and what the events said so far."""

    attempt_id: str
    campaign: str
    contact_id: int
    phone: str
    started_at: datetime
    routed_to_queue: bool = False
    observation: CallObservation = field(init=False)
    responded: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    answered_at: datetime | None = None
    on_change: Callable[[Call], None] | None = None

    def __post_init__(self) -> None:
        self.observation = CallObservation.for_call(self.attempt_id)

    @property
    def channel_id(self) -> str:
        return self.attempt_id

    @property
    def with_agent(self) -> bool:
        """An agent took this call and it is still up (a VIP campaign counts these)."""
        return self.observation.agent_connected_at is not None and not self.finished.is_set()

    def fold(self, event: AmiEventLike, at: float, wall: datetime) -> None:
        before = self.observation
        self.observation = observe(before, event, at=at)
        self._note(before, wall)

    def link_lost(self) -> None:
        self.observation = observe_link_lost(self.observation)

    def _note(self, before: CallObservation, wall: datetime) -> None:
        after = self.observation
        if after.originate_response is not None and not self.responded.is_set():
            self.responded.set()
        if after.answered_at is not None and not self.answered.is_set():
            self.answered_at = wall
            self.answered.set()
        if is_finished(after) and not self.finished.is_set():
            self.finished.set()
        if self.on_change is not None and (
            after.agent_connected_at != before.agent_connected_at
            or after.ended_at != before.ended_at
            or after.answered_at != before.answered_at
        ):
            self.on_change(self)


class CallRouter:
    """Routes AMI events to the calls in flight, dispositions and queue events to listeners.

    Register `handle` with the AMI client (all events). `clock` gives seconds (any origin) for
    the observations, `wall` the aware datetime of an answer.
    """

    def __init__(self, clock: Callable[[], float], wall: Clock) -> None:
        self._clock = clock
        self._wall = wall
        self._calls: dict[str, Call] = {}
        self._queue_listeners: list[EventListener] = []
        self._disposition_listener: DispositionListener | None = None

    @property
    def calls(self) -> Mapping[str, Call]:
        return self._calls

    def track(self, call: Call) -> None:
        """Follow `call`; do it before sending its Originate, so no event is missed."""
        self._calls[call.attempt_id] = call

    def forget(self, attempt_id: str) -> None:
        self._calls.pop(attempt_id, None)

    def on_disposition(self, listener: DispositionListener) -> None:
        self._disposition_listener = listener

    def on_queue_event(self, listener: EventListener) -> None:
        self._queue_listeners.append(listener)

    def link_lost(self) -> None:
        for call in self._calls.values():
            call.link_lost()

    async def handle(self, event: AmiEventLike) -> None:
        name = event.get("Event", "")
        if name == "UserEvent" and event.get("UserEvent") == DISPOSITION_EVENT:
            attempt_id = event.get("AttemptId", "").strip()
            if attempt_id and self._disposition_listener is not None:
                result = self._disposition_listener(attempt_id, event)
                if result is not None:
                    await result
            return
        if name.startswith(("Queue", "Agent")):
            for listener in self._queue_listeners:
                listener(event)
        calls = self._calls
        if not calls:
            return
        call = (
            calls.get(event.get("Linkedid", ""))
            or calls.get(event.get("ActionID", ""))
            or calls.get(event.get("Uniqueid", ""))
            or calls.get(event.get("DestUniqueid", ""))
        )
        if call is not None:
            call.fold(event, self._clock(), self._wall())
