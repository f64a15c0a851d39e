"""Alembic environment: slamon runs migrations itself (Store.upgrade), handing in its connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from slamon.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def run(conn: object) -> None:
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)  # type: ignore[arg-type]
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:  # `alembic` on the command line, e.g. to autogenerate a revision
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as conn:
        run(conn)
