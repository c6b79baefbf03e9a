"""The status page's sessions: server-side, so that a cookie is not the API token.

- Logging in (`open`) makes a random id (`secrets.token_urlsafe`): the cookie holds the id, the
  store only its SHA-256, with an expiry (`api.session_ttl_s`) and a fingerprint of the API
  token it was opened with. A stolen database holds no usable cookie and no token.
- A cookie is good (`check`) while its session is stored, unexpired, and was opened with the
  API token in force now: changing the token ends every session. Logging out (`close`) deletes
  the session, so the cookie is worth nothing after it, also if it was copied.
- Sessions live in the store (`SessionRepository`, implemented by `dialer.store.sessions`), so
  several daemons on one PostgreSQL share them, and they survive a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import Literal, Protocol

from dialer.clock import Clock

__all__ = ["SessionRepository", "SessionState", "Sessions", "token_matches"]

SessionState = Literal["valid", "expired", "token_changed", "unknown"]
"""What a cookie is worth: `valid`, or why not (`unknown`: never opened, closed, or garbage)."""

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{32,64}")  # what token_urlsafe(32) makes: 43 characters
_FINGERPRINT_CONTEXT = b"pbx-outreach status page session"


class SessionRepository(Protocol):
    """Where sessions are kept (`dialer.store.sessions.SessionStore`)."""

    async def add_session(
        self, id_hash: str, *, token_fingerprint: str, expires_at: datetime, now: datetime
    ) -> None:
        """Keep a new session; sessions expired at `now` may be deleted on the way."""

    async def find_session(self, id_hash: str) -> tuple[str, datetime] | None:
        """(token fingerprint, expiry) of a kept session, or None."""

    async def remove_session(self, id_hash: str) -> None:
        """Forget a session (logging out); nothing when there is none."""


def token_matches(given: str, api_token: str) -> bool:
    """Constant-time comparison of a token given by a client with `api.token`.

    `given` may hold what aiohttp made of bytes that are not UTF-8 (surrogate escapes).
    """
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), api_token.encode("utf-8", "surrogateescape")
    )


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


class Sessions:
    """Opens, checks and closes sessions for one API token."""

    def __init__(
        self, repository: SessionRepository, api_token: str, *, ttl_s: float, now: Clock
    ) -> None:
        self.repository = repository
        self.api_token = api_token
        self.ttl = timedelta(seconds=ttl_s)
        self.now = now
        self._fingerprint = hmac.new(
            api_token.encode("utf-8"), _FINGERPRINT_CONTEXT, hashlib.sha256
        ).hexdigest()

    def token_matches(self, given: str) -> bool:
        return token_matches(given, self.api_token)

    async def open(self) -> str:
        """A new session; its id is the cookie's value (shown to no one else, logged nowhere)."""
        session_id = secrets.token_urlsafe(32)
        now = self.now()
        await self.repository.add_session(
            _hash(session_id),
            token_fingerprint=self._fingerprint,
            expires_at=now + self.ttl,
            now=now,
        )
        return session_id

    async def check(self, session_id: str | None) -> SessionState:
        if session_id is None or not _SESSION_ID.fullmatch(session_id):
            return "unknown"
        found = await self.repository.find_session(_hash(session_id))
        if found is None:
            return "unknown"
        fingerprint, expires_at = found
        if not hmac.compare_digest(fingerprint, self._fingerprint):
            return "token_changed"
        if expires_at <= self.now():
            return "expired"
        return "valid"

    async def close(self, session_id: str | None) -> None:
        if session_id is not None and _SESSION_ID.fullmatch(session_id):
            await self.repository.remove_session(_hash(session_id))
