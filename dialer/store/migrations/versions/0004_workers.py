"""Several workers on one store: their leases, the campaigns' runner slots, who is sending.

Revision ID: 0004
Revises: 0003
Created: 2026-12-06

- `workers`: one row per worker (`dialer.workers`): its lease (`lease_expires_at`, renewed
  every heartbeat) and when it was declared dead (its lease ran out, or it stopped);
- `runner_slots`: which worker runs each campaign (one at a time), on which PBX, and the agent
  queue it dials for (campaigns sharing a queue run on one worker);
- `outbound_messages.lease_owner`: the worker that marked a message `sending`.

Frozen like 0001: the values are spelled out here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pbx", sa.String(), nullable=False),
        sa.Column("roles", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "runner_slots",
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("pbx", sa.String(), nullable=True),
        sa.Column("agent_queue", sa.String(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("campaign", name=op.f("pk_runner_slots")),
    )
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("lease_owner")
    op.drop_table("runner_slots")
    op.drop_table("workers")
