"""The `worker` section: who this daemon is among several sharing one PostgreSQL store."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from dialer.config.base import Section
from dialer.config.values import OneLine, Slug
from dialer.config.yaml_file import problem

__all__ = ["WorkerSettings"]

RoleName = Literal["api", "dispatcher", "campaigns"]


class WorkerSettings(Section):
    """This daemon among the workers sharing the store (see README, Running several workers)."""

    id: OneLine | None = None
    """Worker id, unique among the workers; unset: the host name and a random suffix, new at
    each start (a fixed id lets a restarted worker settle its own calls at once)."""
    roles: Annotated[tuple[RoleName, ...], Field(min_length=1)] = ("api", "dispatcher", "campaigns")
    """What this worker does: api (the HTTP API, the order events' intake, the status page),
    dispatcher (sends the SMS), campaigns (dials); `dialer run --role` overrides it."""
    pbx: Slug | None = None
    """Name of the PBX this worker's `ami` reaches (campaigns with `pbx:` run only on its
    workers); unset: `default`."""
    lease_s: Annotated[float, Field(ge=3, le=3600)] = 30
    """A worker silent this long is declared dead and its work is taken over."""
    heartbeat_s: Annotated[float, Field(gt=0, le=600)] = 5
    """How often a worker renews its lease (at most half of lease_s)."""

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> WorkerSettings:
        if self.heartbeat_s * 2 > self.lease_s:
            message = f"must be at most half of lease_s ({self.lease_s:g})"
            raise problem((("heartbeat_s",), message))
        if len(set(self.roles)) != len(self.roles):
            raise problem((("roles",), "a role is listed twice"))
        return self
