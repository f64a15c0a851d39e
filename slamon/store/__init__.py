"""The store: where the SLA ledger lives (SQLAlchemy 2; SQLite by default, PostgreSQL for scale)."""

from __future__ import annotations

from slamon.store.blocks import ResultColumns, ResultConflict
from slamon.store.store import (
    DeviceResults,
    IssuedStatement,
    MergeReport,
    ResultsLetGo,
    Store,
    StoreTx,
    TimelineMeta,
    TimelineWrite,
    redact,
)

__all__ = [
    "DeviceResults",
    "IssuedStatement",
    "MergeReport",
    "ResultColumns",
    "ResultConflict",
    "ResultsLetGo",
    "Store",
    "StoreTx",
    "TimelineMeta",
    "TimelineWrite",
    "redact",
]
