"""slamon's exceptions.

* SlamonError
  + InputError        a file or request is wrong: names the file, the key or line, the problem (exit 1)
    - ConfigError, InventoryError, ContractError, ExclusionError, InspectionError, HistoryError
  + StoreError        the database is unreachable or its schema is out of date
    - StoreMoved      the database is no longer the one opened (file moved or replaced): stop
    - Tampered        a stored record does not match its digest (store/digests.py)
  + StatementError    verify mismatch, a month outside the contract term, nothing to bill, a
                      PDF asked for where no CJK TrueType font is installed (names the package)
  + AccessDenied      the actor's role or contracts do not allow what was asked (HTTP 403)
  + WorkflowError     an exclusion's proposal or decision refused: no such exclusion, already
                      decided, filed after the contract's deadline (HTTP 404, 409, 422)

Beside them: SnmpUnavailable and VideoUnavailable (a prober cannot run here: its library or a
secret is missing) and DashboardPushError (Grafana refused). Probe failures are not exceptions;
they are ProbeResult(ok=False).
"""

from __future__ import annotations

from os import PathLike


class SlamonError(Exception):
    """Base of every error slamon raises on purpose."""


class InputError(SlamonError):
    """Bad input: the message names the file, the key or line, and the problem."""

    def __init__(self, file: str | PathLike[str], where: str | None, problem: str) -> None:
        self.file = str(file)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.file}: {where}: {problem}" if where else f"{self.file}: {problem}")


class ConfigError(InputError):
    """slamon.yaml is wrong."""


class InventoryError(InputError):
    """The inventory (sites and devices) is wrong."""


class ContractError(InputError):
    """A contract file is wrong."""


class ExclusionError(InputError):
    """The exclusions file is wrong."""


class InspectionError(InputError):
    """The inspections file (missed inspections entered by operations) is wrong."""


class HistoryError(InputError):
    """A probe-history CSV is wrong."""


class StoreError(SlamonError):
    """The database cannot be used: unreachable, or its schema is not the one this slamon expects.

    `reason` is a small closed set (locked, unreachable, read_only, disk, moved, other) that
    metrics can count by."""

    def __init__(self, message: str, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason


class StoreMoved(StoreError):
    """The database is not the one that was opened: writing on would lose evidence."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "moved")


class StatementError(SlamonError):
    """A statement cannot be computed, issued or verified as asked."""


class AccessDenied(SlamonError):
    """The actor (a token's role and contracts, or the CLI's user) may not do what was asked."""


class WorkflowError(SlamonError):
    """An exclusion's proposal, change or decision is refused. `kind`: not_found, conflict (already
    decided, an id taken, nothing changed), late (after the filing deadline) or invalid."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind
