"""Call outcomes: one word per call result, shared by the core, the store, logs and metrics.

How a call's AMI events become one of these is `dialer.calling.classify`.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CALL_OUTCOMES", "Outcome"]


class Outcome(StrEnum):
    """One word per call result, as stored, logged, counted and used by the retry rules."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    UNAVAILABLE = "unavailable"
    FAILED = "failed"
    REJECTED = "rejected"
    ABANDONED = "abandoned"
    UNKNOWN = "unknown"


CALL_OUTCOMES = tuple(outcome.value for outcome in Outcome)
"""Every outcome word, as the store's check constraint lists them."""
