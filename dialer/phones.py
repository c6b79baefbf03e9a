"""Phone numbers: parsed with `phonenumbers`, stored in E.164, checked before use.

`normalize` turns what an order system or a CSV holds (`138 1234 5678`, `+86 138-1234-5678`)
into E.164 (`+8613812345678`), reading numbers without a country code as numbers of the
configured default region, and refuses what is not a valid number with a reason fit to show.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType


class InvalidNumber(ValueError):
    """The text is not a valid phone number; the message says why."""


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    region: str | None
    is_mobile: bool


_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def parse(raw: str, default_region: str) -> PhoneNumber:
    """Parse and validate `raw`; raise `InvalidNumber` with the reason."""
    text = raw.strip()
    if not text:
        raise InvalidNumber("empty phone number")
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        raise InvalidNumber(_PARSE_ERRORS.get(exc.error_type, "not a phone number")) from None
    # The type is UNKNOWN exactly when `is_valid_number` says no (both match the number against
    # its region's patterns); asking once spares the intake the second match.
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        raise InvalidNumber("not a valid number for its country")
    return PhoneNumber(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(number),
        is_mobile=kind in _MOBILE_TYPES,
    )


def normalize(raw: str, default_region: str) -> str:
    """E.164 form of `raw`, or `InvalidNumber`."""
    return parse(raw, default_region).e164
