"""The `notifications` section: providers, retries, the dispatcher, quiet hours, stages."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from pydantic import (
    Field,
    model_validator,
)

from dialer.config.base import (
    Section,
)
from dialer.config.providers import (
    TEMPLATE_ONLY_TYPES,
    Provider,
)
from dialer.config.values import (
    Count,
    Integer,
    MessageTemplate,
    OneLine,
    ParamTemplate,
    Seconds,
    Slug,
    TimeZoneName,
    empty_section,
    placeholders,
)
from dialer.config.yaml_file import (
    KeyPath,
    problem,
)


class NotificationRetry(Section):
    """Transient failures: a few quick tries in-process, then rescheduled through the store."""

    in_process_attempts: Count = 3
    """Tries within one dispatch."""
    in_process_max_s: Seconds = 30
    """Time bound of those tries."""
    backoff_initial_s: Seconds = 30
    """First rescheduling delay; it doubles up to backoff_max_s."""
    backoff_max_s: Seconds = 3600
    """Cap of the rescheduling delay."""
    max_age_s: Seconds = 86400
    """A message still unsent this long after it was queued is dead."""

    @model_validator(mode="after")
    def _check_order(self) -> NotificationRetry:
        if self.backoff_initial_s > self.backoff_max_s:
            raise problem((("backoff_initial_s",), "exceeds backoff_max_s"))
        return self


class DispatcherSettings(Section):
    """The loop that drains the outbox."""

    concurrency: Count = 10
    """Messages being sent at the same time, at most."""
    poll_interval_s: Seconds = 1
    """How often an idle dispatcher looks for due messages."""


class QuietHours(Section):
    """Non-urgent messages are held during these hours, in the customer's time zone."""

    start: time = time(21, 0)
    """HH:MM the quiet hours begin (may be later than end: they cross midnight)."""
    end: time = time(8, 0)
    """HH:MM they end."""
    timezone: TimeZoneName = "Asia/Shanghai"
    """Time zone of customers whose own is not known."""

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise problem((("end",), "equals start; write quiet_hours: null to have none"))
        return self


class ProviderStageTemplate(Section):
    """A stage's template approved at one provider, and how its variables are filled."""

    template_code: Annotated[OneLine, Field(min_length=1)]
    """The provider's id of the template: Aliyun's TemplateCode (SMS_...), Tencent's
    TemplateId."""
    template_params: dict[Annotated[OneLine, Field(min_length=1)], ParamTemplate] = Field(
        default_factory=dict
    )
    """Variable -> value, a str.format text over the stage placeholders, e.g.
    {order: "{order_id}"}; in the template's order (Tencent sends them by position)."""


class Stage(Section):
    """The SMS sent when an order reaches a stage, and the call that stage may start."""

    template: MessageTemplate
    """str.format text; placeholders: customer_name, order_id, stage, signature,
    tracking_number, courier, eta, amount, refund_amount, return_id, opt_out_hint."""
    urgent: bool = False
    """Sent also in quiet hours."""
    marketing: bool = False
    """Marketing-like: the template must carry {opt_out_hint}."""
    add_to_campaign: Slug | None = None
    """Campaign the customer is added to, with the order as context."""
    only_vip: bool = False
    """Add only VIP customers to the campaign (the SMS still goes to everyone)."""
    provider_templates: dict[Slug, ProviderStageTemplate] = Field(default_factory=dict)
    """Provider name -> its approved template for this stage: required for every aliyun or
    tencent provider in use (primary, fallback); the outbox and status page show `template`."""

    @model_validator(mode="after")
    def _check_flags(self) -> Stage:
        found: list[tuple[KeyPath, str]] = []
        if self.marketing and "opt_out_hint" not in placeholders(self.template):
            found.append((("template",), "a marketing stage must include {opt_out_hint}"))
        if self.only_vip and self.add_to_campaign is None:
            found.append((("only_vip",), "has no effect without add_to_campaign"))
        if found:
            raise problem(*found)
        return self


class Notifications(Section):
    """SMS at every order stage."""

    providers: dict[Slug, Provider] = Field(
        default_factory=lambda: {"outbox": {"type": "outbox"}}, validate_default=True
    )
    """Name -> provider: {type: outbox | twilio | http, ...}."""
    primary: Slug = "outbox"
    """Provider used first."""
    fallback: Slug | None = None
    """Provider used when the primary fails for a provider reason, never for a number reason."""
    retry: NotificationRetry = Field(default_factory=empty_section, validate_default=True)
    """Retries of transient failures."""
    dispatcher: DispatcherSettings = Field(default_factory=empty_section, validate_default=True)
    """The sending loop."""
    quiet_hours: QuietHours | None = Field(default_factory=empty_section, validate_default=True)
    """When non-urgent messages wait; null: never."""
    signature: str = ""
    """Sender signature for {signature}, e.g. 【好物优选】."""
    opt_out_hint: str = "回复TD退订"
    """Text of {opt_out_hint}."""
    stages: dict[Slug, Stage] = Field(default_factory=dict)
    """Stage -> message; a stage not listed sends nothing."""
    daily_limit_per_number: Count | None = None
    """Messages one number is sent per day, at most (the providers' own caps are per number
    and day); a message past it is held to the next day, never dropped. null: no limit."""
    daily_limit_urgent_reserve: Annotated[Integer, Field(ge=0)] = 0
    """Of daily_limit_per_number, how many only urgent stages may use."""
    daily_limit_timezone: TimeZoneName = "Asia/Shanghai"
    """Where the day of daily_limit_per_number begins (the providers count Beijing days)."""

    @model_validator(mode="after")
    def _check_providers(self) -> Notifications:
        found: list[tuple[KeyPath, str]] = []
        known = ", ".join(self.providers) or "none"
        if self.primary not in self.providers:
            found.append((("primary",), f"unknown provider {self.primary!r}; defined: {known}"))
        if self.fallback is not None and self.fallback not in self.providers:
            found.append((("fallback",), f"unknown provider {self.fallback!r}; defined: {known}"))
        elif self.fallback == self.primary:
            found.append((("fallback",), "must differ from primary"))
        if self.daily_limit_per_number is None and self.daily_limit_urgent_reserve:
            found.append((("daily_limit_urgent_reserve",), "needs daily_limit_per_number"))
        elif (
            self.daily_limit_per_number is not None
            and self.daily_limit_urgent_reserve >= self.daily_limit_per_number
        ):
            message = "must be less than daily_limit_per_number (non-urgent stages get the rest)"
            found.append((("daily_limit_urgent_reserve",), message))
        found.extend(self._template_problems())
        if found:
            raise problem(*found)
        return self

    def _template_problems(self) -> list[tuple[KeyPath, str]]:
        """Every stage has a template at each template-only provider in use; no stage names a
        provider that is not defined."""
        found: list[tuple[KeyPath, str]] = []
        in_use = [name for name in (self.primary, self.fallback) if name in self.providers]
        needing = [name for name in in_use if self.providers[name].type in TEMPLATE_ONLY_TYPES]
        for stage_name, stage in self.stages.items():
            for name in stage.provider_templates:
                if name not in self.providers:
                    where: KeyPath = ("stages", stage_name, "provider_templates", name)
                    found.append((where, f"unknown provider {name!r}"))
            for name in needing:
                if name not in stage.provider_templates:
                    kind = self.providers[name].type
                    key = "provider_templates" if stage.provider_templates else "template"
                    found.append(
                        (
                            ("stages", stage_name, key),
                            f"no template_code for provider {name!r}: {kind} sends only "
                            f"approved templates; add provider_templates.{name}",
                        )
                    )
        return found
