"""Calling windows: when a contact may be called, in the contact's own time zone, with holidays.

Pure: no clock of its own; every function takes the instant to judge (timezone-aware, any zone;
results are in UTC) and the contact's zone.

How a window is read:

- Windows are local wall-clock times per weekday (0 = Monday), half-open: "09:00-21:00" is open
  at 09:00 and closed at 21:00. A window starts before it ends on the same day; none crosses
  midnight (write a night as two windows: mon "22:00-23:59" and tue "00:00-06:00"). Windows of
  a day may touch ("09:00-12:00", "12:00-13:00" is open 09:00-13:00) but not overlap.
- Holidays are dates of the contact's local calendar: no window opens on them.
- Each window of each local date is one span of UTC instants, from the instant local clocks
  first show its start to the instant they first show its end. So daylight saving is exact: on
  the day New York springs forward, 09:00 is 13:00 UTC, the day before 14:00 UTC.
- A wall time that does not exist (skipped by a spring-forward change, e.g. 02:30 on
  2026-03-08 in America/New_York) means the first instant after the gap (03:00 EDT): a window
  starting there opens when the clocks jump, one ending there closes then, and one lying wholly
  in the gap does not open that day.
- A wall time that occurs twice (fall-back) means its first occurrence: a window ending at 01:30
  on 2026-11-01 in New York closes at 01:30 EDT and does not reopen in the repeated hour; one
  starting at 01:30 opens at 01:30 EDT and stays open through the repeated hour.

`is_open`, `next_open` and `closes_at` all derive from those spans, so they always agree: the
instant `next_open` returns is open, and `closes_at` is the first instant after it that is not.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from types import MappingProxyType
from typing import Protocol, TypeVar

__all__ = [
    "SEARCH_DAYS",
    "WEEKDAYS",
    "CallingWindows",
    "TimeSpan",
    "closes_at",
    "is_open",
    "next_open",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names as written in the config, in `date.weekday()` order (0 = Monday)."""

SEARCH_DAYS = 400
"""`next_open` looks this many days ahead at most (more than a year of holidays)."""

Window = tuple[time, time]
_DayName = TypeVar("_DayName", bound=str)  # any str keys, also a Literal of weekday names

_WINDOW = re.compile(r"\s*(\d{1,2}):(\d\d)\s*-\s*(\d{1,2}):(\d\d)\s*")
_ONE_MICROSECOND = timedelta(microseconds=1)


class TimeSpan(Protocol):
    """Anything with a start and an end time, such as `dialer.config.TimeRange`."""

    @property
    def start(self) -> time: ...

    @property
    def end(self) -> time: ...


@dataclass(frozen=True)
class CallingWindows:
    """Windows per weekday (0 = Monday) in local wall-clock time, and the local holidays.

    Checked when built (ValueError): weekdays 0-6, naive times, start < end, no overlaps.
    The windows of each day are kept sorted; a weekday not listed has no window.
    """

    by_weekday: Mapping[int, tuple[Window, ...]]
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        checked: dict[int, tuple[Window, ...]] = {}
        for weekday, windows in self.by_weekday.items():
            if not isinstance(weekday, int) or not 0 <= weekday <= 6:
                raise ValueError(f"weekday {weekday!r} is not 0 (Monday) to 6 (Sunday)")
            if ordered := _checked_day(WEEKDAYS[weekday], windows):
                checked[weekday] = ordered
        for holiday in self.holidays:
            if isinstance(holiday, datetime) or not isinstance(holiday, date):
                raise ValueError(f"holiday {holiday!r} is not a date")
        object.__setattr__(self, "by_weekday", MappingProxyType(checked))
        object.__setattr__(self, "holidays", frozenset(self.holidays))

    @classmethod
    def from_config(
        cls,
        windows: Mapping[_DayName, Iterable[str | TimeSpan]],
        holidays: Iterable[date | str] = (),
    ) -> CallingWindows:
        """From config: {"mon": ["09:00-12:00", "13:30-21:00"], ...} and dates (or YYYY-MM-DD).

        Weekdays are mon..sun (any case); a window is "HH:MM-HH:MM" (or an object with `start` and
        `end` times). Raises ValueError naming the weekday and the bad value.
        """
        by_weekday: dict[int, tuple[Window, ...]] = {}
        for key, items in windows.items():
            name = str(key).strip().lower()
            if name not in WEEKDAYS:
                raise ValueError(f"unknown weekday {key!r}; use {', '.join(WEEKDAYS)}")
            if isinstance(items, str):
                raise ValueError(f"{name}: expected a list of windows like ['09:00-21:00']")
            by_weekday[WEEKDAYS.index(name)] = tuple(
                _parse_window(item, f"{name}[{index}]") for index, item in enumerate(items)
            )
        return cls(by_weekday, frozenset(_parse_holiday(value) for value in holidays))


