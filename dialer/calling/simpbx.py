"""The simulated call centre behind the daemon's PBX port, on a virtual-time loop.

`SimulatedPbx` does what the campaign runner asks of `dialer.ami.AmiClient` to place calls:
`await originate(request)` starts an attempt in a `simworld.World`, and what becomes of it comes
back as AMI events (header names as Asterisk spells them) through `on_event`, each at its
virtual time, while `run()` plays the world. Start `run()` next to the runner in its task group
on `virtual_time.run_virtual`'s loop: an 8-hour day then takes seconds.

Events per happening (ChannelId = `request.channel_id`, the customer's leg its "-2", every event
of the call with `Linkedid` = ChannelId; agents are `Local/agent<n>@agents` in queue `queue`)::

    answered      OriginateResponse Success / Reason 4; QueueCallerJoin (Count)
    busy          Hangup -2 cause 17, Hangup cause 0; OriginateResponse Failure / Reason 5
    no_answer     Hangup 19 / 19; OriginateResponse Failure / Reason 3
    connected     QueueCallerLeave (Count); AgentConnect (HoldTime); QueueMemberStatus Status 2
    abandoned     QueueCallerAbandon (HoldTime); QueueCallerLeave (Count); Hangup 16 / 16
    talk_ended    AgentComplete (TalkTime); Hangup 16 / 16;
                  QueueMemberStatus Status 1 with Wrapuptime (no call until it is over)
    agent_joined  QueueMemberPause Paused 0
    agent_left    QueueMemberPause Paused 1 (a busy agent finishes its call first)

Member events carry the member's whole state (Status, InCall, Paused), so
`dialer.queues.AgentQueue` follows them; it counts an agent in wrap-up as free, as it would on
Asterisk, where the device is "not in use" during the queue's wrapuptime.

`dialer.calling.classify` classifies these like the lab PBX's (a test checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
from collections.abc import Awaitable, Callable, Mapping

from dialer.calling.ports import LiveChannel, OriginateRequest
from dialer.calling.simworld import Happening, World, WorldConfig

AmiEvent = dict[str, str]
"""One event as the PBX's AMI would send it (header -> value)."""
EventHandler = Callable[[AmiEvent], Awaitable[None] | None]

__all__ = ["SimulatedPbx"]


