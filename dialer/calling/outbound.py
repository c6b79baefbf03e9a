"""Pacing of an outbound campaign's calls, and what its agents and calls measure.

The runner of a kind with a `pacing_rule()` (outbound) asks this for a permit before each call
(`take_permit`). Permits come from decisions (`decide`): on every event that can free capacity
(an attempt ended, an agent started wrap-up, a caller abandoned) and at least once a second
(`tick`), the pacer of the campaign's mode (`dialer.calling.predictive`: progressive, power or
predictive) is shown a `PacingSnapshot` and says how many new calls to start; permits not taken
by the next tick lapse (no contact was due). Permits given and not yet placed count as calls
ringing for 0 s in the next snapshot, so no call is decided twice.

The snapshot comes from the agents (`AgentLedger`: idle, in wrap-up and talking, with how long),
the queue's callers waiting for an agent, and the campaign's own calls ringing. The predictive
pacer learns from those same calls: ring time of answered and unanswered attempts (an intro
recording's length added to the answered ones), talk and wrap-up times, abandons.

The abandon rule (`dialer.calling.abandon.AbandonGuard`, over the rule's window): an answered
call that reaches no agent within `abandon_after_s` is abandoned; when abandoned / answered
reaches the cap the campaign paces progressive, says so (`campaign.pacing_fell_back`), and goes
back to its mode when the rate is under again (`campaign.pacing_resumed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from dialer.calling.abandon import AbandonGuard
from dialer.calling.agent_ledger import AgentLedger
from dialer.calling.calls import Call
from dialer.calling.predictive import (
    Pacer,
    PacingSnapshot,
    PowerPacer,
    PredictivePacer,
    ProgressivePacer,
    progressive_calls,
)
from dialer.config import PacingRule

__all__ = ["OutboundPacing", "pacer_for"]


def pacer_for(rule: PacingRule) -> Pacer:
    """The pacer of the rule's mode."""
    if rule.mode == "power":
        return PowerPacer(rule.ratio)
    if rule.mode == "predictive":
        return PredictivePacer(
            rule.max_abandon_rate,
            abandon_after_s=rule.abandon_after_s,
            min_attempts=rule.min_attempts,
            min_talks=rule.min_talks,
        )
    return ProgressivePacer()


@dataclass
class _Seen:
    answered: bool = False
    connected: bool = False


@dataclass
class CallCounts:
    """The campaign's calls since the runner started (the agent measures' other half)."""

    placed: int = 0
    ended: int = 0
    answered: int = 0
    connected: int = 0
    abandoned: int = 0
    seen: dict[str, _Seen] = field(default_factory=dict)


