"""`inspections`: the missed inspections of the inspections file (docs/sla.md §6.6, the score
card's missed_inspection item), mirrored like exclusions: one row per inspection, its canonical
JSON and that JSON's hash.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
    )


def downgrade() -> None:
    raise NotImplementedError("slamon does not downgrade its database; restore a backup instead")
