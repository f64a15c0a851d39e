"""Tamper evidence in the store (store/digests.py), against SQLite and PostgreSQL: the digests written
with result blocks, issued statements and cached fleets, checked on read; a month's evidence
digest; the migration that gave existing rows their digests."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import sqlalchemy as sa

from slamon.model import HOUR, DeviceId
from slamon.store import IssuedStatement, Store
from slamon.store.blocks import RECORD
from slamon.store.digests import Tampered
from tests.store.test_store import MIN, T0, cols

KEYS = {DeviceId("CAM1"): 1}
MONTH = (T0, T0 + 31 * 24 * HOUR)


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def test_every_block_is_written_with_the_digest_of_its_bytes(store: Store) -> None:
    with store.begin() as tx:
        tx.results.merge(cols(1, [T0, T0 + MIN], [1, 1]))
        tx.results.append(cols(1, [T0 + 2 * MIN], [0]), part=100)
        rows = tx.conn.execute(sa.text("SELECT part, data, sha256 FROM result_blocks ORDER BY part")).all()
    assert [(r.part, r.sha256) for r in rows] == [
        (0, sha(bytes(rows[0].data))),
        (100, sha(bytes(rows[1].data))),
    ]


def test_the_evidence_digest_does_not_depend_on_how_an_hour_was_written(store: Store) -> None:
    """Live parts, the same results imported at once, the parts compacted, the bytes let go by
    retention: one digest. A changed result changes it."""
    times, ok = [T0, T0 + MIN, T0 + 2 * MIN, T0 + HOUR], [1, 1, 0, 1]
    with store.begin() as tx:
        tx.keys.ensure([DeviceId("CAM1")])  # key 1
        tx.results.merge(cols(1, times, ok))
        merged = tx.results.evidence(KEYS, *MONTH)
        assert merged is not None
        assert merged.startswith("sha256:")
        assert tx.results.evidence(KEYS, *MONTH, check=True) == merged
        assert tx.results.evidence({DeviceId("CAM1"): 2}, *MONTH) is None, "no blocks: no digest"
        tx.conn.execute(sa.text("DELETE FROM result_blocks"))
        tx.results.append(cols(1, times[:2], ok[:2]), part=100)
        tx.results.append(cols(1, times[2:], ok[2:]), part=101)
        assert tx.results.evidence(KEYS, *MONTH) == merged
        assert tx.results.evidence(KEYS, *MONTH, check=True) == merged
        tx.results.compact(T0 + 2 * HOUR)
        assert tx.results.evidence(KEYS, *MONTH) == merged
        tx.results.let_go(1, reach_before_hour=T0 // HOUR + 2, video_until=T0)
        assert tx.conn.execute(sa.text("SELECT count(*) FROM result_blocks WHERE data IS NULL")).scalar() == 2
        assert tx.results.evidence(KEYS, *MONTH, check=True) == merged
        tx.conn.execute(sa.text("DELETE FROM result_blocks"))
        tx.results.merge(cols(1, times, [1, 1, 1, 1]))
        assert tx.results.evidence(KEYS, *MONTH) != merged


def test_a_devices_evidence_digest_is_remembered_until_a_block_is_written_into_its_hours(
    store: Store,
) -> None:
    """A draft reads each device's remembered digest of the month (evidence_digests) instead of its
    blocks; importing, appending or letting go of results in those hours forgets it. Issuing and
    verifying (`check`) never read it: they see an edit made behind the store's back."""
    keys = {DeviceId("CAM1"): 1, DeviceId("CAM2"): 2}
    times = [T0, T0 + MIN, T0 + HOUR]

    def remembered(tx: object) -> int:
        return int(tx.conn.execute(sa.text("SELECT count(*) FROM evidence_digests")).scalar())  # type: ignore[attr-defined]

    with store.begin() as tx:
        tx.keys.ensure([DeviceId("CAM1"), DeviceId("CAM2")])
        tx.results.merge(cols(1, times, [1, 1, 1]))
        tx.results.merge(cols(2, times, [1, 0, 1]))
        first = tx.results.evidence(keys, *MONTH)
        assert remembered(tx) == 2
        assert tx.results.evidence(keys, *MONTH) == first
        # an edit behind the store's back: the draft reads the remembered digest, `check` the bytes
        kept = tx.conn.execute(sa.text("SELECT hour, part, sha256 FROM result_blocks WHERE device = 2")).all()
        tx.conn.execute(sa.text("UPDATE result_blocks SET sha256 = :x WHERE device = 2"), {"x": "0" * 64})
        assert tx.results.evidence(keys, *MONTH) == first
        with pytest.raises(Tampered):
            tx.results.evidence(keys, *MONTH, check=True)
        for r in kept:
            tx.conn.execute(
                sa.text("UPDATE result_blocks SET sha256 = :x WHERE device = 2 AND hour = :h AND part = :p"),
                {"x": r.sha256, "h": r.hour, "p": r.part},
            )
        # results of another month keep it; an import into the month forgets it
        tx.results.merge(cols(1, [T0 + 40 * 24 * HOUR], [1]))
        assert remembered(tx) == 2
        tx.results.merge(cols(1, [T0 + 2 * MIN], [0]))
        assert remembered(tx) == 0
        second = tx.results.evidence(keys, *MONTH)
        assert second != first
        assert tx.results.evidence(keys, *MONTH, check=False) == second
        # a live round appended into the month forgets it too
        tx.results.append(cols(2, [T0 + 3 * MIN], [1]), part=100)
        assert remembered(tx) == 0
        third = tx.results.evidence(keys, *MONTH)
        assert third != second
        assert tx.results.evidence(keys, *MONTH, check=True) == third, "the same digest from the bytes"
        # retention letting a device's bytes go forgets that device's
        tx.results.let_go(1, reach_before_hour=T0 // HOUR + 2, video_until=T0)
        assert remembered(tx) == 1
        assert tx.results.evidence(keys, *MONTH) == third


def test_a_read_only_transaction_computes_the_digest_and_remembers_nothing(store: Store) -> None:
    with store.begin() as tx:
        tx.keys.ensure([DeviceId("CAM1")])
        tx.results.merge(cols(1, [T0, T0 + HOUR], [1, 0]))
    with store.read() as tx:
        digest = tx.results.evidence(KEYS, *MONTH)
    assert digest is not None
    with store.begin() as tx:
        assert tx.conn.execute(sa.text("SELECT count(*) FROM evidence_digests")).scalar() == 0
        assert tx.results.evidence(KEYS, *MONTH) == digest


def test_a_block_edited_in_the_database_is_an_error_naming_it(store: Store) -> None:
    with store.begin() as tx:
        tx.keys.ensure([DeviceId("CAM1")])
        tx.results.merge(cols(1, [T0 + HOUR, T0 + HOUR + MIN], [0, 0]))
    with store.begin() as tx:
        data = bytes(tx.conn.execute(sa.text("SELECT data FROM result_blocks")).scalar_one())
        records = np.frombuffer(data, RECORD).copy()
        records["ok"] = 1
        tx.conn.execute(sa.text("UPDATE result_blocks SET data = :d"), {"d": records.tobytes()})
    name = "raw icmp results of CAM1, hour from 2025-07-01T01:00:00+00:00 (block part 0)"
    reads = {
        "rebuild": lambda tx: tx.results.of_device(1),
        "restart": lambda tx: tx.results.recent([1], T0, 0),
        "export": lambda tx: list(tx.results.between(T0, T0 + 2 * HOUR)),
        "import": lambda tx: tx.results.merge(cols(1, [T0 + HOUR + 2 * MIN], [1])),
        "verify": lambda tx: tx.results.evidence(KEYS, *MONTH, check=True),
    }
    for what, read in reads.items():
        with pytest.raises(Tampered) as err, store.begin() as tx:
            read(tx)
        assert str(err.value).startswith(f"{name}: the stored bytes do not match their SHA-256 (stored "), (
            what
        )
    with store.begin() as tx:  # the digest alone (no bytes read) is what a draft reads: unchanged
        assert tx.results.evidence(KEYS, *MONTH) is not None
        tx.conn.execute(sa.text("UPDATE result_blocks SET sha256 = NULL"))
    with pytest.raises(Tampered, match="stored none"), store.begin() as tx:
        tx.results.of_device(1)


def test_issued_statements_and_cached_fleets_are_checked_on_read(store: Store) -> None:
    body = '{"contract": "C1"}'
    with store.begin() as tx:
        tx.statements.save(IssuedStatement("C1", "2025-07", 1, "sha256:x", None, T0, body, context="{}"))
        tx.versions.cache_fleet("k", "{}", T0)
        assert [s.body for s in tx.statements.issued("C1", "2025-07")] == [body]
        assert tx.versions.cached_fleet("k") == "{}"
        tx.conn.execute(sa.text('UPDATE statements SET body = \'{"contract": "C2"}\''))
        tx.conn.execute(sa.text("UPDATE fleet_cache SET body = '[]'"))
    with (
        pytest.raises(Tampered, match=r"^issued statement C1 2025-07 revision 1: the stored bytes"),
        store.begin() as tx,
    ):
        tx.statements.issued("C1", "2025-07")
    with pytest.raises(Tampered, match=r"^cached fleet k: the stored bytes"), store.begin() as tx:
        tx.versions.cached_fleet("k")
    with store.begin() as tx:
        tx.conn.execute(sa.text("UPDATE statements SET body = :b, context = '[]'"), {"b": body})
    labels = r"^issued statement C1 2025-07 revision 1 \(its PDF labels\)"
    with pytest.raises(Tampered, match=labels), store.begin() as tx:
        tx.statements.revision("C1", "2025-07", 1)


def test_the_upgrade_gives_existing_rows_their_digests(store_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from slamon.store.database import MIGRATIONS

    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
        insert = (
            "INSERT INTO result_blocks (device, kind, hour, part, n, n_ok, rtt_n, rtt_sum_us, data) "
            "VALUES (1, 0, :h, 0, 1, 1, 0, 0, :d)"
        )
        conn.execute(sa.text(insert), {"h": 5, "d": b"\x01" * 13})
        conn.execute(sa.text(insert), {"h": 6, "d": None})  # already let go
        conn.execute(
            sa.text(
                "INSERT INTO statements (contract, month, revision, status, hash, issued_at, body) "
                "VALUES ('C1', '2025-07', 1, 'issued', 'sha256:x', 0, '{\"payable\": \"1327.49\"}')"
            )
        )
        conn.execute(
            sa.text("INSERT INTO fleet_cache (key, body, created_at) VALUES ('k', '{\"f\": \"车\"}', 0)")
        )
    engine.dispose()
    s = Store(store_url)
    try:
        with s.begin() as tx:
            blocks = tx.conn.execute(sa.text("SELECT hour, sha256 FROM result_blocks ORDER BY hour")).all()
            assert [tuple(b) for b in blocks] == [(5, sha(b"\x01" * 13)), (6, None)]
            assert tx.statements.issued("C1", "2025-07")[0].body == '{"payable": "1327.49"}'
            assert tx.versions.cached_fleet("k") == '{"f": "车"}'
    finally:
        s.close()
