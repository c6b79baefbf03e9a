"""Rendering a stage's template and the end of quiet hours, with an injected time."""

from __future__ import annotations

from datetime import UTC, datetime, time

from dialer.config import Notifications, QuietHours, Stage
from dialer.messaging.templates import quiet_hours_end, render

QUIET = QuietHours(start=time(21, 0), end=time(8, 0), timezone="Asia/Shanghai")


def test_render_fills_data_and_leaves_missing_values_empty() -> None:
    stage = Stage(template="{signature}{order_id} {courier} {tracking_number}/{eta}{opt_out_hint}")
    notifications = Notifications(signature="【店】", opt_out_hint="回复TD退订")
    text = render(
        stage,
        notifications,
        stage="shipped",
        order_id="A1",
        customer_name="",
        data={"courier": "顺丰", "eta": None},
    )
    assert text == "【店】A1 顺丰 /回复TD退订"


def test_outside_quiet_hours_a_message_goes_at_once() -> None:
    assert quiet_hours_end(datetime(2025, 6, 2, 12, 59, tzinfo=UTC), QUIET) is None  # 20:59


def test_in_quiet_hours_before_midnight_it_waits_until_8_next_morning() -> None:
    at_2101 = datetime(2025, 6, 2, 13, 1, tzinfo=UTC)
    assert quiet_hours_end(at_2101, QUIET) == datetime(2025, 6, 3, 0, 0, tzinfo=UTC)


def test_in_quiet_hours_after_midnight_it_waits_until_8_the_same_morning() -> None:
    at_0759 = datetime(2025, 6, 2, 23, 59, tzinfo=UTC)
    assert quiet_hours_end(at_0759, QUIET) == datetime(2025, 6, 3, 0, 0, tzinfo=UTC)


def test_no_quiet_hours_never_hold() -> None:
    assert quiet_hours_end(datetime(2025, 6, 2, 15, 0, tzinfo=UTC), None) is None


def test_control_characters_of_the_event_never_reach_the_message() -> None:
    stage = Stage(template="{customer_name}: {courier} {tracking_number}")
    text = render(
        stage,
        Notifications(),
        stage="shipped",
        order_id="A1",
        customer_name="王\r\n女士\x1b[2J",
        data={"courier": "顺\x00丰", "tracking_number": "SF\u00851"},
    )
    assert text == "王女士[2J: 顺丰 SF1"
