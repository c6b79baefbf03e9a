"""Order-stage messages: a stage's template filled in, and when quiet hours let it go out.

`render` fills every placeholder the config allows (`TEMPLATE_PLACEHOLDERS`): the order's own
fields, the sender `signature`, the `opt_out_hint`, and the event's `data` (tracking_number,
courier, eta, amount...), the event's values stripped of control characters. A placeholder with
no value becomes "" rather than an error: the config already refused unknown placeholders, and
a missing tracking number must not lose the whole message.

`quiet_hours_end` says when a non-urgent message may go: None when now is outside the quiet
hours, else the moment they end, in UTC. Quiet hours are read in the customer's time zone
(for SMS, the configured `quiet_hours.timezone`: order events carry none), and may cross
midnight (21:00-08:00).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dialer.config import TEMPLATE_PLACEHOLDERS, Notifications, QuietHours, Stage
from dialer.messaging.ports import StageTemplate

__all__ = ["quiet_hours_end", "render", "render_message"]

DataValue = str | int | float | bool | None


def _text(value: DataValue) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return without_controls(str(value))


def without_controls(text: str) -> str:
    """`text` without control characters (CR, LF, ESC, NUL...): an event's value must not
    break the message's lines or reach the handset as a control code."""
    return "".join(char for char in text if unicodedata.category(char) != "Cc")


def render(
    stage_settings: Stage,
    notifications: Notifications,
    *,
    stage: str,
    order_id: str,
    customer_name: str,
    data: Mapping[str, DataValue],
) -> str:
    """The stage's message for this order, every placeholder filled ("" when unknown)."""
    values = _values(
        notifications, stage=stage, order_id=order_id, customer_name=customer_name, data=data
    )
    return stage_settings.template.format_map(values)


def render_message(
    stage_settings: Stage,
    notifications: Notifications,
    *,
    stage: str,
    order_id: str,
    customer_name: str,
    data: Mapping[str, DataValue],
) -> tuple[str, dict[str, StageTemplate]]:
    """The stage's message for this order, and provider name -> its approved template there
    (`provider_templates` of the stage), every placeholder filled as `render` fills them."""
    values = _values(
        notifications, stage=stage, order_id=order_id, customer_name=customer_name, data=data
    )
    templates = {
        name: StageTemplate(
            template.template_code,
            {key: value.format_map(values) for key, value in template.template_params.items()},
        )
        for name, template in stage_settings.provider_templates.items()
    }
    return stage_settings.template.format_map(values), templates


def _values(
    notifications: Notifications,
    *,
    stage: str,
    order_id: str,
    customer_name: str,
    data: Mapping[str, DataValue],
) -> dict[str, str]:
    values = dict.fromkeys(TEMPLATE_PLACEHOLDERS, "")
    values.update(
        (key, _text(value)) for key, value in data.items() if key in TEMPLATE_PLACEHOLDERS
    )
    values.update(
        customer_name=without_controls(customer_name),
        order_id=order_id,
        stage=stage,
        signature=notifications.signature,
        opt_out_hint=notifications.opt_out_hint,
    )
    return values


def _in_window(local: time, start: time, end: time) -> bool:
    if start < end:
        return start <= local < end
    return local >= start or local < end  # crosses midnight


def quiet_hours_end(now: datetime, quiet: QuietHours | None) -> datetime | None:
    """None when `now` is outside the quiet hours; else when they end (UTC)."""
    if quiet is None:
        return None
    zone = ZoneInfo(quiet.timezone)
    local = now.astimezone(zone)
    if not _in_window(local.time().replace(tzinfo=None), quiet.start, quiet.end):
        return None
    end = datetime.combine(local.date(), quiet.end, tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=zone)
    return end.astimezone(UTC)
