"""What every campaign kind has: channel, limits, windows, retry rules, where answers go.

Each kind is one module in `dialer.config.kinds` (see there).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from dialer.config.base import (
    ConfigPath,
    Section,
)
from dialer.config.values import (
    MAX_SECONDS,
    Count,
    Number,
    OneLine,
    RegionCode,
    RetryOutcome,
    Slug,
    TimeRange,
    TimeZoneName,
    Weekday,
    channel_template,
    time_range,
)
from dialer.config.yaml_file import (
    KeyPath,
    problem,
)


@dataclass(frozen=True)
class AnswerRoute:
    """Where the Originate sends the answered call: a dialplan place, and the agent queue the
    call waits in straight away (`queue`, then an answer without an agent in time is
    `abandoned`), or None when the dialplan decides (an IVR first)."""

    context: str
    exten: str
    priority: int
    queue: str | None = None


@dataclass(frozen=True)
class PacingRule:
    """How a kind that paces its calls per agent (outbound) paces them
    (`dialer.calling.outbound`)."""

    mode: str
    """progressive, power or predictive."""
    ratio: float
    max_abandon_rate: float
    min_attempts: int
    min_talks: int
    abandon_after_s: float
    abandon_cap: float
    """The abandon rule's cap: at it, progressive until back under."""
    abandon_window_s: float
    intro_s: float
    """Seconds of recording before the queue: the agent is needed that much after the answer."""


class DialplanDestination(Section):
    """An answered call continues in the dialplan."""

    context: OneLine
    """Dialplan context."""
    exten: OneLine
    """Extension in that context."""
    priority: Count = 1
    """Priority to start at."""

    def route(self) -> AnswerRoute:
        return AnswerRoute(self.context, self.exten, self.priority)


class QueueDestination(Section):
    """An answered call waits in an Asterisk queue for an agent."""

    queue: OneLine
    """Queue name (queues.conf)."""
    context: OneLine = "outreach-vip"
    """The dialplan context (extension s) that puts the call in the queue named by the channel
    variable AGENT_QUEUE: [outreach-vip] of config/asterisk/extensions_outreach.conf."""

    def route(self) -> AnswerRoute:
        return AnswerRoute(self.context, "s", 1, queue=self.queue)


def _destination_kind(value: Any) -> str:
    queue = isinstance(value, QueueDestination) or (isinstance(value, dict) and "queue" in value)
    return "to_queue" if queue else "to_dialplan"


Destination = Annotated[
    Annotated[DialplanDestination, Tag("to_dialplan")]
    | Annotated[QueueDestination, Tag("to_queue")],
    Discriminator(_destination_kind),
]


class RetryRule(Section):
    """When a contact is called again after an attempt that ended with this outcome."""

    delay_s: Annotated[Number, Field(ge=0, le=MAX_SECONDS)]
    """Wait before the next attempt."""
    max_attempts: Count
    """At most this many attempts may end with this outcome; then the contact is finished."""


def retry_rules(rules: str) -> dict[RetryOutcome, RetryRule]:
    """Rules from "outcome delay_s max_attempts, ..."."""
    found: dict[Any, RetryRule] = {}
    for outcome, delay_s, max_attempts in (rule.split() for rule in rules.split(",")):
        found[outcome] = RetryRule(delay_s=float(delay_s), max_attempts=int(max_attempts))
    return found


def windows_on(days: str, window: str) -> dict[Weekday, tuple[TimeRange, ...]]:
    return {day: (time_range(window),) for day in days.split()}  # type: ignore[misc]


MON_FRI = "mon tue wed thu fri"
MON_SAT = "mon tue wed thu fri sat"


class CampaignBase(Section):
    """What every kind of campaign has; each kind declares the fields whose defaults differ."""

    kind: str
    """The campaign's kind (each kind declares its own name)."""

    enabled: bool = True
    """A disabled campaign places no call."""
    channel: Annotated[OneLine, AfterValidator(channel_template)]
    """Channel to dial; {number} is the E.164 number, e.g. +8613800001001
    (PJSIP/{number}@carrier in production, Local/{number}@customers in the lab)."""
    caller_id: OneLine | None = None
    """Caller ID, e.g. '"Outreach" <4000>'; unset: the trunk's default."""
    ring_timeout_s: Annotated[Number, Field(ge=15, le=MAX_SECONDS)] = 25
    """How long a call rings before it counts as no_answer (at least 15)."""
    max_calls_per_second: Annotated[Number, Field(gt=0)] = 2.0
    """Calls started per second, at most."""
    timezone: TimeZoneName = "Asia/Shanghai"
    """Contacts' time zone (IANA name) unless a contact has its own."""
    holidays: tuple[date, ...] = ()
    """Dates (YYYY-MM-DD) without calls."""
    allowed_countries: Annotated[tuple[RegionCode, ...], Field(min_length=1)] = ("CN",)
    """Region codes a number must belong to (a toll-fraud guard: others are refused)."""
    dnc_file: ConfigPath | None = None
    """Do-not-call list, one number per line."""
    pbx: Slug | None = None
    """Only workers whose `worker.pbx` is this run the campaign (several workers); unset: any
    worker, one at a time."""
    # Each kind declares these again, with its own default and description.
    destination: Destination
    agent_queue: OneLine | None = None

    dials_per_free_agent: ClassVar[bool] = False
    """A kind whose calls are placed only while an agent of `agent_queue` is free."""
    for_vip_customers: ClassVar[bool] = False
    """A kind for VIP customers only: an order stage adding to it must set `only_vip`."""

    @field_validator("calling_windows", check_fields=False)
    @classmethod
    def _windows_apart(cls, value: dict[str, tuple[TimeRange, ...]]) -> Any:
        found: list[tuple[KeyPath, str]] = []
        for day, windows in value.items():
            pairs = itertools.pairwise(sorted(windows))
            found += [((day,), f"{b} overlaps {a}") for a, b in pairs if b.start < a.end]
        if not any(value.values()):
            found.append(((), "no window at all: the campaign would never call"))
        if found:
            raise problem(*found)
        return {day: tuple(sorted(windows)) for day, windows in value.items()}

    @field_validator("dnc_file")
    @classmethod
    def _dnc_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not (value.is_file() and os.access(value, os.R_OK)):
            raise ValueError(f"cannot read the do-not-call list {value}")
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def answer_route(self) -> AnswerRoute:
        """Where an answered call of this campaign goes."""
        return self.destination.route()

    @property
    def digit_dispositions(self) -> Mapping[str, str]:
        """IVR digit -> disposition word (a kind with an IVR says which)."""
        return {}

    def pacing_rule(self) -> PacingRule | None:
        """The pacing of a kind that paces calls per agent (outbound); None: one call per free
        agent when `dials_per_free_agent`, else only the caps."""
        return None

    def dialplan_variables(self) -> dict[str, str]:
        """Channel variables the kind's dialplan reads, besides ATTEMPT_ID, CAMPAIGN..."""
        return {}

    @property
    def free_agent_queue(self) -> str | None:
        """The queue whose free agents gate dialling, or None when dialling is not gated."""
        return self.agent_queue if self.dials_per_free_agent else None
