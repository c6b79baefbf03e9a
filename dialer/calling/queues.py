"""Free agents of an Asterisk queue, learnt from AMI: a campaign that dials per free agent (VIP)
places a call only while an agent is free for it.

At start, after every reconnect and every `refresh` the runner asks `QueueStatus` for the queue
and `reset`s from its items; from then on events keep it current:

- members (`QueueMemberStatus`, `QueueMemberPause`, `QueueMemberAdded`, `QueueMemberRemoved`):
  a member is free when it is not paused and its device state is "not in use" (1);
- engagements (`AgentCalled` offers a caller to an agent, `AgentConnect` bridges them; a caller
  leaves the agent with `AgentComplete`, `AgentRingNoAnswer` or `AgentDump`): an agent
  engaged with a caller counts as taken from the first of these events, whatever the order in
  which Asterisk sends the member's own status (it may send `AgentConnect` a few milliseconds
  before the `QueueMemberStatus` that says the agent is in use, and the count must not depend
  on that);
- callers waiting (`QueueCallerJoin`, `QueueCallerLeave`, `QueueCallerAbandon`): each one not
  yet offered to an agent will take the next free agent.

Callers are known by the Uniqueid of their channel (for a call the dialer placed, the attempt
id: the Originate's ChannelId), so the runner can tell its own calls apart (`engaged`,
`waiting_unassigned`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

__all__ = ["AgentQueue", "Member"]

NOT_IN_USE = "1"
ENGAGING_EVENTS = frozenset({"AgentCalled", "AgentConnect"})
RELEASING_EVENTS = frozenset({"AgentComplete", "AgentRingNoAnswer", "AgentDump"})


@dataclass(frozen=True)
class Member:
    interface: str
    status: str
    paused: bool

    @property
    def free(self) -> bool:
        return not self.paused and self.status == NOT_IN_USE


class AgentQueue:
    """What we know of one queue; `on_change` is called when the free count may have moved."""

    def __init__(self, name: str, on_change: Callable[[], None] | None = None) -> None:
        self.name = name
        self.members: dict[str, Member] = {}
        self.engagements: dict[str, str] = {}  # caller -> the agent's interface
        self.waiting: set[str] = set()  # the callers in the queue
        self.known = False
        self._on_change = on_change

    @property
    def free_agents(self) -> int:
        """Agents free, engaged with no caller, and not spoken for by a caller waiting."""
        if not self.known:
            return 0
        engaged = set(self.engagements.values())
        free = sum(
            1 for member in self.members.values() if member.free and member.interface not in engaged
        )
        unassigned = len(self.waiting - self.engagements.keys())
        return max(0, free - unassigned)

    def engaged(self, callers: Collection[str]) -> int:
        """How many of `callers` are offered to or bridged with an agent."""
        return sum(1 for caller in callers if caller in self.engagements)

    def waiting_unassigned(self, callers: Collection[str]) -> int:
        """How many of `callers` wait in the queue with no agent offered yet."""
        return sum(
            1 for caller in callers if caller in self.waiting and caller not in self.engagements
        )

    def forget(self) -> None:
        """The AMI link is down: nothing is known until the next `reset`."""
        self.known = False
        self._changed()

    def reset(self, items: Iterable[Mapping[str, str]]) -> None:
        """Start over from a `QueueStatus` answer (QueueParams, QueueMember, QueueEntry)."""
        self.members = {}
        self.engagements = {}
        self.waiting = set()
        for item in items:
            if item.get("Queue") != self.name:
                continue
            if item.get("Event") == "QueueMember":
                interface = item.get("StateInterface") or item.get("Location", "")
                self.members[interface] = _member(interface, item)
            elif item.get("Event") == "QueueEntry":
                self.waiting.add(_caller(item))
        self.known = True
        self._changed()

    def handle(self, event: Mapping[str, str]) -> None:
        if event.get("Queue") != self.name:
            return
        name = event.get("Event", "")
        if name in ("QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause"):
            interface = event.get("StateInterface") or event.get("Interface", "")
            self.members[interface] = _member(interface, event)
        elif name == "QueueMemberRemoved":
            interface = event.get("StateInterface") or event.get("Interface", "")
            self.members.pop(interface, None)
        elif name in ENGAGING_EVENTS:
            self.engagements[_caller(event)] = event.get("Interface", "")
        elif name in RELEASING_EVENTS:
            self.engagements.pop(_caller(event), None)
        elif name == "QueueCallerJoin":
            self.waiting.add(_caller(event))
        elif name in ("QueueCallerLeave", "QueueCallerAbandon"):
            self.waiting.discard(_caller(event))
        else:
            return
        self._changed()

    def call_ended(self, caller: str) -> None:
        """A call of ours is over: whatever it held is released (events may have been lost)."""
        if self.engagements.pop(caller, None) is not None or caller in self.waiting:
            self.waiting.discard(caller)
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


def _caller(event: Mapping[str, str]) -> str:
    """The caller's channel: its Uniqueid (for a call of ours, the attempt id)."""
    return event.get("Uniqueid") or event.get("Linkedid", "")


def _member(interface: str, item: Mapping[str, str]) -> Member:
    return Member(interface, item.get("Status", ""), item.get("Paused", "0") == "1")
