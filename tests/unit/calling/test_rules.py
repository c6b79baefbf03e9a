"""The runner's pure decisions: retry rules, refusals, Originate variables, dispositions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dialer.calling.originate import channel_for, originate_variables
from dialer.calling.rules import disposition_from, next_step, refusal_reason
from dialer.outcomes import Outcome


@dataclass(frozen=True)
class Rule:
    delay_s: float
    max_attempts: int


RETRY = {"busy": Rule(600, 3), "no_answer": Rule(1800, 1)}


def step(outcome: Outcome, with_outcome: int = 1, total: int = 1, disposition: str | None = None):  # type: ignore[no-untyped-def]
    return next_step(
        outcome,
        disposition=disposition,
        attempts_with_outcome=with_outcome,
        attempts_total=total,
        retry=RETRY,
        max_total_attempts=5,
    )


def test_an_answered_call_finishes_the_contact_as_done() -> None:
    assert step(Outcome.ANSWERED).state == "done"


def test_a_disposition_finishes_the_contact_whatever_the_outcome() -> None:
    assert step(Outcome.ABANDONED, disposition="price").state == "done"


def test_busy_is_retried_after_its_delay() -> None:
    found = step(Outcome.BUSY, with_outcome=2, total=2)
    assert (found.state, found.delay_s) == ("pending", 600)


def test_busy_fails_once_its_max_attempts_ended_busy() -> None:
    assert step(Outcome.BUSY, with_outcome=3, total=3).state == "failed"


def test_the_total_cap_fails_the_contact_even_when_the_rule_allows_more() -> None:
    assert step(Outcome.BUSY, with_outcome=1, total=5).state == "failed"


def test_an_outcome_without_a_rule_is_not_retried() -> None:
    found = step(Outcome.CONGESTION)
    assert (found.state, found.why) == ("failed", "no retry rule for congestion")


@pytest.mark.parametrize(
    ("region", "dnc", "opted", "expected"),
    [
        ("CN", False, False, None),
        ("US", False, False, "country_not_allowed"),
        (None, False, False, "country_not_allowed"),
        ("CN", True, False, "do_not_call"),
        ("CN", False, True, "opted_out"),
    ],
)
def test_refusal_reason(region: str | None, dnc: bool, opted: bool, expected: str | None) -> None:
    assert (
        refusal_reason(region=region, allowed_countries=("CN",), on_dnc_list=dnc, opted_out=opted)
        == expected
    )


def test_the_channel_template_gets_the_number() -> None:
    assert channel_for("PJSIP/{number}@carrier", "+8613800001001") == "PJSIP/+8613800001001@carrier"


def test_originate_variables_carry_the_order_id_without_commas() -> None:
    found = originate_variables(attempt_id="a1", campaign="c", context={"order_id": "A1,B2\r\n"})
    assert found == {"ATTEMPT_ID": "a1", "CAMPAIGN": "c", "ORDER_ID": "A1 B2"}


def test_originate_variables_without_an_order() -> None:
    assert originate_variables(attempt_id="a1", campaign="c", context={}) == {
        "ATTEMPT_ID": "a1",
        "CAMPAIGN": "c",
    }


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"Digit": "3"}, "price"),
        ({"Digit": "7"}, "digit_7"),
        ({"Digit": ""}, "no_input"),
        ({"Disposition": "redelivery_booked", "Digit": "3"}, "redelivery_booked"),
    ],
)
def test_disposition_from_the_user_event(event: dict[str, str], expected: str) -> None:
    assert disposition_from(event, {"3": "price"}) == expected
