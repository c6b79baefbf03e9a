"""The daemon's settings: one YAML file, validated at load, every problem reported with its line.

`load_settings(path)` returns a frozen `Settings`, or raises `ConfigError` listing every problem
as `PATH:LINE: dotted.key: message`. Secrets never sit in the file: a secret field `X` takes
`${ENV_VAR}` or `X_file: path`, and any string may use `${VAR}` or `${VAR:-default}`. Relative
paths are relative to the config file's directory, so a config works from any working directory.
The docstring under each field is its description in the config reference.
"""

from __future__ import annotations

import itertools
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from dialer.config_yaml import (
    ConfigError,
    ConfigIssue,
    ConfigPath,
    Expanded,
    Invalid,
    KeyPath,
    OptionalSecret,
    Secret,
    SecretFile,
    Section,
    context_of,
    issues_from_errors,
    locate,
    problem,
    read_yaml,
    report_invalid,
    resolve_path,
    to_plain,
)

__all__ = [
    "BUILTIN_STAGES",
    "GATEWAY_PLACEHOLDERS",
    "OUTCOMES",
    "TEMPLATE_PLACEHOLDERS",
    "AmiSettings",
    "ApiSettings",
    "Campaign",
    "ConfigError",
    "ConfigIssue",
    "DialplanDestination",
    "Dispatcher",
    "HttpProvider",
    "LoggingSettings",
    "NotificationRetry",
    "Notifications",
    "OutboxProvider",
    "Provider",
    "QueueDestination",
    "QuietHours",
    "RefusalCallbackCampaign",
    "RetryRule",
    "Settings",
    "Stage",
    "StoreSettings",
    "TimeRange",
    "TwilioProvider",
    "VipCampaign",
    "load_settings",
    "parse_settings",
    "placeholders",
]

OUTCOMES = ("answered", "busy", "no_answer", "congestion", "unavailable", "failed", "abandoned",
            "unknown")  # fmt: skip
BUILTIN_STAGES = ("order_confirmed", "shipped", "out_for_delivery", "delivered", "refused",
                  "return_accepted", "exchange_accepted", "refund_issued")  # fmt: skip
TEMPLATE_PLACEHOLDERS = ("customer_name", "order_id", "stage", "signature", "tracking_number",
                         "courier", "eta", "amount", "refund_amount", "return_id",
                         "opt_out_hint")  # fmt: skip
GATEWAY_PLACEHOLDERS = ("phone", "body", "message_id", "order_id", "stage")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
RetryOutcome = Literal["busy", "no_answer", "congestion", "unavailable", "failed", "abandoned",
                       "unknown"]  # fmt: skip

# ----------------------------------------------------------------------------- value types


def _slug(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise ValueError(f"{value!r} is not a valid name: use a-z, 0-9, '-' and '_'")
    return value


def _one_line(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if "\r" in value or "\n" in value:
        raise ValueError("must be a single line")
    return value


def _region(value: str) -> str:
    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a region code phonenumbers knows (e.g. CN, HK, US)")
    return value.upper()


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai"
        ) from None
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _header_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", value):
        raise ValueError(f"{value!r} is not an HTTP header name")
    return value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def placeholders(template: str) -> list[str]:
    """The names of the {placeholders} of a str.format template, in order.

    ValueError for bad syntax, positional fields, attribute or index access, format specs and
    conversions: a template only names values, which are all strings.
    """
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} must be a plain name")
        if spec or conversion:
            raise ValueError(f"write {{{name}}} without a format spec or conversion")
        names.append(name)
    return names


def _template(allowed: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        try:
            unknown = [name for name in placeholders(value) if name not in allowed]
        except ValueError as exc:
            raise ValueError(f"invalid template: {exc}") from None
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}; allowed: {', '.join(allowed)}")
        return value

    return AfterValidator(check)


def _channel(value: str) -> str:
    try:
        names = placeholders(value)
    except ValueError as exc:
        raise ValueError(f"invalid channel template: {exc}") from None
    if names != ["number"]:
        raise ValueError("must contain {number} once and no other placeholder")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
