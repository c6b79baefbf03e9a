"""A local stand-in for Aliyun SMS (dysmsapi 2017-05-25): SendSms and QuerySendDetails, for
offline tests with the real SDK (alibabacloud-dysmsapi20170525 4.x).

It checks requests as Aliyun does for the V3 signature the SDK uses (ACS3-HMAC-SHA256 in the
Authorization header): the body's SHA-256 against x-acs-content-sha256, then the canonical
request (method, path, sorted and percent-encoded query, the signed headers, the payload hash),
signed with HMAC-SHA256 under the key's secret. An unknown key answers HTTP 404
InvalidAccessKeyId.NotFound, a wrong signature HTTP 400 SignatureDoesNotMatch, a reused nonce
SignatureNonceUsed, in Aliyun's error body: {RequestId, HostId, Code, Message, Recommend}.

SendSms answers 200 {Code, Message, BizId, RequestId}; business errors are a 200 with another
Code (isv.MOBILE_NUMBER_ILLEGAL, isv.SMS_TEMPLATE_ILLEGAL, isv.INVALID_JSON_PARAM, and the per-
number flow control isv.BUSINESS_LIMIT_CONTROL for `flow_limited` numbers). Faults: see
`tests.fakes.cloud_sms_common` (throttling: HTTP 400 Throttling.User).

In-process: `async with FakeAliyunSms(secrets={"ak": "secret"}) as fake: ... fake.endpoint`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from typing import Any
from urllib.parse import parse_qsl, quote

from aiohttp import web

from tests.fakes.cloud_sms_common import BEIJING, AcceptedSms, CloudSmsServer, Fault

HOST_ID = "dysmsapi.aliyuncs.com"
_AUTH = re.compile(r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=(\w+)")
_NUMBER = re.compile(r"1[0-9]{10}|00[1-9][0-9]{6,14}")
FLOW_CONTROL_TEXT = {
    "minute": "触发分钟级流控Permits:1",
    "hour": "触发小时级流控Permits:5",
    "day": "触发天级流控Permits:10",
}


def aliyun_error(status: int, code: str, message: str, headers: Any = None) -> web.Response:
    body = {
        "RequestId": str(uuid.uuid4()).upper(),
        "HostId": HOST_ID,
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=Dysmsapi",
    }
    return web.json_response(body, status=status, headers=headers)


def business(code: str, message: str, **more: object) -> web.Response:
    return web.json_response(
        {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper(), **more}
    )


class FakeAliyunSms(CloudSmsServer):
    def __init__(
        self,
        *,
        secrets: dict[str, str] | None = None,
        templates: dict[str, list[str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.secrets = secrets or {"test-access-key-id": "test-access-key-secret"}
        self.templates = templates  # code -> variable names; None: any template is approved
        self.flow_limited: dict[str, str] = {}  # national number -> "minute" | "hour" | "day"
        self.signature_failures = 0
        self.queries_seen = 0
        self._nonces: set[str] = set()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        refused = self._check_signature(request, body)
        if refused is not None:
            self.signature_failures += 1
            return refused
        params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        if body:
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        action = request.headers.get("x-acs-action", "")
        if action == "SendSms":
            return await self._send(request, params)
        if action == "QuerySendDetails":
            self.queries_seen += 1
            return self._query(params)
        return aliyun_error(404, "InvalidAction.NotFound", f"Specified api is not found: {action}")

    # ------------------------------------------------------------------ V3 signature

    def _check_signature(self, request: web.Request, body: bytes) -> web.Response | None:
        match = _AUTH.fullmatch(request.headers.get("Authorization", ""))
        if match is None:
            return aliyun_error(400, "IncompleteSignature", "The request signature is invalid.")
        key_id, signed_headers, signature = match.groups()
        secret = self.secrets.get(key_id)
        if secret is None:
            return aliyun_error(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        payload_hash = hashlib.sha256(body).hexdigest()
        if request.headers.get("x-acs-content-sha256") != payload_hash:
            return self._mismatch()
        names = signed_headers.split(";")
        if "host" not in names or not all(n == n.lower() for n in names):
            return self._mismatch()
        header_lines = "".join(
            f"{name}:{','.join(sorted(v.strip() for v in request.headers.getall(name, [''])))}\n"
            for name in names
        )
        query = sorted(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        canonical_query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in query)
        path = request.rel_url.raw_path or "/"
        parts = [request.method, path, canonical_query, header_lines, signed_headers, payload_hash]
        canonical = "\n".join(parts)
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return self._mismatch()
        nonce = request.headers.get("x-acs-signature-nonce", "")
        if not nonce or nonce in self._nonces:
            return aliyun_error(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        self._nonces.add(nonce)
        return None

    @staticmethod
    def _mismatch() -> web.Response:
        return aliyun_error(
            400, "SignatureDoesNotMatch", "Specified signature does not match our calculation."
        )

    # ------------------------------------------------------------------ actions

    async def _send(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        self.sends_seen += 1
        await self.gate.enter()
        try:
            return await self._send_inside_gate(request, params)
        finally:
            await self.gate.leave()

    async def _send_inside_gate(
        self, request: web.Request, params: dict[str, str]
    ) -> web.StreamResponse:
        fault = self.next_fault()
        if fault is not None and not fault.accepts:
            answer = await self._play(fault, request)
            if answer is not None:
                return answer
        phone = params.get("PhoneNumbers", "")
        if not _NUMBER.fullmatch(phone):
            return business("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        code = params.get("TemplateCode", "")
        if not code or (self.templates is not None and code not in self.templates):
            return business("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        if not params.get("SignName"):
            return business("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if self.templates is not None and set(self.templates[code]) - set(values):
            return business("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
        if phone in self.flow_limited:
            return business(
                "isv.BUSINESS_LIMIT_CONTROL", FLOW_CONTROL_TEXT[self.flow_limited[phone]]
            )
        biz_id = f"{secrets.randbelow(10**15):015d}^0"
        self.accepted.append(
            AcceptedSms(
                biz_id, phone, params["SignName"], code, values, params.get("OutId", ""), self.now()
            )
        )
        await self.play_after_accept(fault, request)
        return business("OK", "OK", BizId=biz_id)

    async def _play(self, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        if fault.reset:
            self.reset_connection(request)
        if fault.stall:
            await self.stall()
            return aliyun_error(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            )
        if fault.throttle:
            return aliyun_error(
                400, "Throttling.User", "Request was denied due to user flow control."
            )
        if fault.status is not None:
            code = "ServiceUnavailable" if fault.status == 503 else "InternalError"
            return aliyun_error(fault.status, code, fault.message)
        if fault.code is not None:
            return business(fault.code, fault.message)
        return None

    def _query(self, params: dict[str, str]) -> web.Response:
        phone, day = params.get("PhoneNumber", ""), params.get("SendDate", "")
        size = max(1, min(50, int(params.get("PageSize") or 10)))
        page = max(1, int(params.get("CurrentPage") or 1))
        found = [
            sms
            for sms in self.accepted
            if sms.phone == phone and sms.at.astimezone(BEIJING).strftime("%Y%m%d") == day
        ]
        shown = found[(page - 1) * size : page * size]
        details = [self._detail(sms) for sms in shown]
        return business(
            "OK", "OK", TotalCount=len(found), SmsSendDetailDTOs={"SmsSendDetailDTO": details}
        )

    @staticmethod
    def _detail(sms: AcceptedSms) -> dict[str, object]:
        when = sms.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        return {
            "PhoneNum": sms.phone,
            "SendStatus": 3,
            "ErrCode": "DELIVERED",
            "TemplateCode": sms.template_code,
            "Content": f"【{sms.sign_name}】" + "".join(sms.params.values()),
            "SendDate": when,
            "ReceiveDate": when,
            "OutId": sms.our_id,
        }
