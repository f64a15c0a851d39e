"""A covering index of the raw result blocks' digests: a statement's evidence digest (docs/sla.md,
"The hash") reads each block's kind, hour and SHA-256 for every device of the month, and without
it reads the blocks' bytes too (10,000 devices × a month: 7.4 million blocks, 8 GB). PostgreSQL
keeps the digest and part in the index (INCLUDE); SQLite's index holds the primary key's part
anyway.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "result_blocks_digests",
        "result_blocks",
        ["device", "hour", "kind", "sha256"],
        postgresql_include=["part"],
    )


def downgrade() -> None:
    op.drop_index("result_blocks_digests", table_name="result_blocks")
