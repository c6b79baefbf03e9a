"""The status page's sessions kept in a dict: `dialer.http.sessions.SessionRepository` without
a database (the store's own, `dialer.store.SessionStore`, is tested on both backends)."""

from __future__ import annotations

from datetime import datetime


class MemorySessions:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, datetime]] = {}  # id hash -> (fingerprint, expiry)

    async def add_session(
        self, id_hash: str, *, token_fingerprint: str, expires_at: datetime, now: datetime
    ) -> None:
        self.rows = {key: row for key, row in self.rows.items() if row[1] > now}
        self.rows[id_hash] = (token_fingerprint, expires_at)

    async def find_session(self, id_hash: str) -> tuple[str, datetime] | None:
        return self.rows.get(id_hash)

    async def remove_session(self, id_hash: str) -> None:
        self.rows.pop(id_hash, None)
