"""Live evidence: result blocks gain a `part` (a live round appends a small part instead of
rewriting its hour; imports and the hourly compaction merge parts back into part 0), and timelines
gain `resume`, the engine's carry at the device's firm point, so a restart resumes exactly.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = "device, kind, hour, n, n_ok, rtt_n, rtt_sum_us, rtt_min_us, rtt_max_us, data"


def upgrade() -> None:
    with op.batch_alter_table("timelines") as batch:
        batch.add_column(sa.Column("resume", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TABLE result_blocks_new (device INTEGER NOT NULL, kind SMALLINT NOT NULL, hour BIGINT NOT NULL,"
            " part INTEGER NOT NULL DEFAULT 0, n INTEGER NOT NULL, n_ok INTEGER NOT NULL, rtt_n INTEGER NOT NULL,"
            " rtt_sum_us BIGINT NOT NULL, rtt_min_us BIGINT, rtt_max_us BIGINT, data BLOB,"
            " CONSTRAINT pk_result_blocks PRIMARY KEY (device, kind, hour, part)) WITHOUT ROWID"
        )
        op.execute(f"INSERT INTO result_blocks_new ({COLUMNS}, part) SELECT {COLUMNS}, 0 FROM result_blocks")
        op.execute("DROP TABLE result_blocks")
        op.execute("ALTER TABLE result_blocks_new RENAME TO result_blocks")
    else:
        op.add_column("result_blocks", sa.Column("part", sa.Integer(), nullable=False, server_default="0"))
        op.drop_constraint("pk_result_blocks", "result_blocks", type_="primary")
        op.create_primary_key("pk_result_blocks", "result_blocks", ["device", "kind", "hour", "part"])


def downgrade() -> None:
    raise NotImplementedError("slamon does not downgrade its database; restore a backup instead")
