"""Exclusions as a workflow, access and audit (docs/sla.md §4, docs/formats.md "Exclusions in the
store"): `exclusion_records` (every version of every exclusion), `evidence_files` and
`exclusion_evidence` (attachments by SHA-256), `audit_log` (hash-chained), `api_tokens` (hashed),
and `exclusions.file_sha256` (what the exclusions file last said of an id). The exclusions already
stored become version 1 of their records: `import` by `file`, or `detect` by `monitor`.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("exclusions") as batch:
        batch.add_column(sa.Column("file_sha256", sa.String(64), nullable=True))
    records = op.create_table(
        "exclusion_records",
        sa.Column("seq", SERIAL, autoincrement=True, nullable=False),
        sa.Column("exclusion", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_exclusion_records")),
        sa.UniqueConstraint("exclusion", "version", name=op.f("uq_exclusion_records_exclusion_version")),
    )
    op.create_table(
        "evidence_files",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_evidence_files")),
    )
    op.create_table(
        "exclusion_evidence",
        sa.Column("record", SERIAL, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("record", "position", name=op.f("pk_exclusion_evidence")),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_log_prev_hash")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("contracts", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, source, sha256, body, updated_at FROM exclusions ORDER BY position, id")
    ).all()
    for r in rows:
        from_file = r.source == "file"
        conn.execute(
            records.insert().values(
                exclusion=r.id,
                version=1,
                at=r.updated_at,
                action="import" if from_file else "detect",
                actor="file" if from_file else "monitor",
                source=r.source,
                status=json.loads(r.body)["status"],
                sha256=r.sha256,
                body=r.body,
                note="recorded when the database was upgraded to schema 0008",
            )
        )
        if from_file:
            conn.execute(
                sa.text("UPDATE exclusions SET file_sha256 = :sha WHERE id = :id"),
                {"sha": r.sha256, "id": r.id},
            )


def downgrade() -> None:
    raise NotImplementedError("slamon does not downgrade its database; restore a backup instead")
