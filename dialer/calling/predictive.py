"""How many new calls an agent-queue campaign starts now: progressive, power or predictive.

Pure: standard library only, no clock of its own, no I/O. The runner builds a `PacingSnapshot`
of its agents and calls (on every event that can free capacity: an attempt ended unanswered, an
agent started wrap-up, a caller abandoned; and at least once a second), asks
`calls_to_place(snapshot)`, starts that many attempts, and feeds what it learns as calls end
(`observe_attempt`, `observe_talk`, `observe_wrap_up`, `observe_answered`).

- `ProgressivePacer`: one call per free agent; calls up never outnumber free agents, so nothing
  is abandoned: free agents - callers waiting - calls ringing.
- `PowerPacer(ratio)`: `ratio` calls per free agent: floor(ratio x (idle - waiting)) - ringing.
  Busy agents never count in the multiplier (that over-dials hard when most agents talk).
- `PredictivePacer(max_abandon_rate)`: places as many calls as keep the expected abandon rate
  (abandoned / answered) at its internal target, `target_abandon_rate` (0.8 x the cap unless
  given: a day's rate scatters around the target, more in small teams), after the design of
  the shared predictive-pacing note. It decides per extra attempt: pi = P(this attempt, if
  answered, finds no agent free within `abandon_after_s`), from the learnt ring, talk and
  wrap-up times and the snapshot (`_Risk`); it places attempts one at a time while pi <= theta,
  and never fewer than progressive would. Theta is steered after each placement so that the
  mean pi of placed attempts equals target / c, c = (abandons + 3) / (expected abandons + 3)
  correcting the model's bias online. It paces progressive while warming up (fewer than
  `min_attempts` attempts or `min_talks` talks seen, or fewer than 10 answered in its window).

The runner also enforces the cap whatever the pacer says: `dialer.calling.abandon.AbandonGuard`
tells it when abandoned / answered over the rule window reaches the cap; it then paces
progressive until the rate is back under it (the pacer keeps learning meanwhile).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from dialer.calling.pacing_stats import (
    Durations,
    RingTimes,
    poisson_difference_at_least,
    translated_poisson,
)

__all__ = [
    "Pacer",
    "PacingEstimates",
    "PacingMode",
    "PacingSnapshot",
    "PowerPacer",
    "PredictivePacer",
    "ProgressivePacer",
    "progressive_calls",
]

PacingMode = Literal["progressive", "power", "predictive"]


@dataclass(frozen=True)
class PacingSnapshot:
    """The campaign's agents and calls now. Agents that are paused, logged out, or will pause or
    log out when their call ends count nowhere."""

    agents_idle: int
    """Logged in, not paused, not talking, not in wrap-up."""
    agents_wrapping: Sequence[float] = ()
    """Seconds into wrap-up, one per agent in wrap-up."""
    agents_talking: Sequence[float] = ()
    """Seconds into the talk, one per talking agent."""
    callers_waiting: int = 0
    """Answered calls not yet with an agent."""
    ringing: Sequence[float] = ()
    """Seconds each placed, not yet answered call has rung (0 for one decided, not yet sent)."""

    @property
    def agents_available(self) -> int:
        """Agents who take calls now or after their current one."""
        return self.agents_idle + len(self.agents_wrapping) + len(self.agents_talking)


def progressive_calls(snapshot: PacingSnapshot) -> int:
    """One call per free agent: free agents not spoken for by a waiting or ringing call."""
    return max(0, snapshot.agents_idle - snapshot.callers_waiting - len(snapshot.ringing))


class Pacer(Protocol):
    """What the runner asks of a pacer."""

    @property
    def mode(self) -> PacingMode: ...

    def calls_to_place(self, snapshot: PacingSnapshot) -> int: ...

    def observe_attempt(self, *, answered: bool, ring_s: float) -> None: ...

    def observe_talk(self, talk_s: float) -> None: ...

    def observe_wrap_up(self, wrap_up_s: float) -> None: ...

    def observe_answered(self, *, abandoned: bool) -> None: ...


class _LearnsNothing:
    """Observations are welcome and ignored."""

    def observe_attempt(self, *, answered: bool, ring_s: float) -> None:
        pass

    def observe_talk(self, talk_s: float) -> None:
        pass

    def observe_wrap_up(self, wrap_up_s: float) -> None:
        pass

    def observe_answered(self, *, abandoned: bool) -> None:
        pass


class ProgressivePacer(_LearnsNothing):
    """One call per free agent: never abandons, leaves agents idle while calls ring."""

    @property
    def mode(self) -> PacingMode:
        return "progressive"

    def calls_to_place(self, snapshot: PacingSnapshot) -> int:
        return progressive_calls(snapshot)


class PowerPacer(_LearnsNothing):
    """`ratio` calls per free agent (idle, less callers waiting); busy agents never count."""

    def __init__(self, ratio: float) -> None:
        if not math.isfinite(ratio) or ratio < 1.0:
            raise ValueError(f"ratio must be a number >= 1, got {ratio}")
        self.ratio = ratio

    @property
    def mode(self) -> PacingMode:
        return "power"

    def calls_to_place(self, snapshot: PacingSnapshot) -> int:
        free = snapshot.agents_idle - snapshot.callers_waiting
        if free <= 0:
            return 0
        return max(0, math.floor(self.ratio * free + 1e-9) - len(snapshot.ringing))


@dataclass(frozen=True)
class PacingEstimates:
    """What a predictive pacer believes now (for the API and the status page)."""

    warming_up: bool
    attempts_seen: int
    talks_seen: int
    answer_rate: float
    answered_ring_mean_s: float
    unanswered_ring_mean_s: float
    talk_mean_s: float
    wrap_up_mean_s: float
    threshold: float
    """Theta: the largest pi an extra attempt may carry."""
    bias: float
    """c: abandons seen / abandons the model expected (1 when it is right)."""
    target_abandon_rate: float
    answered: int
    abandoned: int


class PredictivePacer:
    """Predictive pacing under an abandon-rate cap (module docstring)."""

    def __init__(
        self,
        max_abandon_rate: float,
        *,
        abandon_after_s: float = 2.0,
        target_abandon_rate: float | None = None,
        min_attempts: int = 200,
        min_talks: int = 30,
        ring_strata: Sequence[float] = (0.0, 0.05, 0.15, 0.35, 0.65, 1.0),
        attempt_window: int = 1000,
        talk_window: int = 500,
        steering_rate: float = 0.01,
        bias_memory: int = 3000,
        bias_prior: float = 3.0,
    ) -> None:
        if not 0.0 < max_abandon_rate < 1.0:
            raise ValueError(f"max_abandon_rate must be in (0, 1), got {max_abandon_rate}")
        target = 0.8 * max_abandon_rate if target_abandon_rate is None else target_abandon_rate
        if not 0.0 < target <= max_abandon_rate:
            raise ValueError(
                f"target_abandon_rate must be in (0, {max_abandon_rate}], got {target}"
            )
        edges = list(ring_strata)
        if len(edges) < 2 or edges[0] != 0.0 or edges[-1] != 1.0 or edges != sorted(set(edges)):
            raise ValueError(
                "ring_strata must rise from 0 to 1, e.g. (0, 0.05, 0.15, 0.35, 0.65, 1)"
            )
        self.max_abandon_rate = max_abandon_rate
        self.target_abandon_rate = target
        self.abandon_after_s = abandon_after_s
        self.min_attempts = min_attempts
        self.min_talks = min_talks
        self.steering_rate = steering_rate
        self._quantiles = tuple((low + high) / 2 for low, high in itertools.pairwise(edges))
        self._weights = tuple(high - low for low, high in itertools.pairwise(edges))
        self._ring = RingTimes(window=attempt_window)
        self._talk = Durations(bin_s=1.0, max_s=2 * 3600.0, window=talk_window)
        self._wrap = Durations(bin_s=0.5, max_s=900.0, window=talk_window)
        self._threshold = 2.0 * target
        self._decay = 1.0 - 1.0 / bias_memory
        self._bias_prior = bias_prior
        self._abandons_seen = 0.0  # decayed, like the expected abandons next to it
        self._abandons_expected = 0.0
        self._answered = 0
        self._abandoned = 0

    @property
    def mode(self) -> PacingMode:
        return "predictive"

    @property
    def warming_up(self) -> bool:
        """True while it paces progressive, having seen too few calls to predict."""
        return (
            self._ring.seen < self.min_attempts
            or self._talk.seen < self.min_talks
            or self._ring.answered < 10
        )

    @property
    def bias(self) -> float:
        """c = (abandons + 3) / (expected abandons + 3), kept within [0.2, 5]: both counts fade
        over `bias_memory` answered calls; 3 is `bias_prior`, pseudo-abandons on each side."""
        prior = self._bias_prior
        seen, expected = self._abandons_seen + prior, self._abandons_expected + prior
        return min(5.0, max(0.2, seen / expected))

    @property
    def estimates(self) -> PacingEstimates:
        return PacingEstimates(
            warming_up=self.warming_up,
            attempts_seen=self._ring.seen,
            talks_seen=self._talk.seen,
            answer_rate=self._ring.answer_rate,
            answered_ring_mean_s=self._ring.answered_ring_mean_s,
            unanswered_ring_mean_s=self._ring.unanswered_ring_mean_s,
            talk_mean_s=self._talk.mean_s,
            wrap_up_mean_s=self._wrap.mean_s,
            threshold=self._threshold,
            bias=self.bias,
            target_abandon_rate=self.target_abandon_rate,
            answered=self._answered,
            abandoned=self._abandoned,
        )

    # ------------------------------------------------------------------------------ learning

    def observe_attempt(self, *, answered: bool, ring_s: float) -> None:
        """An attempt was answered after ringing `ring_s`, or ended unanswered after `ring_s`."""
        self._ring.add(answered=answered, ring_s=ring_s)

    def observe_talk(self, talk_s: float) -> None:
        """An agent's talk with a customer ended after `talk_s`."""
        self._talk.add(talk_s)

    def observe_wrap_up(self, wrap_up_s: float) -> None:
        """An agent's wrap-up ended after `wrap_up_s`."""
        self._wrap.add(wrap_up_s)

    def observe_answered(self, *, abandoned: bool) -> None:
        """An answered call reached an agent in time, or was abandoned."""
        self._answered += 1
        self._abandoned += abandoned
        self._abandons_seen = self._abandons_seen * self._decay + abandoned
        self._abandons_expected *= self._decay

    # ------------------------------------------------------------------------------ deciding

    def calls_to_place(self, snapshot: PacingSnapshot) -> int:
        """How many new attempts to start now (module docstring)."""
        floor = progressive_calls(snapshot)
        answered, _ = self._ring.cumulative()
        if self.warming_up or answered[self._ring.last_bin] == 0:  # (the latter: counts lag)
            return floor
        available = snapshot.agents_available
        if available == 0:
            return 0
        risk = _Risk(self, snapshot)
        answer_rate = min(1.0, self._ring.answer_rate * risk.scale)
        placed = 0
        batch_risk = 0.0  # summed pi of the attempts placed so far in this decision
        while placed < floor + available:
            # The attempts of one decision ring side by side: each may be answered before any
            # other, so with this one placed each carries the risk of having `placed` others
            # beside it, and this one adds what the whole batch's risk grows by.
            with_this = (placed + 1) * risk.of_attempt(placed)
            pi = max(0.0, with_this - batch_risk)
            if placed >= floor and pi > self._threshold:
                break
            self._steer(pi, answer_rate)
            batch_risk = with_this
            placed += 1
        return placed

    def _steer(self, pi: float, answer_rate: float) -> None:
        """One attempt placed with risk `pi`: nudge theta towards mean pi = target / c."""
        self._abandons_expected += pi * answer_rate
        aim = self.target_abandon_rate / self.bias
        step = max(-4.0, 1.0 - pi / aim)
        self._threshold = min(0.9, max(1e-4, self._threshold * math.exp(self.steering_rate * step)))


