"""Refusal callback: call back a customer who refused a parcel; the answer goes to the IVR."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import (
    Field,
)

from dialer.config.campaigns import (
    MON_SAT,
    CampaignBase,
    Destination,
    DialplanDestination,
    RetryRule,
    retry_rules,
    windows_on,
)
from dialer.config.values import (
    Count,
    OneLine,
    Priority,
    RetryOutcome,
    Slug,
    Weekday,
    Window,
)


class RefusalCallbackCampaign(CampaignBase):
    """Calls back customers who refused a parcel; an answered call goes to the refusal IVR."""

    kind: Literal["refusal_callback"]
    """refusal_callback or vip."""
    destination: Destination = DialplanDestination(context="outreach-refusal-ivr", exten="s")
    """Where an answered call goes: {context, exten, priority} (the IVR) or {queue}."""
    agent_queue: OneLine | None = None
    """The queue the IVR transfers to when the customer asks for an agent."""
    max_concurrent_calls: Count = 5
    """Calls up at the same time, at most."""
    calling_windows: dict[Weekday, tuple[Window, ...]] = windows_on(MON_SAT, "09:00-21:00")
    """Weekday (mon..sun) -> list of "HH:MM-HH:MM" in the contact's time zone; replaces the
    default as a whole (a day not listed has no calls)."""
    retry: dict[RetryOutcome, RetryRule] = retry_rules(
        "busy 600 3, no_answer 1800 3, congestion 300 3, unavailable 3600 2, failed 3600 1,"
        " abandoned 120 3, unknown 300 2"
    )
    """Outcome -> {delay_s, max_attempts}; replaces the default as a whole (an outcome not
    listed is not retried). Outcomes: busy, no_answer, congestion, unavailable, failed, rejected
    (the customer rejected the call; not retried by default), abandoned, unknown."""
    max_total_attempts: Count = 3
    """At most this many attempts per contact, whatever their outcomes."""
    priority: Priority = 0
    """Priority of this campaign's contacts; higher is dialled first (-1,000,000 to 1,000,000)."""
    dispositions: dict[Annotated[str, Field(pattern=r"^[0-9*#]$")], Slug] = Field(
        default_factory=lambda: {
            "1": "wrong_item",
            "2": "not_at_home",
            "3": "price",
            "4": "changed_mind",
            "0": "agent",
        }
    )
    """IVR digit -> the reason recorded as the call's disposition."""

    @property
    def digit_dispositions(self) -> Mapping[str, str]:
        return self.dispositions
