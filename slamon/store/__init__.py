"""The store: where the SLA ledger lives (SQLAlchemy 2; SQLite by default, PostgreSQL for scale).

`Store` opens the database (database.py); each transaction is a `StoreTx` whose parts own one
concern each: device keys, versioned inputs, raw results, timelines, issued statements. `upkeep`
keeps timelines in step with results and lets old results go.
"""

from __future__ import annotations

from slamon.store.blocks import ResultColumns, ResultConflict
from slamon.store.database import Store, redact
from slamon.store.results import DeviceResults, MergeReport, ResultsLetGo
from slamon.store.statements import IssuedStatement
from slamon.store.timelines import TimelineMeta, TimelineWrite
from slamon.store.tx import StoreTx

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
