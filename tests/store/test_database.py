"""The store's failures by reason (a metric label: a small closed set, never the message)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
import sqlalchemy as sa

from slamon.errors import StoreMoved
from slamon.store.database import failure_reason


def _wrapped(exc: Exception) -> sa.exc.DBAPIError:
    return sa.exc.OperationalError("INSERT …", {}, exc)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (_wrapped(sqlite3.OperationalError("database is locked")), "locked"),
        (_wrapped(sqlite3.OperationalError("attempt to write a readonly database")), "read_only"),
        (_wrapped(sqlite3.OperationalError("disk I/O error")), "disk"),
        (_wrapped(sqlite3.OperationalError("database or disk is full")), "disk"),
        (_wrapped(sqlite3.OperationalError("unable to open database file")), "moved"),
        (
            _wrapped(
                psycopg.OperationalError(
                    'connection to server at "127.0.0.1", port 5432 failed: Connection refused'
                )
            ),
            "unreachable",
        ),
        (
            _wrapped(psycopg.OperationalError("terminating connection due to administrator command")),
            "unreachable",
        ),
        (_wrapped(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")), "locked"),
        (StoreMoved("database x is gone while slamon was using it"), "moved"),
        (_wrapped(sqlite3.OperationalError("no such savepoint")), "other"),
    ],
)
def test_failure_reasons(error: Exception, reason: str) -> None:
    assert failure_reason(error) == reason
