"""A simulated agent-queue call centre: customers, agents, a queue, in simulated seconds.

The standard world (the outbound issue; the shared predictive-pacing note): `agents` agents take
calls all shift; each attempt is answered with probability `answer_rate` after a ring uniform in
`answer_ring_s`, ends busy/failed after `fail_after_s` with probability `fail_rate`, else rings
to `ring_timeout_s`. An answered caller waits in the queue for the longest-idle agent and is
abandoned when none comes within `abandon_after_s`. Talk is lognormal (`talk_mean_s`,
`talk_cv`), then `wrap_up_s` of wrap-up. The first `warm_up_s` are not measured, then
`measured_s` are. `staffing_changes` (agents taking calls from then on: log-ins, log-outs,
pauses; a busy agent leaves after its wrap-up) and `answer_rate_changes` script a harder day.

`World` is a discrete-event model with no clock but its own `now`: a driver `place()`s attempts
and moves it with `run_until(t)` / `next_event_s()`; it tells a listener each `Happening`
(answered, busy, no_answer, connected, abandoned, talk_ended, wrap_up_ended, agent_joined,
agent_left). `run_day` drives it with a pacer directly: a decision after every event and at
least once a simulated second. `simpbx.SimulatedPbx` puts the same world behind the daemon's
PBX port on the virtual-time loop (`originate(request)`, happenings as AMI events).

Randomness is `random.Random(seed)` only, split into one stream for the attempts and one for the
talks, so the same seed gives the same day, and every pacer meets the same customers (the n-th
attempt has the same fate, the n-th connected call the same talk time, whoever paces).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from dialer.calling.predictive import PacingSnapshot

__all__ = ["DayMetrics", "Happening", "World", "WorldConfig"]

HappeningKind = Literal[
    "answered",
    "busy",
    "no_answer",
    "connected",
    "abandoned",
    "talk_ended",
    "wrap_up_ended",
    "agent_joined",
    "agent_left",
]


@dataclass(frozen=True)
class WorldConfig:
    agents: int = 20
    answer_rate: float = 0.25
    answer_ring_s: tuple[float, float] = (5.0, 15.0)
    fail_rate: float = 0.15
    fail_after_s: float = 2.0
    ring_timeout_s: float = 25.0
    talk_mean_s: float = 180.0
    talk_cv: float = 0.6
    wrap_up_s: float = 10.0
    abandon_after_s: float = 2.0
    warm_up_s: float = 1800.0
    measured_s: float = 8 * 3600.0
    answer_rate_changes: tuple[tuple[float, float], ...] = ()
    """(at_s, answer_rate from then on)."""
    staffing_changes: tuple[tuple[float, int], ...] = ()
    """(at_s, agents taking calls from then on)."""


@dataclass(frozen=True)
class Happening:
    """Something the PBX would report. `attempt`: the attempt's number (from `place`) or -1;
    `agent`: the agent's index or -1; `duration_s`: ring time (answered, busy, no_answer), wait
    in queue (connected, abandoned), talk or wrap-up time. An agent `agent_left` stops taking
    calls at once (a busy one leaves after its wrap-up); `agent_joined` takes calls again."""

    kind: HappeningKind
    at_s: float
    attempt: int
    agent: int = -1
    duration_s: float = 0.0


@dataclass(frozen=True)
class DayMetrics:
    """The measured part of a day (after warm-up). Attempts count by when they were placed."""

    occupancy: float
    """(talk + wrap-up) / logged-in agent time."""
    abandon_rate: float
    """abandoned / answered."""
    answer_rate: float
    calls: int
    answered: int
    abandoned: int
    agent_idle_s_mean: float
    """Mean idle gap of an agent before a call."""
    contacts_finished: int
    """Talks that ended."""
    logged_in_s: float

    @property
    def calls_per_agent_hour(self) -> float:
        return self.calls / (self.logged_in_s / 3600.0) if self.logged_in_s else 0.0


_RING_END, _WAIT_END, _TALK_END, _WRAP_END, _STAFFING, _ANSWER_RATE = range(6)
_OFF, _IDLE, _TALKING, _WRAPPING = range(4)


class World:
    """The call centre's state and its pending events (module docstring)."""

    def __init__(
        self,
        config: WorldConfig,
        *,
        seed: int,
        listener: Callable[[Happening], None] | None = None,
    ) -> None:
        self.config = config
        self.now = 0.0
        self._listener = listener
        root = random.Random(seed)
        self._attempt_rng = random.Random(root.getrandbits(64))
        self._talk_rng = random.Random(root.getrandbits(64))
        sigma2 = math.log1p(config.talk_cv**2)
        self._talk_mu = math.log(config.talk_mean_s) - sigma2 / 2
        self._talk_sigma = math.sqrt(sigma2)
        self._answer_rate = config.answer_rate
        self._events: list[tuple[float, int, int, int]] = []
        self._sequence = 0
        self._attempts = 0
        self.ringing: dict[int, float] = {}
        """Attempt -> placed at."""
        self.waiting: dict[int, float] = {}
        """Attempt -> answered at, oldest first."""
        self._placed_at: dict[int, float] = {}
        self._state = [_OFF] * config.agents
        self._since = [0.0] * config.agents
        self._call_of = [-1] * config.agents  # the attempt an agent talks or wraps up
        self._leaving = [False] * config.agents
        self._idle: deque[int] = deque()
        self._on_duty = 0
        self._measure = _Measure(config)
        for agent in range(config.agents):
            self._log_in(agent)
        for index, (at_s, _) in enumerate(config.staffing_changes):
            self._schedule(at_s, _STAFFING, index)
        for index, (at_s, _) in enumerate(config.answer_rate_changes):
            self._schedule(at_s, _ANSWER_RATE, index)

    # ----------------------------------------------------------------------------- driving

    def place(self) -> int:
        """Start one attempt now; returns its number."""
        attempt = self._attempts
        self._attempts += 1
        chance, ring = self._attempt_rng.random(), self._attempt_rng.random()
        config = self.config
        if chance < self._answer_rate:
            low, high = config.answer_ring_s
            fate, ring_s = 1, low + (high - low) * ring
        elif chance < self._answer_rate + config.fail_rate:
            fate, ring_s = 2, config.fail_after_s
        else:
            fate, ring_s = 3, config.ring_timeout_s
        self.ringing[attempt] = self.now
        self._placed_at[attempt] = self.now
        self._schedule(self.now + ring_s, _RING_END, attempt * 4 + fate)
        self._measure.placed(self.now)
        return attempt

    def next_event_s(self) -> float:
        """When the next event happens (inf when none is pending)."""
        return self._events[0][0] if self._events else math.inf

    def run_until(self, t: float) -> None:
        """Play every event due by `t`, then stand at `t`."""
        while self._events and self._events[0][0] <= t:
            at_s, _, kind, subject = heapq.heappop(self._events)
            self.now = at_s
            self._handle(kind, subject)
        self.now = max(self.now, t)

    def snapshot(self) -> PacingSnapshot:
        """What a runner would know now (agents about to leave count nowhere)."""
        now = self.now
        talking, wrapping = [], []
        for agent, state in enumerate(self._state):
            if self._leaving[agent]:
                continue
            if state == _TALKING:
                talking.append(now - self._since[agent])
            elif state == _WRAPPING:
                wrapping.append(now - self._since[agent])
        return PacingSnapshot(
            agents_idle=len(self._idle),
            agents_wrapping=wrapping,
            agents_talking=talking,
            callers_waiting=len(self.waiting),
            ringing=[now - placed for placed in self.ringing.values()],
        )

    def agents_on_duty(self) -> list[int]:
        """The agents taking calls (or busy and not leaving)."""
        return [
            agent
            for agent, state in enumerate(self._state)
            if state != _OFF and not self._leaving[agent]
        ]

    def metrics(self) -> DayMetrics:
        """The measured window's figures (call after the day has run past it)."""
        return self._measure.result(self._state, self._since)

    # ----------------------------------------------------------------------------- events

    def _schedule(self, at_s: float, kind: int, subject: int) -> None:
        self._sequence += 1
        heapq.heappush(self._events, (at_s, self._sequence, kind, subject))

    def _tell(
        self, kind: HappeningKind, attempt: int, agent: int = -1, duration_s: float = 0.0
    ) -> None:
        if self._listener is not None:
            self._listener(Happening(kind, self.now, attempt, agent, duration_s))

    def _handle(self, kind: int, subject: int) -> None:
        if kind == _RING_END:
            self._ring_end(subject // 4, subject % 4)
        elif kind == _WAIT_END:
            if subject in self.waiting:
                del self.waiting[subject]
                self._measure.abandoned(self._placed_at.pop(subject))
                self._tell("abandoned", subject, duration_s=self.config.abandon_after_s)
        elif kind == _TALK_END:
            self._talk_end(subject)
        elif kind == _WRAP_END:
            self._wrap_end(subject)
        elif kind == _STAFFING:
            self._staff(self.config.staffing_changes[subject][1])
        else:
            self._answer_rate = self.config.answer_rate_changes[subject][1]

    def _ring_end(self, attempt: int, fate: int) -> None:
        placed = self.ringing.pop(attempt)
        ring_s = self.now - placed
        if fate != 1:
            self._placed_at.pop(attempt)
            self._tell("busy" if fate == 2 else "no_answer", attempt, duration_s=ring_s)
            return
        self._measure.answered(placed)
        self._tell("answered", attempt, duration_s=ring_s)
        self.waiting[attempt] = self.now
        if self._idle:
            self._connect(self._idle.popleft())
        else:
            self._schedule(self.now + self.config.abandon_after_s, _WAIT_END, attempt)

    def _connect(self, agent: int) -> None:
        attempt, answered_at = next(iter(self.waiting.items()))
        del self.waiting[attempt]
        self._placed_at.pop(attempt)
        self._measure.idle_gap(self.now, self.now - self._since[agent])
        self._state[agent] = _TALKING
        self._since[agent] = self.now
        self._call_of[agent] = attempt
        talk_s = self._talk_rng.lognormvariate(self._talk_mu, self._talk_sigma)
        self._schedule(self.now + talk_s, _TALK_END, agent)
        self._tell("connected", attempt, agent, self.now - answered_at)

    def _talk_end(self, agent: int) -> None:
        talk_s = self.now - self._since[agent]
        self._measure.busy(self._since[agent], self.now)
        self._state[agent] = _WRAPPING
        self._since[agent] = self.now
        self._schedule(self.now + self.config.wrap_up_s, _WRAP_END, agent)
        self._measure.talk_ended(self.now)
        self._tell("talk_ended", self._call_of[agent], agent, talk_s)

    def _wrap_end(self, agent: int) -> None:
        self._measure.busy(self._since[agent], self.now)
        self._tell("wrap_up_ended", self._call_of[agent], agent, self.now - self._since[agent])
        if self._leaving[agent]:
            self._leaving[agent] = False
            self._log_out(agent)
        else:
            self._become_idle(agent)

    def _become_idle(self, agent: int) -> None:
        self._state[agent] = _IDLE
        self._since[agent] = self.now
        if self.waiting:
            self._connect(agent)
        else:
            self._idle.append(agent)

    def _log_in(self, agent: int) -> None:
        self._on_duty += 1
        self._measure.logged_in(agent, self.now)
        self._tell("agent_joined", -1, agent)
        self._become_idle(agent)

    def _log_out(self, agent: int) -> None:
        self._on_duty -= 1
        self._state[agent] = _OFF
        self._measure.logged_out(agent, self.now)

    def _staff(self, wanted: int) -> None:
        wanted = max(0, min(wanted, self.config.agents))
        staying = self._on_duty - sum(self._leaving)
        for agent in range(self.config.agents):  # more agents: the leaving ones stay first
            if staying < wanted and self._leaving[agent]:
                self._leaving[agent] = False
                self._tell("agent_joined", -1, agent)
                staying += 1
        for agent in range(self.config.agents):
            if staying < wanted and self._state[agent] == _OFF:
                self._log_in(agent)
                staying += 1
        while staying > wanted and self._idle:  # fewer: idle ones go at once
            agent = self._idle.pop()
            self._log_out(agent)
            self._tell("agent_left", -1, agent)
            staying -= 1
        for agent in range(self.config.agents):  # then busy ones after their wrap-up
            if staying > wanted and self._state[agent] != _OFF and not self._leaving[agent]:
                self._leaving[agent] = True
                self._tell("agent_left", -1, agent)
                staying -= 1


class _Measure:
    """Counts for the measured window [warm_up_s, warm_up_s + measured_s)."""

    def __init__(self, config: WorldConfig) -> None:
        self.start = config.warm_up_s
        self.end = config.warm_up_s + config.measured_s
        self.calls = self.answered_calls = self.abandoned_calls = self.talks = 0
        self.busy_s = self.logged_in_s = 0.0
        self.idle_gaps_s = 0.0
        self.idle_gaps = 0
        self._on_since: dict[int, float] = {}

    def _in(self, at_s: float) -> bool:
        return self.start <= at_s < self.end

    def _overlap(self, begin: float, end: float) -> float:
        return max(0.0, min(end, self.end) - max(begin, self.start))

    def placed(self, at_s: float) -> None:
        self.calls += self._in(at_s)

    def answered(self, placed_at: float) -> None:
        self.answered_calls += self._in(placed_at)

    def abandoned(self, placed_at: float) -> None:
        self.abandoned_calls += self._in(placed_at)

    def talk_ended(self, at_s: float) -> None:
        self.talks += self._in(at_s)

    def idle_gap(self, at_s: float, gap_s: float) -> None:
        if self._in(at_s):
            self.idle_gaps += 1
            self.idle_gaps_s += gap_s

    def busy(self, begin: float, end: float) -> None:
        self.busy_s += self._overlap(begin, end)

    def logged_in(self, agent: int, at_s: float) -> None:
        self._on_since[agent] = at_s

    def logged_out(self, agent: int, at_s: float) -> None:
        self.logged_in_s += self._overlap(self._on_since.pop(agent), at_s)

    def result(self, states: list[int], since: list[float]) -> DayMetrics:
        busy_s = self.busy_s + sum(
            self._overlap(since[agent], math.inf)
            for agent, state in enumerate(states)
            if state in (_TALKING, _WRAPPING)
        )
        logged_in_s = self.logged_in_s + sum(
            self._overlap(on_since, math.inf) for on_since in self._on_since.values()
        )
        return DayMetrics(
            occupancy=busy_s / logged_in_s if logged_in_s else 0.0,
            abandon_rate=self.abandoned_calls / self.answered_calls if self.answered_calls else 0.0,
            answer_rate=self.answered_calls / self.calls if self.calls else 0.0,
            calls=self.calls,
            answered=self.answered_calls,
            abandoned=self.abandoned_calls,
            agent_idle_s_mean=self.idle_gaps_s / self.idle_gaps if self.idle_gaps else math.nan,
            contacts_finished=self.talks,
            logged_in_s=logged_in_s,
        )
