"""Checking contacts before they are added: from a CSV file or the API, with the same rules.

Each row: `phone` (required; normalised to E.164 with the config's default region), `name`
(text without control characters), `timezone` (IANA name; empty: the campaign's), `priority`
(an integer from -1,000,000 to 1,000,000, as the campaign's; empty: the campaign's), and
any other column (CSV) or the `context` object (API) kept as the contact's context (an order id,
say). A row that fails is reported with its row number and reason; the others are added. A
number outside the campaign's `allowed_countries` is refused here (toll-fraud guard) and again
at dialling time. A number already in the campaign is merged (`dialer.store.contacts`).

`add_rows` (the API: a list, one transaction, a result per row) and `import_records` (a CSV file
streamed by `dialer.calling.csv_contacts`, in batches) share `check_row`.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.calling.csv_contacts import CsvProblem, CsvRecord
from dialer.calling.ports import AddedContact, CampaignRepository, NewContact
from dialer.clock import Sleep
from dialer.config import Campaign
from dialer.config.values import MAX_PRIORITY
from dialer.health import StoreUnavailable
from dialer.logs import mask_phone, shown_safely
from dialer.phones import InvalidNumber, parse

__all__ = ["RowError", "RowResult", "add_rows", "check_row", "import_records", "refused_row"]

IMPORT_BATCH = 2000
"""CSV rows checked and added per transaction."""
STORE_TRIES = 8
"""A batch the store cannot take (unavailable, locked) is tried this often, then the import
stops there (what came before is kept)."""

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


def check_row(values: Mapping[str, Any], campaign: Campaign, *, default_region: str) -> NewContact:
    """A contact ready to add, or `RowError` with the reason."""
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
            results[row] = refused_row(row, values, exc)
        else:
            good.append((row, contact))
    added = await store.add_contacts(campaign_id, [contact for _, contact in good], now)
    for (row, contact), outcome in zip(good, added, strict=True):
        results[row] = RowResult(row, _status(outcome), mask_phone(contact.phone))
    return [results[row] for row in sorted(results)]


def refused_row(row: int, values: Mapping[str, Any], error: RowError) -> RowResult:
    """A row refused: its number masked, and escaped (control characters never echo raw)."""
    raw = values.get("phone")
    shown = mask_phone(shown_safely(str(raw))) if raw not in (None, "") else None
    return RowResult(row, "refused", shown, shown_safely(str(error)))


def _status(outcome: AddedContact) -> RowStatus:
    if not outcome.merged:
        return "added"
    return "merged" if outcome.waiting else "finished"


Checked = NewContact | RowResult


def check_records(
    records: list[CsvRecord | CsvProblem], campaign: Campaign, default_region: str
) -> list[Checked]:
    """A batch of records checked: the contact to add, or the refused row, for each."""
    checked: list[Checked] = []
    for record in records:
        if isinstance(record, CsvProblem):
            checked.append(RowResult(record.line, "refused", None, shown_safely(record.reason)))
            continue
        try:
            checked.append(check_row(record.values, campaign, default_region=default_region))
        except RowError as exc:
            checked.append(refused_row(record.line, record.values, exc))
    return checked


async def import_records(
    store: CampaignRepository,
    campaign_id: int,
    campaign: Campaign,
    records: Iterable[CsvRecord | CsvProblem],
    *,
    default_region: str,
    now: datetime,
    on_refused: Callable[[RowResult], None],
    batch_size: int = IMPORT_BATCH,
    sleep: Sleep = asyncio.sleep,
) -> dict[str, int]:
    """Check and add a stream of CSV records, `batch_size` at a time, each batch its own short
    transaction (a long import never holds the store for long, and memory stays bounded);
    `on_refused` hears of each refused row, in file order. The counts by status.

    A batch is checked (in a thread) while the one before is written, so the store's work and
    ours overlap."""
    found = {"added": 0, "merged": 0, "finished": 0, "refused": 0}

    async def write(checked: list[Checked]) -> None:
        contacts = [item for item in checked if isinstance(item, NewContact)]
        for item in checked:
            if isinstance(item, RowResult):
                found["refused"] += 1
                on_refused(item)
        for tries in itertools.count(1):
            try:
                added = await store.add_contacts(campaign_id, contacts, now)
                break
            except StoreUnavailable:  # the daemon's writes hold SQLite's lock a moment
                if tries == STORE_TRIES:
                    raise
                await sleep(min(5.0, 0.1 * 2**tries))
        for outcome in added:
            found[_status(outcome)] += 1

    checked: list[Checked] | None = None
    for batch in _batches(records, batch_size):
        checking = asyncio.to_thread(check_records, batch, campaign, default_region)
        if checked is None:
            checked = await checking
            continue
        _, checked = await asyncio.gather(write(checked), checking)
    if checked is not None:
        await write(checked)
    return found


def _batches(
    records: Iterable[CsvRecord | CsvProblem], size: int
) -> Iterator[list[CsvRecord | CsvProblem]]:
    batch: list[CsvRecord | CsvProblem] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def counts(results: Sequence[RowResult]) -> dict[str, int]:
    found = {"added": 0, "merged": 0, "finished": 0, "refused": 0}
    for result in results:
        found[result.status] += 1
    return found
