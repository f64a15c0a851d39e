"""Fleet cache: the validated fleet, keyed by the exact bytes of the files it was loaded from, so a
10,000-device inventory.yaml is parsed once rather than by every command.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_cache",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_fleet_cache")),
    )


def downgrade() -> None:
    op.drop_table("fleet_cache")
