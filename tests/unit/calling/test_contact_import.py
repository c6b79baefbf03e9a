"""Checking contact rows (CSV and API) before they are added."""

from __future__ import annotations

import pytest

from dialer.calling.contact_import import RowError, check_row, refused_row
from tests.fakes.campaign_pbx import settings_with

CAMPAIGN = settings_with(
    """
refusal:
  kind: refusal_callback
  channel: Local/{number}@customers
  priority: 3
"""
).campaigns["refusal"]


def check(**values: object):  # type: ignore[no-untyped-def]
    return check_row(values, CAMPAIGN, default_region="CN")


def test_a_national_number_is_normalised_with_the_default_region() -> None:
    contact = check(phone="138 0000 1001", name=" 王小明 ", order_id="A1")
    assert (contact.phone, contact.name, contact.context) == (
        "+8613800001001",
        "王小明",
        {"order_id": "A1"},
    )


def test_priority_defaults_to_the_campaigns() -> None:
    assert check(phone="13800001001").priority == 3
    assert check(phone="13800001001", priority="7").priority == 7


def test_a_priority_at_the_bounds_is_kept_as_text_or_number() -> None:
    assert check(phone="13800001001", priority=" -1000000 ").priority == -1000000
    assert check(phone="13800001001", priority=1000000).priority == 1000000


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"phone": ""}, "phone is missing"),
        ({"phone": "12"}, "phone: "),
        ({"phone": "+12025550123"}, "phone: US is not an allowed country (CN)"),
        ({"phone": "13800001001", "timezone": "Mars/Base"}, "timezone: unknown time zone"),
        ({"phone": "13800001001", "priority": "high"}, "priority: not an integer"),
        ({"phone": "13800001001", "priority": "١٢"}, "priority: not an integer"),
        ({"phone": "13800001001", "priority": True}, "priority: not an integer"),
        ({"phone": "13800001001", "priority": 10**20}, "priority: must be from -1000000 to"),
        ({"phone": "13800001001", "priority": "1" * 5000}, "priority: must be from -1000000 to"),
        ({"phone": "13800001001", "priority": "-1000001"}, "priority: must be from -1000000 to"),
        ({"phone": "13800001001", "name": "A\x1b[31mB"}, "name: must not hold control characters"),
        ({"phone": "13800001001", "name": "\ud800"}, "name: must not hold control characters"),
        ({"phone": "13800001001", "context": [1]}, "context: must be an object"),
    ],
)
def test_a_bad_row_says_why(values: dict[str, object], reason: str) -> None:
    with pytest.raises(RowError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check(**values)


def test_a_refused_row_echoes_its_number_masked_and_escaped() -> None:
    result = refused_row(7, {"phone": "1380000\r\n\x1b[31m1001"}, RowError("phone: not a number"))
    assert (result.row, result.status, result.reason) == (7, "refused", "phone: not a number")
    assert result.phone == "138000****1001"  # of the escaped text: 1380000\\r\\n\\x1b[31m1001
    assert all(char.isprintable() for char in str(result.as_dict()))
