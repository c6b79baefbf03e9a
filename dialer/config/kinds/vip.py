"""VIP care: service calls to top customers, dialled only while a VIP agent is free."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import (
    ValidationInfo,
    model_validator,
)

from dialer.config.campaigns import (
    MON_FRI,
    CampaignBase,
    Destination,
    QueueDestination,
    RetryRule,
    retry_rules,
    windows_on,
)
from dialer.config.values import (
    Count,
    OneLine,
    Priority,
    RetryOutcome,
    Weekday,
    Window,
)
from dialer.config.yaml_file import (
    problem,
)


class VipCampaign(CampaignBase):
    """Service calls to VIP customers, dialled only while an agent of agent_queue is free."""

    kind: Literal["vip"]
    """refusal_callback or vip."""
    agent_queue: OneLine
    """The VIP agents' queue: a call is dialled only while one of its agents is free."""
    destination: Destination
    """Where an answered call goes: {queue: <agent_queue>}, the default and only choice."""
    dials_per_free_agent: ClassVar[bool] = True
    for_vip_customers: ClassVar[bool] = True

    max_concurrent_calls: Count = 2
    """Calls up at the same time, at most (and never more than free agents)."""
    calling_windows: dict[Weekday, tuple[Window, ...]] = windows_on(MON_FRI, "09:00-20:00")
    """Weekday (mon..sun) -> list of "HH:MM-HH:MM" in the contact's time zone; replaces the
    default as a whole (a day not listed has no calls)."""
    retry: dict[RetryOutcome, RetryRule] = retry_rules(
        "busy 1800 3, no_answer 3600 3, congestion 600 3, unavailable 7200 2, failed 3600 1,"
        " abandoned 300 3, unknown 600 2"
    )
    """Outcome -> {delay_s, max_attempts}; replaces the default as a whole (an outcome not
    listed is not retried). Outcomes: busy, no_answer, congestion, unavailable, failed, rejected
    (the customer rejected the call; not retried by default), abandoned, unknown."""
    max_total_attempts: Count = 5
    """At most this many attempts per contact, whatever their outcomes."""
    priority: Priority = 10
    """Priority of this campaign's contacts; higher is dialled first (-1,000,000 to 1,000,000)."""

    @classmethod
    def _prepare(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "destination" not in data:  # a stand-in when agent_queue is wrong, which is reported
            queue = data.get("agent_queue")
            data["destination"] = {"queue": queue if isinstance(queue, str) else "-"}
        return data

    @model_validator(mode="after")
    def _queue_is_agent_queue(self) -> VipCampaign:
        if not isinstance(self.destination, QueueDestination):
            raise problem((("destination",), "a vip call goes to a queue: {queue: ...}"))
        if self.destination.queue != self.agent_queue:
            message = "must be agent_queue, whose free agents gate dialling"
            raise problem((("destination", "queue"), message))
        return self
