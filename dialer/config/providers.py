"""SMS providers of the `notifications.providers` section, one model per `type`."""

from __future__ import annotations

import ipaddress
import itertools
import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from dialer.config.base import (
    ConfigPath,
    OptionalSecret,
    Secret,
    SecretFile,
    Section,
)
from dialer.config.values import (
    GatewayTemplate,
    HeaderName,
    HttpStatus,
    HttpUrl,
    Integer,
    Number,
    OneLine,
    Seconds,
    Upper,
    placeholders,
)
from dialer.config.yaml_file import (
    KeyPath,
    problem,
)


class _Provider(Section):
    messages_per_second: Annotated[Number, Field(gt=0)] = 10
    """Rate limit of this provider: at most floor(this) sends start in any one second (below 1:
    one every 1/this seconds), also right after a restart (the first second waits)."""


class OutboxProvider(_Provider):
    """Appends each message to a local JSONL file: the embedded default and the demo's."""

    type: Literal["outbox"]
    """outbox, twilio, http, aliyun or tencent."""
    path: ConfigPath = Field(Path("var/outbox.jsonl"), validate_default=True)
    """The JSONL file messages are appended to."""


class TwilioProvider(_Provider):
    """Twilio Programmable Messaging, through the official SDK."""

    secret_fields: ClassVar[dict[str, bool]] = {"auth_token": True}

    type: Literal["twilio"]
    """outbox, twilio, http, aliyun or tencent."""
    account_sid: Annotated[OneLine, Field(pattern="^AC")]
    """Account SID (AC...)."""
    auth_token: Secret
    """Secret: the auth token (${VAR} or auth_token_file)."""
    auth_token_file: SecretFile = None
    """File holding the auth token."""
    from_number: OneLine | None = None
    """Sender: an E.164 number or an alphanumeric ID; give this or messaging_service_sid."""
    messaging_service_sid: Annotated[OneLine, Field(pattern="^MG")] | None = None
    """Messaging Service SID (MG...), instead of from_number."""
    base_url: HttpUrl | None = None
    """Replaces https://api.twilio.com: for tests and local stand-ins."""
    timeout_s: Seconds = 10
    """Time-out of one request."""
    status_callback_url: HttpUrl | None = None
    """StatusCallback URL for delivery reports: <api.public_url>/v1/sms/twilio/status."""

    @model_validator(mode="after")
    def _one_sender(self) -> TwilioProvider:
        if (self.from_number is None) == (self.messaging_service_sid is None):
            message = "give exactly one of from_number and messaging_service_sid"
            raise problem((("from_number",), message))
        return self


class HttpProvider(_Provider):
    """A generic HTTP SMS gateway: one request per message; its status says what happened."""

    secret_fields: ClassVar[dict[str, bool]] = {"auth_header": False}

    type: Literal["http"]
    """outbox, twilio, http, aliyun or tencent."""
    url: HttpUrl
    """The gateway's endpoint."""
    method: Annotated[Literal["POST", "PUT"], Upper] = "POST"
    """POST or PUT."""
    body_format: Literal["json", "form"] = "json"
    """json or form."""
    body: dict[str, GatewayTemplate] = Field(
        default_factory=lambda: {"to": "{phone}", "text": "{body}", "id": "{message_id}"}
    )
    """Body field -> template with {phone} (E.164), {body}, {message_id}, {order_id}, {stage}."""
    headers: dict[HeaderName, OneLine] = Field(default_factory=dict, repr=False)
    """Extra headers; credentials belong in auth_header."""
    auth_header_name: HeaderName = "Authorization"
    """The header auth_header fills."""
    auth_header: OptionalSecret = None
    """Secret: that header's value, e.g. 'Bearer ...' (${VAR} or auth_header_file)."""
    auth_header_file: SecretFile = None
    """File holding auth_header."""
    success_statuses: tuple[HttpStatus, ...] = (200, 201, 202)
    """Statuses meaning sent."""
    permanent_statuses: tuple[HttpStatus, ...] = (400, 401, 403, 404, 422)
    """Statuses meaning never retry: the message is dead."""
    transient_statuses: tuple[HttpStatus, ...] = (408, 425, 429, 500, 502, 503, 504)
    """Statuses meaning retry later. A status in no list: 5xx is transient, any other permanent."""
    timeout_s: Seconds = 10
    """Time-out of one request."""

    @model_validator(mode="after")
    def _check_gateway(self) -> HttpProvider:
        used = {name for template in self.body.values() for name in placeholders(template)}
        found: list[tuple[KeyPath, str]] = [
            (("body",), f"no field uses {{{name}}}")
            for name in ("phone", "body")
            if name not in used
        ]
        lists = ("success_statuses", "permanent_statuses", "transient_statuses")
        for name, other in itertools.combinations(lists, 2):
            if both := sorted(set(getattr(self, name)) & set(getattr(self, other))):
                found.append(((other,), f"{both} also in {name}"))
        if found:
            raise problem(*found)
        return self