OneLine = Annotated[str, AfterValidator(_one_line)]
RegionCode = Annotated[str, AfterValidator(_region)]
TimeZoneName = Annotated[str, AfterValidator(_zone)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
HeaderName = Annotated[str, AfterValidator(_header_name)]
Seconds = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65535)]
Count = Annotated[int, Field(ge=1)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
MessageTemplate = Annotated[str, Field(min_length=1), _template(TEMPLATE_PLACEHOLDERS)]
GatewayTemplate = Annotated[str, _template(GATEWAY_PLACEHOLDERS)]
Upper = BeforeValidator(_upper)


@dataclass(frozen=True, order=True)
class TimeRange:
    """A window within one day, written "HH:MM-HH:MM"; start < end (it never crosses midnight)."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end


def _time_range(value: Any) -> TimeRange:
    if isinstance(value, TimeRange):
        return value
    try:
        start, end = (time.fromisoformat(part.strip()) for part in str(value).split("-"))
    except ValueError:
        raise ValueError(f"{value!r} is not a window like 09:00-21:00") from None
    window = TimeRange(start, end)
    if window.start >= window.end:
        raise ValueError(f"{value!r}: a window must start before it ends (split a night in two)")
    return window


Window = Annotated[
    TimeRange,
    PlainValidator(_time_range),
    PlainSerializer(str),
    WithJsonSchema({"type": "string", "pattern": r"^\d\d:\d\d-\d\d:\d\d$"}),
]


def _empty() -> Any:
    return {}


# ----------------------------------------------------------------------- ami, store, api, logs


class AmiSettings(Section):
    """The Asterisk Manager Interface connection, as a manager.conf user."""

    secret_fields: ClassVar[dict[str, bool]] = {"secret": True}

    host: OneLine = "127.0.0.1"
    """AMI host; keep AMI on loopback or a private network (the secret travels in clear)."""
    port: Port = 5038
    """AMI TCP port (manager.conf `port`)."""
    username: OneLine
    """The manager.conf user (its section name)."""
    secret: Secret
    """Secret: the AMI user's password, as ${VAR} or through secret_file."""
    secret_file: SecretFile = None
    """File holding the AMI secret (relative to the config file)."""
    connect_timeout_s: Seconds = 5
    """Time-out of one TCP connect."""
    action_timeout_s: Seconds = 10
    """Time-out of one AMI action."""
    ping_interval_s: Seconds = 10
    """How often the link is checked with a Ping."""
    ping_timeout_s: Seconds = 5
    """A Ping unanswered this long drops the link, which is then reconnected."""
    reconnect_initial_backoff_s: Seconds = 1
    """First delay before reconnecting; it doubles with each failure."""
    reconnect_max_backoff_s: Seconds = 30
    """Cap of the reconnect delay."""
    login_failure_backoff_s: Seconds = 60
    """Delay after a refused login (a wrong secret), so it is not retried in a tight loop."""
    events: OneLine = "on"
    """Login `Events:` mask: 'on', or a comma list of classes that includes `system`."""

    @field_validator("events")
    @classmethod
    def _events_keep_system(cls, value: str) -> str:
        classes = {part.strip() for part in value.lower().split(",")}
        if value.lower() != "on" and "system" not in classes:
            raise ValueError("must be 'on' or include 'system' (else no resume after a reconnect)")
        return value

    @model_validator(mode="after")
    def _check_timings(self) -> AmiSettings:
        found: list[tuple[KeyPath, str]] = []
        if self.reconnect_initial_backoff_s > self.reconnect_max_backoff_s:
            found.append((("reconnect_initial_backoff_s",), "exceeds reconnect_max_backoff_s"))
        if self.ping_timeout_s > self.ping_interval_s:
            found.append((("ping_timeout_s",), "exceeds ping_interval_s"))
        if found:
            raise problem(*found)
        return self


class StoreSettings(Section):
    """Where the state lives: SQLite (one worker) or PostgreSQL (several workers)."""

    secret_fields: ClassVar[dict[str, bool]] = {"password": False}

    url: Annotated[str, BeforeValidator(report_invalid)] = Field(
        "sqlite:///var/outreach.db", validate_default=True
    )
    """sqlite:///relative.db (to the config file), sqlite:////abs/path.db or
    postgresql://USER@HOST:PORT/DB; a password in it must come from ${VAR}."""
    password: OptionalSecret = None
    """Secret: the database password, if not in url (${VAR} or password_file)."""
    password_file: SecretFile = None
    """File holding the database password."""

    @classmethod
    def _prepare(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        raw = data.get("url")
        try:
            url = make_url(raw) if isinstance(raw, str) else None
        except (ArgumentError, ValueError):
            url = None  # the field validator reports it
        if url is None or url.password is None:
            return data
        if data.get("password") is not None or data.get("password_file") is not None:
            data["url"] = Invalid("a password in url and in password/password_file: give one")
        elif not isinstance(raw, Expanded) and context_of(info).get("secrets_from_env_only"):
            data["url"] = Invalid("a password in url must come from ${VAR} (or password_file)")
        else:
            data["password"] = Expanded(str(url.password))
            without = URL.create(url.drivername, url.username, None, url.host, url.port,
                                 url.database, url.query)  # fmt: skip
            data["url"] = without.render_as_string()
        return data

    @field_validator("url")
    @classmethod
    def _normalise_url(cls, value: str, info: ValidationInfo) -> str:
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            message = "is not a database URL (percent-encode a password, or use password_file)"
            raise ValueError(message) from None
        if url.drivername in ("sqlite", "sqlite+aiosqlite"):
            if not url.database or url.database == ":memory:":
                raise ValueError(
                    "give a file: sqlite:///relative/path.db or sqlite:////abs/path.db"
                )
            path = resolve_path(Path(url.database), info)
            return url.set(drivername="sqlite", database=str(path)).render_as_string()
        if url.drivername in ("postgresql", "postgresql+asyncpg"):
            if not url.database:
                raise ValueError("give a database name: postgresql://USER@HOST:PORT/DB")
            return url.set(drivername="postgresql").render_as_string()
        raise ValueError(f"unsupported database {url.drivername!r}: use sqlite or postgresql")

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.url.startswith("sqlite:") else "postgresql"

    @property
    def sqlite_path(self) -> Path | None:
        """The absolute path of the SQLite file; None for PostgreSQL."""
        return Path(str(make_url(self.url).database)) if self.dialect == "sqlite" else None

    @property
    def async_url(self) -> str:
        """The SQLAlchemy async URL, with the password: hand it to the engine, never log it."""
        driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}[self.dialect]
        password = None if self.password is None else self.password.get_secret_value()
        url = make_url(self.url).set(drivername=driver, password=password)
        return url.render_as_string(hide_password=False)


class ApiSettings(Section):
    """The HTTP API: order events, campaigns, Twilio callbacks, health and metrics."""

    secret_fields: ClassVar[dict[str, bool]] = {"token": True}

    host: OneLine = "127.0.0.1"
    """Address to listen on."""
    port: Port = 8080
    """Port to listen on."""
    token: Secret
    """Secret: the bearer token /v1/* requires (${VAR} or token_file)."""
    token_file: SecretFile = None
    """File holding the API token."""
    public_url: HttpUrl | None = None
    """The URL the outside world reaches this API at; Twilio signs its callbacks with it."""
    max_body_bytes: Annotated[int, Field(ge=1024)] = 65536
    """Larger request bodies get 413."""
    shutdown_grace_s: Annotated[float, Field(ge=0)] = 10
    """How long running requests may take to finish at shutdown."""


class LoggingSettings(Section):
    """Logs: JSON lines for machines, a readable console for people."""

    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], Upper] = "INFO"
    """Lowest level logged."""
    format: Literal["auto", "json", "console"] = "auto"
    """auto: console on a terminal, JSON lines otherwise."""


