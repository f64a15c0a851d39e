"""The SLA ledger in a database: SQLite by default (one file, WAL), PostgreSQL for scale.

Everything happens inside `with store.begin() as tx:`; a block that raises leaves the database as
it was, which is how a rejected import changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from slamon.errors import StoreError
from slamon.store import schema as t
from slamon.store.tx import StoreTx

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def redact(url: str) -> str:
    """The database URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "<unparsable database url>"


class Store:
    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except SQLAlchemyError as exc:
            raise StoreError(f"database: {url!r} is not a database URL ({exc})") from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"database: {redact(url)}: only sqlite and postgresql are supported")
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(parsed, future=True)
        if self.dialect == "sqlite":
            _sqlite_pragmas(self.engine)
        if upgrade:
            try:
                self.upgrade()
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

    @contextmanager
    def begin(self) -> Iterator[StoreTx]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        try:
            with self.engine.begin() as conn:
                yield StoreTx(conn, self.dialect)
        except SQLAlchemyError as exc:
            raise StoreError(f"database {redact(self.url)}: {_reason(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()


def _current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL for concurrent readers, and SQLAlchemy (not the driver) in charge of BEGIN."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")