class SimulatedPbx:
    """A `World` of `config` (seeded) that takes Originates and answers with AMI events."""

    def __init__(
        self,
        config: WorldConfig,
        *,
        seed: int,
        on_event: EventHandler,
        queue: str = "agents",
        on_happening: Callable[[Happening], None] | None = None,
    ) -> None:
        self.queue = queue
        self._on_event = on_event
        self._on_happening = on_happening
        self._requests: dict[int, OriginateRequest] = {}
        self._in_call: set[int] = set()  # agents talking (Status 2)
        self._paused: set[int] = set()
        self._outbox: list[AmiEvent] = []
        self._wake = asyncio.Event()
        self._delivering = asyncio.Lock()
        self._wrap_up = str(round(config.wrap_up_s))
        self.world = World(config, seed=seed, listener=self._heard)

    # The rest of the PBX port (`dialer.calling.ports.Pbx`): always logged in, no channel
    # outlives a run, the queue's members from the world.

    @property
    def logged_in(self) -> bool:
        return True

    async def wait_logged_in(self) -> None:
        return None

    async def queue_status(self, queue: str) -> list[Mapping[str, str]]:
        """QueueMember items (Location, Status, Paused, Wrapuptime) of the agents on duty."""
        on_duty = set(self.world.agents_on_duty())
        wrap_up = str(round(self.world.config.wrap_up_s))
        return [
            {
                "Event": "QueueMember",
                "Queue": queue,
                "Location": f"Local/agent{agent}@agents",
                "Status": "2" if agent in self._in_call else "1",
                "Paused": "0" if agent in on_duty else "1",
                "Wrapuptime": wrap_up,
            }
            for agent in range(self.world.config.agents)
        ]

    async def live_channels(self) -> list[LiveChannel]:
        return []

    async def db_get(self, family: str, key: str) -> str | None:
        return None

    async def originate(self, request: OriginateRequest) -> None:
        """Place the call now; its events follow through `on_event` while `run()` plays."""
        self.world.run_until(asyncio.get_running_loop().time())
        self._requests[self.world.place()] = request
        self._wake.set()

    async def run(self) -> None:
        """Play the world's events at their virtual times, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await self.catch_up()
            self._wake.clear()
            wait_s = self.world.next_event_s() - loop.time()
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s if math.isfinite(wait_s) else None):
                        await self._wake.wait()

    async def catch_up(self) -> None:
        """Play what is due by now and deliver its events. `run()` does so at each event's
        time; code that reads `world` between two of them calls it first."""
        self.world.run_until(asyncio.get_running_loop().time())
        async with self._delivering:  # in order, even when a handler awaits
            while self._outbox:
                events, self._outbox = self._outbox, []
                for event in events:
                    result = self._on_event(event)
                    if inspect.isawaitable(result):
                        await result

    def _heard(self, happening: Happening) -> None:
        if self._on_happening is not None:
            self._on_happening(happening)
        self._outbox.extend(self._events_of(happening))

    def _events_of(self, happening: Happening) -> list[AmiEvent]:
        kind = happening.kind
        member = f"Local/agent{happening.agent}@agents"
        agent = happening.agent
        if kind == "agent_joined" or kind == "agent_left":
            if kind == "agent_left":
                self._paused.add(agent)
            else:
                self._paused.discard(agent)
            return [self._member("QueueMemberPause", agent)]
        if kind == "wrap_up_ended":
            return []  # Asterisk says nothing: the member's Wrapuptime is over
        if kind in ("busy", "no_answer", "abandoned", "talk_ended"):  # the call's last events
            request = self._requests.pop(happening.attempt)
        else:
            request = self._requests[happening.attempt]
        one, two = request.channel_id, request.other_channel_id
        call = {"Linkedid": one, "Queue": self.queue}
        waiting = str(len(self.world.waiting))

        def hangup(uniqueid: str, cause: int) -> AmiEvent:
            return {"Event": "Hangup", "Uniqueid": uniqueid, "Linkedid": one, "Cause": str(cause)}

        def response(success: bool, reason: int) -> AmiEvent:
            return {
                "Event": "OriginateResponse",
                "ActionID": request.action_id,
                "Response": "Success" if success else "Failure",
                "Reason": str(reason),
                "Uniqueid": one,
                "Channel": request.channel,
            }

        if kind == "answered":
            joined = str(len(self.world.waiting) + 1)  # the world queues it right after
            return [
                response(True, 4),
                {"Event": "QueueCallerJoin", "Uniqueid": one, "Count": joined, **call},
            ]
        if kind == "busy":
            return [hangup(two, 17), hangup(one, 0), response(False, 5)]
        if kind == "no_answer":
            return [hangup(two, 19), hangup(one, 19), response(False, 3)]
        seconds = str(round(happening.duration_s))
        if kind == "connected":
            return [
                {"Event": "QueueCallerLeave", "Uniqueid": one, "Count": waiting, **call},
                {"Event": "AgentConnect", "Uniqueid": one, "Interface": member, "HoldTime": seconds}
                | call,
                self._member("QueueMemberStatus", agent, talking=True),
            ]
        if kind == "abandoned":
            return [
                {"Event": "QueueCallerAbandon", "Uniqueid": one, "HoldTime": seconds, **call},
                {"Event": "QueueCallerLeave", "Uniqueid": one, "Count": waiting, **call},
                hangup(two, 16),
                hangup(one, 16),
            ]
        wrap_up = str(round(self.world.config.wrap_up_s))
        return [  # talk_ended
            {"Event": "AgentComplete", "Uniqueid": one, "Interface": member, "TalkTime": seconds}
            | call,
            hangup(two, 16),
            hangup(one, 16),
            self._member("QueueMemberStatus", agent, talking=False, Wrapuptime=wrap_up),
        ]

    def _member(
        self, event: str, agent: int, *, talking: bool | None = None, **headers: str
    ) -> AmiEvent:
        """A queue member event with the member's whole state, as Asterisk sends it."""
        if talking:
            self._in_call.add(agent)
        elif talking is not None:
            self._in_call.discard(agent)
        in_call = agent in self._in_call
        return {
            "Event": event,
            "Queue": self.queue,
            "Interface": f"Local/agent{agent}@agents",
            "Status": "2" if in_call else "1",
            "InCall": "1" if in_call else "0",
            "Paused": "1" if agent in self._paused else "0",
            "Wrapuptime": self._wrap_up,
            **headers,
        }
