"""`n_low_res` on raw result blocks: how many of a block's video samples were below the resolution
minimum, kept with the block's other rollups when retention lets its raw results go, so a month's HD
rate (docs/sla.md) can be computed again later. Existing video blocks are counted from their raw
results here; a block whose results were let go already stays NULL (not counted).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

VIDEO = 2  # result_blocks.kind of video samples
# the records as stored (store/blocks.py RECORD) and the low_resolution bit (model.Defect order)
RECORD = [("off", "<u4"), ("ok", "u1"), ("defects", "<u4"), ("rtt", "<u4")]
LOW_RESOLUTION_BIT = 1 << 1


def upgrade() -> None:
    import numpy as np

    op.add_column("result_blocks", sa.Column("n_low_res", sa.Integer(), nullable=True))
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE result_blocks SET n_low_res = 0 WHERE kind <> :video"), {"video": VIDEO})
    rows = conn.execute(
        sa.text(
            "SELECT device, kind, hour, part, data FROM result_blocks WHERE kind = :video AND data IS NOT NULL"
        ),
        {"video": VIDEO},
    ).all()
    dtype = np.dtype(RECORD)
    for r in rows:
        records = np.frombuffer(bytes(r.data), dtype=dtype)
        conn.execute(
            sa.text(
                "UPDATE result_blocks SET n_low_res = :n "
                "WHERE device = :device AND kind = :kind AND hour = :hour AND part = :part"
            ),
            {
                "n": int(np.count_nonzero(records["defects"] & LOW_RESOLUTION_BIT)),
                "device": r.device,
                "kind": r.kind,
                "hour": r.hour,
                "part": r.part,
            },
        )


def downgrade() -> None:
    op.drop_column("result_blocks", "n_low_res")
