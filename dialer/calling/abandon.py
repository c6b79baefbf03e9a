"""The abandon rule of a campaign: abandoned / answered over the rule's window, and whether the
cap is reached (then the campaign paces progressive until the rate is back under it)."""

from __future__ import annotations

from collections import deque

__all__ = ["AbandonGuard"]


class AbandonGuard:
    """Abandoned / answered over the last `window_s` (the rule window), against the cap.

    `tripped(at_s)` turns true when the rate reaches `max_abandon_rate` with at least
    `min_answered` answered calls in the window (a lone early abandon is not a rate), and stays
    true until the rate falls below `resume_ratio` x the cap. The runner paces progressive
    (which abandons nothing) while it is tripped, whatever the predictive pacer says.
    """

    def __init__(
        self,
        max_abandon_rate: float,
        *,
        window_s: float = 24 * 3600.0,
        min_answered: int = 20,
        resume_ratio: float = 0.9,
    ) -> None:
        if not 0.0 < max_abandon_rate < 1.0:
            raise ValueError(f"max_abandon_rate must be in (0, 1), got {max_abandon_rate}")
        self.max_abandon_rate = max_abandon_rate
        self.window_s = window_s
        self.min_answered = min_answered
        self.resume_ratio = resume_ratio
        self._calls: deque[tuple[float, bool]] = deque()
        self._abandoned = 0
        self._tripped = False

    def observe_answered(self, *, abandoned: bool, at_s: float) -> None:
        """An answered call reached an agent in time, or was abandoned, at `at_s`."""
        self._calls.append((at_s, abandoned))
        self._abandoned += abandoned

    def _expire(self, at_s: float) -> None:
        while self._calls and self._calls[0][0] <= at_s - self.window_s:
            self._abandoned -= self._calls.popleft()[1]

    def abandon_rate(self, at_s: float) -> float | None:
        """Abandoned / answered in the window ending at `at_s`; None when nothing was answered."""
        self._expire(at_s)
        return self._abandoned / len(self._calls) if self._calls else None

    def tripped(self, at_s: float) -> bool:
        rate = self.abandon_rate(at_s)
        if rate is None or len(self._calls) < self.min_answered:
            self._tripped = False
        elif self._tripped:
            self._tripped = rate >= self.resume_ratio * self.max_abandon_rate
        else:
            self._tripped = rate >= self.max_abandon_rate
        return self._tripped
