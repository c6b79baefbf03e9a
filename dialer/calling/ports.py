"""What the campaigns need from the world, as small protocols, and the values that cross them.

The calling core owns these; `dialer.pbx` (the AMI) and `dialer.store` (SQL) implement them, and
the tests' fakes do too. Nothing here does I/O.

- `Pbx`: place a call, read a queue's members, list the channels up, read what the dialplan
  recorded of a call (`db_get`). Its errors::

      PbxError
       +-- PbxNotSent       certainly not sent (not logged in, a value unsafe on the wire)
       +-- PbxRefused       the PBX answered the request with an error; `.message` says why
       +-- PbxUnconfirmed   sent, but no answer came (time-out, link lost): it may be placed

- `CampaignRepository`: campaigns, contacts (leased while dialled) and attempts.
- `CampaignReports`: read-only counts and rows for supervisors.
- `RunnerSlots`: which worker runs each campaign, when several share the store.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from dialer.outcomes import Outcome

__all__ = [
    "AddedContact",
    "AttemptFacts",
    "AttemptRow",
    "CampaignReports",
    "CampaignRepository",
    "ContactState",
    "DueContact",
    "LiveChannel",
    "NewContact",
    "NextStep",
    "OriginateRequest",
    "Pbx",
    "PbxError",
    "PbxNotSent",
    "PbxRefused",
    "PbxUnconfirmed",
    "RunnerSlots",
    "Settlement",
    "SlotRequest",
]

# ------------------------------------------------------------------------------------ the PBX


class PbxError(Exception):
    """The PBX could not do what was asked."""


class PbxNotSent(PbxError):
    """The request was certainly not sent (not logged in, or a value unsafe on the wire)."""


class PbxRefused(PbxError):
    """The PBX answered the request with an error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PbxUnconfirmed(PbxError):
    """The request was sent but its answer never came: it may have been carried out."""


@dataclass(frozen=True)
class OriginateRequest:
    """One outbound call. `action_id` and `channel_id` are ours, so every event can be matched.

    `channel_id` becomes the Uniqueid of the first channel and the Linkedid of every leg of the
    call (agent legs included); `variables` are set on the channel (no commas in values: Asterisk
    would cut the value there).
    """

    action_id: str
    channel_id: str
    channel: str
    context: str
    exten: str
    priority: int = 1
    caller_id: str | None = None
    ring_timeout_s: float = 25.0
    variables: Mapping[str, str] = field(default_factory=dict)

    @property
    def other_channel_id(self) -> str:
        return f"{self.channel_id}-2"


@dataclass(frozen=True)
class LiveChannel:
    """A channel the PBX has up now (CoreShowChannels)."""

    uniqueid: str
    linkedid: str
    up: bool


class Pbx(Protocol):
    """The PBX as the campaigns use it (`dialer.pbx.AmiPbx`; tests use a fake).

    Its events (every AMI event, as a dict of headers) reach `CampaignService.handle_event`,
    and its login state `CampaignService.on_link_change`; the daemon wires both."""

    @property
    def logged_in(self) -> bool: ...

    async def wait_logged_in(self) -> None: ...

    async def originate(self, request: OriginateRequest) -> None:
        """Ask for the call; returns once the PBX queued it. Raises a `PbxError`."""

    async def queue_status(self, queue: str) -> list[Mapping[str, str]]:
        """The queue's QueueParams and QueueMember items. Raises a `PbxError`."""

    async def live_channels(self) -> list[LiveChannel]:
        """Every channel up now. Raises a `PbxError`."""

    async def db_get(self, family: str, key: str) -> str | None:
        """A value the dialplan kept in the PBX's database (AstDB), None when there is none.
        Raises a `PbxError` when the PBX cannot be asked."""


# ----------------------------------------------------------------------------- the repository

ContactState = Literal["pending", "done", "failed"]


@dataclass(frozen=True)
class DueContact:
    id: int
    campaign_id: int
    phone: str
    name: str | None
    timezone: str | None
    priority: int
    context: dict[str, Any]
    attempts_count: int


@dataclass(frozen=True)
class NewContact:
    """A contact to add, already checked (E.164 number, known zone)."""

    phone: str
    name: str | None = None
    timezone: str | None = None
    priority: int = 0
    context: dict[str, Any] | None = None


@dataclass(frozen=True)
class AddedContact:
    contact_id: int
    merged: bool  # the number was already in the campaign
    waiting: bool  # it will be called (False: it had already finished)


@dataclass(frozen=True)
class AttemptRow:
    """An attempt written and not settled: what recovery needs to follow or settle it."""

    attempt_id: str
    contact_id: int
    campaign_id: int
    phone: str
    channel_id: str
    started_at: datetime


@dataclass(frozen=True)
class NextStep:
    """What becomes of the contact after an attempt: `pending` again after `delay_s`, or
    finished (`done`, `failed`), and why."""

    state: ContactState
    delay_s: float | None = None
    why: str = ""


