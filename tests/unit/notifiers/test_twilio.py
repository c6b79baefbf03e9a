"""The Twilio adapter's own work around the SDK: the form as the bytes aiohttp would have sent,
and the SDK's request log lines built only for a listener."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from notifiers.twilio import _form_body, _TwilioHttpClient

SDK_LOGGER = "twilio.async_http_client"


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


class UntouchableHeaders(dict[str, str]):
    def items(self):  # type: ignore[override]
        raise AssertionError("the headers were formatted for a log line nobody reads")


def request_log_arguments(headers: dict[str, str]) -> dict[str, object]:
    return {"method": "POST", "url": "https://api.twilio.com/x", "params": None, "headers": headers}


async def test_the_sdk_request_lines_are_logged_when_info_is_enabled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _TwilioHttpClient(timeout_s=1.0, base_url=None) as http:
        with caplog.at_level(logging.INFO, logger=SDK_LOGGER):
            http.log_request(request_log_arguments({"User-Agent": "twilio-python"}))
    assert "POST Request: https://api.twilio.com/x" in caplog.messages
    assert "User-Agent : twilio-python" in caplog.messages


async def test_the_sdk_request_lines_are_not_built_when_info_is_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _TwilioHttpClient(timeout_s=1.0, base_url=None) as http:
        with caplog.at_level(logging.WARNING, logger=SDK_LOGGER):
            http.log_request(request_log_arguments(UntouchableHeaders({"User-Agent": "x"})))
            http.log_response(201, object())
    assert caplog.messages == []