_ENDPOINT = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def _endpoint(value: str) -> str:
    if not _ENDPOINT.fullmatch(value):
        raise ValueError("must be a host name or host:port, without scheme or path")
    return value


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"not an IP address or network: {value!r}") from None


Endpoint = Annotated[str, AfterValidator(_endpoint)]
Network = Annotated[str, AfterValidator(_network)]


class _MainlandProvider(_Provider):
    """What Aliyun and Tencent Cloud SMS share: an approved signature, an endpoint override, a
    bounded pool for the blocking SDK, and the secret of their callback URLs."""

    sign_name: Annotated[OneLine, Field(min_length=1)]
    """The approved signature (签名, SignName), without the 【】 brackets."""
    endpoint: Endpoint | None = None
    """Replaces the public endpoint (host or host:port): a local stand-in, a private network."""
    protocol: Literal["https", "http"] = "https"
    """https, or http for a local stand-in."""
    pool_size: Annotated[Integer, Field(ge=1, le=64)] = 4
    """Threads of the SDK's pool: requests on the wire at once, at most."""
    max_param_chars: Annotated[Integer, Field(ge=1, le=500)] | None = None
    """Characters of one template variable, at most (checked before sending)."""
    callback_secret: OptionalSecret = None
    """Secret: the path segment of the callback URLs (${VAR} or callback_secret_file);
    without it, this provider's callbacks are refused."""
    callback_secret_file: SecretFile = None
    """File holding callback_secret."""
    callback_allow_from: tuple[Network, ...] = ()
    """Addresses or networks callbacks may come from; empty: any (the secret still counts)."""


class AliyunProvider(_MainlandProvider):
    """Aliyun (Alibaba Cloud) SMS, dysmsapi 2017-05-25, through the official SDK."""

    secret_fields: ClassVar[dict[str, bool]] = {
        "access_key_id": True,
        "access_key_secret": True,
        "callback_secret": False,
    }

    type: Literal["aliyun"]
    """outbox, twilio, http, aliyun or tencent."""
    access_key_id: Secret
    """Secret: a RAM user's AccessKey ID with SMS rights (${VAR} or access_key_id_file)."""
    access_key_id_file: SecretFile = None
    """File holding access_key_id."""
    access_key_secret: Secret
    """Secret: its AccessKey secret (${VAR} or access_key_secret_file)."""
    access_key_secret_file: SecretFile = None
    """File holding access_key_secret."""
    region: OneLine = "cn-hangzhou"
    """The region the client signs for."""
    max_param_chars: Annotated[Integer, Field(ge=1, le=500)] | None = 35
    """Characters of one template variable, at most (Aliyun: 35 for notifications)."""
    connect_timeout_s: Seconds = 5
    """Time-out of connecting."""
    timeout_s: Seconds = 10
    """Time-out of reading one answer."""


class TencentProvider(_MainlandProvider):
    """Tencent Cloud SMS, API 2021-01-11, through the official SDK."""

    secret_fields: ClassVar[dict[str, bool]] = {
        "secret_id": True,
        "secret_key": True,
        "callback_secret": False,
    }

    type: Literal["tencent"]
    """outbox, twilio, http, aliyun or tencent."""
    secret_id: Secret
    """Secret: a CAM key's SecretId with SMS rights (${VAR} or secret_id_file)."""
    secret_id_file: SecretFile = None
    """File holding secret_id."""
    secret_key: Secret
    """Secret: its SecretKey (${VAR} or secret_key_file)."""
    secret_key_file: SecretFile = None
    """File holding secret_key."""
    sdk_app_id: Annotated[str, Field(pattern="^[0-9]{6,20}$")]
    """The SMS application's SdkAppId (1400...)."""
    region: OneLine = "ap-guangzhou"
    """The region the client signs for."""
    timeout_s: Seconds = 10
    """Time-out of connecting and of reading one answer."""


Provider = Annotated[
    OutboxProvider | TwilioProvider | HttpProvider | AliyunProvider | TencentProvider,
    Field(discriminator="type"),
]

TEMPLATE_ONLY_TYPES = frozenset({"aliyun", "tencent"})
"""Provider types that send only approved templates: every stage needs a template for them."""