@dataclass(frozen=True)
class AttemptFacts:
    """What the retry rule needs to know of an attempt about to be settled."""

    contact_id: int
    disposition: str | None
    attempts_with_outcome: int
    """Attempts of the contact settled with the outcome at hand, this one included."""
    attempts_total: int


@dataclass(frozen=True)
class Settlement:
    """What an attempt came to, as written to its row."""

    attempt_id: str
    outcome: Outcome
    ended_at: datetime
    answered_at: datetime | None = None
    disposition: str | None = None
    reason_code: int | None = None
    dial_status: str | None = None
    hangup_cause: int | None = None
    duration_s: float | None = None
    agent_wait_s: float | None = None
    """Seconds from the answer to an agent taking the call (calls into an agent queue)."""


class CampaignRepository(Protocol):
    """Campaign rows, contacts and attempts (`dialer.store.CampaignStore`)."""

    async def ensure_campaign(self, name: str, kind: str) -> int:
        """The campaign's id; its row created, or its kind brought up to the config's."""

    async def campaign_state(self, campaign_id: int) -> str: ...

    async def set_campaign_state(self, campaign_id: int, state: str, now: datetime) -> None: ...

    async def is_opted_out(self, phone: str) -> bool:
        """The number opted out of calls."""

    async def add_contacts(
        self, campaign_id: int, items: Sequence[NewContact], now: datetime
    ) -> list[AddedContact]:
        """Add (or merge) every item, in order."""

    async def claim_next(
        self, campaign_id: int, *, owner: str, now: datetime, lease_s: float
    ) -> DueContact | None:
        """Lease the most urgent due contact (pending -> dialling), or None."""

    async def put_back(
        self, contact_id: int, *, due_at: datetime, now: datetime, reason: str = "deferred"
    ) -> None:
        """A leased contact not called after all: pending again at `due_at` (`reason` goes on
        the number's timeline)."""

    async def cancel(self, contact_id: int, *, reason: str, now: datetime) -> None:
        """Never to be called; the reason is kept."""

    async def next_due_at(self, campaign_id: int) -> datetime | None: ...

    async def start_attempt(self, contact: DueContact, *, attempt_id: str, now: datetime) -> None:
        """Write the attempt row (before the Originate is sent), counted on the contact."""

    async def withdraw_attempt(
        self, attempt_id: str, contact_id: int, *, due_at: datetime, now: datetime
    ) -> None:
        """The Originate was certainly not placed: forget the attempt, pending again."""

    async def record_disposition(self, attempt_id: str, disposition: str, now: datetime) -> bool:
        """Keep the disposition on the attempt and its contact; False: no such attempt."""

    async def attempt_facts(self, attempt_id: str, outcome: Outcome) -> AttemptFacts | None:
        """What the retry rule needs; None when the attempt is unknown or already settled."""

    async def settle(
        self, settlement: Settlement, step: NextStep, *, next_attempt_at: datetime | None
    ) -> bool:
        """Write the outcome once and apply the contact's step (due again at
        `next_attempt_at` when pending), in one transaction. False: already settled."""

    async def answered_since(
        self, campaign_id: int, since: datetime, *, abandon_after_s: float
    ) -> list[tuple[datetime, bool]]:
        """(when answered, abandoned) of the campaign's answered calls since `since`, oldest
        first (the abandon rule's window, read again after a restart)."""

    async def unsettled_attempts(
        self, campaign_id: int, *, owner: str, now: datetime
    ) -> list[AttemptRow]:
        """Attempts without an outcome leased to this worker (an earlier life's, or adopted
        from a dead worker with the campaign's runner slot), or to nobody."""

    async def release_orphans(
        self, campaign_id: int, *, owner: str, now: datetime, keep: Collection[int] = ()
    ) -> int:
        """Contacts left dialling with no attempt in flight: pending again. How many."""


class CampaignReports(Protocol):
    """Read-only views for supervisors (the API, the status page, the report command)."""

    async def summary(self, campaign_id: int) -> dict[str, Any]: ...

    async def recent_attempts(self, campaign_id: int, limit: int = 10) -> list[dict[str, Any]]: ...


# ---------------------------------------------------------------------- several workers


@dataclass(frozen=True)
class SlotRequest:
    """A worker asking to run a campaign."""

    campaign: str
    campaign_id: int
    owner: str
    """The worker id."""
    pbx: str
    """The PBX the worker dials through."""
    agent_queue: str | None = None
    """The agent queue the campaign dials for: one worker runs every campaign of a queue."""


class RunnerSlots(Protocol):
    """One runner per campaign across the workers sharing a store (`dialer.store.runner_slots`)."""

    async def claim(self, request: SlotRequest) -> bool:
        """True while this worker holds the campaign's slot (taken now, or held already);
        False while a live worker holds it. Taking it adopts the contacts a dead holder left
        dialling (this worker's recovery settles them)."""

    async def holders(self) -> dict[str, str | None]:
        """Campaign -> the worker holding its slot."""

    async def live_workers(self, role: str) -> list[str]:
        """The live workers playing `role` (to share the campaigns out)."""

    async def release(self, owner: str) -> None:
        """A clean stop: every slot of `owner` is free."""
