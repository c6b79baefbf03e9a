"""The connection sections of the file: `ami`, `store`, `api`, `logging`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dialer.config.base import (
    Invalid,
    OptionalSecret,
    Secret,
    SecretFile,
    Section,
    context_of,
    report_invalid,
    resolve_path,
)
from dialer.config.database_url import DatabaseUrl
from dialer.config.values import (
    MAX_SECONDS,
    Count,
    HttpUrl,
    Integer,
    Number,
    OneLine,
    Port,
    Seconds,
    Upper,
)
from dialer.config.yaml_file import (
    Expanded,
    KeyPath,
    problem,
)


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
            url = DatabaseUrl.parse(raw) if isinstance(raw, str) else None
        except ValueError:
            url = None  # the field validator reports it
        if url is None or url.password is None:
            return data
        if data.get("password") is not None or data.get("password_file") is not None:
            data["url"] = Invalid("a password in url and in password/password_file: give one")
        elif not isinstance(raw, Expanded) and context_of(info).get("secrets_from_env_only"):
            data["url"] = Invalid("a password in url must come from ${VAR} (or password_file)")
        else:
            data["password"] = Expanded(url.password)
            data["url"] = url.with_password(None).render()
        return data

    @field_validator("url")
    @classmethod
    def _normalise_url(cls, value: str, info: ValidationInfo) -> str:
        try:
            url = DatabaseUrl.parse(value)
        except ValueError:
            message = "is not a database URL (percent-encode a password, or use password_file)"
            raise ValueError(message) from None
        if url.backend == "sqlite":
            if not url.database or url.database == ":memory:":
                raise ValueError(
                    "give a file: sqlite:///relative/path.db or sqlite:////abs/path.db"
                )
            path = resolve_path(Path(url.database), info)
            return DatabaseUrl("sqlite", database=str(path)).render()
        if url.backend == "postgresql":
            if not url.database:
                raise ValueError("give a database name: postgresql://USER@HOST:PORT/DB")
            return url.render()
        raise ValueError(f"unsupported database {url.backend!r}: use sqlite or postgresql")

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.url.startswith("sqlite:") else "postgresql"

    @property
    def sqlite_path(self) -> Path | None:
        """The absolute path of the SQLite file; None for PostgreSQL."""
        return Path(DatabaseUrl.parse(self.url).database) if self.dialect == "sqlite" else None

    @property
    def async_url(self) -> str:
        """The SQLAlchemy async URL, with the password: hand it to the engine, never log it."""
        driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}[self.dialect]
        password = None if self.password is None else self.password.get_secret_value()
        return DatabaseUrl.parse(self.url).with_password(password).render(driver)


MAX_BODY_BYTES = 64 * 1024 * 1024


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
    max_body_bytes: Annotated[Integer, Field(ge=1024, le=MAX_BODY_BYTES)] = 65536
    """Larger request bodies get 413 (at most 64 MiB)."""
    shutdown_grace_s: Annotated[Number, Field(ge=0, le=MAX_SECONDS)] = 10
    """How long running requests may take to finish at shutdown."""
    max_connections: Count = 256
    """Connections held at once, at most; one more gets 503 and is closed (keep it well under
    the open-file limit, `ulimit -n`)."""
    idle_timeout_s: Seconds = 15
    """A connection that has not sent a whole request's headers this long after it opened, or
    after its last answer, is closed (the header-read and keep-alive time-out)."""
    body_timeout_s: Seconds = 30
    """A request body not received whole within this gets 408."""
    session_ttl_s: Seconds = 28800
    """How long a status page login lasts (8 hours); logging out, or changing the API token,
    ends it sooner."""


class LoggingSettings(Section):
    """Logs: JSON lines for machines, a readable console for people."""

    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], Upper] = "INFO"
    """Lowest level logged."""
    format: Literal["auto", "json", "console"] = "auto"
    """auto: console on a terminal, JSON lines otherwise."""
