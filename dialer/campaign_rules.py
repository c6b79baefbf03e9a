"""The campaign runner's decisions, as pure functions: no I/O, no clock of their own.

- `next_step`: after an attempt settles, is the contact called again (and when), or finished?
- `refusal_reason`: may this number be called at all (toll-fraud guard, DNC, opt-out)?
- `originate_request` (with `originate_variables`, `channel_for`): what the Originate carries.

The retry rule (DESIGN.md "Retries"): an attempt that was answered, or that brought a
disposition, finishes the contact as `done`. Otherwise the campaign's rule for the outcome
decides: retried after `delay_s` while fewer than `max_attempts` attempts ended with that outcome
and fewer than `max_total_attempts` attempts were made in all; an outcome without a rule, or a
rule used up, finishes the contact as `failed`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from dialer.ami_wire import OriginateRequest
from dialer.config import Campaign, QueueDestination
from dialer.outcomes import Outcome

ContactState = Literal["pending", "done", "failed"]

_UNSAFE_VALUE = re.compile(r"[,\r\n\0]")


class RetryRuleLike(Protocol):
    @property
    def delay_s(self) -> float: ...

    @property
    def max_attempts(self) -> int: ...


@dataclass(frozen=True)
class NextStep:
    """What becomes of the contact: `pending` again after `delay_s`, or finished."""

    state: ContactState
    delay_s: float | None = None
    why: str = ""


def next_step(
    outcome: Outcome,
    *,
    disposition: str | None,
    attempts_with_outcome: int,
    attempts_total: int,
    retry: Mapping[Any, RetryRuleLike],
    max_total_attempts: int,
) -> NextStep:
    """Decide after an attempt; the counts include the attempt just settled."""
    if outcome is Outcome.ANSWERED or disposition is not None:
        return NextStep("done", why="answered" if disposition is None else "disposition")
    rule = retry.get(outcome.value)
    if rule is None:
        return NextStep("failed", why=f"no retry rule for {outcome.value}")
    if attempts_with_outcome >= rule.max_attempts:
        return NextStep("failed", why=f"{attempts_with_outcome} attempts ended {outcome.value}")
    if attempts_total >= max_total_attempts:
        return NextStep("failed", why=f"{attempts_total} attempts in all")
    return NextStep("pending", delay_s=rule.delay_s, why=f"retry {outcome.value}")


RefusalReason = Literal["country_not_allowed", "do_not_call", "opted_out"]


def refusal_reason(
    *,
    region: str | None,
    allowed_countries: tuple[str, ...],
    on_dnc_list: bool,
    opted_out: bool,
) -> RefusalReason | None:
    """Why this number must not be called now, or None when it may be."""
    if region is None or region not in allowed_countries:
        return "country_not_allowed"
    if on_dnc_list:
        return "do_not_call"
    if opted_out:
        return "opted_out"
    return None


def channel_for(template: str, number: str) -> str:
    """The channel to dial: the campaign's template with {number} filled in."""
    return template.replace("{number}", number)


def safe_variable_value(value: object) -> str:
    """A channel variable value Asterisk keeps whole: commas and line breaks become spaces."""
    return _UNSAFE_VALUE.sub(" ", str(value)).strip()


def originate_variables(
    *, attempt_id: str, campaign: str, context: Mapping[str, object] | None
) -> dict[str, str]:
    """ATTEMPT_ID and CAMPAIGN always; ORDER_ID when the contact came from an order."""
    variables = {"ATTEMPT_ID": attempt_id, "CAMPAIGN": campaign}
    order_id = (context or {}).get("order_id")
    if order_id not in (None, ""):
        variables["ORDER_ID"] = safe_variable_value(order_id)
    return variables


def originate_request(
    campaign_name: str,
    campaign: Campaign,
    attempt_id: str,
    *,
    phone: str,
    contact_context: Mapping[str, object] | None,
) -> OriginateRequest:
    """The Originate for one attempt: ActionID = ChannelId = attempt id, the campaign's channel,
    destination and caller id, and the variables the dialplan reads."""
    destination = campaign.destination
    if isinstance(destination, QueueDestination):
        context, exten, priority = "outreach-vip", "s", 1
    else:
        context, exten, priority = destination.context, destination.exten, destination.priority
    variables = originate_variables(
        attempt_id=attempt_id, campaign=campaign_name, context=contact_context
    )
    if isinstance(destination, QueueDestination):
        variables["AGENT_QUEUE"] = destination.queue
    elif campaign.agent_queue:
        variables["AGENT_QUEUE"] = campaign.agent_queue
    return OriginateRequest(
        action_id=attempt_id,
        channel_id=attempt_id,
        channel=channel_for(campaign.channel, phone),
        context=context,
        exten=exten,
        priority=priority,
        caller_id=campaign.caller_id,
        ring_timeout_s=campaign.ring_timeout_s,
        variables=variables,
    )


def disposition_from(event: Mapping[str, str], dispositions: Mapping[str, str]) -> str:
    """The disposition an `OutreachDisposition` UserEvent carries.

    An agent's desktop sends `Disposition: <word>`; the IVR sends `Digit: <d>`, mapped by the
    campaign's `dispositions` (an unmapped digit is kept as `digit_<d>`, no input is
    `no_input`).
    """
    word = event.get("Disposition", "").strip()
    if word:
        return word
    digit = event.get("Digit", "").strip()
    if not digit:
        return "no_input"
    return dispositions.get(digit, f"digit_{digit}")
