"""Call reliability: the outcome `rejected`, how long an answered call waited for an agent, and
when a dead message was replayed.

Revision ID: 0002
Revises: 0001
Created: 2026-12-06

- `attempts.outcome` and `contacts.last_outcome` also take `rejected` (the customer rejected
  the call, Q.850 cause 21);
- `attempts.agent_wait_s`: seconds from the answer to an agent taking the call;
- `outbound_messages.replayed_at`: when a dead letter was queued again (its age for
  `max_age_s` counts from then; `created_at` stays when it was first queued).

Frozen like 0001: the values are spelled out here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES_BEFORE = (
    "'answered', 'busy', 'no_answer', 'congestion', 'unavailable', 'failed', 'abandoned', 'unknown'"
)
OUTCOMES = (
    "'answered', 'busy', 'no_answer', 'congestion', 'unavailable', 'failed', 'rejected', "
    "'abandoned', 'unknown'"
)


def _outcomes(allowed: str) -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_constraint(op.f("ck_contacts_last_outcome"), type_="check")
        batch.create_check_constraint(
            op.f("ck_contacts_last_outcome"), f"last_outcome IN ({allowed})"
        )
    with op.batch_alter_table("attempts") as batch:
        batch.drop_constraint(op.f("ck_attempts_outcome"), type_="check")
        batch.create_check_constraint(op.f("ck_attempts_outcome"), f"outcome IN ({allowed})")


def upgrade() -> None:
    _outcomes(OUTCOMES)
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("agent_wait_s", sa.Float(), nullable=True))
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("replayed_at")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("agent_wait_s")
    _outcomes(OUTCOMES_BEFORE)
