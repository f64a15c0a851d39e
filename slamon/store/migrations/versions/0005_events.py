"""`events`: evidence the probe results alone do not hold (a switch port's state when it changed,
a reboot, a site that went dark while its upstream answered), append only.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("events_by_subject", "events", ["kind", "subject", "at"])


def downgrade() -> None:
    raise NotImplementedError("slamon does not downgrade its database; restore a backup instead")
