"""Phone numbers are stored in E.164; what is not a number is refused with a reason."""

from __future__ import annotations

import phonenumbers
import pytest

from dialer.phones import InvalidNumber, normalize, parse


@pytest.mark.parametrize(
    "raw",
    ["13812345678", "138 1234 5678", "+86 138-1234-5678", "008613812345678", " +8613812345678 "],
)
def test_chinese_mobile_numbers_in_any_common_form_become_e164(raw: str) -> None:
    assert normalize(raw, "CN") == "+8613812345678"


def test_a_mobile_is_told_apart_from_a_landline() -> None:
    assert parse("13812345678", "CN").is_mobile
    assert not parse("010 6552 9988", "CN").is_mobile
    assert parse("+12125551234", "CN").region == "US"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("hello", "not a phone number"),
        ("1381234", "not a valid number"),
        ("+999 1234567", "unknown country code"),
    ],
)
def test_invalid_numbers_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason):
        normalize(raw, "CN")


@pytest.mark.parametrize(
    "raw",
    [
        "+8613812345678",  # CN mobile
        "+861012345678",  # CN fixed line
        "+86138123456",  # CN, too short for a mobile
        "+12025550123",  # +1 shared by many regions: US
        "+14165550123",  # ... CA
        "+12005550123",  # ... no region's pattern
        "+447624123456",  # +44 shared: Isle of Man mobile
        "+447700900123",  # ... GB mobile
        "+80012345678",  # non-geographic (international freephone)
        "+80012",  # ... invalid
        "+97250123456",  # IL mobile
        "+8610123",  # CN, a fixed line too short
    ],
)
def test_validity_is_the_libraries_own_verdict(raw: str) -> None:
    number = phonenumbers.parse(raw, "CN")
    try:
        parse(raw, "CN")
    except InvalidNumber:
        accepted = False
    else:
        accepted = True
    assert accepted == phonenumbers.is_valid_number(number)
