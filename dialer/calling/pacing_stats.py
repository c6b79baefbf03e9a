"""What the predictive pacer learns, and the one probability it needs: pure, standard library only.

- `Durations`: the last `window` samples of a duration (talk, wrap-up) in fixed-width bins, with
  the chance that something already `elapsed_s` long is over within `within_s` more.
- `RingTimes`: the last `window` attempts, answered or not, by how long they rang: the answer
  rate, the ring-time quantiles of answered calls, and the chance that a call ringing for `r`
  seconds is answered within `s` more. It also watches the last `recent` attempts, and scales the
  answer chances up when those answer clearly more often than the window (a rise in the answer
  rate is the dangerous change: it makes the pacer over-dial; a fall only makes it cautious).
- `add_done_chances` / `add_answer_chances`: the same chances summed over many agents or calls
  at once, as the means and variances of sums of Bernoullis (the pacer's hot loop).
- `translated_poisson(mean, variance)`: such a sum as a shift plus a Poisson.
- `poisson_difference_at_least(m, b, a)`: P(B - A >= m) for independent Poisson B and A.
- `AbandonGuard`: abandoned / answered over a rule window; says when the cap is reached, so the
  runner falls back to progressive pacing until the rate is back under it.

No clock of its own: times are passed in (`at_s`, seconds on the runner's monotonic clock).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from itertools import accumulate

__all__ = [
    "Durations",
    "RingTimes",
    "poisson_difference_at_least",
    "translated_poisson",
]


class Durations:
    """The last `window` samples of one duration, in bins of `bin_s` up to `max_s` (longer ones
    count in the last bin)."""

    def __init__(self, *, bin_s: float, max_s: float, window: int) -> None:
        if bin_s <= 0 or max_s <= bin_s or window < 1:
            raise ValueError("need bin_s > 0, max_s > bin_s and window >= 1")
        self.bin_s = bin_s
        self.last_bin = math.ceil(max_s / bin_s)
        self._counts = [0] * (self.last_bin + 1)
        self._recent: deque[tuple[int, float]] = deque()
        self._window = window
        self._sum_s = 0.0
        self._cumulative: list[int] = []
        self._stale = 1  # samples added since `_cumulative` was built
        self.seen = 0
        """Samples ever added (the window holds at most `window` of them)."""

    def add(self, value_s: float) -> None:
        value_s = max(0.0, value_s)
        index = min(int(value_s / self.bin_s), self.last_bin)
        self._counts[index] += 1
        self._recent.append((index, value_s))
        self._sum_s += value_s
        self.seen += 1
        if len(self._recent) > self._window:
            old_index, old_value = self._recent.popleft()
            self._counts[old_index] -= 1
            self._sum_s -= old_value
        self._stale += 1

    @property
    def count(self) -> int:
        return len(self._recent)

    @property
    def mean_s(self) -> float:
        return self._sum_s / len(self._recent) if self._recent else math.nan

    def cumulative(self) -> list[int]:
        """`cumulative()[i]`: samples in bins 0..i (shorter than (i + 1) * bin_s).

        Rebuilt once 2% of the window is new (at once while it is small), so it may lag the
        last few samples: `cumulative()[last_bin]` is the count it holds.
        """
        return self.cumulative_padded(0)

    def cumulative_padded(self, extra: int) -> list[int]:
        """`cumulative()` followed by at least `extra` copies of its last count (so an index up
        to `last_bin + extra` needs no clamping)."""
        cached = self._cumulative
        if self._stale > len(self._recent) // 50 or len(cached) < self.last_bin + 1 + extra:
            cumulative = list(accumulate(self._counts))
            cached = cumulative + [cumulative[-1]] * max(extra, 64)
            self._cumulative = cached
            self._stale = 0
        return cached

    def done_within(self, elapsed_s: float, within_s: float, *, prior: float = 1.0) -> float:
        """P(over within `within_s` | lasted `elapsed_s`): the window's survival, pulled towards
        an exponential of the same mean by `prior` pseudo-samples (so a call longer than any seen
        still ends some day)."""
        if within_s <= 0 or not self._recent:
            return 0.0
        cumulative = self.cumulative()
        last = self.last_bin
        start = min(int(elapsed_s / self.bin_s), last)
        end = min(max(start, start + math.floor(within_s / self.bin_s) - 1), last)
        base = cumulative[start]
        prior_done = prior * -math.expm1(-within_s / self.mean_s) if self.mean_s > 0 else prior
        return (cumulative[end] - base + prior_done) / (cumulative[last] - base + prior)

    def add_done_chances(
        self,
        elapsed: Sequence[float],
        within: Sequence[float],
        means: list[float],
        variances: list[float],
    ) -> None:
        """For each span `within[j]`, add to `means[j]` and `variances[j]` the Bernoullis "over
        within `within[j]` more, having lasted e", one per e in `elapsed` (as `done_within`, with
        `prior=1`, fast: this runs per agent per decision)."""
        if not elapsed:
            return
        if not self.count:  # nothing learnt (no wrap-up seen): over at once
            for j, span in enumerate(within):
                if span > 0:
                    means[j] += len(elapsed)
            return
        per_s = 1.0 / self.bin_s
        # Bins wholly within the span (a bin straddling its end does not count as over in time):
        # a fixed wrap-up of exactly 10 s must not look over at 9.9 s.
        steps = [math.floor(span * per_s) - 1 if span > 0 else -1 for span in within]
        cumulative = self.cumulative_padded(max(steps) + 1)
        last = self.last_bin
        count = cumulative[last]
        mean_s = self.mean_s if self.mean_s > 0 else 1.0
        spans = [
            (j, step, -math.expm1(-within[j] / mean_s)) for j, step in enumerate(steps) if step >= 0
        ]
        for lasted in elapsed:
            start = int(lasted * per_s)
            if start > last:
                start = last
            elif start < 0:  # a clock that went back a little
                start = 0
            base = cumulative[start]
            inverse = 1.0 / (count - base + 1.0)
            for j, step, prior_done in spans:
                p = (cumulative[start + step] - base + prior_done) * inverse
                means[j] += p
                variances[j] += p * (1.0 - p)


class RingTimes:
    """The last `window` attempts by ring time (to the answer, or to the end if not answered)."""

    def __init__(
        self, *, bin_s: float = 0.1, max_s: float = 60.0, window: int = 1000, recent: int = 150
    ) -> None:
        if bin_s <= 0 or max_s <= bin_s or window < 1 or recent < 1:
            raise ValueError("need bin_s > 0, max_s > bin_s, window >= 1 and recent >= 1")
        self.bin_s = bin_s
        self.last_bin = math.ceil(max_s / bin_s)
        self._answered = [0] * (self.last_bin + 1)
        self._ended = [0] * (self.last_bin + 1)
        self._window: deque[tuple[bool, int, float]] = deque()
        self._window_size = window
        self._recent: deque[bool] = deque()
        self._recent_size = recent
        self._answered_in_window = 0
        self._answered_in_recent = 0
        self._answered_ring_sum_s = 0.0
        self._unanswered_ring_sum_s = 0.0
        self._cumulative: tuple[list[int], list[int]] = ([], [])
        self._stale = 1  # attempts added since `_cumulative` was built
        self._quantiles: dict[tuple[float, ...], list[float]] = {}
        self.seen = 0
        """Attempts ever added."""

    def add(self, *, answered: bool, ring_s: float) -> None:
        ring_s = max(0.0, ring_s)
        index = min(int(ring_s / self.bin_s), self.last_bin)
        self._shift(answered, index, ring_s, +1)
        self._window.append((answered, index, ring_s))
        if len(self._window) > self._window_size:
            self._shift(*self._window.popleft(), -1)
        self._recent.append(answered)
        self._answered_in_recent += answered
        if len(self._recent) > self._recent_size:
            self._answered_in_recent -= self._recent.popleft()
        self.seen += 1
        self._stale += 1

    def _shift(self, answered: bool, index: int, ring_s: float, sign: int) -> None:
        self._ended[index] += sign
        if answered:
            self._answered[index] += sign
            self._answered_in_window += sign
            self._answered_ring_sum_s += sign * ring_s
        else:
            self._unanswered_ring_sum_s += sign * ring_s

    @property
    def attempts(self) -> int:
        return len(self._window)

    @property
    def answered(self) -> int:
        return self._answered_in_window

    @property
    def answer_rate(self) -> float:
        return self._answered_in_window / len(self._window) if self._window else math.nan

    @property
    def answered_ring_mean_s(self) -> float:
        answered = self._answered_in_window
        return self._answered_ring_sum_s / answered if answered else math.nan

    @property
    def unanswered_ring_mean_s(self) -> float:
        unanswered = len(self._window) - self._answered_in_window
        return self._unanswered_ring_sum_s / unanswered if unanswered else math.nan

    def answer_scale(self) -> float:
        """>= 1: how much more often the last `recent` attempts answered than the window, when
        clearly more (the recent rate less two standard errors); else 1."""
        if not self._window or not self._answered_in_window or not self._recent:
            return 1.0
        n = len(self._recent)
        recent = self._answered_in_recent / n
        lower = recent - 2.0 * math.sqrt(max(recent * (1.0 - recent), 1.0 / n) / n)
        return max(1.0, lower / self.answer_rate)

    def cumulative(self) -> tuple[list[int], list[int]]:
        """(answered, ended) cumulative counts by ring-time bin. Rebuilt once 2% of the window
        is new (at once while it is small): `ended[last_bin]` is the attempts it holds."""
        return self.cumulative_padded(0)

    def cumulative_padded(self, extra: int) -> tuple[list[int], list[int]]:
        """`cumulative()`, each followed by at least `extra` copies of its last count."""
        cached = self._cumulative
        if self._stale > len(self._window) // 50 or len(cached[0]) < self.last_bin + 1 + extra:
            pad = max(extra, 64)
            answered = list(accumulate(self._answered))
            ended = list(accumulate(self._ended))
            cached = (answered + [answered[-1]] * pad, ended + [ended[-1]] * pad)
            self._cumulative = cached
            self._stale = 0
            self._quantiles.clear()
        return cached

    def answered_ring_quantiles(self, quantiles: Sequence[float]) -> list[float]:
        """Ring times (s, mid-bin) of answered calls at `quantiles` (each in (0, 1)), in the
        order given; cached until the next `add`."""
        answered = self.cumulative()[0]
        key = tuple(quantiles)
        cached = self._quantiles.get(key)
        if cached is None:
            last = self.last_bin
            total = answered[last]
            cached = [
                (bisect_left(answered, q * total, 0, last) + 0.5) * self.bin_s
                if total
                else math.nan
                for q in quantiles
            ]
            self._quantiles[key] = cached
        return cached

    def answer_within(self, rung_s: float, within_s: float) -> float:
        """P(answered within `within_s` more | still ringing after `rung_s`), unscaled."""
        answered, ended = self.cumulative()
        last = self.last_bin
        start = min(int(rung_s / self.bin_s), last)
        end = min(max(start, start + math.floor(within_s / self.bin_s) - 1), last)
        ringing = ended[last] - ended[start]
        return (answered[end] - answered[start]) / ringing if ringing > 0 else 0.0

    def add_answer_chances(
        self,
        ringing: Sequence[float],
        spans: Sequence[float],
        scale: float,
        means: list[float],
        variances: list[float],
    ) -> None:
        """For each span `spans[j]`, add to `means[j]` and `variances[j]` the Bernoullis "answered
        within `spans[j]` more, having rung r", one per r in `ringing`, each chance x `scale` (as
        `answer_within`, fast: this runs per ringing call per decision)."""
        if not ringing:
            return
        per_s = 1.0 / self.bin_s
        steps = [(j, max(0, math.floor(span * per_s) - 1)) for j, span in enumerate(spans)]
        answered, ended = self.cumulative_padded(max(step for _, step in steps) + 1)
        last = self.last_bin
        attempts = ended[last]
        for rung in ringing:
            start = int(rung * per_s)
            if start > last:
                start = last
            elif start < 0:
                start = 0
            still_ringing = attempts - ended[start]
            if still_ringing <= 0:
                continue
            base = answered[start]
            factor = scale / still_ringing
            for j, step in steps:
                p = (answered[start + step] - base) * factor
                if p > 0.0:
                    if p > 1.0:
                        p = 1.0
                    means[j] += p
                    variances[j] += p * (1.0 - p)


def translated_poisson(mean: float, variance: float) -> tuple[int, float]:
    """(shift, rate): a sum of Bernoullis with this mean and variance ~ shift + Poisson(rate).

    The shift is mean - variance rounded (not floored, as Roellin does, which may add up to 1 to
    the variance): two agents all but sure to be free must not look like 1 + Poisson(0.98). The
    rate is then at most 1/2 off the variance, and is kept >= 0 at a small cost to the mean.
    """
    shift = max(0, math.floor(mean - variance + 0.5))
    return shift, max(0.0, mean - shift)


def poisson_difference_at_least(m: int, b: float, a: float) -> float:
    """P(B - A >= m), B ~ Poisson(b) and A ~ Poisson(a) independent (a Skellam tail).

    Sums P(A = j) P(B >= m + j) until the terms vanish (below 1e-12): a few dozen steps for the
    means a pacer sees. Very large means (a + b > 600) use the normal approximation.
    """
    if m <= 0:
        return 1.0 - poisson_difference_at_least(1 - m, a, b)
    if b <= 0.0:
        return 0.0
    if m > b and -b + m * (1.0 + math.log(b / m)) < -27.6:  # Chernoff: P(B >= m) < 1e-12
        return 0.0
    if a + b > 600.0:
        z = (m - 0.5 - (b - a)) / math.sqrt(a + b)
        return 0.5 * math.erfc(z / math.sqrt(2.0))
    pmf_b = math.exp(-b)
    below_b = 0.0  # P(B <= n - 1), n running from 0 up to m
    for n in range(m):
        below_b += pmf_b
        pmf_b *= b / (n + 1)
    # now pmf_b = P(B = m), below_b = P(B <= m - 1)
    pmf_a = math.exp(-a)
    seen_a = 0.0
    total = 0.0
    n = m
    j = 0
    while True:
        at_least = 1.0 - below_b  # P(B >= m + j)
        if at_least < 1e-12:
            break
        total += pmf_a * at_least
        seen_a += pmf_a
        if seen_a > 1.0 - 1e-12:
            break
        below_b += pmf_b
        n += 1
        pmf_b *= b / n
        j += 1
        pmf_a *= a / j
    return min(1.0, max(0.0, total))
