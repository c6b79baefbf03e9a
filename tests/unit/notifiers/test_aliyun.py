"""Aliyun: every documented code of the table on its own expected verdict, the SDK's exceptions
translated in one place, and numbers in the form SendSms wants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.policy.retry import RetryPolicyContext
from Tea.exceptions import TeaException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from notifiers import (
    ALIYUN_ERRORS,
    PermanentError,
    TransientError,
    aliyun_number,
    classify_aliyun_code,
    translate_aliyun_error,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # 20:00 in Beijing: 4 h to its midnight
NEXT_BEIJING_DAY_S = 4 * 3600.0

# code -> the expected verdict, written out independently of the module's table:
# ("transient", scope, retry_after_s, ambiguous) or ("permanent", reason)
EXPECTED: dict[str, tuple[object, ...]] = {
    "isv.BUSINESS_LIMIT_CONTROL": ("transient", "message", 60.0, False),
    "isv.DAY_LIMIT_CONTROL": ("transient", "account", NEXT_BEIJING_DAY_S, False),
    "Throttling.User": ("transient", "account", 1.0, False),
    "Throttling": ("transient", "account", 1.0, False),
    "Throttling.Api": ("transient", "account", 1.0, False),
    "isv.MOBILE_NUMBER_ILLEGAL": ("permanent", "number"),
    "isv.MOBILE_COUNT_OVER_LIMIT": ("permanent", "number"),
    "isv.SMS_SIGNATURE_ILLEGAL": ("permanent", "provider"),
    "isv.SMS_SIGN_ILLEGAL": ("permanent", "provider"),
    "isv.SIGN_STATE_ILLEGAL": ("permanent", "provider"),
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": ("permanent", "provider"),
    "isv.SMS_TEMPLATE_ILLEGAL": ("permanent", "provider"),
    "isv.TEMPLATE_MISSING_PARAMETERS": ("permanent", "provider"),
    "isv.INVALID_JSON_PARAM": ("permanent", "provider"),
    "isv.INVALID_PARAMETERS": ("permanent", "provider"),
    "isv.PARAM_LENGTH_LIMIT": ("permanent", "provider"),
    "isv.PARAM_NOT_SUPPORT_URL": ("permanent", "provider"),
    "isv.BLACK_KEY_CONTROL_LIMIT": ("permanent", "provider"),
    "isv.SMS_CONTENT_ILLEGAL": ("permanent", "provider"),
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": ("permanent", "provider"),
    "isv.EXTEND_CODE_ERROR": ("permanent", "provider"),
    "isv.DENY_IP_RANGE": ("permanent", "provider"),
    "isv.MONTH_LIMIT_CONTROL": ("permanent", "provider"),
    "isv.AMOUNT_NOT_ENOUGH": ("permanent", "provider"),
    "isv.OUT_OF_SERVICE": ("permanent", "provider"),
    "isv.PRODUCT_UN_SUBSCRIPT": ("permanent", "provider"),
    "isv.PRODUCT_UNSUBSCRIBE": ("permanent", "provider"),
    "isv.ACCOUNT_NOT_EXISTS": ("permanent", "provider"),
    "isv.ACCOUNT_ABNORMAL": ("permanent", "provider"),
    "isp.RAM_PERMISSION_DENY": ("permanent", "provider"),
    "InvalidAccessKeyId.NotFound": ("permanent", "provider"),
    "InvalidAccessKeyId.Inactive": ("permanent", "provider"),
    "SignatureDoesNotMatch": ("permanent", "provider"),
    "IncompleteSignature": ("permanent", "provider"),
    "Forbidden.RAM": ("permanent", "provider"),
    "isp.SYSTEM_ERROR": ("transient", "account", None, True),
    "InternalError": ("transient", "account", None, True),
    "ServiceUnavailable": ("transient", "account", None, True),
}


def assert_verdict(error: object, expected: tuple[object, ...]) -> None:
    if expected[0] == "permanent":
        assert isinstance(error, PermanentError)
        assert error.reason == expected[1]
    else:
        assert isinstance(error, TransientError)
        assert (error.scope, error.retry_after_s, error.ambiguous) == expected[1:]


def test_the_table_holds_exactly_the_expected_codes() -> None:
    assert set(ALIYUN_ERRORS) == set(EXPECTED)


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_each_documented_code_means_what_it_should(code: str, expected: tuple[object, ...]) -> None:
    error = classify_aliyun_code(code, "", provider="aliyun", now=NOW)
    assert_verdict(error, expected)
    assert error.code == code
    assert error.provider == "aliyun"


@pytest.mark.parametrize(
    ("message", "wait_s"),
    [
        ("触发分钟级流控Permits:1", 60.0),
        ("触发小时级流控Permits:5", 3600.0),
        ("触发天级流控Permits:10", 86400.0),
    ],
)
def test_one_numbers_flow_control_waits_as_long_as_its_window(message: str, wait_s: float) -> None:
    error = classify_aliyun_code("isv.BUSINESS_LIMIT_CONTROL", message, now=NOW)
    assert isinstance(error, TransientError)
    assert (error.scope, error.retry_after_s) == ("message", wait_s)


def test_an_unknown_business_code_is_permanent_for_the_provider() -> None:
    error = classify_aliyun_code("isv.SOMETHING_NEW", "新的错误", now=NOW)
    assert isinstance(error, PermanentError)
    assert error.reason == "provider"


@pytest.mark.parametrize("code", ["isp.GATEWAY_ERROR", "Something.Else"])
def test_an_unknown_platform_or_server_error_is_transient_and_ambiguous(code: str) -> None:
    error = classify_aliyun_code(code, "", now=NOW, status=502 if "Else" in code else None)
    assert isinstance(error, TransientError)
    assert error.ambiguous is True


# --------------------------------------------------------------------------- SDK exceptions


def test_a_client_exception_is_read_by_its_code() -> None:
    exc = ClientException(
        status_code=400,
        code="SignatureDoesNotMatch",
        message="code: 400, Specified signature does not match our calculation.",
        data={"Code": "SignatureDoesNotMatch", "Message": "Specified signature ..."},
    )
    error = translate_aliyun_error(exc, now=NOW)
    assert isinstance(error, PermanentError)
    assert (error.code, error.reason) == ("SignatureDoesNotMatch", "provider")


def test_a_server_exception_with_an_unknown_code_is_transient_and_ambiguous() -> None:
    exc = ServerException(status_code=502, code="BadGateway", message="x", data={})
    error = translate_aliyun_error(exc, now=NOW)
    assert isinstance(error, TransientError)
    assert error.ambiguous is True


def test_a_throttling_exception_waits_the_time_aliyun_gives_in_milliseconds() -> None:
    exc = ThrottlingException(
        status_code=400, code="Throttling.User", message="x", retry_after=2500, data={}
    )
    error = translate_aliyun_error(exc, now=NOW)
    assert isinstance(error, TransientError)
    assert (error.scope, error.retry_after_s) == ("account", 2.5)


def wrapped_transport_error(cause: Exception) -> UnretryableException:
    """What the SDK raises for a requests failure: RetryError (context: the cause) inside
    UnretryableException."""
    try:
        try:
            raise cause
        except OSError as exc:
            raise RetryError(str(exc)) from None  # the SDK keeps it only as __context__
    except RetryError as retry:
        retry.__context__ = cause
        return UnretryableException(RetryPolicyContext(retries_attempted=1, exception=retry))


def refused() -> requests.exceptions.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cause", "ambiguous"),
    [
        (refused(), False),
        (requests.exceptions.ConnectTimeout("connect timed out"), False),
        (requests.exceptions.ReadTimeout("read timed out"), True),
        (requests.exceptions.ConnectionError("Connection aborted: reset by peer"), True),
    ],
)
def test_transport_failures_are_ambiguous_only_once_the_request_may_have_left(
    cause: Exception, ambiguous: bool
) -> None:
    error = translate_aliyun_error(wrapped_transport_error(cause), now=NOW)
    assert isinstance(error, TransientError)
    assert error.ambiguous is ambiguous
    assert error.scope == "account"


def test_another_sdk_error_is_permanent_for_the_provider() -> None:
    error = translate_aliyun_error(TeaException({"code": "ValidateError", "message": "x"}))
    assert isinstance(error, PermanentError)
    assert error.reason == "provider"


def test_a_foreign_exception_is_refused() -> None:
    with pytest.raises(TypeError):
        translate_aliyun_error(RuntimeError("bug"))


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("e164", "sent"),
    [("+8613812345678", "13812345678"), ("+85261234567", "0085261234567")],
)
def test_numbers_are_sent_as_aliyun_wants_them(e164: str, sent: str) -> None:
    assert aliyun_number(e164) == sent


@pytest.mark.parametrize("bad", ["13812345678", "+86010123456", "+86138123456789", "+0123"])
def test_a_number_aliyun_cannot_take_is_a_number_error(bad: str) -> None:
    with pytest.raises(PermanentError) as raised:
        aliyun_number(bad)
    assert (raised.value.reason, raised.value.code) == ("number", "invalid_number")
