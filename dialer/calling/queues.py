"""Free agents of an Asterisk queue, learnt from AMI: a VIP campaign dials only while one is free.

At start and after every reconnect the runner asks `QueueStatus` for the queue and `reset`s the
members from its `QueueMember` items; from then on `QueueMemberStatus`, `QueueMemberPause`,
`QueueMemberAdded` and `QueueMemberRemoved` events keep them current. A member is free when it
is not paused and its device state is "not in use" (1). Callers waiting in the queue
(`QueueCallerJoin` / `QueueCallerLeave`) are counted too: each will take the next free agent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = ["AgentQueue", "Member"]

NOT_IN_USE = "1"


@dataclass(frozen=True)
class Member:
    interface: str
    status: str
    paused: bool

    @property
    def free(self) -> bool:
        return not self.paused and self.status == NOT_IN_USE


class AgentQueue:
    """What we know of one queue's members; `on_change` is called when the free count moves."""

    def __init__(self, name: str, on_change: Callable[[], None] | None = None) -> None:
        self.name = name
        self.members: dict[str, Member] = {}
        self.callers_waiting = 0
        self.known = False
        self._on_change = on_change

    @property
    def free_agents(self) -> int:
        """Agents free and not spoken for by a caller already waiting in the queue."""
        if not self.known:
            return 0
        free = sum(1 for member in self.members.values() if member.free)
        return max(0, free - self.callers_waiting)

    def forget(self) -> None:
        """The AMI link is down: nothing is known until the next `reset`."""
        self.known = False
        self._changed()

    def reset(self, items: Iterable[Mapping[str, str]]) -> None:
        """Start over from a `QueueStatus` answer (QueueParams + QueueMember items)."""
        self.members = {}
        self.callers_waiting = 0
        for item in items:
            if item.get("Queue") != self.name:
                continue
            if item.get("Event") == "QueueMember":
                interface = item.get("StateInterface") or item.get("Location", "")
                self.members[interface] = _member(interface, item)
            elif item.get("Event") == "QueueParams":
                self.callers_waiting = _int(item.get("Calls"))
        self.known = True
        self._changed()

    def handle(self, event: Mapping[str, str]) -> None:
        if event.get("Queue") != self.name:
            return
        name = event.get("Event", "")
        interface = event.get("StateInterface") or event.get("Interface", "")
        if name in ("QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause"):
            self.members[interface] = _member(interface, event)
        elif name == "QueueMemberRemoved":
            self.members.pop(interface, None)
        elif name in ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon"):
            self.callers_waiting = _int(event.get("Count"))
        else:
            return
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


def _member(interface: str, item: Mapping[str, str]) -> Member:
    return Member(interface, item.get("Status", ""), item.get("Paused", "0") == "1")


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0
