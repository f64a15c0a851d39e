"""The store's identity and the writers' progress: `store_meta` holds a random `store_id` made when
the database is created (a service that finds another id, or none, is not writing where it began)
and, per live service journal, the sequence number of the last write it applied, so a journal
replayed after a crash applies each write exactly once.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("slamon does not downgrade its database; restore a backup instead")