# ------------------------------------------------------------------------------- campaigns


class DialplanDestination(Section):
    """An answered call continues in the dialplan."""

    context: OneLine
    """Dialplan context."""
    exten: OneLine
    """Extension in that context."""
    priority: Count = 1
    """Priority to start at."""


class QueueDestination(Section):
    """An answered call waits in an Asterisk queue for an agent."""

    queue: OneLine
    """Queue name (queues.conf)."""


def _destination_kind(value: Any) -> str:
    queue = isinstance(value, QueueDestination) or (isinstance(value, dict) and "queue" in value)
    return "to_queue" if queue else "to_dialplan"


Destination = Annotated[
    Annotated[DialplanDestination, Tag("to_dialplan")]
    | Annotated[QueueDestination, Tag("to_queue")],
    Discriminator(_destination_kind),
]


class RetryRule(Section):
    """When a contact is called again after an attempt that ended with this outcome."""

    delay_s: Annotated[float, Field(ge=0)]
    """Wait before the next attempt."""
    max_attempts: Count
    """At most this many attempts may end with this outcome; then the contact is finished."""


def _retry(rules: str) -> dict[RetryOutcome, RetryRule]:
    """Rules from "outcome delay_s max_attempts, ..."."""
    found: dict[Any, RetryRule] = {}
    for outcome, delay_s, max_attempts in (rule.split() for rule in rules.split(",")):
        found[outcome] = RetryRule(delay_s=float(delay_s), max_attempts=int(max_attempts))
    return found


