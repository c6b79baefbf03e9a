"""The error tree, Retry-After parsing, and the one translation table per provider."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException

from notifiers import (
    NotifyError,
    PermanentError,
    PermanentReason,
    TransientError,
    classify_gateway_status,
    parse_retry_after,
    translate_twilio_error,
)

MESSAGES_URI = "/Accounts/AC00000000000000000000000000000000/Messages.json"


def twilio_rest_error(status: int, code: int) -> TwilioRestException:
    return TwilioRestException(status, MESSAGES_URI, "Unable to create record: x", code, "POST")


def connection_key() -> ConnectionKey:
    return ConnectionKey("api.twilio.com", 443, True, True, None, None, None)


# --------------------------------------------------------------------------- the tree


def test_both_kinds_are_notify_errors_with_a_code_and_a_provider() -> None:
    transient = TransientError("busy", code=20429, provider="twilio")
    permanent = PermanentError("bad number", code=21211, reason="number", provider="twilio")
    assert isinstance(transient, NotifyError)
    assert isinstance(permanent, NotifyError)
    assert (transient.code, transient.provider) == (20429, "twilio")
    assert (permanent.code, permanent.provider) == (21211, "twilio")
    assert str(permanent) == "bad number"


def test_transient_error_defaults_to_unambiguous_without_retry_after() -> None:
    error = TransientError("down")
    assert error.retry_after_s is None
    assert error.ambiguous is False


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_transient_error_refuses_a_meaningless_retry_after(bad: float) -> None:
    with pytest.raises(ValueError, match="retry_after_s"):
        TransientError("down", retry_after_s=bad)


def test_permanent_error_defaults_to_a_provider_reason() -> None:
    error = PermanentError("auth")
    assert error.reason == "provider"
    assert not error.about_number
    assert not error.opted_out


@pytest.mark.parametrize(
    ("reason", "about_number", "opted_out"),
    [("provider", False, False), ("number", True, False), ("opted_out", True, True)],
)
def test_permanent_error_reason_says_whether_it_is_about_the_number(
    reason: PermanentReason, about_number: bool, opted_out: bool
) -> None:
    error = PermanentError("x", reason=reason)
    assert error.about_number is about_number
    assert error.opted_out is opted_out


def test_permanent_error_refuses_an_unknown_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        PermanentError("x", reason="network")  # type: ignore[arg-type]


def test_repr_shows_every_field() -> None:
    text = repr(TransientError("busy", code=20429, retry_after_s=7, ambiguous=False))
    assert text == (
        "TransientError('busy', code=20429, provider=None, retry_after_s=7, ambiguous=False, "
        "scope='account')"
    )


def test_a_transient_error_is_about_the_account_unless_told_otherwise() -> None:
    assert TransientError("busy").scope == "account"
    assert TransientError("this number, later", scope="message").scope == "message"


def test_transient_error_refuses_an_unknown_scope() -> None:
    with pytest.raises(ValueError, match="scope"):
        TransientError("x", scope="everything")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Retry-After

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Thu, 26 Nov 2026 12:00:30 GMT", 30.0),
        ("Thu, 26 Nov 2026 11:59:00 GMT", 0.0),  # already past
        (None, None),
        ("", None),
        ("-3", None),
        ("soon", None),
        ("1.5", None),  # RFC 9110: delay-seconds is an integer
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


# --------------------------------------------------------------------------- Twilio

TWILIO_TABLE = [
    # status, code, kind, reason (permanent) or ambiguous (transient)
    (429, 20429, TransientError, False),
    (500, 20500, TransientError, True),
    (502, 502, TransientError, True),
    (503, 503, TransientError, True),  # an HTML 503: the SDK falls back to the HTTP status
    (401, 20003, PermanentError, "provider"),
    (400, 21211, PermanentError, "number"),
    (400, 21612, PermanentError, "number"),
    (400, 21614, PermanentError, "number"),
    (400, 21408, PermanentError, "number"),
    (400, 21610, PermanentError, "opted_out"),
    (400, 21606, PermanentError, "provider"),
    (400, 21212, PermanentError, "provider"),
    (400, 21611, TransientError, False),
    (400, 21602, PermanentError, "provider"),  # another 4xx: permanent
    (404, 20404, PermanentError, "provider"),
]


@pytest.mark.parametrize(("status", "code", "kind", "detail"), TWILIO_TABLE)
def test_twilio_rest_errors_are_sorted_by_status_then_code(
    status: int, code: int, kind: type[NotifyError], detail: object
) -> None:
    error = translate_twilio_error(twilio_rest_error(status, code))
    assert type(error) is kind
    assert error.code == code
    assert error.provider == "twilio"
    if isinstance(error, PermanentError):
        assert error.reason == detail
    else:
        assert isinstance(error, TransientError)
        assert error.ambiguous is detail


def test_twilio_21610_is_an_opt_out() -> None:
    error = translate_twilio_error(twilio_rest_error(400, 21610))
    assert isinstance(error, PermanentError)
    assert error.opted_out


@pytest.mark.parametrize("status", [429, 503])
def test_twilio_retry_after_is_carried_on_transient_answers(status: int) -> None:
    error = translate_twilio_error(twilio_rest_error(status, 20000 + status), retry_after_s=7.0)
    assert isinstance(error, TransientError)
    assert error.retry_after_s == 7.0


def test_twilio_message_has_no_terminal_colours() -> None:
    error = translate_twilio_error(twilio_rest_error(400, 21211))
    assert "\033[" not in str(error)
    assert str(error) == "HTTP 400: Unable to create record: x"


@pytest.mark.parametrize(
    ("status", "kind"), [(429, TransientError), (503, TransientError), (400, PermanentError)]
)
def test_twilio_service_exceptions_follow_the_same_status_rules(
    status: int, kind: type[NotifyError]
) -> None:
    exc = TwilioServiceException("about:blank", "Problem", status, 12345, detail="why")
    error = translate_twilio_error(exc)
    assert type(error) is kind
    assert error.code == 12345
    assert "Problem: why" in str(error)


def test_connection_refused_is_transient_and_not_ambiguous() -> None:
    exc = aiohttp.ClientConnectorError(connection_key(), ConnectionRefusedError(111, "refused"))
    error = translate_twilio_error(exc)
    assert isinstance(error, TransientError)
    assert error.ambiguous is False


def test_unresolvable_host_is_transient_and_not_ambiguous() -> None:
    exc = aiohttp.ClientConnectorDNSError(connection_key(), OSError(-2, "Name does not resolve"))
    error = translate_twilio_error(exc)
    assert isinstance(error, TransientError)
    assert error.ambiguous is False


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError(),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        aiohttp.ClientPayloadError("truncated"),
    ],
    ids=["timeout", "disconnected", "reset", "payload"],
)
def test_timeouts_and_dropped_connections_are_transient_and_ambiguous(exc: Exception) -> None:
    error = translate_twilio_error(exc)
    assert isinstance(error, TransientError)
    assert error.ambiguous is True
    assert error.code is None


def test_other_twilio_client_errors_are_permanent_provider_errors() -> None:
    error = translate_twilio_error(TwilioException("Credentials are required"))
    assert isinstance(error, PermanentError)
    assert error.reason == "provider"


def test_a_foreign_exception_is_not_translated() -> None:
    with pytest.raises(TypeError, match="KeyError"):
        translate_twilio_error(KeyError("sid"))


# --------------------------------------------------------------------------- HTTP gateway

GATEWAY_TABLE = [
    (200, None, None),
    (202, None, None),
    (400, PermanentError, "provider"),
    (401, PermanentError, "provider"),
    (422, PermanentError, "provider"),
    (418, PermanentError, "provider"),  # unlisted 4xx
    (301, PermanentError, "provider"),  # a redirect: the url is wrong
    (408, TransientError, False),
    (429, TransientError, False),
    (500, TransientError, True),
    (503, TransientError, True),
    (507, TransientError, True),  # unlisted 5xx
    (204, TransientError, True),  # unlisted 2xx: we cannot tell whether it was sent
]


@pytest.mark.parametrize(("status", "kind", "detail"), GATEWAY_TABLE)
def test_gateway_statuses_follow_the_lists_then_the_status_class(
    status: int, kind: type[NotifyError] | None, detail: object
) -> None:
    error = classify_gateway_status(status, provider="gw")
    if kind is None:
        assert error is None
        return
    assert type(error) is kind
    assert error.code == status
    assert error.provider == "gw"
    if isinstance(error, PermanentError):
        assert error.reason == detail
    else:
        assert isinstance(error, TransientError)
        assert error.ambiguous is detail


def test_gateway_lists_override_the_status_class() -> None:
    classify = functools.partial(
        classify_gateway_status,
        success_statuses=(200, 299),
        permanent_statuses=(503,),
        transient_statuses=(409,),
        number_statuses=(400,),
    )
    assert classify(299) is None
    as_permanent = classify(503)
    assert isinstance(as_permanent, PermanentError)
    as_transient = classify(409)
    assert isinstance(as_transient, TransientError)
    assert not as_transient.ambiguous
    as_number = classify(400)
    assert isinstance(as_number, PermanentError)
    assert as_number.reason == "number"


def test_gateway_retry_after_and_detail_are_carried() -> None:
    error = classify_gateway_status(429, retry_after_s=7.0, detail="slow down")
    assert isinstance(error, TransientError)
    assert error.retry_after_s == 7.0
    assert str(error) == "gateway answered HTTP 429: slow down"
