"""Tencent Cloud SMS through the official SDK: sms 2021-01-11, SendSms.

The SDK (tencentcloud-sdk-python-sms on -common) is blocking (requests): every call runs in the
notifier's own bounded thread pool (`max_workers`), never on the event loop. It signs with
TC3-HMAC-SHA256 and retries nothing by default. `endpoint="127.0.0.1:8080", protocol="http"`
points it at a stand-in; `timeout_s` bounds the connect and, again, the read of every request.

A message must carry a `ProviderTemplate`: its TemplateId, and its variables sent in order as
TemplateParamSet; our message id goes as SessionContext (echoed in SendStatusSet and in
PullSmsSendStatusByPhoneNumber). Numbers are sent as E.164 (+86...).

Documented variable limits, checked before sending (`notifiers.mainland.check_template`): no
variable may be or carry a link (https://tencentcloud.com/document/product/382/13301 and
/zh/document/product/382/40659, InvalidParameterValue.ProhibitedUseUrlInTemplateParameter); a
whole message, signature and variable values included, is at most 500 characters; an
individual-verified account's variables are at most 12 characters each (enterprise accounts have
no per-variable limit: the default `max_param_chars=None`); a verification-code variable is 0-6
digits (set `max_param_chars=6` for such a template).

Errors: request-level errors (auth, throttling, Tencent's faults) come as `Response.Error` and
the SDK raises them; a per-number outcome (flow control of one number, a bad number, a
blacklisted one) comes in `SendStatusSet[].Code` of an otherwise good answer. Both go through
`TENCENT_ERRORS` in `classify_tencent_code`; every SDK exception is translated by
`translate_tencent_error`, and only there.

Duplicates: SendSms has no idempotency key. A send that fails ambiguously is remembered, and the
next send of the same message id first asks PullSmsSendStatusByPhoneNumber (`lookup`) whether a
message with that SessionContext was sent (`notifiers.blocking`). The window is wider than
Aliyun's: that API lists a message once its delivery report is in, so a message accepted but not
yet reported is not found and may be sent again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, Literal

import requests
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as sms_models
from tencentcloud.sms.v20210111.sms_client import SmsClient

from notifiers.base import OutboundSms, SendResult
from notifiers.blocking import (
    AmbiguousSends,
    BlockingCalls,
    request_never_left,
    send_at_most_once,
    transport_cause,
)
from notifiers.errors import NotifyError, PermanentError, TransientError
from notifiers.mainland import (
    BEIJING,
    Classification,
    beijing_today,
    check_template,
    mainland_number,
    permanent,
    transient,
    utc_now,
)

__all__ = [
    "TENCENT_ERRORS",
    "TencentSmsNotifier",
    "classify_tencent_code",
    "tencent_number",
    "translate_tencent_error",
]

DEFAULT_ENDPOINT = "sms.tencentcloudapi.com"
PULL_LIMIT = 100  # PullSmsSendStatusByPhoneNumber: Limit <= 100

# Tencent Cloud's documented error codes -> what they mean for us. Sources:
#  [send] SendSms error codes, https://cloud.tencent.com/document/api/382/55981 and the
#         "短信 API 3.0 发送错误码" list, https://cloud.tencent.com/document/api/382/59177
#  [sdk]  tencentcloud/sms/v20210111/errorcodes.py of tencentcloud-sdk-python-sms 3.1.153
#  [common] the common API 3.0 error codes, https://cloud.tencent.com/document/api/382/52075
#  [fc]   default frequency limits: same content to one number once per 30 s, a calendar-day cap
#         per number (https://tencentcloud.com/document/product/382/13303)
TENCENT_ERRORS: dict[str, Classification] = {
    # one number's flow control: only this message waits
    "LimitExceeded.PhoneNumberThirtySecondLimit": transient(scope="message", wait=30.0),  # [fc]
    "LimitExceeded.PhoneNumberOneHourLimit": transient(scope="message", wait=3600.0),  # [sdk]
    "LimitExceeded.PhoneNumberDailyLimit": transient(scope="message", wait="next_day"),  # [fc]
    "LimitExceeded.PhoneNumberSameContentDailyLimit": transient(scope="message", wait="next_day"),
    # the console's frequency policy, whose every rule is per number (30 s / 1 h / day) [send]
    "LimitExceeded.DeliveryFrequencyLimit": transient(scope="message", wait=30.0),
    # the whole account or app
    "RequestLimitExceeded": transient(wait=1.0),  # [common]
    "RequestLimitExceeded.UinLimitExceeded": transient(wait=1.0),  # [common]
    "RequestLimitExceeded.GlobalRegionUinLimitExceeded": transient(wait=1.0),  # [common]
    "RequestLimitExceeded.IPLimitExceeded": transient(wait=1.0),  # [common]
    "LimitExceeded.GlobalSmsSendingRateLimit": transient(wait=1.0),  # [sdk]
    "LimitExceeded.AppDailyLimit": transient(wait="next_day"),  # [sdk] the app's daily cap
    "LimitExceeded.AppMainlandChinaDailyLimit": transient(wait="next_day"),  # [sdk]
    "LimitExceeded.AppGlobalDailyLimit": transient(wait="next_day"),  # [sdk]
    "LimitExceeded.AppCountryOrRegionDailyLimit": transient(wait="next_day"),  # [sdk]
    "LimitExceeded.DailyLimit": transient(wait="next_day"),  # [sdk]
    # the number
    "InvalidParameterValue.IncorrectPhoneNumber": permanent("number"),  # [send]
    "FailedOperation.PhoneNumberInBlacklist": permanent("number"),  # [send] do-not-disturb list
    "FailedOperation.PhoneNumberParseFail": permanent("number"),  # [sdk]
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": permanent("number"),
    "LimitExceeded.PhoneNumberCountLimit": permanent("number"),  # [sdk] over 200 numbers
    "MissingParameter.EmptyPhoneNumberSet": permanent("number"),  # [sdk]
    # our account, signature, template or credentials: the fallback provider may do better
    "FailedOperation.SignatureIncorrectOrUnapproved": permanent("provider"),  # [send]
    "FailedOperation.TemplateIncorrectOrUnapproved": permanent("provider"),  # [send]
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": permanent("provider"),  # [sdk]
    "FailedOperation.TemplateUnapprovedOrNotExist": permanent("provider"),  # [sdk]
    "FailedOperation.MissingSignature": permanent("provider"),  # [sdk]
    "FailedOperation.InsufficientBalanceInSmsPackage": permanent("provider"),  # [send]
    "FailedOperation.ContainSensitiveWord": permanent("provider"),  # [send]
    "FailedOperation.MarketingSendTimeConstraint": permanent("provider"),  # [sdk]
    "FailedOperation.NotEnterpriseCertification": permanent("provider"),  # [sdk]
    "FailedOperation.ProhibitSubAccountUse": permanent("provider"),  # [sdk]
    "InvalidParameterValue.ContentLengthLimit": permanent("provider"),  # [send]
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": permanent("provider"),  # [sdk]
    "InvalidParameterValue.TemplateParameterFormatError": permanent("provider"),  # [sdk]
    "InvalidParameterValue.TemplateParameterLengthLimit": permanent("provider"),  # [sdk]
    "InvalidParameterValue.SdkAppIdNotExist": permanent("provider"),  # [send]
    "InvalidParameter.DirtyWordFound": permanent("provider"),  # [sdk]
    "LimitExceeded.AppCountryOrRegionInBlacklist": permanent("provider"),  # [sdk] app setting
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone": permanent("provider"),  # [sdk]
    "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone": permanent("provider"),  # [sdk]
    "UnauthorizedOperation.RequestIpNotInWhitelist": permanent("provider"),  # [send]
    "UnauthorizedOperation.RequestPermissionDeny": permanent("provider"),  # [send]
    "UnauthorizedOperation.SdkAppIdIsDisabled": permanent("provider"),  # [sdk]
    "UnauthorizedOperation.ServiceSuspendDueToArrears": permanent("provider"),  # [sdk]
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": permanent("provider"),  # [sdk]
    "AuthFailure.SignatureFailure": permanent("provider"),  # [common] wrong secret key
    "AuthFailure.SecretIdNotFound": permanent("provider"),  # [common]
    "AuthFailure.InvalidSecretId": permanent("provider"),  # [common]
    "AuthFailure.SignatureExpire": permanent("provider"),  # [common] our clock is 5 min off
    "AuthFailure.UnauthorizedOperation": permanent("provider"),  # [common] CAM
    "AuthFailure.InvalidAuthorization": permanent("provider"),  # [common]
    "AuthFailure.TokenFailure": permanent("provider"),  # [common]
    "InternalError.RequestTimeException": permanent("provider"),  # [sdk] request time off
    # Tencent's side failed: it may or may not have taken the message
    "InternalError.Timeout": transient(ambiguous=True),  # [send] sending timed out
    "InternalError.SendAndRecvFail": transient(ambiguous=True),  # [sdk]
    "InternalError.OtherError": transient(ambiguous=True),  # [send]
    "InternalError.UnknownError": transient(ambiguous=True),  # [sdk]
    "InternalError.ParseBackendResponseFail": transient(ambiguous=True),  # [sdk]
    "InternalError": transient(ambiguous=True),  # [common]
}


def tencent_number(e164: str, *, provider: str = "tencent") -> str:
    """Our E.164 number as SendSms wants it (E.164 itself), checked: a +86 number must be a
    mainland mobile. PermanentError(reason="number") otherwise."""
    mainland_number(e164, provider=provider)
    return e164


def classify_tencent_code(
    code: str, message: str, *, provider: str = "tencent", now: datetime | None = None
) -> NotifyError:
    """The error a Tencent code means (a SendStatus Code, or a Response.Error Code)."""
    text = f"Tencent {code}: {message}" if message else f"Tencent {code}"
    row = TENCENT_ERRORS.get(code)
    if row is None:
        if code.startswith("InternalError") or code == "ServerNetworkError":
            row = transient(ambiguous=True)
        elif code.startswith("RequestLimitExceeded"):
            row = transient(wait=1.0)
        else:  # AuthFailure.*, UnauthorizedOperation.*, FailedOperation.*, InvalidParameter...
            row = permanent("provider")
    return row.error(text, code=code, provider=provider, now=now or utc_now())


def translate_tencent_error(
    exc: Exception, *, provider: str = "tencent", now: datetime | None = None
) -> NotifyError:
    """The one place where the Tencent SDK's exceptions become ours.

    - `Response.Error` codes: by `TENCENT_ERRORS` (unknown: InternalError* transient and
      ambiguous, RequestLimitExceeded* transient, anything else permanent for the provider).
    - "ServerNetworkError" (an HTTP status other than 200, a gateway's 5xx): transient, ambiguous.
    - "ClientNetworkError": refused or a connect time-out, transient and not ambiguous; a read
      time-out, a reset or abort after the request was written, transient and ambiguous.
    - Other client-side SDK errors ("ClientError", "ClientParamsError"): permanent (provider).
    """
    if not isinstance(exc, TencentCloudSDKException | requests.exceptions.RequestException):
        raise TypeError(f"not a Tencent SDK error: {type(exc).__name__}") from exc
    code = str(getattr(exc, "code", "") or "")
    if code == "ServerNetworkError":
        return TransientError(
            "Tencent answered with an HTTP error", code=code, ambiguous=True, provider=provider
        )
    if code == "ClientNetworkError" or isinstance(exc, requests.exceptions.RequestException):
        cause = transport_cause(exc) or exc
        if request_never_left(cause):
            return TransientError(
                f"cannot connect to Tencent Cloud: {type(cause).__name__}", provider=provider
            )
        if isinstance(cause, requests.exceptions.Timeout | TimeoutError):
            return TransientError(
                "Tencent Cloud did not answer in time", ambiguous=True, provider=provider
            )
        return TransientError(
            f"connection to Tencent Cloud failed: {type(cause).__name__}",
            ambiguous=True,
            provider=provider,
        )
    if code in ("ClientError", "ClientParamsError", ""):
        return PermanentError(f"Tencent SDK error: {exc}", code=code or None, provider=provider)
    return classify_tencent_code(
        code, str(getattr(exc, "message", "") or ""), provider=provider, now=now
    )


class TencentSmsNotifier:
    """Sends approved templates with Tencent Cloud SendSms.

    `sdk_app_id` is the SMS application (SmsSdkAppId, "1400006666"); `sign_name` the approved
    signature; `secret_id` / `secret_key` a CAM key with SMS rights; `endpoint` and `protocol`
    override the public endpoint; `timeout_s` bounds the connect and the read of each request;
    `max_workers` the requests on the wire at once; `max_param_chars` each template variable
    (None: an enterprise account, no per-variable limit; 12 for an individual account)."""

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        region: str = "ap-guangzhou",
        endpoint: str | None = None,
        protocol: Literal["https", "http"] = "https",
        timeout_s: float = 10.0,
        max_workers: int = 4,
        max_param_chars: int | None = None,
        name: str = "tencent",
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        if not secret_id or not secret_key:
            raise ValueError("secret_id and secret_key are required")
        if not sdk_app_id or not sign_name:
            raise ValueError("sdk_app_id and sign_name (the approved signature) are required")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, not {timeout_s!r}")
        self.name = name
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.max_param_chars = max_param_chars
        self._now = now
        self._credential = credential.Credential(secret_id, secret_key)
        self._region = region
        self._http = dict(endpoint=endpoint or DEFAULT_ENDPOINT, protocol=protocol)
        self._timeout_s = float(timeout_s)
        self._local = threading.local()  # one SDK client (and HTTP session) per pool thread
        self._calls = BlockingCalls(max_workers, thread_name_prefix=f"{name}-sdk")
        self._ambiguous = AmbiguousSends()

    @property
    def max_workers(self) -> int:
        return self._calls.max_workers

    @property
    def pool(self) -> BlockingCalls:
        """The notifier's thread pool: `running` and `queued` calls, for metrics."""
        return self._calls

    async def send(self, message: OutboundSms) -> SendResult:
        template = check_template(
            message, provider=self.name, max_param_chars=self.max_param_chars, allow_empty=True
        )
        request = sms_models.SendSmsRequest()
        request.SmsSdkAppId = self.sdk_app_id
        request.SignName = self.sign_name
        request.TemplateId = template.code
        request.TemplateParamSet = list(template.params.values())
        request.PhoneNumberSet = [tencent_number(message.to, provider=self.name)]
        request.SessionContext = message.message_id
        return await send_at_most_once(
            message,
            send=lambda _: self._send(request),
            lookup=self.lookup,
            ambiguous=self._ambiguous,
            today=beijing_today(self._now),
            provider=self.name,
        )

    async def _send(self, request: Any) -> SendResult:
        response = await self._call("SendSms", request)
        statuses = list(response.SendStatusSet or [])
        if len(statuses) != 1:
            raise TransientError(
                f"Tencent answered {len(statuses)} send statuses for one number",
                ambiguous=True,
                provider=self.name,
            )
        status = statuses[0]
        code = str(status.Code or "")
        if code != "Ok":
            raise classify_tencent_code(
                code, str(status.Message or ""), provider=self.name, now=self._now()
            )
        return SendResult(self.name, str(status.SerialNo), "queued")

    async def lookup(self, message: OutboundSms, sent_on: date) -> SendResult | None:
        """Whether Tencent sent a message with our id (SessionContext) to this number on
        `sent_on` (a Beijing calendar day), by PullSmsSendStatusByPhoneNumber. The answer's id
        is Tencent's SerialNo, its status "delivered" or "undelivered". None: not found (not
        sent, or not reported yet: see the module docstring)."""
        begin = datetime.combine(sent_on, datetime.min.time(), BEIJING)
        request = sms_models.PullSmsSendStatusByPhoneNumberRequest()
        request.BeginTime = int(begin.timestamp())
        request.EndTime = int((begin + timedelta(days=1)).timestamp())
        request.Offset = 0
        request.Limit = PULL_LIMIT
        request.PhoneNumber = tencent_number(message.to, provider=self.name)
        request.SmsSdkAppId = self.sdk_app_id
        response = await self._call("PullSmsSendStatusByPhoneNumber", request)
        for record in response.PullSmsSendStatusSet or []:
            if record.SessionContext == message.message_id:
                status = "delivered" if record.ReportStatus == "SUCCESS" else "undelivered"
                return SendResult(self.name, str(record.SerialNo), status)
        return None

    async def _call(self, action: str, request: Any) -> Any:
        try:
            return await self._calls.run(self._blocking_call, action, request)
        except (TencentCloudSDKException, requests.exceptions.RequestException) as exc:
            raise translate_tencent_error(exc, provider=self.name, now=self._now()) from exc

    def _blocking_call(self, action: str, request: Any) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            http = HttpProfile(reqTimeout=self._timeout_s, **self._http)
            profile = ClientProfile(httpProfile=http)
            client = self._local.client = SmsClient(self._credential, self._region, profile)
        return getattr(client, action)(request)

    async def close(self) -> None:
        self._calls.close()

    @property
    def closed(self) -> bool:
        return self._calls.closed
