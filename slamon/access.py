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
from enum import StrEnum

from slamon.errors import AccessDenied
from slamon.model import ContractId


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
