"""Who may do what: the four roles, the actor a request or a command acts as, and the checks.

| role               | reads                     | proposes, amends | approves, rejects | audit log | tokens |
| ------------------ | ------------------------- | ---------------- | ----------------- | --------- | ------ |
| `viewer` (vendor)  | its own contracts only    |                  |                   |           |        |
| `ops`              | every contract            | yes              |                   |           |        |
| `contract_manager` | every contract            | yes              | yes               | reads     |        |
| `admin`            | every contract            | yes              | yes               | reads     | yes    |

Any token may be limited to some contracts (a viewer's must be): it then reads only what touches
them and acts only on exclusions whose scope stays inside them. The command line acts as the local
administrator, under the name given with `--as` (else the login name), as recorded in the audit log.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from slamon.errors import AccessDenied, WorkflowError
from slamon.model import ContractId, Fleet, from_micros, to_micros

if TYPE_CHECKING:  # the store is handed in; this module imports no database library
    from slamon.store import StoreTx
    from slamon.store.tokens import TokenInfo


class Role(StrEnum):
    VIEWER = "viewer"
    OPS = "ops"
    CONTRACT_MANAGER = "contract_manager"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"
    PROPOSE = "propose"  # propose and amend exclusions
    DECIDE = "decide"  # approve and reject them
    AUDIT = "audit"  # read the audit log
    TOKENS = "tokens"  # create, list and revoke tokens


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPS: frozenset({Permission.READ, Permission.PROPOSE}),
    Role.CONTRACT_MANAGER: frozenset(
        {Permission.READ, Permission.PROPOSE, Permission.DECIDE, Permission.AUDIT}
    ),
    Role.ADMIN: frozenset(Permission),
}

WHAT: dict[Permission, str] = {
    Permission.READ: "read",
    Permission.PROPOSE: "propose or amend exclusions",
    Permission.DECIDE: "approve or reject exclusions",
    Permission.AUDIT: "read the audit log",
    Permission.TOKENS: "manage tokens",
}

CLI = "cli"  # the channel an actor acts through, recorded as the source of what it writes
API = "api"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a name (recorded), a role, the contracts it is limited to (None: all), and the
    token it presented (None on the command line)."""

    name: str
    role: Role
    contracts: frozenset[ContractId] | None = None
    token: str | None = None
    channel: str = CLI

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.may(permission):
            raise AccessDenied(f"{self.describe()} may not {WHAT[permission]}")

    def sees(self, contracts: Iterable[ContractId]) -> bool:
        """Whether something touching these contracts is visible to the actor."""
        return self.contracts is None or not self.contracts.isdisjoint(contracts)

    def require_reach(self, contracts: Iterable[ContractId], what: str) -> None:
        """Acting on something that touches these contracts needs all of them."""
        if self.contracts is None:
            return
        outside = sorted(set(contracts) - self.contracts)
        if outside:
            raise AccessDenied(f"{self.describe()} may not {what} for contract {', '.join(outside)}")

    def describe(self) -> str:
        via = f"token {self.token}" if self.token else self.channel
        return f"{self.name} ({self.role.value}, {via})"


def cli_actor(name: str | None = None) -> Actor:
    """The command line's actor: the local administrator, as `--as NAME` or the login name."""
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no login name (a container without a passwd entry)
            name = "admin"
    return Actor(name, Role.ADMIN, channel=CLI)


MAX_NAME = 200


def create_token(
    tx: StoreTx,
    fleet: Fleet,
    actor: Actor,
    name: str,
    role: str,
    contracts: Iterable[str] | None,
    now: datetime,
) -> tuple[TokenInfo, str]:
    """A new token for a role, optionally limited to contracts (a viewer's must be): its record
    and the token itself, which is shown once and never stored."""
    actor.require(Permission.TOKENS)
    try:
        chosen = Role(role)
    except ValueError:
        raise WorkflowError(
            f"role: {role!r} is not a role (use {', '.join(r.value for r in Role)})"
        ) from None
    if not name.strip() or len(name) > MAX_NAME:
        raise WorkflowError(f"name: give a name of 1 to {MAX_NAME} characters")
    limited = None if contracts is None else sorted(set(contracts))
    for cid in limited or ():
        if cid not in fleet.contracts:
            known = ", ".join(sorted(fleet.contracts)) or "none"
            raise WorkflowError(f"contract: unknown contract {cid!r} (known: {known})")
    if chosen is Role.VIEWER and not limited:
        raise WorkflowError(
            "a viewer token must name its contracts (--contract ID): a vendor sees only its own"
        )
    return tx.tokens.create(name.strip(), chosen.value, limited, actor.name, to_micros(now))


def revoke_token(tx: StoreTx, actor: Actor, ident: str, now: datetime) -> TokenInfo:
    """Revoke a token: refused from then on, still listed."""
    actor.require(Permission.TOKENS)
    found = tx.tokens.get(ident)
    if found is None:
        raise WorkflowError(f"no token {ident!r}", "not_found")
    if found.revoked_at is not None:
        when = from_micros(found.revoked_at).isoformat(timespec="seconds")
        raise WorkflowError(f"token {ident} was revoked already ({when}, by {found.revoked_by})", "conflict")
    revoked = tx.tokens.revoke(ident, actor.name, to_micros(now))
    assert revoked is not None
    return revoked


def authenticate(tx: StoreTx, token: str) -> Actor | str:
    """The actor a bearer token stands for, or why it is refused (unknown, revoked)."""
    found = tx.tokens.match(token)
    if found is None:
        return "unknown token"
    if found.revoked_at is not None:
        return (
            f"token {found.id} was revoked at {from_micros(found.revoked_at).isoformat(timespec='seconds')}"
        )
    contracts = None if found.contracts is None else frozenset(ContractId(c) for c in found.contracts)
    return Actor(found.name, Role(found.role), contracts, token=found.id, channel=API)
