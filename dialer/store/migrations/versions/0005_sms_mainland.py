"""SMS through Aliyun and Tencent Cloud: templates per provider, lookups, daily holds.

Revision ID: 0005_sms_mainland
Revises: 0004
Created: 2026-12-06

- `outbound_messages.templates`: provider name -> the approved template and its variables,
  filled at intake (the template-only providers send these, never `body`);
- `outbound_messages.ambiguous_since`: a send whose answer was lost (or a crash mid-send):
  the providers are asked whether they took it before it is sent again;
- `outbound_messages.held_until`: held back by the daily limit per number until then;
- an index on (phone, sent_at): what each number was sent today.

Frozen like 0001: the values are spelled out here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005_sms_mainland"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(JSONB(), "postgresql")
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("templates", json_type, nullable=True))
        batch.add_column(sa.Column("ambiguous_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("held_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_outbound_messages_phone_sent_at", ["phone", "sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_index("ix_outbound_messages_phone_sent_at")
        batch.drop_column("held_until")
        batch.drop_column("ambiguous_since")
        batch.drop_column("templates")
