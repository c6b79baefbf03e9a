"""Tencent Cloud: every documented code of the table on its own expected verdict, the SDK's
exceptions translated in one place, and numbers checked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from notifiers import (
    TENCENT_ERRORS,
    PermanentError,
    TransientError,
    classify_tencent_code,
    tencent_number,
    translate_tencent_error,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # 20:00 in Beijing: 4 h to its midnight
NEXT_DAY_S = 4 * 3600.0

# code -> the expected verdict, written out independently of the module's table:
# ("transient", scope, retry_after_s, ambiguous) or ("permanent", reason)
EXPECTED: dict[str, tuple[object, ...]] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": ("transient", "message", 30.0, False),
    "LimitExceeded.PhoneNumberOneHourLimit": ("transient", "message", 3600.0, False),
    "LimitExceeded.PhoneNumberDailyLimit": ("transient", "message", NEXT_DAY_S, False),
    "LimitExceeded.PhoneNumberSameContentDailyLimit": ("transient", "message", NEXT_DAY_S, False),
    "LimitExceeded.DeliveryFrequencyLimit": ("transient", "message", 30.0, False),
    "RequestLimitExceeded": ("transient", "account", 1.0, False),
    "RequestLimitExceeded.UinLimitExceeded": ("transient", "account", 1.0, False),
    "RequestLimitExceeded.GlobalRegionUinLimitExceeded": ("transient", "account", 1.0, False),
    "RequestLimitExceeded.IPLimitExceeded": ("transient", "account", 1.0, False),
    "LimitExceeded.GlobalSmsSendingRateLimit": ("transient", "account", 1.0, False),
    "LimitExceeded.AppDailyLimit": ("transient", "account", NEXT_DAY_S, False),
    "LimitExceeded.AppMainlandChinaDailyLimit": ("transient", "account", NEXT_DAY_S, False),
    "LimitExceeded.AppGlobalDailyLimit": ("transient", "account", NEXT_DAY_S, False),
    "LimitExceeded.AppCountryOrRegionDailyLimit": ("transient", "account", NEXT_DAY_S, False),
    "LimitExceeded.DailyLimit": ("transient", "account", NEXT_DAY_S, False),
    "InvalidParameterValue.IncorrectPhoneNumber": ("permanent", "number"),
    "FailedOperation.PhoneNumberInBlacklist": ("permanent", "number"),
    "FailedOperation.PhoneNumberParseFail": ("permanent", "number"),
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": ("permanent", "number"),
    "LimitExceeded.PhoneNumberCountLimit": ("permanent", "number"),
    "MissingParameter.EmptyPhoneNumberSet": ("permanent", "number"),
    "FailedOperation.SignatureIncorrectOrUnapproved": ("permanent", "provider"),
    "FailedOperation.TemplateIncorrectOrUnapproved": ("permanent", "provider"),
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": ("permanent", "provider"),
    "FailedOperation.TemplateUnapprovedOrNotExist": ("permanent", "provider"),
    "FailedOperation.MissingSignature": ("permanent", "provider"),
    "FailedOperation.InsufficientBalanceInSmsPackage": ("permanent", "provider"),
    "FailedOperation.ContainSensitiveWord": ("permanent", "provider"),
    "FailedOperation.MarketingSendTimeConstraint": ("permanent", "provider"),
    "FailedOperation.NotEnterpriseCertification": ("permanent", "provider"),
    "FailedOperation.ProhibitSubAccountUse": ("permanent", "provider"),
    "InvalidParameterValue.ContentLengthLimit": ("permanent", "provider"),
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": ("permanent", "provider"),
    "InvalidParameterValue.TemplateParameterFormatError": ("permanent", "provider"),
    "InvalidParameterValue.TemplateParameterLengthLimit": ("permanent", "provider"),
    "InvalidParameterValue.SdkAppIdNotExist": ("permanent", "provider"),
    "InvalidParameter.DirtyWordFound": ("permanent", "provider"),
    "LimitExceeded.AppCountryOrRegionInBlacklist": ("permanent", "provider"),
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone": ("permanent", "provider"),
    "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone": ("permanent", "provider"),
    "UnauthorizedOperation.RequestIpNotInWhitelist": ("permanent", "provider"),
    "UnauthorizedOperation.RequestPermissionDeny": ("permanent", "provider"),
    "UnauthorizedOperation.SdkAppIdIsDisabled": ("permanent", "provider"),
    "UnauthorizedOperation.ServiceSuspendDueToArrears": ("permanent", "provider"),
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": ("permanent", "provider"),
    "AuthFailure.SignatureFailure": ("permanent", "provider"),
    "AuthFailure.SecretIdNotFound": ("permanent", "provider"),
    "AuthFailure.InvalidSecretId": ("permanent", "provider"),
    "AuthFailure.SignatureExpire": ("permanent", "provider"),
    "AuthFailure.UnauthorizedOperation": ("permanent", "provider"),
    "AuthFailure.InvalidAuthorization": ("permanent", "provider"),
    "AuthFailure.TokenFailure": ("permanent", "provider"),
    "InternalError.RequestTimeException": ("permanent", "provider"),
    "InternalError.Timeout": ("transient", "account", None, True),
    "InternalError.SendAndRecvFail": ("transient", "account", None, True),
    "InternalError.OtherError": ("transient", "account", None, True),
    "InternalError.UnknownError": ("transient", "account", None, True),
    "InternalError.ParseBackendResponseFail": ("transient", "account", None, True),
    "InternalError": ("transient", "account", None, True),
}


def assert_verdict(error: object, expected: tuple[object, ...]) -> None:
    if expected[0] == "permanent":
        assert isinstance(error, PermanentError)
        assert error.reason == expected[1]
    else:
        assert isinstance(error, TransientError)
        assert (error.scope, error.retry_after_s, error.ambiguous) == expected[1:]


def test_the_table_holds_exactly_the_expected_codes() -> None:
    assert set(TENCENT_ERRORS) == set(EXPECTED)


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_each_documented_code_means_what_it_should(code: str, expected: tuple[object, ...]) -> None:
    error = classify_tencent_code(code, "", now=NOW)
    assert_verdict(error, expected)
    assert (error.code, error.provider) == (code, "tencent")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AuthFailure.SomethingNew", ("permanent", "provider")),
        ("UnauthorizedOperation.SomethingNew", ("permanent", "provider")),
        ("FailedOperation.SomethingNew", ("permanent", "provider")),
        ("InternalError.SomethingNew", ("transient", "account", None, True)),
        ("RequestLimitExceeded.SomethingNew", ("transient", "account", 1.0, False)),
    ],
)
def test_unknown_codes_follow_their_family(code: str, expected: tuple[object, ...]) -> None:
    assert_verdict(classify_tencent_code(code, "", now=NOW), expected)


# --------------------------------------------------------------------------- SDK exceptions


def test_a_response_error_is_read_by_its_code() -> None:
    exc = TencentCloudSDKException("AuthFailure.SignatureFailure", "The provided credentials...")
    error = translate_tencent_error(exc, now=NOW)
    assert isinstance(error, PermanentError)
    assert (error.code, error.reason) == ("AuthFailure.SignatureFailure", "provider")


def test_an_http_error_of_a_gateway_is_transient_and_ambiguous() -> None:
    error = translate_tencent_error(TencentCloudSDKException("ServerNetworkError", b"<html>"))
    assert isinstance(error, TransientError)
    assert error.ambiguous is True


def network_error(cause: Exception) -> TencentCloudSDKException:
    """What the SDK raises for a requests failure: ClientNetworkError, the cause as context."""
    exc = TencentCloudSDKException("ClientNetworkError", str(cause))
    exc.__context__ = cause
    return exc


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
    error = translate_tencent_error(network_error(cause), now=NOW)
    assert isinstance(error, TransientError)
    assert error.ambiguous is ambiguous


@pytest.mark.parametrize("code", ["ClientError", "ClientParamsError"])
def test_a_client_side_sdk_error_is_permanent_for_the_provider(code: str) -> None:
    error = translate_tencent_error(TencentCloudSDKException(code, "bad argument"))
    assert isinstance(error, PermanentError)
    assert error.reason == "provider"


def test_a_foreign_exception_is_refused() -> None:
    with pytest.raises(TypeError):
        translate_tencent_error(RuntimeError("bug"))


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("e164", ["+8613812345678", "+85261234567"])
def test_numbers_are_sent_as_e164(e164: str) -> None:
    assert tencent_number(e164) == e164


@pytest.mark.parametrize("bad", ["13812345678", "+8601012345678", "+86 138 1234 5678"])
def test_a_number_tencent_cannot_take_is_a_number_error(bad: str) -> None:
    with pytest.raises(PermanentError) as raised:
        tencent_number(bad)
    assert raised.value.reason == "number"
