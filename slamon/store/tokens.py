"""Bearer tokens for the HTTP API, stored hashed: the token is shown once, when it is made.

A token reads `slamon_<id>_<secret>`: the id (public, in listings and the audit log) finds the row,
and the SHA-256 of the whole token must match the stored one. The secret is 32 random bytes, so a
plain SHA-256 is enough (a slow password hash guards guessable secrets; these are not). Creating
and revoking are audited; a revoked token stays listed, with who revoked it and when.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from slamon.model import Micros
from slamon.store import schema as t
from slamon.store.audit import Audit
from slamon.store.sql import Part

PREFIX = "slamon_"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    role: str
    contracts: frozenset[str] | None  # None: every contract
    created_at: Micros
    created_by: str
    revoked_at: Micros | None = None
    revoked_by: str | None = None


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id(token: str) -> str | None:
    """The id part of a token, or None when it is not shaped like one of slamon's."""
    if not token.startswith(PREFIX):
        return None
    ident, sep, secret = token[len(PREFIX) :].partition("_")
    return ident if sep and ident and secret else None


class Tokens(Part):
    def create(
        self, name: str, role: str, contracts: Iterable[str] | None, by: str, at: Micros
    ) -> tuple[TokenInfo, str]:
        """A new token: its record, and the token itself (which is not stored)."""
        while True:
            ident = secrets.token_hex(4)
            if self._row(ident) is None:
                break
        token = f"{PREFIX}{ident}_{secrets.token_urlsafe(32)}"
        limited = None if contracts is None else frozenset(contracts)
        self.conn.execute(
            t.api_tokens.insert(),
            {
                "id": ident,
                "name": name,
                "role": role,
                "contracts": None if limited is None else json.dumps(sorted(limited)),
                "sha256": token_sha256(token),
                "created_at": at,
                "created_by": by,
            },
        )
        body: dict[str, object] = {"name": name, "role": role, "contracts": _listed(limited)}
        Audit(self.conn, self._insert).append(at, by, "token.create", ident, body)
        return TokenInfo(ident, name, role, limited, at, by), token

    def revoke(self, ident: str, by: str, at: Micros) -> TokenInfo | None:
        """Revoke a token; None when there is no such token. Revoking twice changes nothing."""
        found = self.get(ident)
        if found is None or found.revoked_at is not None:
            return found
        self.conn.execute(
            t.api_tokens.update().where(t.api_tokens.c.id == ident).values(revoked_at=at, revoked_by=by)
        )
        Audit(self.conn, self._insert).append(at, by, "token.revoke", ident, {"name": found.name})
        return self.get(ident)

    def get(self, ident: str) -> TokenInfo | None:
        row = self._row(ident)
        return None if row is None else _info(row)

    def any(self) -> bool:
        """Whether a token was ever made (revoked ones count)."""
        return self.conn.execute(sa.select(t.api_tokens.c.id).limit(1)).first() is not None

    def all(self) -> list[TokenInfo]:
        rows = self.conn.execute(
            sa.select(t.api_tokens).order_by(t.api_tokens.c.created_at, t.api_tokens.c.id)
        )
        return [_info(r) for r in rows]

    def match(self, token: str) -> TokenInfo | None:
        """The token's record when the token is one of ours (revoked or not), else None."""
        ident = token_id(token)
        if ident is None:
            return None
        row = self._row(ident)
        if row is None or not hmac.compare_digest(row.sha256, token_sha256(token)):
            return None
        return _info(row)

    def _row(self, ident: str) -> sa.Row[tuple[object, ...]] | None:
        return self.conn.execute(sa.select(t.api_tokens).where(t.api_tokens.c.id == ident)).first()


def _listed(contracts: frozenset[str] | None) -> list[str] | None:
    return None if contracts is None else sorted(contracts)


def _info(row: sa.Row[tuple[object, ...]]) -> TokenInfo:
    m = row._mapping
    contracts = m["contracts"]
    return TokenInfo(
        id=str(m["id"]),
        name=str(m["name"]),
        role=str(m["role"]),
        contracts=None if contracts is None else frozenset(json.loads(str(contracts))),
        created_at=int(m["created_at"]),
        created_by=str(m["created_by"]),
        revoked_at=None if m["revoked_at"] is None else int(m["revoked_at"]),
        revoked_by=None if m["revoked_by"] is None else str(m["revoked_by"]),
    )
