"""Backing off while the PBX refuses calls.

An Originate the PBX answers with an error (`PbxRefused`: "Asterisk is shutting down", a
missing permission...) is not an attempt: the contact goes back to due without using one, and
the campaign places no call until `until`; each refusal in a row doubles the wait, from
`initial_s` up to `max_s`, and the next call the PBX takes clears it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["RefusalBackoff"]


@dataclass
class RefusalBackoff:
    initial_s: float = 1.0
    max_s: float = 60.0
    delay_s: float = 0.0
    until: datetime | None = None
    since: datetime | None = None
    message: str = ""

    def refused(self, now: datetime, message: str) -> float:
        """One more refusal: the wait (seconds) before the next call."""
        self.delay_s = self.initial_s if self.delay_s == 0 else min(self.max_s, self.delay_s * 2)
        self.until = now + timedelta(seconds=self.delay_s)
        self.since = self.since or now
        self.message = message
        return self.delay_s

    def cleared(self) -> None:
        """The PBX took a call: no more waiting."""
        self.delay_s, self.until, self.since, self.message = 0.0, None, None, ""

    def holding(self, now: datetime) -> bool:
        return self.until is not None and now < self.until

    def as_dict(self) -> dict[str, str] | None:
        """What the API shows: since when, why, and until when no call is placed."""
        if self.until is None or self.since is None:
            return None
        return {
            "since": self.since.isoformat(),
            "message": self.message,
            "retry_at": self.until.isoformat(),
        }
