"""Jobs that run once per store, whichever of its processes runs them.

Shards of `slamon run --shard I/N` and the replicas of `slamon serve` share one PostgreSQL store;
the month-to-date figures and the hourly compaction are work for the whole store, done once. The
process holding a session advisory lock on its own connection does them; the others skip. The lock
goes with the connection: a leader that dies (or loses its database) lets another one take over at
its next try. On SQLite one process owns the file, so it always leads.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from slamon.store.database import Store, redact

logger = logging.getLogger(__name__)

_TRY = "SELECT pg_try_advisory_lock(hashtext('slamon jobs ' || current_schema()))"


class Leadership:
    """`leads()` (blocking: call it off the event loop) is True while this process holds the lock,
    trying to take it when it does not."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._conn: Connection | None = None
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        self.leading = store.dialect != "postgresql"

    def leads(self) -> bool:
        if self.store.dialect != "postgresql":
            return True
        with self._lock:
            was = self.leading
            try:
                self.leading = self._still_held() or self._take()
            except SQLAlchemyError as exc:
                self._drop()
                self.leading = False
                logger.warning("the jobs lock on %s: %s", redact(self.store.url), exc.__class__.__name__)
            if self.leading != was:
                logger.info(
                    "%s the store's jobs (month-to-date figures, compaction)",
                    "running" if self.leading else "no longer running",
                )
            return self.leading

    def _still_held(self) -> bool:
        if not self.leading or self._conn is None:
            return False
        try:
            self._conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError:
            self._drop()  # the connection, and with it the lock, is gone
            return False
        return True

    def _take(self) -> bool:
        if self._conn is None:
            if self._engine is None:  # autocommit, and none of the store's writer-lock hooks
                self._engine = sa.create_engine(
                    self.store.url, poolclass=NullPool, isolation_level="AUTOCOMMIT"
                )
            self._conn = self._engine.connect()
        return bool(self._conn.exec_driver_sql(_TRY).scalar())

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()
            if self._engine is not None:
                self._engine.dispose()
            self.leading = False
