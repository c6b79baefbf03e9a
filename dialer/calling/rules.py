"""The campaign runner's decisions, as pure functions: no I/O, no clock of their own.

- `next_step`: after an attempt settles, is the contact called again (and when), or finished?
- `refusal_reason`: may this number be called at all (toll-fraud guard, DNC, opt-out)?
- `disposition_from`: the disposition word an IVR or agent event carries.

The retry rule (DESIGN.md "Retries"): an attempt that was answered, or that brought a
disposition, finishes the contact as `done`. Otherwise the campaign's rule for the outcome
decides: retried after `delay_s` while fewer than `max_attempts` attempts ended with that outcome
and fewer than `max_total_attempts` attempts were made in all; an outcome without a rule, or a
rule used up, finishes the contact as `failed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from dialer.calling.ports import NextStep
from dialer.outcomes import Outcome


class RetryRuleLike(Protocol):
    @property
    def delay_s(self) -> float: ...

    @property
    def max_attempts(self) -> int: ...


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
