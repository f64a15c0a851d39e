"""The store's jobs run in one process at a time (store/leader.py): a PostgreSQL session lock that
one Leadership holds until it lets go or its connection dies; SQLite always leads."""

from __future__ import annotations

import sqlalchemy as sa

from slamon.store import Store
from slamon.store.leader import Leadership


def test_one_leader_at_a_time_and_a_successor_when_it_goes(store: Store) -> None:
    first, second = Leadership(store), Leadership(store)
    try:
        assert first.leads()
        if store.dialect == "sqlite":  # one process owns a SQLite file
            assert second.leads()
            return
        assert not second.leads()
        assert first.leads(), "a leader keeps leading"
        first.close()
        assert second.leads()
        assert not first.leads()
    finally:
        first.close()
        second.close()


def test_a_leader_whose_connection_dies_is_replaced(store: Store) -> None:
    if store.dialect != "postgresql":
        return
    first, second = Leadership(store), Leadership(store)
    try:
        assert first.leads()
        assert first._conn is not None
        pid = first._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        admin = sa.create_engine(store.url)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")  # type: ignore[arg-type]
        admin.dispose()
        assert second.leads(), "the lock went with the connection"
        assert not first.leads(), "the old leader notices and does not lead"
    finally:
        first.close()
        second.close()
