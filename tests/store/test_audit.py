"""The audit log's hash chain: appends, and `verify` naming an edited, deleted or reordered row."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa

from slamon.canonical import canonical_json
from slamon.store import Store
from slamon.store.audit import GENESIS, entry_hash


def write(store: Store, n: int) -> list[str]:
    """n entries; returns their hashes."""
    hashes = []
    with store.begin() as tx:
        for i in range(1, n + 1):
            entry = tx.audit.append(
                1_000_000 * i, f"user{i}", "exclusion.propose", f"EX-{i}", {"n": i, "名": "李工"}
            )
            hashes.append(entry.hash)
    return hashes


def verify(store: Store, head: tuple[int, str] | None = None) -> tuple[int, tuple[str, ...]]:
    with store.read() as tx:
        report = tx.audit.verify(head)
    return report.entries, report.problems


def sql(store: Store, *statements: str) -> None:
    with store.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def test_each_entry_names_the_one_before_and_hashes_its_contents(store: Store) -> None:
    hashes = write(store, 3)
    with store.read() as tx:
        entries = tx.audit.entries()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert [e.prev_hash for e in entries] == [GENESIS, hashes[0], hashes[1]]
    first = entries[0]
    canonical = canonical_json(
        {
            "action": first.action,
            "actor": first.actor,
            "at": first.at,
            "body": first.body,
            "subject": first.subject,
        }
    )
    assert first.hash == hashlib.sha256(GENESIS.encode() + canonical).hexdigest()
    assert json.loads(first.body) == {"n": 1, "名": "李工"}
    assert first.body == '{"n":1,"名":"李工"}'  # canonical JSON as stored
    assert verify(store) == (3, ())
    assert verify(store, (2, hashes[1])) == (3, ()), "a head noted earlier is still in the log"


def test_an_empty_log_verifies(store: Store) -> None:
    assert verify(store) == (0, ())


def test_an_edited_row_is_found(store: Store) -> None:
    write(store, 4)
    sql(store, """UPDATE audit_log SET body = '{"n":99,"名":"李工"}' WHERE seq = 2""")
    assert verify(store) == (4, ("entry 2 was edited: its hash does not match its contents",))


def test_an_edited_row_with_a_recomputed_hash_breaks_the_chain_after_it(store: Store) -> None:
    hashes = write(store, 4)
    forged = entry_hash(hashes[0], 2_000_000, "someone-else", "exclusion.propose", "EX-2", '{"n":2}')
    sql(
        store,
        f"""UPDATE audit_log SET actor = 'someone-else', body = '{{"n":2}}', hash = '{forged}' WHERE seq = 2""",
    )
    assert verify(store) == (
        4,
        (
            (
                "entry 3 does not follow entry 2: the hash it names as its predecessor is not in the log "
                "(entry 2 was changed after entry 3 was written)"
            ),
        ),
    )


def test_a_deleted_row_is_found(store: Store) -> None:
    write(store, 4)
    sql(store, "DELETE FROM audit_log WHERE seq = 2")
    assert verify(store) == (3, ("entry 2 is missing (deleted)",))
    sql(store, "DELETE FROM audit_log WHERE seq = 3")
    assert verify(store) == (2, ("entries 2 to 3 are missing (deleted)",))


def test_deleting_the_first_or_the_last_rows_is_found(store: Store) -> None:
    hashes = write(store, 4)
    sql(store, "DELETE FROM audit_log WHERE seq = 1")
    assert verify(store) == (3, ("entry 1 is missing (deleted)",))
    sql(store, "DELETE FROM audit_log WHERE seq >= 3")
    assert verify(store) == (
        1,
        (
            "entry 1 is missing (deleted)",
            "the log ends at entry 2 but entry 4 was written: entries 3 to 4 are missing (deleted)",
        ),
    )
    # the head an operator noted elsewhere, when the store's own head was rewritten too
    sql(store, f"UPDATE store_meta SET value = '2 {hashes[1]}' WHERE key = 'audit_head'")
    assert verify(store, (4, hashes[3])) == (
        1,
        (
            "entry 1 is missing (deleted)",
            f"the head given, entry 4 sha256:{hashes[3]}, is not in the log: there is no entry 4",
        ),
    )


def test_a_later_append_keeps_a_deleted_tail_visible(store: Store) -> None:
    write(store, 3)
    sql(store, "DELETE FROM audit_log WHERE seq = 3")
    with store.begin() as tx:
        assert tx.audit.append(9, "admin", "token.create", "t1", {}).seq == 4
    assert verify(store) == (3, ("entry 3 is missing (deleted)",))


def test_reordered_rows_are_found(store: Store) -> None:
    write(store, 4)
    sql(
        store,
        "UPDATE audit_log SET seq = 100 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 100",
    )
    assert verify(store) == (
        4,
        (
            "entry 2 is out of order: it was written after entry 3, not after entry 1 (rows were reordered)",
            "entry 3 is out of order: it was written after entry 1, not after entry 2 (rows were reordered)",
            "entry 4 is out of order: it was written after entry 2, not after entry 3 (rows were reordered)",
        ),
    )


def test_two_appends_never_name_the_same_predecessor(store: Store) -> None:
    hashes = write(store, 1)
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (seq, at, actor, action, subject, body, prev_hash, hash) "
                f"VALUES (2, 1, 'x', 'y', 'z', '{{}}', '{GENESIS}', '{hashes[0]}')"
            )
        )
