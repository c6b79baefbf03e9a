"""Alembic migrations of the store; run by `dialer.store.Store.open`, see env.py."""
