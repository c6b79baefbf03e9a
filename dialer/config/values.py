"""Value types of the config file: names, lines, regions, zones, URLs, windows, templates."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import time
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

TEMPLATE_PLACEHOLDERS = ("customer_name", "order_id", "stage", "signature", "tracking_number",
                         "courier", "eta", "amount", "refund_amount", "return_id",
                         "opt_out_hint")  # fmt: skip
GATEWAY_PLACEHOLDERS = ("phone", "body", "message_id", "order_id", "stage")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
RetryOutcome = Literal["busy", "no_answer", "congestion", "unavailable", "failed", "rejected",
                       "abandoned", "unknown"]  # fmt: skip

# ----------------------------------------------------------------------------- value types


def _slug(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise ValueError(f"{value!r} is not a valid name: use a-z, 0-9, '-' and '_'")
    return value


_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if "\r" in value or "\n" in value:
        raise ValueError("must be a single line")
    if found := _CONTROL_CHARACTER.search(value):
        shown = repr(found.group(0))[1:-1]
        raise ValueError(f"must not hold a control character (found {shown})")
    return value


def _not_a_boolean(value: Any) -> Any:
    """`port: yes` or `!!bool true` where a number is expected is a mistake, not 1."""
    if isinstance(value, bool):
        raise ValueError("should be a number, not a boolean")
    return value


def _region(value: str) -> str:
    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a region code phonenumbers knows (e.g. CN, HK, US)")
    return value.upper()


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai"
        ) from None
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _header_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", value):
        raise ValueError(f"{value!r} is not an HTTP header name")
    return value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def placeholders(template: str) -> list[str]:
    """The names of the {placeholders} of a str.format template, in order.

    ValueError for bad syntax, positional fields, attribute or index access, format specs and
    conversions: a template only names values, which are all strings.
    """
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} must be a plain name")
        if spec or conversion:
            raise ValueError(f"write {{{name}}} without a format spec or conversion")
        names.append(name)
    return names


def _template(allowed: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        try:
            unknown = [name for name in placeholders(value) if name not in allowed]
        except ValueError as exc:
            raise ValueError(f"invalid template: {exc}") from None
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}; allowed: {', '.join(allowed)}")
        return value

    return AfterValidator(check)


def channel_template(value: str) -> str:
    try:
        names = placeholders(value)
    except ValueError as exc:
        raise ValueError(f"invalid channel template: {exc}") from None
    if names != ["number"]:
        raise ValueError("must contain {number} once and no other placeholder")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
OneLine = Annotated[str, AfterValidator(_one_line)]
RegionCode = Annotated[str, AfterValidator(_region)]
TimeZoneName = Annotated[str, AfterValidator(_zone)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
HeaderName = Annotated[str, AfterValidator(_header_name)]
Integer = Annotated[int, BeforeValidator(_not_a_boolean)]
"""An integer; a boolean is refused (pydantic would read `true` as 1)."""
Number = Annotated[float, BeforeValidator(_not_a_boolean), Field(allow_inf_nan=False)]
"""A finite number; a boolean is refused."""
MAX_SECONDS = 10 * 365 * 86400
"""Ten years: a longer duration is a mistake, and overflows the date arithmetic."""
Seconds = Annotated[Number, Field(gt=0, le=MAX_SECONDS)]
Port = Annotated[Integer, Field(ge=1, le=65535)]
MAX_COUNT = 1_000_000
Count = Annotated[Integer, Field(ge=1, le=MAX_COUNT)]
HttpStatus = Annotated[Integer, Field(ge=100, le=599)]
MAX_PRIORITY = 1_000_000
Priority = Annotated[Integer, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)]
"""A contact's dialling priority (higher first); stored as a 32-bit integer."""
MessageTemplate = Annotated[str, Field(min_length=1), _template(TEMPLATE_PLACEHOLDERS)]
GatewayTemplate = Annotated[str, _template(GATEWAY_PLACEHOLDERS)]
ParamTemplate = Annotated[str, _template(TEMPLATE_PLACEHOLDERS)]
"""A provider template variable's value: a str.format text over the stage placeholders."""
Upper = BeforeValidator(_upper)


@dataclass(frozen=True, order=True)
class TimeRange:
    """A window within one day, written "HH:MM-HH:MM"; start < end (it never crosses midnight)."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end


def time_range(value: Any) -> TimeRange:
    if isinstance(value, TimeRange):
        return value
    try:
        start, end = (time.fromisoformat(part.strip()) for part in str(value).split("-"))
    except ValueError:
        raise ValueError(f"{value!r} is not a window like 09:00-21:00") from None
    window = TimeRange(start, end)
    if window.start >= window.end:
        raise ValueError(f"{value!r}: a window must start before it ends (split a night in two)")
    return window


Window = Annotated[
    TimeRange,
    PlainValidator(time_range),
    PlainSerializer(str),
    WithJsonSchema({"type": "string", "pattern": r"^\d\d:\d\d-\d\d:\d\d$"}),
]


def empty_section() -> Any:
    return {}
