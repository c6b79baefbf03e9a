"""The store: SQLAlchemy Core on SQLite or PostgreSQL, implementing the core's repositories.

- `engine`: `Store.open` (connect, migrate), `StoreError`; `schema`: the tables; `migrations/`.
- One module per aggregate: `campaigns` (+ `attempts`, `contacts`) for the calling core's
  `CampaignRepository`; `events` and `outbox` for messaging's `EventRepository` and `Outbox`;
  `opt_outs` for `OptOutRegistry`; `callbacks` for `CallbackLedger` (provider callbacks seen);
  `sessions` for the status page's sessions (`dialer.http.sessions.SessionRepository`).
- Read-only views for supervisors: `campaign_reports`, `sms_reports`.

The store imports no core logic: only the ports' value types (`dialer.calling.ports`,
`dialer.messaging.ports`) and the shared `dialer.outcomes`.
"""

from dialer.store.callbacks import CallbackStore
from dialer.store.campaigns import CampaignStore
from dialer.store.engine import Store, StoreError
from dialer.store.events import EventStore
from dialer.store.opt_outs import OptOutStore
from dialer.store.outbox import OutboxStore
from dialer.store.sessions import SessionStore

__all__ = [
    "CallbackStore",
    "CampaignStore",
    "EventStore",
    "OptOutStore",
    "OutboxStore",
    "SessionStore",
    "Store",
    "StoreError",
]