def _checked_day(name: str, windows: Iterable[Window]) -> tuple[Window, ...]:
    ordered = tuple(sorted(windows))
    for start, end in ordered:
        if not (isinstance(start, time) and isinstance(end, time)):
            raise ValueError(f"{name}: a window is a pair of times, got {start!r}-{end!r}")
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(f"{name}: window times are local wall times, without a zone")
        if start >= end:
            raise ValueError(
                f"{name}: window {start:%H:%M}-{end:%H:%M} must start before it ends "
                "(no window crosses midnight: split it into two days)"
            )
    for (_, earlier_end), (later_start, later_end) in itertools.pairwise(ordered):
        if later_start < earlier_end:
            raise ValueError(
                f"{name}: window {later_start:%H:%M}-{later_end:%H:%M} overlaps the one "
                f"ending at {earlier_end:%H:%M}"
            )
    return ordered


def _parse_window(item: str | TimeSpan, where: str) -> Window:
    if not isinstance(item, str):
        return (item.start, item.end)
    match = _WINDOW.fullmatch(item)
    if match is None:
        raise ValueError(f"{where}: {item!r} is not a window like '09:00-21:00'")
    hour1, minute1, hour2, minute2 = (int(part) for part in match.groups())
    if hour1 > 23 or hour2 > 23 or minute1 > 59 or minute2 > 59:
        raise ValueError(f"{where}: {item!r} is not a time of day (the last minute is 23:59)")
    start, end = time(hour1, minute1), time(hour2, minute2)
    if start >= end:
        raise ValueError(
            f"{where}: {item!r} must start before it ends "
            "(no window crosses midnight: split it into two days)"
        )
    return (start, end)


def _parse_holiday(value: date | str) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"holiday {value!r} must be a date, not a date and time")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"holiday {value!r} is not a date like 2026-10-01") from None


# ------------------------------------------------------------------------ wall time <-> instant


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone: pass an aware datetime")
    return moment.astimezone(UTC)


def _wall(instant: datetime, tz: tzinfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _instant(day: date, wall: time, tz: tzinfo) -> datetime:
    """The first instant local clocks show `wall` on `day`, or the end of the gap skipping it."""
    naive = datetime.combine(day, wall)
    earlier = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(earlier, tz) == naive:
        return earlier  # exists; fold=0 is its first occurrence when it occurs twice
    # In a gap, fold=0 reads the wall time with the offset before the change and fold=1 with the
    # one after: the change lies between the two readings. Find the first instant whose wall
    # time is not before `naive`: that is the change itself.
    other = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = sorted((earlier, other))
    if _wall(low, tz) >= naive or _wall(high, tz) < naive:
        return high  # not a plain gap (cannot happen with real zones); stay on the late side
    while high - low > _ONE_MICROSECOND:
        middle = low + (high - low) // 2
        if _wall(middle, tz) >= naive:
            high = middle
        else:
            low = middle
    return high


def _spans(windows: CallingWindows, day: date, tz: tzinfo) -> list[tuple[datetime, datetime]]:
    """The UTC spans [opens, closes) of the windows of one local date."""
    if day in windows.holidays:
        return []
    spans = []
    for start, end in windows.by_weekday.get(day.weekday(), ()):
        opens, closes = _instant(day, start, tz), _instant(day, end, tz)
        if opens < closes:  # a window wholly inside a spring-forward gap never opens
            spans.append((opens, closes))
    return spans


def _spans_around(
    windows: CallingWindows, moment: datetime, tz: tzinfo, *, days_after: int = 1
) -> list[tuple[datetime, datetime]]:
    """Spans of the local date of `moment` and its neighbours, sorted by opening.

    The day before is included: a change of offset at midnight can move a few instants of one
    local date into the next.
    """
    today = moment.astimezone(tz).date()
    days = (today + timedelta(days=offset) for offset in range(-1, days_after + 1))
    return sorted(span for day in days for span in _spans(windows, day, tz))


# ------------------------------------------------------------------------------------ questions


def is_open(windows: CallingWindows, at: datetime, tz: tzinfo) -> bool:
    """May a call start at `at` (aware) for a contact living in `tz`?"""
    at = _utc(at)
    return any(opens <= at < closes for opens, closes in _spans_around(windows, at, tz))


def next_open(windows: CallingWindows, after: datetime, tz: tzinfo) -> datetime | None:
    """The first instant (UTC) at or after `after` when a window is open: `after` itself when one
    is open now. None when no window opens within `SEARCH_DAYS` (no weekday has a window, or
    holidays cover every day that has one)."""
    after = _utc(after)
    if not windows.by_weekday:
        return None
    if is_open(windows, after, tz):
        return after
    today = after.astimezone(tz).date()
    found: datetime | None = None
    for offset in range(-1, SEARCH_DAYS + 1):
        later = [opens for opens, _ in _spans(windows, today + timedelta(days=offset), tz)]
        later = [opens for opens in later if opens > after]
        if later:
            if found is not None:  # the next day's first opening, in case of a midnight change
                return min(found, min(later))
            found = min(later)
        elif found is not None:
            return found
    return found


def closes_at(windows: CallingWindows, at: datetime, tz: tzinfo) -> datetime | None:
    """When the window open at `at` ends (UTC): the first instant after `at` that is not open,
    windows that touch counted as one. None when no window is open at `at`."""
    at = _utc(at)
    end: datetime | None = None
    for opens, closes in _spans_around(windows, at, tz, days_after=2):
        if end is None:
            if opens <= at < closes:
                end = closes
        elif opens <= end:
            end = max(end, closes)
        else:
            break
    return end
