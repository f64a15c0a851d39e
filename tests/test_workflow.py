"""The workflow's interface with actors: what each role may do, contract limits, ids and amendments
(on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from slamon.access import Actor, Permission, Role, cli_actor
from slamon.errors import AccessDenied, WorkflowError
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.model import ContractId, ExclusionStatus, Fleet
from slamon.store import Store
from slamon.store.upkeep import sync_fleet
from slamon.workflow import Evidence, amend, approve, history, listing, propose, reject
from tests.billing.harness import CONTRACT, write_case

INVENTORY = """\
sites:
  - {id: S1, name: 城东, district: 右江区, area: urban}
  - {id: S2, name: 城西, district: 右江区, area: urban}
devices:
  - {id: CAM1, kind: camera, address: 127.0.30.1, site: S1, contract: C1}
  - {id: CAM2, kind: camera, address: 127.0.30.2, site: S2, contract: C2}
"""
NOW = datetime(2025, 8, 2, tzinfo=UTC)


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    config = write_case(tmp_path, INVENTORY, "device,time,probe,ok,rtt_ms,defects\n")
    (tmp_path / "contracts" / "c2.yaml").write_text(CONTRACT.replace("id: C1", "id: C2"), encoding="utf-8")
    return load_fleet(load_config(config))


def actor(role: Role, *contracts: str) -> Actor:
    return Actor(
        f"{role.value}-user",
        role,
        frozenset(ContractId(c) for c in contracts) or None,
        token="t1",
        channel="api",
    )


def claim(scope: dict[str, list[str]], **more: object) -> dict[str, object]:
    return {
        "category": "power",
        "scope": scope,
        "start": "2025-07-10T08:00:00+08:00",
        "end": "2025-07-10T14:00:00+08:00",
        "reason": "停电",
        **more,
    }


@pytest.fixture
def synced(store: Store, fleet: Fleet) -> Store:
    with store.begin() as tx:
        sync_fleet(tx, fleet, 0)
    return store


def test_what_each_role_may_do(synced: Store, fleet: Fleet) -> None:
    with synced.begin() as tx:
        with pytest.raises(
            AccessDenied, match=r"^viewer-user \(viewer, token t1\) may not propose or amend exclusions$"
        ):
            propose(tx, fleet, actor(Role.VIEWER, "C1"), claim({"devices": ["CAM1"]}), [], NOW)
        rec = propose(tx, fleet, actor(Role.OPS), claim({"devices": ["CAM1"]}), [], NOW)
        assert (rec.exclusion.id, rec.source, rec.actor) == ("EX-2025-07-01", "api", "ops-user")
        with pytest.raises(
            AccessDenied, match=r"^ops-user \(ops, token t1\) may not approve or reject exclusions$"
        ):
            approve(tx, fleet, actor(Role.OPS), rec.exclusion.id, "ok", NOW)
        done = approve(tx, fleet, actor(Role.CONTRACT_MANAGER), rec.exclusion.id, "ok", NOW)
        assert (done.status, done.exclusion.approved_by, done.version) == (
            "approved",
            "contract_manager-user",
            2,
        )
        rejected = reject(tx, fleet, cli_actor("李工"), rec.exclusion.id, "changed my mind", NOW)
        assert (rejected.status, rejected.exclusion.approved_by, rejected.source) == ("rejected", None, "cli")
        for role, allowed in (
            (Role.VIEWER, False),
            (Role.OPS, False),
            (Role.CONTRACT_MANAGER, True),
            (Role.ADMIN, True),
        ):
            assert actor(role).may(Permission.AUDIT) is allowed
        assert [actor(r).may(Permission.TOKENS) for r in Role] == [False, False, False, True]


def test_a_token_limited_to_contracts_sees_and_acts_only_inside_them(synced: Store, fleet: Fleet) -> None:
    with synced.begin() as tx:
        one = propose(tx, fleet, actor(Role.OPS), claim({"devices": ["CAM1"]}), [], NOW)
        both = propose(tx, fleet, actor(Role.OPS), claim({"sites": ["S1", "S2"]}), [], NOW)
        two = propose(tx, fleet, actor(Role.OPS), claim({"contracts": ["C2"]}), [], NOW)
        vendor = actor(Role.VIEWER, "C1")
        assert [f.exclusion.id for f in listing(tx, fleet, vendor)] == [one.exclusion.id, both.exclusion.id]
        assert [f.contracts for f in listing(tx, fleet, actor(Role.ADMIN))] == [
            ("C1",),
            ("C1", "C2"),
            ("C2",),
        ]
        with pytest.raises(WorkflowError, match=f"^no exclusion '{two.exclusion.id}'$"):
            history(tx, fleet, vendor, two.exclusion.id)
        manager = actor(Role.CONTRACT_MANAGER, "C1")
        approve(tx, fleet, manager, one.exclusion.id, "ok", NOW)
        with pytest.raises(AccessDenied, match=r"may not approve exclusions for contract C2$"):
            approve(tx, fleet, manager, both.exclusion.id, "ok", NOW)
        with pytest.raises(AccessDenied, match=r"may not propose exclusions for contract C2$"):
            propose(tx, fleet, actor(Role.OPS, "C1"), claim({"devices": ["CAM2"]}), [], NOW)
        assert [
            f.exclusion.status for f in listing(tx, fleet, vendor, statuses=[ExclusionStatus.PROPOSED])
        ] == [ExclusionStatus.PROPOSED]


def test_ids_are_made_per_month_or_given_and_never_reused(synced: Store, fleet: Fleet) -> None:
    with synced.begin() as tx:
        ids = [
            propose(tx, fleet, actor(Role.OPS), claim({"devices": ["CAM1"]}), [], NOW).exclusion.id
            for _ in range(2)
        ]
        assert ids == ["EX-2025-07-01", "EX-2025-07-02"]
        given = propose(tx, fleet, actor(Role.OPS), claim({"devices": ["CAM1"]}, id="PC-7"), [], NOW)
        assert given.exclusion.id == "PC-7"
        with pytest.raises(
            WorkflowError, match=r"^exclusion PC-7 exists already \(proposed\): change it with amend"
        ):
            propose(tx, fleet, actor(Role.OPS), claim({"devices": ["CAM1"]}, id="PC-7"), [], NOW)
        with pytest.raises(Exception, match=r"^request body: unknown: unknown key$"):
            propose(
                tx,
                fleet,
                actor(Role.OPS),
                claim({"devices": ["CAM1"]}, unknown=1),
                [],
                NOW,
                where="request body",
            )


def test_an_amendment_is_a_new_version_proposed_again(synced: Store, fleet: Fleet) -> None:
    with synced.begin() as tx:
        rec = propose(
            tx, fleet, actor(Role.OPS), claim({"devices": ["CAM1"]}), [Evidence("a.txt", b"a")], NOW
        )
        ident = rec.exclusion.id
        approve(tx, fleet, actor(Role.CONTRACT_MANAGER), ident, "ok", NOW)
        changed = amend(
            tx,
            fleet,
            actor(Role.OPS),
            ident,
            {"end": "2025-07-10T12:00:00+08:00"},
            [],
            NOW,
            note="恢复供电较早",
        )
        assert (changed.version, changed.status, changed.exclusion.approved_by, changed.note) == (
            3,
            "proposed",
            None,
            "恢复供电较早",
        )
        with pytest.raises(WorkflowError, match=f"^exclusion {ident} already says this: nothing to change$"):
            amend(tx, fleet, actor(Role.OPS), ident, {"end": "2025-07-10T12:00:00+08:00"}, [], NOW)
        versions = history(tx, fleet, actor(Role.VIEWER, "C1"), ident)
        assert [(v.version, v.action, v.status) for v in versions] == [
            (1, "propose", "proposed"),
            (2, "approve", "approved"),
            (3, "amend", "proposed"),
        ]
        assert versions[0].evidence[0].name == "a.txt"
        assert versions[0].exclusion.end == datetime(2025, 7, 10, 6, tzinfo=UTC), "the old version is kept"
        with pytest.raises(WorkflowError, match=r"^evidence\[0\]: 'a/b' is not a file name"):
            amend(tx, fleet, actor(Role.OPS), ident, {}, [Evidence("a/b", b"x")], NOW)
