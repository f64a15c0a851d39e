"""Exclusions in the store: versions from the file, the workflow and the monitor; what stays in force;
nothing deleted but the in-force row of one withdrawn from the file; tokens stored hashed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa

from slamon.model import (
    ContractId,
    DeviceId,
    Exclusion,
    ExclusionCategory,
    ExclusionId,
    ExclusionStatus,
    Scope,
    SiteId,
)
from slamon.store import Store
from slamon.store.tokens import token_sha256

EX1 = Exclusion(
    id=ExclusionId("EX-1"),
    category=ExclusionCategory.POWER,
    scope=Scope(sites=frozenset({SiteId("S1")})),
    start=datetime(2025, 7, 10, 0, tzinfo=UTC),
    end=datetime(2025, 7, 10, 4, tzinfo=UTC),
    reason="停电",
    status=ExclusionStatus.PROPOSED,
)
EX2 = replace(
    EX1,
    id=ExclusionId("EX-2"),
    category=ExclusionCategory.MAINTENANCE,
    scope=Scope(devices=frozenset({DeviceId("CAM1")}), contracts=frozenset({ContractId("C1")})),
    status=ExclusionStatus.APPROVED,
    approved_by="李工",
)


def mirror(store: Store, at: int, *exclusions: Exclusion) -> list[str]:
    with store.begin() as tx:
        return tx.exclusions.mirror_file(exclusions, at)


def state(store: Store) -> tuple[list[tuple[str, str, str]], list[tuple[str, int, str, str, str]]]:
    """(in force: id, status, source), (records: id, version, action, actor, status)."""
    with store.read() as tx:
        force = [(f.exclusion.id, f.exclusion.status.value, f.source) for f in tx.exclusions.all_in_force()]
        rows = tx.conn.execute(
            sa.text("SELECT exclusion, version, action, actor, status FROM exclusion_records ORDER BY seq")
        ).all()
    return force, [tuple(r) for r in rows]  # type: ignore[misc]


def test_the_file_imports_new_and_changed_entries_and_withdraws_removed_ones(store: Store) -> None:
    assert mirror(store, 1, EX1, EX2) == ["exclusion EX-1", "exclusion EX-2"]
    assert mirror(store, 2, EX1, EX2) == [], "the same file again changes nothing"
    assert mirror(store, 3, EX2, EX1) == [], "a new order only moves them"
    with store.read() as tx:
        assert [e.id for e in tx.versions.exclusions()] == ["EX-2", "EX-1"]
    assert mirror(store, 4, EX2, replace(EX1, reason="供电局停电")) == ["exclusion EX-1"]
    assert mirror(store, 5, EX2) == ["exclusion EX-1 removed"]
    force, records = state(store)
    assert force == [("EX-2", "approved", "file")]
    assert records == [
        ("EX-1", 1, "import", "file", "proposed"),
        ("EX-2", 1, "import", "file", "approved"),
        ("EX-1", 2, "import", "file", "proposed"),
        ("EX-1", 3, "withdraw", "file", "withdrawn"),
    ]
    with store.read() as tx:
        history = tx.exclusions.history("EX-1")
        assert [r.exclusion.reason for r in history] == ["停电", "供电局停电", "供电局停电"]
        assert history[2].note == "no longer in the exclusions file"
        assert [(e.action, e.subject) for e in tx.audit.entries()] == [
            ("exclusion.import", "EX-1"),
            ("exclusion.import", "EX-2"),
            ("exclusion.import", "EX-1"),
            ("exclusion.withdraw", "EX-1"),
        ]
        assert tx.audit.verify().ok
    assert mirror(store, 6, EX2, EX1) == ["exclusion EX-1"], "back in the file: a fourth version"
    assert state(store)[1][-1] == ("EX-1", 4, "import", "file", "proposed")


def decide(store: Store, ex: Exclusion, at: int) -> None:
    with store.begin() as tx:
        tx.exclusions.record(ex, "approve", "王经理", "cli", at, note="供电局通知")


def test_a_decision_in_the_store_stands_until_the_file_changes_the_entry(store: Store) -> None:
    mirror(store, 1, EX1)
    approved = replace(EX1, status=ExclusionStatus.APPROVED, approved_by="王经理")
    decide(store, approved, 2)
    assert mirror(store, 3, EX1) == [], "the file still says proposed, as before: the approval stands"
    assert state(store)[0] == [("EX-1", "approved", "cli")]
    assert mirror(store, 4) == [], "removed from the file: the store's decision stands"
    assert state(store)[0] == [("EX-1", "approved", "cli")]
    assert mirror(store, 5, EX1) == ["exclusion EX-1"], "listed again, different from what is in force"
    assert state(store)[0] == [("EX-1", "proposed", "file")]


def test_a_file_exported_from_the_store_imports_nothing(store: Store) -> None:
    mirror(store, 1, EX1)
    approved = replace(EX1, status=ExclusionStatus.APPROVED, approved_by="王经理")
    decide(store, approved, 2)
    assert mirror(store, 3, approved) == [], "the file says what is in force"
    rejected = replace(EX1, status=ExclusionStatus.REJECTED)
    with store.begin() as tx:
        tx.exclusions.record(rejected, "reject", "王经理", "cli", 4, note="no")
    assert mirror(store, 5, approved) == [], "the exported file is unchanged: the later rejection stands"
    force, records = state(store)
    assert force == [("EX-1", "rejected", "cli")]
    assert len(records) == 3


def test_the_monitor_proposes_and_updates_until_someone_decides(store: Store) -> None:
    pwr = replace(EX1, id=ExclusionId("PWR-S1-20250710T000000Z"), reason="suspected power cut")
    with store.begin() as tx:
        tx.versions.propose(pwr, 1)
        tx.versions.propose(pwr, 2)  # unchanged: nothing written
        tx.versions.propose(replace(pwr, end=datetime(2025, 7, 10, 5, tzinfo=UTC)), 3)
    decide(store, replace(pwr, status=ExclusionStatus.APPROVED, approved_by="王经理"), 4)
    with store.begin() as tx:
        tx.versions.propose(replace(pwr, end=datetime(2025, 7, 10, 6, tzinfo=UTC)), 5)
    force, records = state(store)
    assert force == [(pwr.id, "approved", "cli")]
    assert records == [
        (pwr.id, 1, "detect", "monitor", "proposed"),
        (pwr.id, 2, "detect", "monitor", "proposed"),
        (pwr.id, 3, "approve", "王经理", "approved"),
    ]
    mirror(store, 6, EX1)
    with store.begin() as tx:
        tx.versions.propose(replace(EX1, reason="monitor"), 7)  # never over the file's
    assert state(store)[0] == [("EX-1", "proposed", "file"), (pwr.id, "approved", "cli")]


def test_evidence_is_stored_once_by_its_sha256(store: Store) -> None:
    with store.begin() as tx:
        a = tx.exclusions.put_evidence("notice.pdf", b"%PDF-1.4 power cut", 1)
        b = tx.exclusions.put_evidence("copy.pdf", b"%PDF-1.4 power cut", 2)
        tx.exclusions.record(EX1, "propose", "ops", "cli", 3, evidence=[a, b])
        assert a.sha256 == b.sha256 == hashlib.sha256(b"%PDF-1.4 power cut").hexdigest()
        assert (a.size, b.name) == (18, "copy.pdf")
        assert tx.conn.execute(sa.text("SELECT count(*) FROM evidence_files")).scalar() == 1
        assert [(v, x.name) for v, x in tx.exclusions.evidence_of("EX-1")] == [
            (1, "notice.pdf"),
            (1, "copy.pdf"),
        ]
        assert tx.exclusions.evidence_content(a.sha256) == b"%PDF-1.4 power cut"
        [entry] = tx.audit.entries()
        assert json.loads(entry.body)["evidence"] == [
            {"name": "notice.pdf", "sha256": a.sha256, "size": 18},
            {"name": "copy.pdf", "sha256": a.sha256, "size": 18},
        ]


def test_tokens_are_stored_hashed_and_revocation_is_kept(store: Store) -> None:
    with store.begin() as tx:
        info, token = tx.tokens.create("vendor-acme", "viewer", ["C1"], "admin", 10)
    assert token.startswith(f"slamon_{info.id}_")
    assert len(token) > 50
    with store.read() as tx:
        row = tx.conn.execute(sa.text("SELECT * FROM api_tokens")).one()._mapping
        assert token not in json.dumps({k: str(v) for k, v in row.items()}), "the token itself is not stored"
        assert row["sha256"] == token_sha256(token)
        assert tx.tokens.match(token) == info
        assert info.contracts == frozenset({"C1"})
        assert tx.tokens.match(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert tx.tokens.match("slamon_nothing_here") is None
        assert tx.tokens.match("Bearer whatever") is None
    with store.begin() as tx:
        revoked = tx.tokens.revoke(info.id, "admin", 20)
        assert revoked is not None
        assert (revoked.revoked_at, revoked.revoked_by) == (20, "admin")
        again = tx.tokens.revoke(info.id, "someone", 30)
        assert again == revoked, "revoking twice changes nothing"
        assert tx.tokens.revoke("nope", "admin", 30) is None
    with store.read() as tx:
        assert tx.tokens.match(token) == revoked, "still found, and seen to be revoked"
        assert [(e.action, e.subject, json.loads(e.body)) for e in tx.audit.entries()] == [
            ("token.create", info.id, {"name": "vendor-acme", "role": "viewer", "contracts": ["C1"]}),
            ("token.revoke", info.id, {"name": "vendor-acme"}),
        ]


def test_exclusions_stored_before_the_workflow_become_version_1(store_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from slamon.store.database import MIGRATIONS

    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
        for ident, source, status in (("EX-1", "file", "approved"), ("PWR-1", "detected", "proposed")):
            body = json.dumps({"status": status})
            conn.execute(
                sa.text(
                    "INSERT INTO exclusions (id, position, source, sha256, body, updated_at) "
                    "VALUES (:id, 0, :source, :sha, :body, 7)"
                ),
                {"id": ident, "source": source, "sha": f"sha-{ident}", "body": body},
            )
    engine.dispose()
    s = Store(store_url)
    with s.read() as tx:
        rows = tx.conn.execute(
            sa.text(
                "SELECT exclusion, version, at, action, actor, source, status, sha256 FROM exclusion_records ORDER BY seq"
            )
        ).all()
        files = tx.conn.execute(sa.text("SELECT id, file_sha256 FROM exclusions ORDER BY id")).all()
    s.close()
    assert [tuple(r) for r in rows] == [
        ("EX-1", 1, 7, "import", "file", "file", "approved", "sha-EX-1"),
        ("PWR-1", 1, 7, "detect", "monitor", "detected", "proposed", "sha-PWR-1"),
    ]
    assert [tuple(r) for r in files] == [("EX-1", "sha-EX-1"), ("PWR-1", None)]
