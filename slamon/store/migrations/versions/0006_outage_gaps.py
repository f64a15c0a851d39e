"""`outages.gaps`: the monitoring gaps an outage spans (SLA.md §3: a stretch of `unknown` between two
`down` stretches, with no successful result inside it, does not end the outage), as JSON
`[[start, end], ...]`; NULL when it has none.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outages", sa.Column("gaps", sa.Text(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("slamon does not downgrade its database; restore a backup instead")
