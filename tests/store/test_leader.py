"""The store's jobs run in one process at a time (store/leader.py): a PostgreSQL session lock that
one Leadership holds until it lets go or its connection dies; SQLite always leads."""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from slamon.store import Store
from slamon.store.leader import Leadership, ShardClaim


def eventually(ok: Callable[[], bool], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while not ok():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def taken(claim: ShardClaim) -> Callable[[], bool]:
    return lambda: claim.take() is None


def test_one_leader_at_a_time_and_a_successor_when_it_goes(store: Store) -> None:
    first, second = Leadership(store), Leadership(store)
    try:
        assert first.leads()
        if store.dialect == "sqlite":  # one process owns a SQLite file
            assert second.leads()
            return
        assert not second.leads()
        assert first.leads(), "a leader keeps leading"
        first.close()  # its locks go when its server process has ended: soon after
        assert eventually(second.leads)
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
        assert eventually(second.leads), "the lock went with the connection"
        assert not first.leads(), "the old leader notices and does not lead"
    finally:
        first.close()
        second.close()


def test_a_shard_is_claimed_by_one_process_and_one_layout_at_a_time(store: Store) -> None:
    """No device probed by two processes: the same shard twice, or shards of two layouts (an old
    N still running while a new one starts), are refused with the reason."""
    a0, a1 = ShardClaim(store, 0, 2), ShardClaim(store, 1, 2)
    twin, other = ShardClaim(store, 0, 2), ShardClaim(store, 2, 3)
    single = ShardClaim(store, 0, 1)
    try:
        assert a0.take() is None
        assert a1.take() is None
        if store.dialect == "sqlite":  # one SQLite file serves one process: nothing to claim
            assert twin.take() is None
            return
        assert twin.take() == "shard 0/2 is already running on this store (another process holds it)"
        assert other.take() == (
            "processes of another layout (2 shards) are still monitoring this store: stop them before starting 3 shards"
        )
        assert single.take() == (
            "processes of another layout (2 shards) are still monitoring this store: stop them before starting 1 shard"
        )
        a0.close()  # a closed connection's locks go when its server process has ended: soon after
        assert eventually(taken(twin)), "a stopped shard's successor takes over"
        a1.close()
        twin.close()
        assert eventually(taken(other)), "the old layout is gone: the new one starts"
        assert single.take() == (
            "processes of another layout (3 shards) are still monitoring this store: stop them before starting 1 shard"
        )
    finally:
        for claim in (a0, a1, twin, other, single):
            claim.close()