def _windows(days: str, window: str) -> dict[Weekday, tuple[TimeRange, ...]]:
    return {day: (_time_range(window),) for day in days.split()}  # type: ignore[misc]


_MON_FRI = "mon tue wed thu fri"
_MON_SAT = "mon tue wed thu fri sat"


class _Campaign(Section):
    """What both kinds of campaign have; each kind declares the fields whose defaults differ."""

    enabled: bool = True
    """A disabled campaign places no call."""
    channel: Annotated[OneLine, AfterValidator(_channel)]
    """Channel to dial; {number} is the E.164 number, e.g. +8613800001001
    (PJSIP/{number}@carrier in production, Local/{number}@customers in the lab)."""
    caller_id: OneLine | None = None
    """Caller ID, e.g. '"Outreach" <4000>'; unset: the trunk's default."""
    ring_timeout_s: Annotated[float, Field(ge=15)] = 25
    """How long a call rings before it counts as no_answer (at least 15)."""
    max_calls_per_second: Annotated[float, Field(gt=0)] = 2.0
    """Calls started per second, at most."""
    timezone: TimeZoneName = "Asia/Shanghai"
    """Contacts' time zone (IANA name) unless a contact has its own."""
    holidays: tuple[date, ...] = ()
    """Dates (YYYY-MM-DD) without calls."""
    allowed_countries: Annotated[tuple[RegionCode, ...], Field(min_length=1)] = ("CN",)
    """Region codes a number must belong to (a toll-fraud guard: others are refused)."""
    dnc_file: ConfigPath | None = None
    """Do-not-call list, one number per line."""

    @field_validator("calling_windows", check_fields=False)
    @classmethod
    def _windows_apart(cls, value: dict[str, tuple[TimeRange, ...]]) -> Any:
        found: list[tuple[KeyPath, str]] = []
        for day, windows in value.items():
            pairs = itertools.pairwise(sorted(windows))
            found += [((day,), f"{b} overlaps {a}") for a, b in pairs if b.start < a.end]
        if not any(value.values()):
            found.append(((), "no window at all: the campaign would never call"))
        if found:
            raise problem(*found)
        return {day: tuple(sorted(windows)) for day, windows in value.items()}

    @field_validator("dnc_file")
    @classmethod
    def _dnc_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not (value.is_file() and os.access(value, os.R_OK)):
            raise ValueError(f"cannot read the do-not-call list {value}")
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class RefusalCallbackCampaign(_Campaign):
    """Calls back customers who refused a parcel; an answered call goes to the refusal IVR."""

    kind: Literal["refusal_callback"]
    """refusal_callback or vip."""
    destination: Destination = DialplanDestination(context="outreach-refusal-ivr", exten="s")
    """Where an answered call goes: {context, exten, priority} (the IVR) or {queue}."""
    agent_queue: OneLine | None = None
    """The queue the IVR transfers to when the customer asks for an agent."""
    max_concurrent_calls: Count = 5
    """Calls up at the same time, at most."""
    calling_windows: dict[Weekday, tuple[Window, ...]] = _windows(_MON_SAT, "09:00-21:00")
    """Weekday (mon..sun) -> list of "HH:MM-HH:MM" in the contact's time zone; replaces the
    default as a whole (a day not listed has no calls)."""
    retry: dict[RetryOutcome, RetryRule] = _retry(
        "busy 600 3, no_answer 1800 3, congestion 300 3, unavailable 3600 2, failed 3600 1,"
        " abandoned 120 3, unknown 300 2"
    )
    """Outcome -> {delay_s, max_attempts}; replaces the default as a whole (an outcome not
    listed is not retried). Outcomes: busy, no_answer, congestion, unavailable, failed,
    abandoned, unknown."""
    max_total_attempts: Count = 3
    """At most this many attempts per contact, whatever their outcomes."""
    priority: int = 0
    """Priority of this campaign's contacts; higher is dialled first."""
    dispositions: dict[Annotated[str, Field(pattern=r"^[0-9*#]$")], Slug] = Field(
        default_factory=lambda: {
            "1": "wrong_item",
            "2": "not_at_home",
            "3": "price",
            "4": "changed_mind",
            "0": "agent",
        }
    )
    """IVR digit -> the reason recorded as the call's disposition."""


