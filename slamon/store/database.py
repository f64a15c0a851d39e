"""The SLA ledger in a database: SQLite by default (one file, WAL), PostgreSQL for scale.

Everything happens inside `with store.begin() as tx:` (writes) or `with store.read() as tx:`; a
block that raises leaves the database as it was, which is how a rejected import changes nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from slamon.errors import StoreError, StoreMoved
from slamon.store import schema as t
from slamon.store.meta import STORE_ID
from slamon.store.tx import StoreTx

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def redact(url: str) -> str:
    """The database URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "<unparsable database url>"


WAIT_FOR_WRITER_S = 60.0  # how long a write waits for another writer (an import, the live service)

FailureReason = str
"""Why a transaction failed, as a small closed set (a metric label): locked, unreachable,
read_only, disk (full, or an I/O error), moved, other."""


@dataclass(frozen=True, slots=True)
class Identity:
    """What the store was when it was opened: its id and, for SQLite, which file it is."""

    store_id: str
    file: tuple[int, int] | None  # (st_dev, st_ino) of the SQLite file


class Store:
    """A database: `begin()` for a write transaction (one writer at a time, across processes: an
    import waits for the live service and the other way round), `read()` for a read-only one that
    never waits for writers (SQLite WAL, PostgreSQL MVCC)."""

    def __init__(self, url: str, *, upgrade: bool = True, wait_for_writer: float = WAIT_FOR_WRITER_S) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except SQLAlchemyError as exc:
            raise StoreError(f"database: {url!r} is not a database URL ({exc})") from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"database: {redact(url)}: only sqlite and postgresql are supported")
        self.file: Path | None = None
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self.file = Path(parsed.database).absolute()
            self.file.parent.mkdir(parents=True, exist_ok=True)
        self._wait_ms = int(wait_for_writer * 1000)
        self.engine: Engine = sa.create_engine(parsed, future=True, pool_pre_ping=self.dialect != "sqlite")
        self._reader: Engine | None = None
        self._parsed = parsed
        if self.dialect == "sqlite":
            _sqlite_pragmas(self.engine, begin="BEGIN IMMEDIATE", busy_ms=self._wait_ms)
        else:
            _postgres_writer_lock(self.engine, self._wait_ms)
        self.identity: Identity | None = None
        if upgrade:
            try:
                self.upgrade()
                self.identity = self._identify()
            except BaseException:
                self.engine.dispose()
                raise

    def upgrade(self) -> None:
        """Bring the schema to this slamon's version (Alembic); refuse a database from a newer one."""
        try:
            with self.engine.begin() as conn:
                if _current_revision(conn) == t.SCHEMA_REVISION:
                    return
                self._migrate(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database {redact(self.url)}: {_reason(exc)}") from exc

    def _migrate(self, conn: Connection) -> None:
        from alembic import command  # Alembic is needed only when the schema moves
        from alembic.config import Config as AlembicConfig
        from alembic.script import ScriptDirectory

        script = ScriptDirectory(str(MIGRATIONS))
        current = _current_revision(conn)
        if current is not None and current not in {s.revision for s in script.walk_revisions()}:
            raise StoreError(
                f"{redact(self.url)}: schema revision {current} is newer than this slamon knows "
                f"(head {script.get_current_head()}); upgrade slamon"
            )
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        logger.info("database %s upgraded to schema %s", redact(self.url), script.get_current_head())

    def _identify(self) -> Identity:
        with self.begin() as tx:
            store_id = tx.meta.store_id()
        return Identity(store_id, self._file_id())

    def _file_id(self) -> tuple[int, int] | None:
        if self.file is None:
            return None
        try:
            st = os.stat(self.file)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def check_identity(self, tx: StoreTx | None = None) -> None:
        """Raise StoreMoved when the database is no longer the one opened: the SQLite file was moved,
        deleted or replaced, or the database answers with another store id. Writing on would put
        evidence where nobody looks for it (or into a new, empty file)."""
        if self.identity is None:
            return
        if self.file is not None:
            now = self._file_id()
            if now != self.identity.file:
                what = "is gone" if now is None else "was replaced by another file"
                raise StoreMoved(f"database {self.file} {what} while slamon was using it")
        if tx is not None:
            found = tx.meta.get(STORE_ID)
            if found != self.identity.store_id:
                raise StoreMoved(
                    f"database {redact(self.url)} is not the one slamon opened "
                    f"(store id {found or 'missing'}, expected {self.identity.store_id})"
                )

    @contextmanager
    def begin(self) -> Iterator[StoreTx]:
        """A write transaction: committed when the block ends, rolled back when it raises. It starts
        by taking the writer lock (SQLite BEGIN IMMEDIATE; a PostgreSQL advisory lock), waiting up
        to `wait_for_writer` for another writer to finish rather than failing on a lock later."""
        try:
            with self.engine.begin() as conn:
                yield StoreTx(conn, self.dialect)
        except SQLAlchemyError as exc:
            raise StoreError(f"database {redact(self.url)}: {_reason(exc)}", failure_reason(exc)) from exc

    @contextmanager
    def read(self) -> Iterator[StoreTx]:
        """A read-only transaction on its own connections: readers never wait for the writer."""
        try:
            with self._read_engine().connect() as conn, conn.begin():
                if self.dialect == "postgresql":
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield StoreTx(conn, self.dialect, writable=False)
        except SQLAlchemyError as exc:
            raise StoreError(f"database {redact(self.url)}: {_reason(exc)}", failure_reason(exc)) from exc

    def _read_engine(self) -> Engine:
        if self._reader is None:
            if self.dialect == "sqlite":
                self._reader = sa.create_engine(self._parsed, future=True)
                _sqlite_pragmas(self._reader, begin="BEGIN", busy_ms=self._wait_ms, query_only=True)
            else:  # without the writer lock
                self._reader = sa.create_engine(self._parsed, future=True, pool_pre_ping=True)
        return self._reader

    def close(self) -> None:
        self.engine.dispose()
        if self._reader is not None:
            self._reader.dispose()


def failure_reason(exc: BaseException) -> FailureReason:
    """A failed transaction's cause as a metric label (never the message itself: unbounded)."""
    if isinstance(exc, StoreMoved):
        return "moved"
    text = str(getattr(exc, "orig", None) or exc).lower()
    if "locked" in text or "lock timeout" in text or "canceling statement due to lock" in text:
        return "locked"
    if "readonly" in text or "read-only" in text or "read only" in text:
        return "read_only"
    if ("disk" in text and ("full" in text or "i/o" in text)) or "no space" in text:
        return "disk"
    if isinstance(exc, OperationalError | DBAPIError) and (
        "connect" in text or "closed" in text or "terminat" in text or "shutting down" in text
    ):
        return "unreachable"
    if "unable to open" in text or "no such table" in text:
        return "moved"
    return "other"


def _current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


def _sqlite_pragmas(engine: Engine, *, begin: str, busy_ms: int, query_only: bool = False) -> None:
    """WAL for concurrent readers, SQLAlchemy (not the driver) in charge of BEGIN; writers BEGIN
    IMMEDIATE, so a writer waits for the lock up front (busy_timeout) instead of failing when a
    deferred transaction cannot upgrade to a write."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        if query_only:
            cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)


def _postgres_writer_lock(engine: Engine, wait_ms: int) -> None:
    """Every write transaction takes one advisory lock first: writers (the live service, imports,
    statements being issued) go one at a time, so they never deadlock on each other's rows."""

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(wait_ms)}")
        # one lock per schema: a store is a schema, and stores in other schemas go their own way
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('slamon writer ' || current_schema()))")
