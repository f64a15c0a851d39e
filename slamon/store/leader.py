"""Who does what among the processes of one PostgreSQL store: session advisory locks.

Jobs that run once per store, whichever of its processes runs them (Leadership), and the claim a
monitoring process makes on its share of the fleet (ShardClaim).

Shards of `slamon run --shard I/N` and the replicas of `slamon serve` share one PostgreSQL store;
the month-to-date figures and the hourly compaction are work for the whole store, done once. The
process holding a session advisory lock on its own connection does them; the others skip. The lock
goes with the connection: a leader that dies (or loses its database) lets another one take over at
its next try. On SQLite one process owns the file, so it always leads.
"""

from __future__ import annotations

import contextlib
import logging
import threading

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from slamon.errors import StoreError
from slamon.store.database import Store, redact

logger = logging.getLogger(__name__)

_TRY = "SELECT pg_try_advisory_lock(hashtext('slamon jobs ' || current_schema()))"


def _session(store: Store) -> sa.Engine:
    """Autocommit connections without the store's writer-lock hooks: a session lock outlives the
    statement that takes it, and goes with the connection."""
    return sa.create_engine(store.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def _close(conn: Connection | None) -> None:
    """Close a session connection (and with it its locks), whatever state it is in."""
    if conn is not None:
        with contextlib.suppress(SQLAlchemyError):
            conn.close()


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
            if self._engine is None:
                self._engine = _session(self.store)
            self._conn = self._engine.connect()
        return bool(self._conn.exec_driver_sql(_TRY).scalar())

    def _drop(self) -> None:
        _close(self._conn)
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()
            if self._engine is not None:
                self._engine.dispose()
            self.leading = False


# the two-key form of the advisory locks: (this key, the shard's index) and (this key, N)
_CLAIM = "hashtext('slamon shard ' || current_schema())"
_LAYOUT = "hashtext('slamon shards ' || current_schema())"
_LAYOUTS_HELD = (  # the N of every layout whose processes hold _LAYOUT now
    "SELECT DISTINCT objid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid = (hashtext('slamon shards ' || current_schema()))::oid"
)


class ShardClaim:
    """A monitoring process's claim on its share of the fleet, for as long as it runs, so that no
    device is probed by two processes: shard I of N holds (shard, I) alone and (layout, N) shared.
    Another process of the same shard, or of another N (shards of an old layout still running
    while a new one starts), is refused. `slamon run` without --shard is shard 0 of 1: two of
    them on one store are refused too. Only PostgreSQL: one SQLite file serves one process."""

    def __init__(self, store: Store, index: int, count: int) -> None:
        self.store, self.index, self.count = store, index, count
        self._engine: sa.Engine | None = None
        self._conn: Connection | None = None

    def take(self) -> str | None:
        """Claim the share (blocking: call it off the event loop). None when claimed, else why
        not; a connection failure raises StoreError."""
        if self.store.dialect != "postgresql":
            return None
        try:
            if self._conn is None:
                self._engine = self._engine or _session(self.store)
                self._conn = self._engine.connect()
            conn = self._conn
            conn.exec_driver_sql(f"SELECT pg_advisory_lock_shared({_LAYOUT}, {self.count})")
            others = sorted(int(n) for (n,) in conn.exec_driver_sql(_LAYOUTS_HELD) if int(n) != self.count)
            if others:
                self._release()
                layouts = ", ".join(f"{n} shard{'s' if n > 1 else ''}" for n in others)
                return (
                    f"processes of another layout ({layouts}) are still monitoring this store: "
                    f"stop them before starting {self.count} shard{'s' if self.count > 1 else ''}"
                )
            if not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_CLAIM}, {self.index})").scalar():
                self._release()
                return f"shard {self.index}/{self.count} is already running on this store (another process holds it)"
        except SQLAlchemyError as exc:
            self.close()
            raise StoreError(f"database {redact(self.store.url)}: cannot claim the shard: {exc}") from exc
        return None

    def _release(self) -> None:
        if self._conn is not None:
            self._conn.exec_driver_sql("SELECT pg_advisory_unlock_all()")

    def close(self) -> None:
        """The locks go with the connection."""
        _close(self._conn)
        self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