class VipCampaign(_Campaign):
    """Service calls to VIP customers, dialled only while an agent of agent_queue is free."""

    kind: Literal["vip"]
    """refusal_callback or vip."""
    agent_queue: OneLine
    """The VIP agents' queue: a call is dialled only while one of its agents is free."""
    destination: Destination
    """Where an answered call goes: {queue: <agent_queue>}, the default and only choice."""
    max_concurrent_calls: Count = 2
    """Calls up at the same time, at most (and never more than free agents)."""
    calling_windows: dict[Weekday, tuple[Window, ...]] = _windows(_MON_FRI, "09:00-20:00")
    """Weekday (mon..sun) -> list of "HH:MM-HH:MM" in the contact's time zone; replaces the
    default as a whole (a day not listed has no calls)."""
    retry: dict[RetryOutcome, RetryRule] = _retry(
        "busy 1800 3, no_answer 3600 3, congestion 600 3, unavailable 7200 2, failed 3600 1,"
        " abandoned 300 3, unknown 600 2"
    )
    """Outcome -> {delay_s, max_attempts}; replaces the default as a whole (an outcome not
    listed is not retried). Outcomes: busy, no_answer, congestion, unavailable, failed,
    abandoned, unknown."""
    max_total_attempts: Count = 5
    """At most this many attempts per contact, whatever their outcomes."""
    priority: int = 10
    """Priority of this campaign's contacts; higher is dialled first."""

    @classmethod
    def _prepare(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "destination" not in data:  # a stand-in when agent_queue is wrong, which is reported
            queue = data.get("agent_queue")
            data["destination"] = {"queue": queue if isinstance(queue, str) else "-"}
        return data

    @model_validator(mode="after")
    def _queue_is_agent_queue(self) -> VipCampaign:
        if not isinstance(self.destination, QueueDestination):
            raise problem((("destination",), "a vip call goes to a queue: {queue: ...}"))
        if self.destination.queue != self.agent_queue:
            message = "must be agent_queue, whose free agents gate dialling"
            raise problem((("destination", "queue"), message))
        return self


Campaign = Annotated[RefusalCallbackCampaign | VipCampaign, Field(discriminator="kind")]

# --------------------------------------------------------------------------- notifications


class _Provider(Section):
    messages_per_second: Annotated[float, Field(gt=0)] = 10
    """Rate limit of this provider."""


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


class NotificationRetry(Section):
    """Transient failures: a few quick tries in-process, then rescheduled through the store."""

    in_process_attempts: Count = 3
    """Tries within one dispatch."""
    in_process_max_s: Seconds = 30
    """Time bound of those tries."""
    backoff_initial_s: Seconds = 30
    """First rescheduling delay; it doubles up to backoff_max_s."""
    backoff_max_s: Seconds = 3600
    """Cap of the rescheduling delay."""
    max_age_s: Seconds = 86400
    """A message still unsent this long after it was queued is dead."""

    @model_validator(mode="after")
    def _check_order(self) -> NotificationRetry:
        if self.backoff_initial_s > self.backoff_max_s:
            raise problem((("backoff_initial_s",), "exceeds backoff_max_s"))
        return self


class Dispatcher(Section):
    """The loop that drains the outbox."""

    concurrency: Count = 10
    """Messages being sent at the same time, at most."""
    poll_interval_s: Seconds = 1
    """How often an idle dispatcher looks for due messages."""


class QuietHours(Section):
    """Non-urgent messages are held during these hours, in the customer's time zone."""

    start: time = time(21, 0)
    """HH:MM the quiet hours begin (may be later than end: they cross midnight)."""
    end: time = time(8, 0)
    """HH:MM they end."""
    timezone: TimeZoneName = "Asia/Shanghai"
    """Time zone of customers whose own is not known."""

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise problem((("end",), "equals start; write quiet_hours: null to have none"))
        return self


class Stage(Section):
    """The SMS sent when an order reaches a stage, and the call that stage may start."""

    template: MessageTemplate
    """str.format text; placeholders: customer_name, order_id, stage, signature,
    tracking_number, courier, eta, amount, refund_amount, return_id, opt_out_hint."""
    urgent: bool = False
    """Sent also in quiet hours."""
    marketing: bool = False
    """Marketing-like: the template must carry {opt_out_hint}."""
    add_to_campaign: Slug | None = None
    """Campaign the customer is added to, with the order as context."""
    only_vip: bool = False
    """Add only VIP customers to the campaign (the SMS still goes to everyone)."""

    @model_validator(mode="after")
    def _check_flags(self) -> Stage:
        found: list[tuple[KeyPath, str]] = []
        if self.marketing and "opt_out_hint" not in placeholders(self.template):
            found.append((("template",), "a marketing stage must include {opt_out_hint}"))
        if self.only_vip and self.add_to_campaign is None:
            found.append((("only_vip",), "has no effect without add_to_campaign"))
        if found:
            raise problem(*found)
        return self


class Notifications(Section):
    """SMS at every order stage."""

    providers: dict[Slug, Provider] = Field(
        default_factory=lambda: {"outbox": {"type": "outbox"}}, validate_default=True
    )
    """Name -> provider: {type: outbox | twilio | http, ...}."""
    primary: Slug = "outbox"
    """Provider used first."""
    fallback: Slug | None = None
    """Provider used when the primary fails for a provider reason, never for a number reason."""
    retry: NotificationRetry = Field(default_factory=_empty, validate_default=True)
    """Retries of transient failures."""
    dispatcher: Dispatcher = Field(default_factory=_empty, validate_default=True)
    """The sending loop."""
    quiet_hours: QuietHours | None = Field(default_factory=_empty, validate_default=True)
    """When non-urgent messages wait; null: never."""
    signature: str = ""
    """Sender signature for {signature}, e.g. 【好物优选】."""
    opt_out_hint: str = "回复TD退订"
    """Text of {opt_out_hint}."""
    stages: dict[Slug, Stage] = Field(default_factory=dict)
    """Stage -> message; a stage not listed sends nothing."""

    @model_validator(mode="after")
    def _check_providers(self) -> Notifications:
        found: list[tuple[KeyPath, str]] = []
        known = ", ".join(self.providers) or "none"
        if self.primary not in self.providers:
            found.append((("primary",), f"unknown provider {self.primary!r}; defined: {known}"))
        if self.fallback is not None and self.fallback not in self.providers:
            found.append((("fallback",), f"unknown provider {self.fallback!r}; defined: {known}"))
        elif self.fallback == self.primary:
            found.append((("fallback",), "must differ from primary"))
        if found:
            raise problem(*found)
        return self


# --------------------------------------------------------------------------------- the file


class Settings(Section):
    """The whole config file."""

    ami: AmiSettings
    """Asterisk Manager Interface."""
    store: StoreSettings = Field(default_factory=_empty, validate_default=True)
    """Database."""
    api: ApiSettings
    """HTTP API."""
    logging: LoggingSettings = Field(default_factory=_empty, validate_default=True)
    """Logs."""
    default_region: RegionCode = "CN"
    """Region of phone numbers written without a country code."""
    campaigns: dict[Slug, Campaign] = Field(default_factory=dict)
    """Name -> outbound call campaign: {kind: refusal_callback | vip, ...}."""
    notifications: Notifications = Field(default_factory=_empty, validate_default=True)
    """SMS."""

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        found: list[tuple[KeyPath, str]] = []
        for name, stage in self.notifications.stages.items():
            target = self.campaigns.get(stage.add_to_campaign or "")
            where: KeyPath = ("notifications", "stages", name, "add_to_campaign")
            if stage.add_to_campaign is not None and target is None:
                defined = ", ".join(self.campaigns) or "none"
                found.append(
                    (where, f"unknown campaign {stage.add_to_campaign!r}; defined: {defined}")
                )
            elif isinstance(target, VipCampaign) and not stage.only_vip:
                found.append(
                    (where, "a vip campaign: set only_vip: true, or every customer is added")
                )
        for name, provider in self.notifications.providers.items():
            if getattr(provider, "status_callback_url", None) and self.api.public_url is None:
                message = "needs api.public_url, to check the callbacks' signatures"
                found.append((("notifications", "providers", name, "status_callback_url"), message))
        if found:
            raise problem(*found)
        return self


def parse_settings(
    text: str, *, source: str, base_dir: Path, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from YAML text; `source` names it in issues, `base_dir` anchors relative paths."""
    tree = read_yaml(text, source=source)
    if not isinstance(tree, dict):
        found = "an empty file" if tree is None else type(tree).__name__
        raise ConfigError([ConfigIssue(source, 1, "(root)", f"expected a mapping, found {found}")])
    data, env_problems = to_plain(tree, os.environ if environ is None else environ)
    issues = []
    for path, message in env_problems:
        key, line = locate(tree, path)
        issues.append(ConfigIssue(source, line, key, message))
    context = {"base_dir": Path(base_dir).resolve(), "secrets_from_env_only": True}
    try:
        settings = Settings.model_validate(data, context=context)
    except ValidationError as exc:
        unset = {issue.key for issue in issues}  # errors that follow from these are noise
        issues += [
            issue
            for issue in issues_from_errors(exc.errors(), tree, source=source)
            if not unset & {issue.key, *_parents(issue.key)}
        ]
    if issues:
        raise ConfigError(sorted(issues, key=lambda issue: (issue.line or 0, issue.key)))
    return settings


def _parents(key: str) -> list[str]:
    """ "a.b[0].c" -> ["a", "a.b", "a.b[0]"]."""
    return [key[: match.start()] for match in re.finditer(r"[.\[]", key)]


def load_settings(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from the YAML file at `path`, or `ConfigError` listing every problem in it."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([ConfigIssue(source, None, "(root)", f"cannot read: {reason}")]) from None
    base_dir = Path(source).resolve().parent
    return parse_settings(text, source=source, base_dir=base_dir, environ=environ)
