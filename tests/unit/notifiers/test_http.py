"""The generic gateway's body templates: rendering and the checks made when it is built."""

from __future__ import annotations

import pytest

from notifiers import HttpGatewayNotifier, OutboundSms, render_body

MESSAGE = OutboundSms(
    "msg-9",
    "+8613812345678",
    "【优品购】您的订单已发货",
    extra={"order_id": "SO-1001", "stage": "shipped"},
)


def test_render_body_fills_every_field_from_the_message() -> None:
    templates = {
        "mobile": "{phone}",
        "to": "{to}",
        "content": "{body}",
        "outId": "{message_id}",
        "ref": "{order_id}/{stage}",
        "sign": "优品购",
    }
    assert render_body(templates, MESSAGE) == {
        "mobile": "+8613812345678",
        "to": "+8613812345678",
        "content": "【优品购】您的订单已发货",
        "outId": "msg-9",
        "ref": "SO-1001/shipped",
        "sign": "优品购",
    }


def test_render_body_names_a_missing_value() -> None:
    with pytest.raises(KeyError, match="tenant"):
        render_body({"t": "{tenant}"}, MESSAGE)


def test_the_message_fields_win_over_extra_values_of_the_same_name() -> None:
    message = OutboundSms("msg-1", "+15558675310", "hi", extra={"to": "+10000000000"})
    assert render_body({"to": "{to}"}, message) == {"to": "+15558675310"}


@pytest.mark.parametrize("template", ["{}", "{0}", "{to.real}", "{to[0]}", "{to"])
async def test_a_template_with_more_than_plain_names_is_refused(template: str) -> None:
    with pytest.raises(ValueError, match="body field 'x'"):
        HttpGatewayNotifier(url="http://127.0.0.1:9/sms", body={"x": template})


async def test_a_bad_body_format_is_refused() -> None:
    with pytest.raises(ValueError, match="body_format"):
        HttpGatewayNotifier(url="http://127.0.0.1:9/sms", body_format="xml")  # type: ignore[arg-type]


def test_building_outside_the_event_loop_says_how_to_do_it() -> None:
    with pytest.raises(RuntimeError, match="running event loop"):
        HttpGatewayNotifier(url="http://127.0.0.1:9/sms")
