"""Checking contacts before they are added: from a CSV file or the API, with the same rules.

Each row: `phone` (required; normalised to E.164 with the config's default region), `name`
(text without control characters), `timezone` (IANA name; empty: the campaign's), `priority`
(an integer from -1,000,000 to 1,000,000, as the campaign's; empty: the campaign's), and
any other column (CSV) or the `context` object (API) kept as the contact's context (an order id,
say). A row that fails is reported with its row number and reason; the others are added. A
number outside the campaign's `allowed_countries` is refused here (toll-fraud guard) and again
at dialling time. A number already in the campaign is merged (`dialer.store.contacts.add_contact`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.calling.ports import CampaignRepository, NewContact
from dialer.config import Campaign
from dialer.config.values import MAX_PRIORITY
from dialer.logs import mask_phone
from dialer.phones import InvalidNumber, parse

__all__ = ["RowResult", "add_rows", "check_row", "csv_rows"]

KNOWN_COLUMNS = ("phone", "name", "timezone", "priority", "context")
_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits: int() would also take "١٢"
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
RowStatus = Literal["added", "merged", "finished", "refused"]


class RowError(ValueError):
    """The row cannot be added; the message says why."""


@dataclass(frozen=True)
class RowResult:
    row: int
    status: RowStatus
    phone: str | None = None  # masked
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        shown = {"row": self.row, "status": self.status, "phone": self.phone}
        if self.reason:
            shown["reason"] = self.reason
        return shown


def csv_rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, values) per data row; the header is line 1 and must name `phone`."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    fields = [name.strip() for name in reader.fieldnames or []]
    if "phone" not in fields:
        raise RowError("the header (line 1) has no `phone` column")
    reader.fieldnames = fields
    rows = []
    for values in reader:
        extra = values.pop(None, None)
        cleaned = {key: (value or "").strip() for key, value in values.items() if key}
        if extra:
            cleaned["_extra"] = ",".join(extra)
        if any(cleaned.values()):
            rows.append((reader.line_num, cleaned))
    return rows


def check_row(values: Mapping[str, Any], campaign: Campaign, *, default_region: str) -> NewContact:
    """A contact ready to add, or `RowError` with the reason."""
    if "_extra" in values:
        raise RowError("more values than columns")
    raw = values.get("phone")
    if not isinstance(raw, str | int) or not str(raw).strip():
        raise RowError("phone is missing")
    try:
        number = parse(str(raw), default_region)
    except InvalidNumber as exc:
        raise RowError(f"phone: {exc}") from None
    if number.region not in campaign.allowed_countries:
        allowed = ", ".join(campaign.allowed_countries)
        raise RowError(f"phone: {number.region or 'unknown'} is not an allowed country ({allowed})")
    timezone = _text(values.get("timezone"))
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise RowError(f"timezone: unknown time zone {timezone!r}") from None
    priority = campaign.priority
    if values.get("priority") not in (None, ""):
        priority = _priority(values["priority"])
    name = _text(values.get("name"))
    if _CONTROL_OR_SURROGATE.search(name):
        raise RowError("name: must not hold control characters or invalid Unicode")
    context = values.get("context")
    if context is None:
        context = {k: v for k, v in values.items() if k not in KNOWN_COLUMNS and v != ""}
    if not isinstance(context, Mapping):
        raise RowError("context: must be an object")
    return NewContact(
        phone=number.e164,
        name=name or None,
        timezone=timezone or None,
        priority=priority,
        context=dict(context),
    )


def _priority(raw: Any) -> int:
    """An integer within the campaigns' bounds (given as a number, or as ASCII digits)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and _INTEGER.fullmatch(text := raw.strip()) and len(text) <= 9:
        value = int(text)
    elif isinstance(raw, str) and _INTEGER.fullmatch(raw.strip()):
        value = MAX_PRIORITY + 1  # too many digits to be in bounds
    else:
        raise RowError(f"priority: not an integer: {str(raw)[:20]!r}")
    if not -MAX_PRIORITY <= value <= MAX_PRIORITY:
        raise RowError(f"priority: must be from -{MAX_PRIORITY} to {MAX_PRIORITY}")
    return value


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


async def add_rows(
    store: CampaignRepository,
    campaign_id: int,
    campaign: Campaign,
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    default_region: str,
    now: datetime,
) -> list[RowResult]:
    """Check every row, add the good ones in one transaction; one result per row, in order."""
    results: dict[int, RowResult] = {}
    good: list[tuple[int, NewContact]] = []
    for row, values in rows:
        try:
            contact = check_row(values, campaign, default_region=default_region)
        except RowError as exc:
            shown = mask_phone(str(values.get("phone") or "")) if values.get("phone") else None
            results[row] = RowResult(row, "refused", shown, str(exc))
        else:
            good.append((row, contact))
    added = await store.add_contacts(campaign_id, [contact for _, contact in good], now)
    for (row, contact), outcome in zip(good, added, strict=True):
        status: RowStatus = "added"
        if outcome.merged:
            status = "merged" if outcome.waiting else "finished"
        results[row] = RowResult(row, status, mask_phone(contact.phone))
    return [results[row] for row in sorted(results)]


def counts(results: Sequence[RowResult]) -> dict[str, int]:
    found = {"added": 0, "merged": 0, "finished": 0, "refused": 0}
    for result in results:
        found[result.status] += 1
    return found
