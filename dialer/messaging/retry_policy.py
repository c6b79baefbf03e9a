"""When the store tries a message again, and what a dispatcher counted."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Counters", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """When the store tries a message again (after the notifier's own in-process tries)."""

    backoff_initial_s: float = 30
    backoff_max_s: float = 3600
    max_age_s: float = 86400

    def delay_s(self, attempts: int, retry_after_s: float | None) -> float:
        """Wait before the next try, after `attempts` tries ended transient."""
        backoff = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** max(0, attempts - 1))
        return max(backoff, retry_after_s or 0.0)


@dataclass
class Counters:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    settled: int = 0
