"""How a campaign runner works, apart from its campaign's config: lease owner, waits, margins."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RunnerOptions"]


@dataclass(frozen=True)
class RunnerOptions:
    worker_id: str = "worker"
    """Lease owner: the same id after a restart lets the worker settle its own calls at once."""
    lease_s: float = 600.0
    idle_poll_s: float = 5.0
    response_margin_s: float = 15.0
    """OriginateResponse due within ring_timeout_s + this, or the attempt is `unknown`."""
    max_call_s: float = 4 * 3600.0
    not_sent_retry_s: float = 30.0
    refused_backoff_initial_s: float = 1.0
    refused_backoff_max_s: float = 60.0
    """While the PBX refuses Originates: the first wait, doubled per refusal up to this."""
    default_region: str = "CN"