class OutboundPacing:
    """Permits to call, from the campaign's pacer under its abandon rule (module docstring)."""

    def __init__(
        self,
        rule: PacingRule,
        queue: str,
        *,
        clock: Callable[[], float],
        log: Any,
        pacer: Pacer | None = None,
    ) -> None:
        self.rule = rule
        self.pacer = pacer or pacer_for(rule)
        self.guard = AbandonGuard(rule.abandon_cap, window_s=rule.abandon_window_s)
        self.ledger = AgentLedger(
            queue,
            clock,
            on_talk=self.pacer.observe_talk,
            on_wrap_up=self.pacer.observe_wrap_up,
        )
        self.counts = CallCounts()
        self.fell_back = False
        self._clock = clock
        self._log = log
        self._permits = 0
        self._placing = 0
        self._granted = asyncio.Event()

    def reconfigure(self, rule: PacingRule) -> None:
        """A reloaded config: a new pacer when the pacing changed (it learns again), the abandon
        rule's cap and window in place (its calls are kept)."""
        if rule == self.rule:
            return
        if (rule.mode, rule.ratio, rule.max_abandon_rate, rule.abandon_after_s) != (
            self.rule.mode,
            self.rule.ratio,
            self.rule.max_abandon_rate,
            self.rule.abandon_after_s,
        ):
            self.pacer = pacer_for(rule)
            self.ledger.on_talk = self.pacer.observe_talk
            self.ledger.on_wrap_up = self.pacer.observe_wrap_up
        self.guard.max_abandon_rate = rule.abandon_cap
        self.guard.window_s = rule.abandon_window_s
        self.rule = rule

    # ---------------------------------------------------------------------------- permits

    async def take_permit(self) -> None:
        """Wait for a permit to place one call; pair with `placed()` once it is placed or not."""
        while self._permits <= 0:
            self._granted.clear()
            await self._granted.wait()
        self._permits -= 1
        self._placing += 1

    def placed(self, *, sent: bool) -> None:
        """The call a permit was taken for is placed (`sent`) or given up."""
        self._placing = max(0, self._placing - 1)
        self.counts.placed += sent

    def decide(self, calls: Iterable[Call], callers_waiting: int) -> int:
        """Ask the pacer now; returns the permits it added."""
        now = self._clock()
        snapshot = self.snapshot(calls, callers_waiting, now)
        if self.guard.tripped(now) or self.pacer.mode == "progressive":
            added = progressive_calls(snapshot)
        else:
            added = self.pacer.calls_to_place(snapshot)
        self._note_fallback(now)
        if added > 0:
            self._permits += added
            self._granted.set()
        return added

    def tick(self, calls: Iterable[Call], callers_waiting: int) -> int:
        """Once a second: permits not taken lapse, then a fresh decision."""
        self._permits = 0
        return self.decide(calls, callers_waiting)

    def snapshot(self, calls: Iterable[Call], callers_waiting: int, now: float) -> PacingSnapshot:
        ringing = [
            max(0.0, now - call.started_at.timestamp())
            for call in calls
            if call.observation.answered_at is None and not call.finished.is_set()
        ]
        ringing += [0.0] * (self._permits + self._placing)
        ledger = self.ledger
        return PacingSnapshot(
            agents_idle=len(ledger.in_state("idle", now)),
            agents_wrapping=ledger.in_state("wrapping", now),
            agents_talking=ledger.in_state("talking", now),
            callers_waiting=callers_waiting,
            ringing=ringing,
        )

    def _note_fallback(self, now: float) -> None:
        tripped = self.guard.tripped(now)
        if tripped == self.fell_back:
            return
        self.fell_back = tripped
        rate = self.guard.abandon_rate(now)
        self._log.warning(
            "campaign.pacing_fell_back" if tripped else "campaign.pacing_resumed",
            mode=self.pacer.mode,
            abandon_rate=round(rate or 0.0, 4),
            max_rate=self.rule.abandon_cap,
            window_s=self.rule.abandon_window_s,
        )

    # --------------------------------------------------------------------------- learning

    def call_changed(self, call: Call) -> bool:
        """Learn from a call's news; True when it may have freed capacity (decide again)."""
        observation = call.observation
        seen = self.counts.seen.setdefault(call.attempt_id, _Seen())
        started = call.started_at.timestamp()
        now = self._clock()
        freed = False
        if observation.answered_at is not None and not seen.answered:
            seen.answered = True
            self.counts.answered += 1
            ring_s = observation.answered_at - started + self.rule.intro_s
            self.pacer.observe_attempt(answered=True, ring_s=max(0.0, ring_s))
        if observation.agent_connected_at is not None and not seen.connected:
            seen.connected = True
            self.counts.connected += 1
            wait_s = observation.agent_connected_at - (observation.answered_at or started)
            self._answered(abandoned=wait_s > self.rule.abandon_after_s, now=now)
        if call.finished.is_set():
            del self.counts.seen[call.attempt_id]
            self.counts.ended += 1
            freed = True
            if seen.answered and not seen.connected:
                self._answered(abandoned=True, now=now)
            elif not seen.answered:
                ended = observation.ended_at if observation.ended_at is not None else now
                self.pacer.observe_attempt(answered=False, ring_s=max(0.0, ended - started))
        return freed

    def _answered(self, *, abandoned: bool, now: float) -> None:
        self.counts.abandoned += abandoned
        self.pacer.observe_answered(abandoned=abandoned)
        self.guard.observe_answered(abandoned=abandoned, at_s=now)

    # --------------------------------------------------------------------------- measures

    def measures(self) -> dict[str, Any]:
        """The agent measures and the pacing's state, for the API, the status page, /metrics."""
        now = self._clock()
        busy_s, idle_s = self.ledger.busy_and_idle_s(now)
        logged_in_h = (busy_s + idle_s) / 3600.0
        counts = self.counts
        ended_or_answered = counts.ended + sum(1 for seen in counts.seen.values() if seen.answered)
        rate = self.guard.abandon_rate(now)
        found: dict[str, Any] = {
            "mode": self.pacer.mode,
            "pacing_now": "progressive" if self.fell_back else self.pacer.mode,
            "fell_back": self.fell_back,
            "abandon_rule": {
                "max_rate": self.rule.abandon_cap,
                "window_s": self.rule.abandon_window_s,
                "abandon_rate": round(rate, 4) if rate is not None else None,
            },
            "agents_on_duty": self.ledger.on_duty,
            "occupancy": round(busy_s / (busy_s + idle_s), 4) if busy_s + idle_s else None,
            "agent_idle_s_mean": (
                round(self.ledger.idle_gap_s / self.ledger.idle_gaps, 1)
                if self.ledger.idle_gaps
                else None
            ),
            "answer_rate": (
                round(counts.answered / ended_or_answered, 4) if ended_or_answered else None
            ),
            "calls": counts.placed,
            "answered": counts.answered,
            "connected": counts.connected,
            "abandoned": counts.abandoned,
            "calls_per_agent_hour": round(counts.placed / logged_in_h, 1) if logged_in_h else None,
            "connects_per_agent_hour": (
                round(counts.connected / logged_in_h, 1) if logged_in_h else None
            ),
        }
        estimates = getattr(self.pacer, "estimates", None)
        if estimates is not None:
            found["predictive"] = {
                "warming_up": estimates.warming_up,
                "target_abandon_rate": estimates.target_abandon_rate,
                "threshold": round(estimates.threshold, 5),
                "bias": round(estimates.bias, 3),
                "answer_rate": round(estimates.answer_rate, 4),
                "talk_mean_s": round(estimates.talk_mean_s, 1),
            }
        return found


def callers_waiting(waiting: Collection[str], engaged: Collection[str]) -> int:
    """Callers in the queue not yet offered to an agent."""
    return sum(1 for caller in waiting if caller not in engaged)
