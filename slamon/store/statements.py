"""Issued statements: each revision of a contract's month, frozen as it was issued.

A row keeps the issued JSON byte for byte (`body`) with its SHA-256, who issued a month whose
coverage was below the contract's minimum and why (`override_by`, `override_reason`), and the
labels its PDF printed (`context`, canonical JSON, with its own SHA-256). Every read checks both
digests: an edited row is an error naming the revision (digests.Tampered).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from slamon.model import Micros
from slamon.store import schema as t
from slamon.store.audit import Audit
from slamon.store.digests import check, sha256_hex
from slamon.store.sql import Part


@dataclass(frozen=True, slots=True)
class IssuedStatement:
    contract: str
    month: str
    revision: int
    hash: str
    replaces: str | None
    issued_at: Micros
    body: str  # the issued JSON as written (statement --revision N prints it as it is)
    override_by: str | None = None  # issued below the contract's minimum coverage: by whom
    override_reason: str | None = None  # and why
    context: str | None = None  # canonical JSON of the PDF's labels; None before schema 0009

    @property
    def name(self) -> str:
        return f"issued statement {self.contract} {self.month} revision {self.revision}"


class Statements(Part):
    def issued(self, contract: str, month: str) -> list[IssuedStatement]:
        """Every issued revision of the month, oldest first, each checked against its digests."""
        st = t.statements
        rows = self.conn.execute(
            sa.select(st).where(st.c.contract == contract, st.c.month == month).order_by(st.c.revision)
        )
        return [_checked(r) for r in rows]

    def revision(self, contract: str, month: str, revision: int) -> IssuedStatement | None:
        """One issued revision, checked; None when the month has no such revision."""
        st = t.statements
        row = self.conn.execute(
            sa.select(st).where(st.c.contract == contract, st.c.month == month, st.c.revision == revision)
        ).first()
        return None if row is None else _checked(row)

    def save(self, s: IssuedStatement, by: str = "slamon") -> None:
        """Store an issued revision, and record it in the audit log as `statement.issue` by `by`."""
        self.conn.execute(
            t.statements.insert().values(
                contract=s.contract,
                month=s.month,
                revision=s.revision,
                status="issued",
                hash=s.hash,
                replaces=s.replaces,
                issued_at=s.issued_at,
                body=s.body,
                sha256=sha256_hex(s.body),
                override_by=s.override_by,
                override_reason=s.override_reason,
                context=s.context,
                context_sha256=None if s.context is None else sha256_hex(s.context),
            )
        )
        body: dict[str, object] = {
            "contract": s.contract,
            "month": s.month,
            "revision": s.revision,
            "hash": s.hash,
            "replaces": s.replaces,
            "sha256": sha256_hex(s.body),
        }
        if s.override_reason is not None:
            body["coverage_override"] = {"reason": s.override_reason, "by": s.override_by}
        Audit(self.conn, self._insert).append(
            s.issued_at, by, "statement.issue", f"{s.contract} {s.month} revision {s.revision}", body
        )


def _checked(r: Any) -> IssuedStatement:
    s = IssuedStatement(
        r.contract,
        r.month,
        r.revision,
        r.hash,
        r.replaces,
        r.issued_at,
        r.body,
        r.override_by,
        r.override_reason,
        r.context,
    )
    check(s.name, s.body, r.sha256)
    if s.context is not None or r.context_sha256 is not None:
        check(f"{s.name} (its PDF labels)", s.context or "", r.context_sha256)
    return s