class _Risk:
    """pi of an attempt placed now, averaged over strata of the answered-ring-time distribution.

    For each stratum's ring time s, with horizon h = s + grace: our caller connects if
    idle - waiting + X - Y >= 1, X = agents freed by h (wrap-up, or talk then wrap-up, over
    given how long each has lasted), Y = calls answered before ours (ringing ones given how long
    each has rung, and the others placed in this decision). X and Y are sums of Bernoullis, each
    approximated by a translated Poisson (after Roellin 2007: a shift plus a Poisson matching the
    mean and the variance), so pi is a Poisson-difference tail.
    """

    def __init__(self, pacer: PredictivePacer, snapshot: PacingSnapshot) -> None:
        ring = pacer._ring
        self.scale = ring.answer_scale()
        quantiles = ring.answered_ring_quantiles(pacer._quantiles)
        self._weights = pacer._weights
        grace = pacer.abandon_after_s
        horizons = [s + grace for s in quantiles]
        count = len(quantiles)
        free_mean, free_variance = [0.0] * count, [0.0] * count
        ahead_mean, ahead_variance = [0.0] * count, [0.0] * count
        wrap_mean_s = pacer._wrap.mean_s if pacer._wrap.count else 0.0
        pacer._wrap.add_done_chances(snapshot.agents_wrapping, horizons, free_mean, free_variance)
        pacer._talk.add_done_chances(
            snapshot.agents_talking, [h - wrap_mean_s for h in horizons], free_mean, free_variance
        )
        ring.add_answer_chances(snapshot.ringing, quantiles, self.scale, ahead_mean, ahead_variance)
        answered_cumulative, ended_cumulative = ring.cumulative()
        last = ring.last_bin
        attempts = ended_cumulative[last]
        self._free_now = snapshot.agents_idle - snapshot.callers_waiting
        self._ahead_mean = ahead_mean
        self._ahead_variance = ahead_variance
        self._free = [translated_poisson(free_mean[j], free_variance[j]) for j in range(count)]
        self._q = [
            min(1.0, self.scale * answered_cumulative[min(int(s / ring.bin_s), last)] / attempts)
            for s in quantiles
        ]

    def of_attempt(self, others: int) -> float:
        """pi of an attempt with `others` attempts of this decision ringing beside it."""
        total = 0.0
        for weight, mean, variance, (free_shift, free_rate), q in zip(
            self._weights, self._ahead_mean, self._ahead_variance, self._free, self._q, strict=True
        ):
            ahead_shift, ahead_rate = translated_poisson(
                mean + others * q, variance + others * q * (1.0 - q)
            )
            # fails when Y - X >= free now: Poisson(ahead) - Poisson(free) >= the rest
            margin = self._free_now - ahead_shift + free_shift
            total += weight * poisson_difference_at_least(margin, ahead_rate, free_rate)
        return total
