"""What the daemon's adapters take from the settings: the AMI link's options, who this worker
is among those sharing a store. (Split from `dialer.app`, which builds and runs.)"""

from __future__ import annotations

from collections.abc import Sequence

from dialer.config import Settings
from dialer.pbx.wire import AmiOptions
from dialer.workers import Role, WorkerIdentity, default_worker_id

__all__ = ["ami_options", "worker_identity"]


def ami_options(settings: Settings) -> AmiOptions:
    ami = settings.ami
    return AmiOptions(
        host=ami.host,
        port=ami.port,
        username=ami.username,
        secret=ami.secret.get_secret_value(),
        events=ami.events,
        connect_timeout_s=ami.connect_timeout_s,
        action_timeout_s=ami.action_timeout_s,
        ping_interval_s=ami.ping_interval_s,
        ping_timeout_s=ami.ping_timeout_s,
        reconnect_initial_backoff_s=ami.reconnect_initial_backoff_s,
        reconnect_max_backoff_s=ami.reconnect_max_backoff_s,
        login_failure_backoff_s=ami.login_failure_backoff_s,
    )


def worker_identity(settings: Settings, roles: Sequence[Role] | None = None) -> WorkerIdentity:
    """Who this daemon is among the workers: `worker` in the config, `--role` overriding."""
    worker = settings.worker
    return WorkerIdentity(
        id=worker.id or default_worker_id(),
        roles=tuple(roles or worker.roles),
        pbx=worker.pbx or "default",
    )
