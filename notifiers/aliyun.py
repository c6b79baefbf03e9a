"""Aliyun (Alibaba Cloud) SMS through the official SDK: dysmsapi 2017-05-25, SendSms.

The SDK (alibabacloud-dysmsapi20170525 4.x on alibabacloud-tea-openapi) is blocking (requests):
every call runs in the notifier's own bounded thread pool (`max_workers`), never on the event
loop. It signs with ACS3-HMAC-SHA256 (the V3 signature, in the Authorization header) and makes
no retries of its own. `endpoint="127.0.0.1:8080", protocol="http"` points it at a stand-in.

A message must carry a `ProviderTemplate`: TemplateCode and its variables, sent as the JSON
TemplateParam; our message id goes as OutId, and comes back in receipts and in QuerySendDetails.
Numbers: a +86 number is sent as its 11 national digits, any other as 00 + country code + number
(Aliyun's international form).

Documented variable limits, checked before sending (`notifiers.mainland.check_template`):
a notification template's variable is 1 to 35 characters (templates applied for since
2018-01-10, https://developer.aliyun.com/ask/220871; isv.PARAM_LENGTH_LIMIT), not empty, and
never a link (isv.PARAM_NOT_SUPPORT_URL, https://developer.aliyun.com/ask/643204: links must be
fixed template text); a template with its variables is at most 500 characters
(https://help.aliyun.com/document_detail/463270.htm). Set `max_param_chars` lower for a template
whose variables are typed narrower (a 4-6 digit verification code, for example).

Errors: SendSms answers business errors in a 200 body (`Code` other than "OK"); auth and
throttling errors come as HTTP 4xx, platform faults as 5xx. Both go through `ALIYUN_ERRORS`
(one row per documented code) in `classify_aliyun_code`; every SDK exception is translated by
`translate_aliyun_error`, and only there.

Duplicates: SendSms has no idempotency key. A send that fails ambiguously is remembered, and the
next send of the same message id first asks QuerySendDetails (`lookup`) whether a message with
that OutId was accepted (`notifiers.blocking`, which also says what window remains).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

import requests
from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi.models import Config
from darabonba.exceptions import ResponseException
from Tea.exceptions import TeaException

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
    Classification,
    beijing_today,
    check_template,
    mainland_number,
    permanent,
    transient,
    utc_now,
)

__all__ = [
    "ALIYUN_ERRORS",
    "AliyunSmsNotifier",
    "aliyun_number",
    "classify_aliyun_code",
    "translate_aliyun_error",
]

DEFAULT_ENDPOINT = "dysmsapi.aliyuncs.com"
QUERY_PAGE_SIZE = 50  # QuerySendDetails: PageSize 1..50
QUERY_MAX_PAGES = 20

# Aliyun's documented error codes -> what they mean for us. Sources:
#  [api] help.aliyun.com/zh/sms/developer-reference/api-error-codes (document_detail/101346)
#  [fc]  developer.aliyun.com/ask/474934 and /ask/652244 (flow control of one number: per
#        signature, 1/min, 5/h, 10 per rolling 24 h for codes; 50/day per template for notices)
#  [old] the original Alidayu list of SendSms codes (isv.PARAM_LENGTH_LIMIT...)
#  [pop] Alibaba Cloud's common OpenAPI gateway errors (auth, throttling, 5xx)
ALIYUN_ERRORS: dict[str, Classification] = {
    # one number's flow control: only this message waits ([fc]; the wait is refined from the
    # message's 分钟级/小时级/天级 by classify_aliyun_code)
    "isv.BUSINESS_LIMIT_CONTROL": transient(scope="message", wait=60.0),  # [api] [fc]
    # the whole account
    "isv.DAY_LIMIT_CONTROL": transient(wait="next_day"),  # [api] daily cap set in the console
    "Throttling.User": transient(wait=1.0),  # [pop] user flow control of the API
    "Throttling": transient(wait=1.0),  # [pop]
    "Throttling.Api": transient(wait=1.0),  # [pop]
    # the number
    "isv.MOBILE_NUMBER_ILLEGAL": permanent("number"),  # [api] malformed number
    "isv.MOBILE_COUNT_OVER_LIMIT": permanent("number"),  # [api] too many numbers in the field
    # our account, signature, template or credentials: the fallback provider may do better
    "isv.SMS_SIGNATURE_ILLEGAL": permanent("provider"),  # [api] signature not approved
    "isv.SMS_SIGN_ILLEGAL": permanent("provider"),  # [api] signature forbidden
    "isv.SIGN_STATE_ILLEGAL": permanent("provider"),  # [api] signature unusable
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": permanent("provider"),  # [api] signature/template kind
    "isv.SMS_TEMPLATE_ILLEGAL": permanent("provider"),  # [api] template not approved
    "isv.TEMPLATE_MISSING_PARAMETERS": permanent("provider"),  # [api] a variable has no value
    "isv.INVALID_JSON_PARAM": permanent("provider"),  # [api] TemplateParam is not JSON strings
    "isv.INVALID_PARAMETERS": permanent("provider"),  # [api]
    "isv.PARAM_LENGTH_LIMIT": permanent("provider"),  # [old] a variable is too long
    "isv.PARAM_NOT_SUPPORT_URL": permanent("provider"),  # [old] a link in a variable
    "isv.BLACK_KEY_CONTROL_LIMIT": permanent("provider"),  # [old] blacklisted word in variables
    "isv.SMS_CONTENT_ILLEGAL": permanent("provider"),  # [api] forbidden content
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": permanent("provider"),  # [api] intl template, +86
    "isv.EXTEND_CODE_ERROR": permanent("provider"),  # [api]
    "isv.DENY_IP_RANGE": permanent("provider"),  # [api] our IP is outside the mainland
    "isv.MONTH_LIMIT_CONTROL": permanent("provider"),  # [api] monthly cap: raise it by hand
    "isv.AMOUNT_NOT_ENOUGH": permanent("provider"),  # [api] balance
    "isv.OUT_OF_SERVICE": permanent("provider"),  # [api] service stopped (balance)
    "isv.PRODUCT_UN_SUBSCRIPT": permanent("provider"),  # [api] SMS not opened
    "isv.PRODUCT_UNSUBSCRIBE": permanent("provider"),  # [api]
    "isv.ACCOUNT_NOT_EXISTS": permanent("provider"),  # [api]
    "isv.ACCOUNT_ABNORMAL": permanent("provider"),  # [api]
    "isp.RAM_PERMISSION_DENY": permanent("provider"),  # [api] RAM user lacks SMS rights
    "InvalidAccessKeyId.NotFound": permanent("provider"),  # [pop] HTTP 404
    "InvalidAccessKeyId.Inactive": permanent("provider"),  # [pop]
    "SignatureDoesNotMatch": permanent("provider"),  # [pop] wrong secret, HTTP 400
    "IncompleteSignature": permanent("provider"),  # [pop]
    "Forbidden.RAM": permanent("provider"),  # [pop]
    # Aliyun's side failed: it may or may not have taken the message
    "isp.SYSTEM_ERROR": transient(ambiguous=True),  # [api] [old]
    "InternalError": transient(ambiguous=True),  # [pop] HTTP 500
    "ServiceUnavailable": transient(ambiguous=True),  # [pop] HTTP 503
}

_FLOW_CONTROL_WAITS_S: tuple[tuple[str, float], ...] = (
    ("分钟级", 60.0),  # "触发分钟级流控Permits:1"
    ("小时级", 3600.0),  # "触发小时级流控Permits:5"
    ("天级", 24 * 3600.0),  # "触发天级流控Permits:10": a rolling 24 h [fc]
)
_PERMITS = re.compile(r"Permits:\s*\d+")


def aliyun_number(e164: str, *, provider: str = "aliyun") -> str:
    """Our E.164 number as SendSms wants it: 11 digits for +86, else 00 + the digits.
    PermanentError(reason="number") when it is not E.164 or not a mainland mobile."""
    national = mainland_number(e164, provider=provider)
    return national if national is not None else "00" + e164[1:]


def classify_aliyun_code(
    code: str,
    message: str,
    *,
    provider: str = "aliyun",
    now: datetime | None = None,
    status: int | None = None,
    retry_after_s: float | None = None,
) -> NotifyError:
    """The error an Aliyun code means (a SendSms body's Code, or an HTTP error's Code)."""
    moment = now or utc_now()
    text = f"Aliyun {code}: {message}" if message else f"Aliyun {code}"
    row = ALIYUN_ERRORS.get(code)
    if row is None:
        if (status is not None and status >= 500) or code.startswith("isp."):
            row = transient(ambiguous=True)
        else:
            row = permanent("provider")
    elif code == "isv.BUSINESS_LIMIT_CONTROL" and retry_after_s is None:
        retry_after_s = next((s for mark, s in _FLOW_CONTROL_WAITS_S if mark in message), None)
    return row.error(text, code=code, provider=provider, now=moment, retry_after_s=retry_after_s)


def translate_aliyun_error(
    exc: Exception, *, provider: str = "aliyun", now: datetime | None = None
) -> NotifyError:
    """The one place where the Aliyun SDK's exceptions become ours.

    - An HTTP error with Aliyun's code (ClientException 4xx, ServerException 5xx,
      ThrottlingException): by `ALIYUN_ERRORS`; an unknown code is permanent (provider) for
      4xx, transient and ambiguous for 5xx.
    - Transport: refused or a connect time-out, transient and not ambiguous (nothing left);
      a read time-out, a reset or an abort after the request was written, transient and
      ambiguous.
    - Any other SDK error (a bad argument, an unreadable answer): permanent (provider).
    """
    if isinstance(exc, ResponseException) and exc.code and exc.code != "None":
        retry_after_ms = getattr(exc, "retry_after", None)
        return classify_aliyun_code(
            str(exc.code),
            _describe(exc),
            provider=provider,
            now=now,
            status=getattr(exc, "status_code", None),
            retry_after_s=retry_after_ms / 1000.0 if retry_after_ms else None,
        )
    if isinstance(exc, ResponseException):
        status = getattr(exc, "status_code", None) or 0
        if status >= 500:
            return TransientError(
                f"Aliyun answered HTTP {status}", code=status, ambiguous=True, provider=provider
            )
        return PermanentError(f"Aliyun answered HTTP {status}", code=status, provider=provider)
    cause = transport_cause(exc)
    if cause is not None:
        if request_never_left(cause):
            return TransientError(
                f"cannot connect to Aliyun: {type(cause).__name__}", provider=provider
            )
        if isinstance(cause, requests.exceptions.Timeout | TimeoutError):
            return TransientError(
                "Aliyun did not answer in time", ambiguous=True, provider=provider
            )
        return TransientError(
            f"connection to Aliyun failed: {type(cause).__name__}",
            ambiguous=True,
            provider=provider,
        )
    if isinstance(exc, TeaException):
        return PermanentError(f"Aliyun SDK error: {exc}", code=exc.code, provider=provider)
    raise TypeError(f"not an Aliyun SDK error: {type(exc).__name__}") from exc


def _describe(exc: ResponseException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    message = data.get("Message") or data.get("message") or ""
    return str(message)


_SDK_ERRORS = (TeaException, requests.exceptions.RequestException, OSError)


class AliyunSmsNotifier:
    """Sends approved templates with Aliyun SendSms.

    `sign_name` is the approved signature (SignName); `access_key_id` / `access_key_secret` a
    RAM user's key with SMS rights; `endpoint` and `protocol` override the public endpoint
    (a stand-in, a private network); `connect_timeout_s` and `read_timeout_s` bound every
    request; `max_workers` bounds the requests on the wire at once; `max_param_chars` the length
    of each template variable (35, Aliyun's documented limit for notification templates)."""

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        region_id: str = "cn-hangzhou",
        endpoint: str | None = None,
        protocol: Literal["https", "http"] = "https",
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        max_workers: int = 4,
        max_param_chars: int | None = 35,
        name: str = "aliyun",
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        if not access_key_id or not access_key_secret:
            raise ValueError("access_key_id and access_key_secret are required")
        if not sign_name:
            raise ValueError("sign_name (the approved SMS signature) is required")
        if not (connect_timeout_s > 0 and read_timeout_s > 0):
            raise ValueError("connect_timeout_s and read_timeout_s must be > 0")
        self.name = name
        self.sign_name = sign_name
        self.max_param_chars = max_param_chars
        self._now = now
        self._config = dict(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            region_id=region_id,
            endpoint=endpoint or DEFAULT_ENDPOINT,
            protocol=protocol,
            connect_timeout=max(1, round(connect_timeout_s * 1000)),  # the SDK counts in ms
            read_timeout=max(1, round(read_timeout_s * 1000)),
        )
        self._local = threading.local()  # one SDK client per pool thread
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
            message, provider=self.name, max_param_chars=self.max_param_chars, allow_empty=False
        )
        request = sms_models.SendSmsRequest(
            phone_numbers=aliyun_number(message.to, provider=self.name),
            sign_name=self.sign_name,
            template_code=template.code,
            template_param=json.dumps(dict(template.params), ensure_ascii=False),
            out_id=message.message_id,
        )
        return await send_at_most_once(
            message,
            send=lambda _: self._send(request),
            lookup=self.lookup,
            ambiguous=self._ambiguous,
            today=beijing_today(self._now),
            provider=self.name,
        )

    async def _send(self, request: Any) -> SendResult:
        body = await self._call("send_sms", request)
        code = str(body.code or "")
        if code != "OK":
            raise classify_aliyun_code(
                code, str(body.message or ""), provider=self.name, now=self._now()
            )
        return SendResult(provider=self.name, provider_message_id=str(body.biz_id), status="queued")

    async def lookup(self, message: OutboundSms, sent_on: date) -> SendResult | None:
        """Whether Aliyun accepted a message with our id (OutId) for this number on `sent_on`
        (a Beijing calendar day), by QuerySendDetails. The answer's id is our message id (the
        query does not return BizId); its status "queued" (waiting for the receipt),
        "delivered" or "undelivered". None: no such message that day."""
        for page in range(1, QUERY_MAX_PAGES + 1):
            request = sms_models.QuerySendDetailsRequest(
                phone_number=aliyun_number(message.to, provider=self.name),
                send_date=sent_on.strftime("%Y%m%d"),
                page_size=QUERY_PAGE_SIZE,
                current_page=page,
            )
            body = await self._call("query_send_details", request)
            if str(body.code or "") != "OK":
                raise classify_aliyun_code(
                    str(body.code), str(body.message or ""), provider=self.name, now=self._now()
                )
            details = body.sms_send_detail_dtos
            records = list((details.sms_send_detail_dto if details else None) or [])
            for record in records:
                if record.out_id == message.message_id:
                    status = {1: "queued", 2: "undelivered", 3: "delivered"}.get(
                        int(record.send_status or 1), "queued"
                    )
                    return SendResult(self.name, message.message_id, status)
            if len(records) < QUERY_PAGE_SIZE or page * QUERY_PAGE_SIZE >= int(
                body.total_count or 0
            ):
                return None
        return None

    async def _call(self, method: str, request: Any) -> Any:
        try:
            response = await self._calls.run(self._blocking_call, method, request)
        except _SDK_ERRORS as exc:
            raise translate_aliyun_error(exc, provider=self.name, now=self._now()) from exc
        return response.body

    def _blocking_call(self, method: str, request: Any) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = Client(Config(**self._config))
        return getattr(client, method)(request)

    async def close(self) -> None:
        self._calls.close()

    @property
    def closed(self) -> bool:
        return self._calls.closed
