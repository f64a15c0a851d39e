"""Indexes for a statement's evidence digest (docs/sla.md, "The hash"), which reads each block's
kind, hour and SHA-256 for every device of the month; without them it reads the blocks' bytes too
(10,000 devices × a month: 7.4 million blocks, 8 GB). `result_blocks_digests` covers the merged
blocks (part 0: written by imports and the hourly compaction); `result_blocks_live` names the
hours that still hold live parts (part > 0; few, as compaction merges them every hour). Live
rounds append only parts > 0, so their writes touch only the small one.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
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
        sqlite_where=sa.text("part = 0"),
        postgresql_where=sa.text("part = 0"),
    )
    op.create_index(
        "result_blocks_live",
        "result_blocks",
        ["device", "hour"],
        sqlite_where=sa.text("part > 0"),
        postgresql_where=sa.text("part > 0"),
        postgresql_include=["kind"],
    )


def downgrade() -> None:
    op.drop_index("result_blocks_live", table_name="result_blocks")
    op.drop_index("result_blocks_digests", table_name="result_blocks")
