"""The Twilio adapter's own encoding of the SDK's form: the bytes aiohttp would have sent."""

from __future__ import annotations

import aiohttp

from notifiers.twilio import _form_body


def aiohttp_form_bytes(data: dict[str, object]) -> bytes:
    payload = aiohttp.FormData(data)()
    assert isinstance(payload, aiohttp.payload.BytesPayload)
    return bytes(payload._value)


def test_the_form_body_is_the_bytes_aiohttp_would_make_of_the_sdk_form() -> None:
    form: dict[str, object] = {
        "To": "+8613812345678",
        "From": "+15005550006",
        "Body": "【优品购】订单 A&B=1 已发货，回复TD退订",
        "StatusCallback": "https://example.com/v1/sms/twilio/status?message_id=42&x=a b",
        "MediaUrl": ["https://example.com/a.png", "https://example.com/b.png"],
    }
    assert _form_body(form) == aiohttp_form_bytes(form)


def test_no_form_is_left_as_it_is() -> None:
    assert _form_body(None) is None
    assert _form_body({}) == {}
