"""Issued statements: each revision of a contract's month, frozen as it was issued."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from slamon.model import Micros
from slamon.store import schema as t
from slamon.store.sql import Part


@dataclass(frozen=True, slots=True)
class IssuedStatement:
    contract: str
    month: str
    revision: int
    hash: str
    replaces: str | None
    issued_at: Micros
    body: str


class Statements(Part):
    def issued(self, contract: str, month: str) -> list[IssuedStatement]:
        st = t.statements
        rows = self.conn.execute(
            sa.select(st).where(st.c.contract == contract, st.c.month == month).order_by(st.c.revision)
        )
        return [
            IssuedStatement(r.contract, r.month, r.revision, r.hash, r.replaces, r.issued_at, r.body)
            for r in rows
        ]

    def save(self, s: IssuedStatement) -> None:
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
            )
        )
