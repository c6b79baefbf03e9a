"""The AMI's plain parts: errors, options, the link's state, header checks, message parsing.

No I/O and no panoramisk here.

Exceptions::

    AmiError
     +-- UnsafeHeader      a key or value would corrupt the AMI stream; nothing was sent
     +-- AmiNotConnected   not logged in right now; nothing was sent
     +-- AmiDisconnected   the link dropped before the answer came; the outcome is unknown
     +-- AmiTimeout        no answer within the action's timeout; the outcome is unknown
     +-- AmiActionFailed   Asterisk answered `Response: Error`; `.message` says why
     +-- AmiLoginFailed    Asterisk refused our username/secret (reported through `link`)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

AmiEvent = dict[str, str]
"""One AMI event: header name (as Asterisk spells it) -> value.

A repeated header keeps its first value, except `ChanVariable: NAME=value`, which becomes the key
`ChanVariable(NAME)`.
"""

EventHandler = Callable[[AmiEvent], Awaitable[None] | None]
LinkListener = Callable[["LinkState"], Awaitable[None] | None]


class AmiError(Exception):
    """Base of every error this module raises."""


class UnsafeHeader(AmiError, ValueError):
    """A header key or value holds CR, LF or NUL (or a key holds ':'); nothing was sent."""


class AmiNotConnected(AmiError):
    """The link is not logged in; the action was not sent."""


class AmiDisconnected(AmiError):
    """The link dropped while the action waited for its answer; its outcome is unknown."""


class AmiTimeout(AmiError):
    """No answer within the action's timeout; its outcome is unknown."""


class AmiActionFailed(AmiError):
    """Asterisk answered the action with `Response: Error`."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action} failed: {message}")
        self.action = action
        self.message = message


class AmiLoginFailed(AmiError):
    """Asterisk refused the username or secret."""


@dataclass(frozen=True)
class AmiOptions:
    """How to reach and watch the AMI; built by `app.py` from the validated config."""

    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    events: str = "on"
    connect_timeout_s: float = 5.0
    action_timeout_s: float = 10.0
    ping_interval_s: float = 10.0
    ping_timeout_s: float = 5.0
    reconnect_initial_backoff_s: float = 1.0
    reconnect_max_backoff_s: float = 30.0
    login_failure_backoff_s: float = 60.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class LinkState:
    """What `/readyz` and the status page say about the AMI link."""

    logged_in: bool = False
    detail: str = "not started"
    connects: int = 0
    reconnects: int = 0
    login_failures: int = 0
    since_monotonic: float = field(default_factory=time.monotonic)


ActionHeaders = Mapping[str, str | Sequence[str]]


def check_headers(action: ActionHeaders) -> None:
    """Refuse what would let a value break out of its header line (AMI header injection)."""
    for key, value in action.items():
        if not key or any(bad in key for bad in ("\r", "\n", "\0", ":")):
            raise UnsafeHeader(f"header name {key!r} is not allowed")
        values = [value] if isinstance(value, str) else list(value)
        for item in values:
            if not isinstance(item, str):
                raise UnsafeHeader(f"header {key} must be a string, got {type(item).__name__}")
            if any(bad in item for bad in ("\r", "\n", "\0")):
                raise UnsafeHeader(f"header {key} holds CR, LF or NUL")


def variable_headers(variables: Mapping[str, str]) -> list[str]:
    headers = []
    for name, value in variables.items():
        if not name or "=" in name or "," in name:
            raise UnsafeHeader(f"channel variable name {name!r} is not allowed")
        if "," in value:
            raise UnsafeHeader(f"channel variable {name} holds a comma; Asterisk would cut it")
        headers.append(f"{name}={value}")
    return headers


def parse_message(block: str) -> AmiEvent:
    """Headers of one AMI message (the text between two blank lines)."""
    headers: AmiEvent = {}
    for line in block.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key == "ChanVariable":
            name, _, var_value = value.partition("=")
            headers[f"ChanVariable({name})"] = var_value
        elif key not in headers:
            headers[key] = value
    return headers
