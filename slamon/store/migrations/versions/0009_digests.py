"""Tamper evidence: `sha256` (hex SHA-256 of the stored bytes) on every raw result block, every
issued statement's body and every cached fleet, checked whenever one is read; issued statements
also keep who issued a month below the contract's minimum coverage and why (`override_by`,
`override_reason`), and the labels their PDF printed (`context`, with its `context_sha256`), so an
issued statement's files come out the same bytes later. Existing rows get their digests here; a
block whose raw results were already let go (data NULL) keeps a NULL digest.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _hex(data: Any) -> str | None:
    if data is None:
        return None
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else bytes(data)).hexdigest()


def upgrade() -> None:
    op.add_column("result_blocks", sa.Column("sha256", sa.String(64), nullable=True))
    op.add_column("statements", sa.Column("sha256", sa.String(64), nullable=True))
    op.add_column("statements", sa.Column("override_by", sa.String(200), nullable=True))
    op.add_column("statements", sa.Column("override_reason", sa.Text(), nullable=True))
    op.add_column("statements", sa.Column("context", sa.Text(), nullable=True))
    op.add_column("statements", sa.Column("context_sha256", sa.String(64), nullable=True))
    op.add_column("fleet_cache", sa.Column("sha256", sa.String(64), nullable=True))
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":  # one pass in the database, hashed by Python's hashlib
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        dbapi.create_function("slamon_sha256", 1, _hex, deterministic=True)
        conn.exec_driver_sql("UPDATE result_blocks SET sha256 = slamon_sha256(data) WHERE data IS NOT NULL")
    else:
        conn.exec_driver_sql(
            "UPDATE result_blocks SET sha256 = encode(sha256(data), 'hex') WHERE data IS NOT NULL"
        )
    for r in conn.execute(sa.text("SELECT contract, month, revision, body FROM statements")).all():
        conn.execute(
            sa.text(
                "UPDATE statements SET sha256 = :sha "
                "WHERE contract = :contract AND month = :month AND revision = :revision"
            ),
            {"sha": _hex(r.body), "contract": r.contract, "month": r.month, "revision": r.revision},
        )
    for r in conn.execute(sa.text("SELECT key, body FROM fleet_cache")).all():
        conn.execute(sa.text("UPDATE fleet_cache SET sha256 = :sha WHERE key = :key"), {"sha": _hex(r.body), "key": r.key})


def downgrade() -> None:
    raise NotImplementedError("slamon does not downgrade its database; restore a backup instead")
