"""What each agent of a queue is doing, since when, and the time it spent so: the agents'
side of pacing (`dialer.calling.outbound`) and of the agent measures.

Fed the queue's AMI events (the same ones `dialer.calling.queues.AgentQueue` follows):

- a member is on duty when it is in the queue and not paused (`QueueMember` of a
  `QueueStatus`, `QueueMemberAdded`, `QueueMemberStatus`, `QueueMemberPause`; removed: off);
- `AgentConnect` starts its talk, `AgentComplete` ends it (`TalkTime`) and starts its wrap-up,
  which lasts the member's `Wrapuptime` (Asterisk sends no event when it ends; the member's
  device is "not in use" meanwhile, so `AgentQueue` counts it free, and this ledger does not);
- an agent leaving (paused, removed) mid-call goes off duty when its call and wrap-up are over.

Time is seconds on the injected clock. Totals (`seconds`) are kept per state since the ledger
started: logged-in time is idle + talking + wrapping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["AgentLedger", "AgentState"]

AgentState = Literal["off", "idle", "talking", "wrapping"]
_AGENT_EVENTS = frozenset(
    {
        "QueueMemberStatus",
        "QueueMemberAdded",
        "QueueMemberPause",
        "QueueMemberRemoved",
        "AgentConnect",
        "AgentComplete",
    }
)


@dataclass
class _Agent:
    state: AgentState = "off"
    since: float = 0.0
    wrap_up_s: float = 0.0
    leaving: bool = False  # paused or removed while busy: off after the wrap-up


@dataclass
class AgentLedger:
    """The agents of `queue`; `on_talk(talk_s)` and `on_wrap_up(wrap_up_s)` hear each one that
    ends (the predictive pacer learns from them)."""

    queue: str
    clock: Callable[[], float]
    on_talk: Callable[[float], None] | None = None
    on_wrap_up: Callable[[float], None] | None = None
    agents: dict[str, _Agent] = field(default_factory=dict)
    seconds: dict[AgentState, float] = field(
        default_factory=lambda: {"off": 0.0, "idle": 0.0, "talking": 0.0, "wrapping": 0.0}
    )
    idle_gaps: int = 0
    """Idle spells that ended in a call."""
    idle_gap_s: float = 0.0
    """Their total length."""

    # ------------------------------------------------------------------------------- events

    def reset(self, items: Iterable[Mapping[str, str]]) -> None:
        """From a `QueueStatus` answer: members present and not paused are on duty; those
        busy in a call count idle until their next event says more."""
        now = self.clock()
        self.advance(now)
        present = set()
        for item in items:
            if item.get("Queue") != self.queue or item.get("Event") != "QueueMember":
                continue
            interface = _interface(item)
            present.add(interface)
            agent = self.agents.setdefault(interface, _Agent(since=now))
            self._set_duty(agent, interface, item, now)
        for interface, agent in self.agents.items():
            if interface not in present:
                self._move(agent, "off", now)

    def forget(self) -> None:
        """The AMI link is down: every agent off until the next `reset`."""
        now = self.clock()
        self.advance(now)
        for agent in self.agents.values():
            self._move(agent, "off", now)

    def handle(self, event: Mapping[str, str]) -> None:
        if event.get("Queue") != self.queue:
            return
        name = event.get("Event", "")
        interface = _interface(event)
        if name not in _AGENT_EVENTS or not interface:
            return  # a caller's event (QueueCallerJoin...), or one that names no member
        now = self.clock()
        self.advance(now)
        agent = self.agents.setdefault(interface, _Agent(since=now))
        if name in ("QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause"):
            self._set_duty(agent, interface, event, now)
        elif name == "QueueMemberRemoved":
            self._leave(agent, now)
        elif name == "AgentConnect":
            if agent.state == "idle":
                self.idle_gaps += 1
                self.idle_gap_s += now - agent.since
            self._move(agent, "talking", now)
        elif name == "AgentComplete" and agent.state == "talking":
            if self.on_talk is not None:
                self.on_talk(_seconds(event.get("TalkTime")) or now - agent.since)
            self._move(agent, "wrapping", now)
            self.advance(now)  # no wrap-up at all: idle at once

    def _set_duty(
        self, agent: _Agent, interface: str, event: Mapping[str, str], now: float
    ) -> None:
        wrap_up_s = _seconds(event.get("Wrapuptime"))
        if wrap_up_s is not None:
            agent.wrap_up_s = wrap_up_s
        if event.get("Paused", "0") == "1":
            self._leave(agent, now)
            return
        agent.leaving = False
        if agent.state == "off":
            self._move(agent, "idle", now)

    def _leave(self, agent: _Agent, now: float) -> None:
        if agent.state in ("idle", "off"):
            self._move(agent, "off", now)
        else:
            agent.leaving = True

    def _move(self, agent: _Agent, state: AgentState, now: float) -> None:
        self.seconds[agent.state] += max(0.0, now - agent.since)
        agent.state, agent.since = state, now

    def advance(self, now: float) -> None:
        """Wrap-ups over by `now` end (at their end time)."""
        for agent in self.agents.values():
            if agent.state == "wrapping" and agent.since + agent.wrap_up_s <= now:
                ended = agent.since + agent.wrap_up_s
                if self.on_wrap_up is not None:
                    self.on_wrap_up(agent.wrap_up_s)
                self._move(agent, "off" if agent.leaving else "idle", ended)
                agent.leaving = False

    # ------------------------------------------------------------------------------ reading

    def in_state(self, state: AgentState, now: float) -> list[float]:
        """Seconds each agent in `state` has been in it."""
        self.advance(now)
        return [now - a.since for a in self.agents.values() if a.state == state and not a.leaving]

    def logged_in_s(self, now: float) -> float:
        return sum(self.busy_and_idle_s(now))

    def busy_and_idle_s(self, now: float) -> tuple[float, float]:
        """(talking + wrapping, idle) seconds so far, the current spells included."""
        self.advance(now)
        totals = dict(self.seconds)
        for agent in self.agents.values():
            totals[agent.state] += max(0.0, now - agent.since)
        return totals["talking"] + totals["wrapping"], totals["idle"]

    @property
    def on_duty(self) -> int:
        return sum(1 for agent in self.agents.values() if agent.state != "off")


def _interface(event: Mapping[str, str]) -> str:
    return event.get("Interface") or event.get("Location") or event.get("StateInterface", "")


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
