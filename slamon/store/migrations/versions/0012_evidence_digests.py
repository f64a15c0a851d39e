"""`evidence_digests`: each device's evidence digest over a month's hours, remembered by the
statement that computed it, so the next draft of that month reads one row per device instead of
every raw block's digest (10,000 devices × a month: 7.4 million). Starts empty.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_digests",
        sa.Column("device", sa.Integer(), nullable=False),
        sa.Column("lo", sa.BigInteger(), nullable=False),
        sa.Column("hi", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("device", "lo", "hi", name=op.f("pk_evidence_digests")),
    )
    op.create_index("evidence_digests_by_hi", "evidence_digests", ["hi"])


def downgrade() -> None:
    op.drop_index("evidence_digests_by_hi", table_name="evidence_digests")
    op.drop_table("evidence_digests")
