"""The exclusions file: every rule has a bad file in tests/testdata/exclusions/bad and its exact message."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from slamon.errors import ExclusionError
from slamon.loaders.contracts import load_contracts
from slamon.loaders.exclusions import load_exclusions
from slamon.loaders.inventory import load_inventory
from slamon.model import (
    Contract,
    ContractId,
    DeviceId,
    Exclusion,
    ExclusionCategory,
    ExclusionId,
    ExclusionStatus,
    Inventory,
    Scope,
    SiteId,
)
from tests.conftest import TESTDATA

EXCLUSIONS = TESTDATA / "exclusions"
BAD = EXCLUSIONS / "bad"
OFFSET_HINT = "has no UTC offset (add one, e.g. +08:00)"
INSTANT_HINT = "is not an instant (use e.g. 2025-07-03T01:00:00+08:00)"


@pytest.fixture(scope="module")
def contracts() -> dict[ContractId, Contract]:
    return load_contracts(sorted((TESTDATA / "contracts" / "good").glob("*.yaml")))


@pytest.fixture(scope="module")
def inventory(contracts: dict[ContractId, Contract]) -> Inventory:
    return load_inventory(TESTDATA / "inventory" / "good.yaml", contracts)


REJECTS = [
    ("not-a-list", "expected a list of exclusions, got a mapping"),
    ("item-not-mapping", "[0]: expected a mapping, got 'EX-1'"),
    ("unknown-key", "[0].owner: unknown key"),
    ("missing-scope", "[0].scope: missing (required)"),
    ("duplicate-id", "[1].id: duplicate exclusion id 'EX-1' (first at [0])"),
    ("bad-id", "[0].id: 'EX 1' is not a valid id (use letters, digits, '.', '_', '-')"),
    (
        "bad-category",
        "[0].category: 'holiday' is not a category (use maintenance, power, fiber_cut, force_majeure, customer)",
    ),
    ("empty-scope", "[0].scope: give at least one of devices, sites, contracts"),
    ("scope-not-mapping", "[0].scope: expected a mapping, got 'YJ-S001'"),
    ("scope-unknown-key", "[0].scope.areas: unknown key"),
    ("scope-not-list", "[0].scope.sites: expected a list, got 'YJ-S001'"),
    ("unknown-device", "[0].scope.devices[1]: unknown device 'YJ-C9999'"),
    ("unknown-site", "[0].scope.sites[0]: unknown site 'YJ-S009'"),
    ("unknown-contract", "[0].scope.contracts[0]: unknown contract 'YJ-2024'"),
    ("naive-start", f"[0].start: '2025-07-03T01:00:00' {OFFSET_HINT}"),
    ("naive-yaml-datetime", f"[0].start: 2025-07-03T01:00:00 {OFFSET_HINT}"),
    ("date-start", f"[0].start: 2025-07-03 {INSTANT_HINT}"),
    ("garbage-end", f"[0].end: '2025-07-03 3am' {INSTANT_HINT}"),
    ("end-before-start", "[0].end: must be after start"),
    ("missing-reason", "[0].reason: missing (required)"),
    ("empty-reason", "[0].reason: empty (required)"),
    ("missing-status", "[0].status: missing (required)"),
    ("bad-status", "[0].status: 'done' is not a status (use proposed, approved, rejected)"),
    ("approved-without-approver", "[0].approved_by: missing (required when status is approved)"),
    ("duplicate-key", "line 3, column 36: duplicate key 'status' (first on line 3)"),
    # bounds: ids as long as the store keeps them, nesting
    (
        "id-too-long",
        "[0].id: 'EX-1111111111111111111111111111111111111'… is 101 characters long (at most 100)",
    ),
    (
        "scope-id-too-long",
        "[0].scope.devices[0]: 'YJ-C012345678901234567890123456789012345'… is 313 characters long (at most 100)",
    ),
    ("deep-nesting", "line 1, column 50: nested more than 32 levels deep"),
]


@pytest.mark.parametrize(("name", "message"), REJECTS, ids=[name for name, _ in REJECTS])
def test_load_exclusions_rejects(
    name: str, message: str, inventory: Inventory, contracts: dict[ContractId, Contract]
) -> None:
    path = BAD / f"{name}.yaml"
    with pytest.raises(ExclusionError, match=f"^{re.escape(f'{path}: {message}')}$"):
        load_exclusions(path, inventory, contracts)


def test_every_bad_file_is_in_the_table() -> None:
    assert sorted(p.stem for p in BAD.glob("*.yaml")) == sorted(name for name, _ in REJECTS)


def test_missing_file(inventory: Inventory, contracts: dict[ContractId, Contract]) -> None:
    path = EXCLUSIONS / "nope.yaml"
    with pytest.raises(ExclusionError, match=f"^{re.escape(f'{path}: file not found')}$"):
        load_exclusions(path, inventory, contracts)


def test_good_exclusions_in_file_order(inventory: Inventory, contracts: dict[ContractId, Contract]) -> None:
    exclusions = load_exclusions(EXCLUSIONS / "good.yaml", inventory, contracts)
    assert exclusions == (
        Exclusion(
            id=ExclusionId("EX-1"),
            category=ExclusionCategory.MAINTENANCE,
            scope=Scope(sites=frozenset({SiteId("YJ-S001")})),
            start=datetime(2025, 7, 2, 17, tzinfo=UTC),
            end=datetime(2025, 7, 2, 19, tzinfo=UTC),
            reason="计划检修",
            status=ExclusionStatus.APPROVED,
            approved_by="ops-lead",
        ),
        Exclusion(
            id=ExclusionId("EX-2"),
            category=ExclusionCategory.POWER,
            scope=Scope(devices=frozenset({DeviceId("YJ-C0002")})),
            start=datetime(2025, 7, 10, 0, tzinfo=UTC),
            end=datetime(2025, 7, 10, 4, tzinfo=UTC),
            reason="供电局停电",
            status=ExclusionStatus.PROPOSED,
        ),
        Exclusion(
            id=ExclusionId("EX-3"),
            category=ExclusionCategory.FIBER_CUT,
            scope=Scope(
                devices=frozenset({DeviceId("YJ-SW002"), DeviceId("YJ-C0002")}),
                sites=frozenset({SiteId("YJ-S002")}),
                contracts=frozenset({ContractId("YJ-2025")}),
            ),
            start=datetime(2025, 7, 20, 2, tzinfo=UTC),  # unquoted YAML timestamps, aware
            end=datetime(2025, 7, 20, 4, 30, 0, 500_000, tzinfo=UTC),
            reason="road works cut the fibre",
            status=ExclusionStatus.REJECTED,
        ),
    )
    assert all(e.start.tzinfo is UTC and e.end.tzinfo is UTC for e in exclusions)


@pytest.mark.parametrize("name", ["empty.yaml", "empty-list.yaml"])
def test_no_exclusions(name: str, inventory: Inventory, contracts: dict[ContractId, Contract]) -> None:
    assert load_exclusions(EXCLUSIONS / name, inventory, contracts) == ()
