"""SMS providers of the `notifications.providers` section, one model per `type`."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import (
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
    """outbox, twilio or http."""
    path: ConfigPath = Field(Path("var/outbox.jsonl"), validate_default=True)
    """The JSONL file messages are appended to."""


class TwilioProvider(_Provider):
    """Twilio Programmable Messaging, through the official SDK."""

    secret_fields: ClassVar[dict[str, bool]] = {"auth_token": True}

    type: Literal["twilio"]
    """outbox, twilio or http."""
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
    """outbox, twilio or http."""
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


Provider = Annotated[OutboxProvider | TwilioProvider | HttpProvider, Field(discriminator="type")]
