"""The status page's sessions and the provider callbacks seen, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from dialer.http.sessions import Sessions
from dialer.store import CallbackStore, SessionStore, Store
from tests.integration.sms_support import Now

T0 = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)


async def test_a_session_is_found_by_its_hash_with_an_aware_expiry(store: Store) -> None:
    sessions = SessionStore(store)
    await sessions.add_session("h1", token_fingerprint="f1", expires_at=T0, now=T0 - timedelta(1))
    assert await sessions.find_session("h1") == ("f1", T0)
    assert await sessions.find_session("h2") is None


async def test_opening_a_session_deletes_the_expired_ones(store: Store) -> None:
    sessions = SessionStore(store)
    await sessions.add_session("old", token_fingerprint="f", expires_at=T0, now=T0)
    await sessions.add_session("new", token_fingerprint="f", expires_at=T0 + timedelta(1), now=T0)
    assert await sessions.find_session("old") is None
    assert await sessions.find_session("new") is not None


async def test_two_daemons_on_one_store_share_sessions_and_logouts(store: Store) -> None:
    now = Now(T0)
    first = Sessions(SessionStore(store), "token", ttl_s=60, now=now)
    second = Sessions(SessionStore(store), "token", ttl_s=60, now=now)
    session_id = await first.open()
    seen_by_the_second = await second.check(session_id)
    await second.close(session_id)
    assert seen_by_the_second == "valid"
    assert await first.check(session_id) == "unknown"


async def test_a_callback_is_claimed_once_even_twice_at_the_same_moment(store: Store) -> None:
    callbacks = CallbackStore(store)
    claims = await asyncio.gather(
        callbacks.claim_callback("twilio", "SM1", now=T0),
        callbacks.claim_callback("twilio", "SM1", now=T0),
    )
    other_provider = await callbacks.claim_callback("other", "SM1", now=T0)
    assert sorted(claims) == [False, True]
    assert other_provider is True


async def test_a_released_callback_can_be_claimed_again(store: Store) -> None:
    callbacks = CallbackStore(store)
    await callbacks.claim_callback("twilio", "SM1", now=T0)
    await callbacks.release_callback("twilio", "SM1")
    assert await callbacks.claim_callback("twilio", "SM1", now=T0) is True


async def test_callbacks_seen_before_a_moment_are_forgotten(store: Store) -> None:
    callbacks = CallbackStore(store)
    await callbacks.claim_callback("twilio", "SMold", now=T0)
    await callbacks.claim_callback("twilio", "SMnew", now=T0 + timedelta(days=2))
    forgotten = await callbacks.forget_callbacks(before=T0 + timedelta(days=1))
    assert forgotten == 1
    assert await callbacks.claim_callback("twilio", "SMold", now=T0) is True
    assert await callbacks.claim_callback("twilio", "SMnew", now=T0) is False
