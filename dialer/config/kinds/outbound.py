"""Proactive outbound with agents: answered calls go to an agent queue, paced progressive, power
or predictive, under an abandon rule."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    model_validator,
)

from dialer.config.base import Section
from dialer.config.campaigns import (
    MON_SAT,
    AnswerRoute,
    CampaignBase,
    Destination,
    PacingRule,
    QueueDestination,
    RetryRule,
    retry_rules,
    windows_on,
)
from dialer.config.values import (
    Count,
    Number,
    OneLine,
    Priority,
    RetryOutcome,
    Weekday,
    Window,
)
from dialer.config.yaml_file import (
    problem,
)

AbandonRate = Annotated[Number, Field(gt=0, le=0.1)]
"""An abandon rate (abandoned / answered): above 0, at most 0.1."""


def _window(value: str) -> str:
    found = re.fullmatch(r"([1-9][0-9]*)([hd])", value)
    if found is None:
        raise ValueError(f"{value!r} is not a window like 24h or 30d")
    hours = int(found.group(1)) * (24 if found.group(2) == "d" else 1)
    if hours > 90 * 24:
        raise ValueError(f"{value!r}: at most 90d")
    return value


class Pacing(Section):
    """How many calls the campaign places per agent."""

    mode: Literal["progressive", "power", "predictive"] = "progressive"
    """progressive (one call per free agent), power (`ratio` calls per free agent) or predictive
    (as many as keep the expected abandon rate under `max_abandon_rate`)."""
    ratio: Annotated[Number, Field(gt=1, le=5)] = 1.5
    """power: calls per free agent (above 1, at most 5)."""
    max_abandon_rate: AbandonRate = 0.03
    """predictive: the abandon rate (abandoned / answered) the pacer stays under, in (0, 0.1];
    it aims at 0.8 of it (a day's rate scatters around the aim)."""
    min_attempts: Count = 200
    """predictive: attempts seen before it predicts (progressive until then)."""
    min_talks: Count = 30
    """predictive: talks seen before it predicts (progressive until then)."""


class AbandonRule(Section):
    """The abandon rate the rule allows, measured over a sliding window; at the cap the campaign
    paces progressive by itself until the rate is back under it."""

    max_rate: AbandonRate = 0.03
    """Abandoned / answered over `window`, at most (in (0, 0.1]; US TSR: 0.03)."""
    window: Annotated[str, AfterValidator(_window)] = "30d"
    """The window the rate is measured over: NNh or NNd (30d as the US TSR, 24h as Ofcom)."""

    @property
    def window_s(self) -> float:
        hours = int(self.window[:-1]) * (24 if self.window.endswith("d") else 1)
        return hours * 3600.0


class IntroMessage(Section):
    """A short recording played to the customer before the agent queue."""

    sound: OneLine
    """Sound file name (without extension), as Playback takes it."""
    duration_s: Annotated[Number, Field(ge=0, le=60)] = 0
    """How long it plays: the pacer needs the agent that much later."""


class OutboundCampaign(CampaignBase):
    """Proactive outbound (re-purchase offers, surveys, reminders): an answered call goes to an
    agent of agent_queue, the calls paced per `pacing`, abandoned calls held under the rule."""

    kind: Literal["outbound"]
    """refusal_callback, vip or outbound."""
    agent_queue: OneLine
    """The agents' queue: answered calls wait there for an agent."""
    destination: Destination
    """Where an answered call goes: {queue: <agent_queue>, context: outreach-outbound}, the
    default and only choice."""
    dials_per_free_agent: ClassVar[bool] = True

    pacing: Pacing = Field(default_factory=Pacing)
    """{mode: progressive | power | predictive, ratio, max_abandon_rate, ...}."""
    intro: IntroMessage | None = None
    """A recording played before the queue ({sound, duration_s}); unset: straight to an agent."""
    abandon_after_s: Annotated[Number, Field(ge=1, le=30)] = 2
    """An answered call that reaches no agent within this is abandoned: it hears
    `abandon_message` and is hung up (retried by the `abandoned` rule)."""
    abandon_message: OneLine = "outreach-abandoned"
    """Sound file played to an abandoned call (who called, a callback number)."""
    abandon_rule: AbandonRule = Field(default_factory=AbandonRule)
    """{max_rate, window}: the abandon rate allowed over the window."""
    max_concurrent_calls: Count = 30
    """Calls up at the same time, at most (ringing, waiting and with an agent)."""
    calling_windows: dict[Weekday, tuple[Window, ...]] = windows_on(MON_SAT, "09:00-20:00")
    """Weekday (mon..sun) -> list of "HH:MM-HH:MM" in the contact's time zone; replaces the
    default as a whole (a day not listed has no calls)."""
    retry: dict[RetryOutcome, RetryRule] = retry_rules(
        "busy 1800 3, no_answer 3600 3, congestion 600 3, unavailable 7200 2, failed 3600 1,"
        " abandoned 600 3, unknown 600 2"
    )
    """Outcome -> {delay_s, max_attempts}; replaces the default as a whole (an outcome not
    listed is not retried). Outcomes: busy, no_answer, congestion, unavailable, failed, rejected
    (the customer rejected the call; not retried by default), abandoned, unknown."""
    max_total_attempts: Count = 4
    """At most this many attempts per contact, whatever their outcomes."""
    priority: Priority = 0
    """Priority of this campaign's contacts; higher is dialled first (-1,000,000 to 1,000,000)."""

    @classmethod
    def _prepare(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "destination" not in data:  # a stand-in when agent_queue is wrong, which is reported
            queue = data.get("agent_queue")
            data["destination"] = {
                "queue": queue if isinstance(queue, str) else "-",
                "context": "outreach-outbound",
            }
        return data

    @model_validator(mode="after")
    def _queue_is_agent_queue(self) -> OutboundCampaign:
        if not isinstance(self.destination, QueueDestination):
            raise problem((("destination",), "an outbound call goes to a queue: {queue: ...}"))
        if self.destination.queue != self.agent_queue:
            message = "must be agent_queue, whose agents take the answered calls"
            raise problem((("destination", "queue"), message))
        return self

    def answer_route(self) -> AnswerRoute:
        return self.destination.route()

    def pacing_rule(self) -> PacingRule:
        pacing, rule = self.pacing, self.abandon_rule
        return PacingRule(
            mode=pacing.mode,
            ratio=pacing.ratio,
            max_abandon_rate=min(pacing.max_abandon_rate, rule.max_rate),
            min_attempts=pacing.min_attempts,
            min_talks=pacing.min_talks,
            abandon_after_s=self.abandon_after_s,
            abandon_cap=rule.max_rate,
            abandon_window_s=rule.window_s,
            intro_s=self.intro.duration_s if self.intro is not None else 0.0,
        )

    def dialplan_variables(self) -> dict[str, str]:
        """ABANDON_AFTER (whole seconds the queue waits for an agent), ABANDON_MESSAGE, and
        INTRO (the recording before the queue; empty: none)."""
        return {
            "ABANDON_AFTER": str(max(1, round(self.abandon_after_s))),
            "ABANDON_MESSAGE": self.abandon_message,
            "INTRO": self.intro.sound if self.intro is not None else "",
        }
