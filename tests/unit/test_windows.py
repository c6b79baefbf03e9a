"""Calling windows in the contact's own time zone: explicit instants, no clock."""

from __future__ import annotations

import ast
import functools
import itertools
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dialer.windows
from dialer.config import TimeRange
from dialer.windows import CallingWindows, closes_at, is_open, next_open

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")

WORKDAYS_9_TO_21 = CallingWindows.from_config(
    {day: ["09:00-21:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
)
OFFICE_HOURS = CallingWindows.from_config(
    {day: ["09:00-12:00", "13:30-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
)


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# ------------------------------------------------------------------------------ open or not


def test_window_is_open_at_20_59_and_closed_at_21_01_in_shanghai() -> None:
    thursday = (2026, 11, 26)

    assert is_open(WORKDAYS_9_TO_21, local(SHANGHAI, *thursday, 20, 59), SHANGHAI)
    assert not is_open(WORKDAYS_9_TO_21, local(SHANGHAI, *thursday, 21, 1), SHANGHAI)


def test_window_opens_at_its_start_and_is_closed_at_its_end() -> None:
    assert is_open(WORKDAYS_9_TO_21, utc(2026, 11, 26, 1, 0), SHANGHAI)  # 09:00 CST
    assert not is_open(WORKDAYS_9_TO_21, utc(2026, 11, 26, 1, 0) - timedelta(seconds=1), SHANGHAI)
    assert not is_open(WORKDAYS_9_TO_21, utc(2026, 11, 26, 13, 0), SHANGHAI)  # 21:00 CST


def test_window_is_judged_in_the_contacts_zone_not_utc() -> None:
    at = utc(2026, 11, 26, 14, 0)  # 22:00 in Shanghai, 09:00 in New York

    assert not is_open(WORKDAYS_9_TO_21, at, SHANGHAI)
    assert is_open(WORKDAYS_9_TO_21, at, NEW_YORK)


def test_a_day_without_windows_is_closed() -> None:
    sunday_noon = local(SHANGHAI, 2026, 11, 29, 12, 0)

    assert not is_open(WORKDAYS_9_TO_21, sunday_noon, SHANGHAI)


def test_holiday_is_closed_all_day() -> None:
    national_day = date(2026, 10, 1)  # a Thursday
    windows = CallingWindows.from_config({"thu": ["00:00-23:59"]}, holidays=[national_day])

    for hour in range(24):
        assert not is_open(windows, local(SHANGHAI, 2026, 10, 1, hour, 30), SHANGHAI)
    assert is_open(windows, local(SHANGHAI, 2026, 10, 8, 12, 0), SHANGHAI)


def test_holiday_is_a_date_of_the_contacts_calendar() -> None:
    windows = CallingWindows.from_config(
        {"wed": ["09:00-23:00"], "thu": ["09:00-23:00"]}, holidays=["2026-10-01"]
    )
    at = utc(2026, 10, 1, 2, 0)  # Thursday 1 October 10:00 in Shanghai, Wednesday 22:00 in NY

    assert not is_open(windows, at, SHANGHAI)
    assert is_open(windows, at, NEW_YORK)
    assert not is_open(windows, local(NEW_YORK, 2026, 10, 1, 10, 0), NEW_YORK)


def test_lunch_break_between_two_windows_is_closed() -> None:
    assert is_open(OFFICE_HOURS, local(SHANGHAI, 2026, 11, 26, 11, 59), SHANGHAI)
    assert not is_open(OFFICE_HOURS, local(SHANGHAI, 2026, 11, 26, 12, 30), SHANGHAI)
    assert is_open(OFFICE_HOURS, local(SHANGHAI, 2026, 11, 26, 13, 30), SHANGHAI)


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        is_open(WORKDAYS_9_TO_21, datetime(2026, 11, 26, 12, 0), SHANGHAI)


# ----------------------------------------------------------------------------------- next_open


def test_next_open_is_now_when_a_window_is_open() -> None:
    at = local(SHANGHAI, 2026, 11, 26, 15, 0)

    assert next_open(WORKDAYS_9_TO_21, at, SHANGHAI) == at
    assert next_open(WORKDAYS_9_TO_21, at, SHANGHAI).tzinfo is UTC  # type: ignore[union-attr]


def test_next_open_after_the_evening_window_is_tomorrow_morning() -> None:
    after = local(SHANGHAI, 2026, 11, 26, 21, 0)

    assert next_open(WORKDAYS_9_TO_21, after, SHANGHAI) == local(SHANGHAI, 2026, 11, 27, 9, 0)


def test_next_open_skips_the_weekend() -> None:
    weekdays = CallingWindows.from_config(
        {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    )
    friday_evening = local(SHANGHAI, 2026, 11, 27, 18, 30)

    assert next_open(weekdays, friday_evening, SHANGHAI) == local(SHANGHAI, 2026, 11, 30, 9, 0)


def test_next_open_skips_holidays() -> None:
    golden_week = [date(2026, 10, 1) + timedelta(days=n) for n in range(7)]
    windows = CallingWindows.from_config(
        {day: ["09:00-21:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        holidays=golden_week,
    )

    after = local(SHANGHAI, 2026, 9, 30, 21, 0)
    assert next_open(windows, after, SHANGHAI) == local(SHANGHAI, 2026, 10, 8, 9, 0)


def test_next_open_across_spring_forward_in_new_york() -> None:
    saturday_evening = local(NEW_YORK, 2026, 3, 7, 19, 0)  # EST; clocks go forward on the 8th
    weekdays = CallingWindows.from_config(
        {day: ["09:00-21:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    )

    assert next_open(weekdays, saturday_evening, NEW_YORK) == utc(2026, 3, 9, 13, 0)  # 09:00 EDT


def test_window_on_the_spring_forward_day_opens_at_the_new_offset() -> None:
    sundays = CallingWindows.from_config({"sat": ["09:00-21:00"], "sun": ["09:00-21:00"]})

    assert next_open(sundays, utc(2026, 3, 7, 2, 0), NEW_YORK) == utc(2026, 3, 7, 14, 0)  # EST
    assert next_open(sundays, utc(2026, 3, 8, 2, 0), NEW_YORK) == utc(2026, 3, 8, 13, 0)  # EDT


def test_next_open_across_autumn_change_in_london() -> None:
    weekdays = CallingWindows.from_config(
        {day: ["09:00-21:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    )
    friday = local(LONDON, 2026, 10, 23, 7, 0)  # BST
    saturday_evening = local(LONDON, 2026, 10, 24, 19, 0)  # BST; clocks go back on the 25th

    assert next_open(weekdays, friday, LONDON) == utc(2026, 10, 23, 8, 0)  # 09:00 BST
    assert next_open(weekdays, saturday_evening, LONDON) == utc(2026, 10, 26, 9, 0)  # 09:00 GMT


def test_window_starting_in_the_spring_forward_gap_opens_when_clocks_jump() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 never happens in New York that day.
    windows = CallingWindows.from_config({"sun": ["02:30-04:00"]})
    jump = utc(2026, 3, 8, 7, 0)  # 03:00 EDT

    assert next_open(windows, local(NEW_YORK, 2026, 3, 8, 0, 0), NEW_YORK) == jump
    assert not is_open(windows, jump - timedelta(microseconds=1), NEW_YORK)
    assert closes_at(windows, jump, NEW_YORK) == utc(2026, 3, 8, 8, 0)  # 04:00 EDT


def test_window_ending_in_the_spring_forward_gap_closes_when_clocks_jump() -> None:
    windows = CallingWindows.from_config({"sun": ["01:00-02:30"]})

    assert closes_at(windows, local(NEW_YORK, 2026, 3, 8, 1, 15), NEW_YORK) == utc(2026, 3, 8, 7)


def test_window_wholly_in_the_spring_forward_gap_does_not_open_that_day() -> None:
    windows = CallingWindows.from_config({"sun": ["02:00-02:45"]})

    opens = next_open(windows, local(NEW_YORK, 2026, 3, 8, 0, 0), NEW_YORK)

    assert opens == local(NEW_YORK, 2026, 3, 15, 2, 0)  # the next Sunday, EDT


def test_repeated_wall_time_after_fall_back_means_its_first_occurrence() -> None:
    # 2026-11-01 02:00 EDT -> 01:00 EST: 01:00-01:59 happens twice in New York.
    ends_in_repeat = CallingWindows.from_config({"sun": ["00:00-01:30"]})
    starts_in_repeat = CallingWindows.from_config({"sun": ["01:30-03:00"]})
    first_0130 = utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    second_0115 = utc(2026, 11, 1, 6, 15)  # 01:15 EST, the second time clocks show 01:15

    assert closes_at(ends_in_repeat, local(NEW_YORK, 2026, 11, 1, 0, 30), NEW_YORK) == first_0130
    assert not is_open(ends_in_repeat, second_0115, NEW_YORK)
    assert next_open(starts_in_repeat, local(NEW_YORK, 2026, 11, 1, 0, 0), NEW_YORK) == first_0130
    assert is_open(starts_in_repeat, second_0115, NEW_YORK)


def test_next_open_is_none_without_any_window() -> None:
    assert next_open(CallingWindows({}), utc(2026, 11, 26, 0, 0), SHANGHAI) is None


def test_next_open_is_none_when_holidays_cover_every_window_of_the_search() -> None:
    mondays = {date(2026, 11, 30) + timedelta(weeks=n) for n in range(60)}
    windows = CallingWindows.from_config({"mon": ["09:00-10:00"]}, holidays=sorted(mondays))

    assert next_open(windows, utc(2026, 11, 26, 0, 0), SHANGHAI) is None


# --------------------------------------------------------------------------------- closes_at


def test_window_that_ends_while_contacts_are_due() -> None:
    evening = local(SHANGHAI, 2026, 11, 26, 20, 30)
    end = closes_at(WORKDAYS_9_TO_21, evening, SHANGHAI)

    assert end == local(SHANGHAI, 2026, 11, 26, 21, 0)
    assert end is not None
    assert end.tzinfo is UTC
    assert is_open(WORKDAYS_9_TO_21, end - timedelta(microseconds=1), SHANGHAI)
    assert not is_open(WORKDAYS_9_TO_21, end, SHANGHAI)
    assert next_open(WORKDAYS_9_TO_21, end, SHANGHAI) == local(SHANGHAI, 2026, 11, 27, 9, 0)


def test_closes_at_is_none_when_closed() -> None:
    lunch = local(SHANGHAI, 2026, 11, 26, 12, 30)

    assert closes_at(OFFICE_HOURS, lunch, SHANGHAI) is None


def test_touching_windows_close_as_one() -> None:
    windows = CallingWindows.from_config({"thu": ["12:00-13:00", "09:00-12:00", "14:00-15:00"]})

    end = closes_at(windows, local(SHANGHAI, 2026, 11, 26, 10, 0), SHANGHAI)

    assert end == local(SHANGHAI, 2026, 11, 26, 13, 0)


# -------------------------------------------------------------------------------- the config


def test_config_is_parsed_into_weekday_numbers_and_sorted_windows() -> None:
    windows = CallingWindows.from_config(
        {"Mon": [" 13:30 - 21:00", "9:00-12:00"], "sun": []}, holidays=[date(2026, 10, 1)]
    )

    assert dict(windows.by_weekday) == {
        0: ((time(9, 0), time(12, 0)), (time(13, 30), time(21, 0))),
    }
    assert windows.holidays == frozenset({date(2026, 10, 1)})


def test_config_accepts_the_validated_windows_of_dialer_config() -> None:
    validated = {"mon": (TimeRange(time(9), time(12)), TimeRange(time(13, 30), time(21)))}

    windows = CallingWindows.from_config(validated, holidays=(date(2026, 10, 1),))

    assert windows.by_weekday[0] == ((time(9), time(12)), (time(13, 30), time(21)))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"mon": ["9-17"]}, r"mon\[0\]: '9-17' is not a window"),
        ({"mon": ["09:00-17:00", "nine to five"]}, r"mon\[1\]: 'nine to five' is not a window"),
        ({"mon": ["09:00"]}, "is not a window"),
        ({"mon": ["24:00-25:00"]}, "is not a time of day"),
        ({"mon": ["09:60-10:00"]}, "is not a time of day"),
        ({"mon": ["17:00-09:00"]}, "must start before it ends"),
        ({"mon": ["22:00-02:00"]}, "no window crosses midnight"),
        ({"mon": ["09:00-09:00"]}, "must start before it ends"),
        ({"mon": ["09:00-12:00", "11:00-13:00"]}, "overlaps"),
        ({"monday": ["09:00-12:00"]}, "unknown weekday 'monday'"),
        ({"mon": "09:00-12:00"}, "expected a list of windows"),
    ],
)
def test_bad_config_is_rejected_with_a_clear_message(
    config: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CallingWindows.from_config(config)


@pytest.mark.parametrize(
    ("holiday", "message"),
    [
        ("2026-13-01", "is not a date like"),
        ("tomorrow", "is not a date like"),
        (datetime(2026, 10, 1, 0, 0), "must be a date, not a date and time"),
    ],
)
def test_bad_holiday_is_rejected(holiday: date | str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CallingWindows.from_config({"mon": ["09:00-12:00"]}, holidays=[holiday])


def test_windows_built_directly_are_checked_too() -> None:
    with pytest.raises(ValueError, match="weekday 7"):
        CallingWindows({7: ((time(9), time(10)),)})
    with pytest.raises(ValueError, match="must start before it ends"):
        CallingWindows({0: ((time(10), time(9)),)})


def test_windows_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(dialer.windows.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names)


# -------------------------------------------------------------------------------- properties

ZONES = [SHANGHAI, NEW_YORK, LONDON, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("America/Havana")]
_minutes = st.integers(min_value=0, max_value=23 * 60 + 58)


@st.composite
def calling_windows(draw: st.DrawFn) -> CallingWindows:
    by_weekday = {}
    for weekday in draw(st.sets(st.integers(min_value=0, max_value=6), min_size=1)):
        start = draw(_minutes)
        end = draw(st.integers(min_value=start + 1, max_value=23 * 60 + 59))
        by_weekday[weekday] = ((time(*divmod(start, 60)), time(*divmod(end, 60))),)
    return CallingWindows(by_weekday)


@functools.cache
def _offset_changes(tz: ZoneInfo, year: int) -> list[datetime]:
    hours = [datetime(year, 1, 1, tzinfo=UTC) + timedelta(hours=n) for n in range(366 * 24)]
    return [
        later
        for earlier, later in itertools.pairwise(hours)
        if earlier.astimezone(tz).utcoffset() != later.astimezone(tz).utcoffset()
    ]


any_instant = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


@st.composite
def zone_and_instant(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone, and an instant anywhere or within two days of one of its 2026 offset changes."""
    tz = draw(st.sampled_from(ZONES))
    changes = _offset_changes(tz, 2026)
    near_a_change = draw(st.booleans())
    if changes and near_a_change:
        change = draw(st.sampled_from(changes))
        return tz, change + timedelta(minutes=draw(st.integers(-2 * 24 * 60, 2 * 24 * 60)))
    return tz, draw(any_instant)


def between(start: datetime, end: datetime, fraction: float) -> datetime:
    """An instant in [start, end), `fraction` of the way."""
    return min(start + (end - start) * fraction, end - timedelta(microseconds=1))


@settings(max_examples=300)
@given(calling_windows(), zone_and_instant(), st.floats(min_value=0, max_value=1))
def test_next_open_and_closes_at_agree_with_is_open(
    windows: CallingWindows, zone_and_after: tuple[ZoneInfo, datetime], fraction: float
) -> None:
    tz, after = zone_and_after
    opens = next_open(windows, after, tz)

    assert opens is not None
    assert opens >= after
    assert is_open(windows, opens, tz)
    if opens > after:
        assert not is_open(windows, opens - timedelta(microseconds=1), tz)
        assert not is_open(windows, between(after, opens, fraction), tz)
    end = closes_at(windows, opens, tz)
    assert end is not None
    assert end > opens
    assert is_open(windows, between(opens, end, fraction), tz)
    assert is_open(windows, end - timedelta(microseconds=1), tz)
    assert not is_open(windows, end, tz)
