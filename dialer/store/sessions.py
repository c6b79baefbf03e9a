"""The status page's sessions (`dialer.http.sessions.SessionRepository`).

Rows hold the SHA-256 of a session's id, never the id; expired rows are deleted when the next
session is opened.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from dialer.store.engine import Store
from dialer.store.schema import sessions

__all__ = ["SessionStore"]


class SessionStore:
    """Sessions on an open store, each call in its own transaction."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    async def add_session(
        self, id_hash: str, *, token_fingerprint: str, expires_at: datetime, now: datetime
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sessions.delete().where(sessions.c.expires_at <= now))
            await conn.execute(
                sessions.insert().values(
                    id_hash=id_hash,
                    token_fingerprint=token_fingerprint,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    async def find_session(self, id_hash: str) -> tuple[str, datetime] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(sessions.c.token_fingerprint, sessions.c.expires_at).where(
                        sessions.c.id_hash == id_hash
                    )
                )
            ).first()
        return None if row is None else (row.token_fingerprint, row.expires_at)

    async def remove_session(self, id_hash: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sessions.delete().where(sessions.c.id_hash == id_hash))
