"""A local stand-in for Tencent Cloud SMS (API 3.0, sms 2021-01-11): SendSms and
PullSmsSendStatusByPhoneNumber, for offline tests with the real SDK (tencentcloud-sdk-python-sms).

It checks requests as Tencent Cloud does for TC3-HMAC-SHA256: the credential scope (date and
service), the timestamp within 5 minutes, then the canonical request (method, path, query, the
signed headers lower-cased, the SHA-256 of the JSON payload) signed with the key derived from
"TC3" + SecretKey, the date, the service and "tc3_request". Every answer is HTTP 200 with
`Content-Type: application/json` and `{"Response": {...}}`; an error is
`{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`: AuthFailure.SecretIdNotFound,
AuthFailure.SignatureFailure, AuthFailure.SignatureExpire.

SendSms answers one SendStatus per number: Code "Ok", or a per-number code such as
InvalidParameterValue.IncorrectPhoneNumber or, for `flow_limited` numbers, the LimitExceeded.
PhoneNumber... code given. Faults: see `tests.fakes.cloud_sms_common` (throttling:
RequestLimitExceeded; an HTTP status: an HTML body, as a gateway in front would send).

In-process: `async with FakeTencentSms(secrets={"AKID...": "key"}) as fake: ... fake.endpoint`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.cloud_sms_common import AcceptedSms, CloudSmsServer, Fault

SERVICE = "sms"
_AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([a-z]+)/tc3_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})"
)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
SIGNATURE_FAILURE = (
    "The provided credentials could not be validated. Please check your signature is correct."
)


def answer(response: dict[str, Any]) -> web.Response:
    body = {"Response": {**response, "RequestId": str(uuid.uuid4())}}
    # exactly "application/json": the SDK reads Response.Error only under that content type
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
    )


def error(code: str, message: str) -> web.Response:
    return answer({"Error": {"Code": code, "Message": message}})


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class FakeTencentSms(CloudSmsServer):
    def __init__(
        self,
        *,
        secrets: dict[str, str] | None = None,
        sdk_app_ids: frozenset[str] = frozenset({"1400006666"}),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.secrets = secrets or {"AKIDtest": "test-secret-key"}
        self.sdk_app_ids = sdk_app_ids
        self.flow_limited: dict[str, str] = {}  # E.164 number -> LimitExceeded.PhoneNumber... code
        self.signature_failures = 0
        self.queries_seen = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        refused = self._check_signature(request, body)
        if refused is not None:
            self.signature_failures += 1
            return refused
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return error("FailedOperation.JsonParseFail", "request body is not JSON")
        if params.get("SmsSdkAppId") not in self.sdk_app_ids:
            return error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not exist.")
        action = request.headers.get("X-TC-Action", "")
        if action == "SendSms":
            return await self._send(request, params)
        if action == "PullSmsSendStatusByPhoneNumber":
            self.queries_seen += 1
            return self._pull(params)
        return error("InvalidAction", f"The action {action} does not exist.")

    # ------------------------------------------------------------------ TC3 signature

    def _check_signature(self, request: web.Request, body: bytes) -> web.Response | None:
        match = _AUTH.fullmatch(request.headers.get("Authorization", ""))
        if match is None:
            return error("AuthFailure.InvalidAuthorization", "Authorization is not valid.")
        secret_id, day, service, signed_headers, signature = match.groups()
        secret = self.secrets.get(secret_id)
        if secret is None:
            return error(
                "AuthFailure.SecretIdNotFound",
                "The SecretId is not found, please ensure that your SecretId is correct.",
            )
        try:
            timestamp = int(request.headers.get("X-TC-Timestamp", ""))
        except ValueError:
            return error("AuthFailure.InvalidAuthorization", "X-TC-Timestamp is missing.")
        now_s = self.now().timestamp()
        if abs(now_s - timestamp) > 300:
            return error("AuthFailure.SignatureExpire", "Signature expired.")
        if service != SERVICE or day != datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d"):
            return error("AuthFailure.SignatureFailure", SIGNATURE_FAILURE)
        names = signed_headers.split(";")
        header_lines = "".join(f"{n}:{request.headers.get(n, '').strip().lower()}\n" for n in names)
        canonical = "\n".join(
            [
                request.method,
                request.rel_url.raw_path or "/",
                request.rel_url.raw_query_string,
                header_lines,
                signed_headers,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{day}/{service}/tc3_request"
        to_sign = (
            f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n"
            + hashlib.sha256(canonical.encode()).hexdigest()
        )
        key = _hmac(_hmac(_hmac(("TC3" + secret).encode(), day), service), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if (
            "content-type" not in names
            or "host" not in names
            or not hmac.compare_digest(expected, signature)
        ):
            return error("AuthFailure.SignatureFailure", SIGNATURE_FAILURE)
        return None

    # ------------------------------------------------------------------ actions

    async def _send(self, request: web.Request, params: dict[str, Any]) -> web.StreamResponse:
        self.sends_seen += 1
        await self.gate.enter()
        try:
            return await self._send_inside_gate(request, params)
        finally:
            await self.gate.leave()

    async def _send_inside_gate(
        self, request: web.Request, params: dict[str, Any]
    ) -> web.StreamResponse:
        fault = self.next_fault()
        if fault is not None and not fault.accepts:
            played = await self._play(fault, request)
            if played is not None:
                return played
        if not params.get("SignName"):
            return error("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误")
        if not params.get("TemplateId"):
            return error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配")
        numbers = params.get("PhoneNumberSet") or []
        if not numbers:
            return error("MissingParameter.EmptyPhoneNumberSet", "手机号码为空")
        values = [str(v) for v in params.get("TemplateParamSet") or []]
        statuses = [self._send_one(number, params, values) for number in numbers]
        await self.play_after_accept(fault, request)
        return answer({"SendStatusSet": statuses})

    def _send_one(self, number: str, params: dict[str, Any], values: list[str]) -> dict[str, Any]:
        context = str(params.get("SessionContext") or "")
        base = {"PhoneNumber": number, "SessionContext": context, "IsoCode": "CN"}
        if not _E164.fullmatch(number):
            code, message = "InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误"
            return {**base, "SerialNo": "", "Fee": 0, "Code": code, "Message": message}
        if number in self.flow_limited:
            code = self.flow_limited[number]
            return {**base, "SerialNo": "", "Fee": 0, "Code": code, "Message": "命中频率限制"}
        serial = f"2028:{secrets.token_hex(10)}"
        self.accepted.append(
            AcceptedSms(
                serial,
                number,
                params["SignName"],
                params["TemplateId"],
                values,
                context,
                self.now(),
            )
        )
        return {**base, "SerialNo": serial, "Fee": 1, "Code": "Ok", "Message": "send success"}

    async def _play(self, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        if fault.reset:
            self.reset_connection(request)
        if fault.stall:
            await self.stall()
            return web.Response(status=504, text="<html>504 Gateway Time-out</html>")
        if fault.throttle:
            return error(
                "RequestLimitExceeded",
                "Your current request times equals to `3001` in a second, which exceeds the "
                "frequency limit `3000` for a second. Please reduce the frequency of calls.",
            )
        if fault.status is not None:
            return web.Response(
                status=fault.status, text=f"<html>{fault.status} Bad Gateway</html>"
            )
        if fault.code is not None:
            return error(fault.code, fault.message)
        return None

    def _pull(self, params: dict[str, Any]) -> web.Response:
        number = str(params.get("PhoneNumber") or "")
        begin, end = int(params.get("BeginTime") or 0), int(params.get("EndTime") or 2**62)
        limit = max(1, min(100, int(params.get("Limit") or 100)))
        found = [
            sms
            for sms in self.accepted
            if sms.phone == number and begin <= sms.at.timestamp() <= end
        ][:limit]
        records = [
            {
                "UserReceiveTime": int(sms.at.timestamp()),
                "CountryCode": "86",
                "SubscriberNumber": sms.phone[3:],
                "PhoneNumber": sms.phone,
                "SerialNo": sms.provider_message_id,
                "ReportStatus": "SUCCESS",
                "Description": "DELIVRD",
                "SessionContext": sms.our_id,
            }
            for sms in found
        ]
        return answer({"PullSmsSendStatusSet": records})
