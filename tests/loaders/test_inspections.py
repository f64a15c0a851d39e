"""The inspections file (missed inspections entered by operations, docs/sla.md §6.6): every rule
has a bad file in tests/testdata/inspections/bad and its exact message."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from slamon.canonical import canonical_json, inspection_from_dict, inspection_to_dict
from slamon.errors import InspectionError
from slamon.loaders.config import load_config
from slamon.loaders.contracts import load_contracts
from slamon.loaders.fleet import load_fleet
from slamon.loaders.inspections import load_inspections
from slamon.loaders.inventory import load_inventory
from slamon.model import (
    Contract,
    ContractId,
    InspectionId,
    Inventory,
    MissedInspection,
    SiteId,
)
from tests.conftest import TESTDATA

ROOT = TESTDATA.parent.parent
INSPECTIONS = TESTDATA / "inspections"
BAD = INSPECTIONS / "bad"


@pytest.fixture(scope="module")
def contracts() -> dict[ContractId, Contract]:
    return load_contracts(sorted((TESTDATA / "contracts" / "good").glob("*.yaml")))


@pytest.fixture(scope="module")
def inventory(contracts: dict[ContractId, Contract]) -> Inventory:
    return load_inventory(TESTDATA / "inventory" / "good.yaml", contracts)


REJECTS = [
    ("after-term", "[0].date: 2028-06-01 is outside contract YJ-2025's term (2025-06 to 2028-05)"),
    ("bad-date", "line 1, column 39: '2025-07-32' is not a valid date or time"),
    ("bad-id", "[0].id: 'MI 1' is not a valid id (use letters, digits, '.', '_', '-')"),
    ("before-term", "[0].date: 2025-05-31 is outside contract YJ-2025's term (2025-06 to 2028-05)"),
    ("duplicate-id", "[1].id: duplicate inspection id 'MI-1' (first at [0])"),
    ("duplicate-key", "line 1, column 86: duplicate key 'reason' (first on line 1)"),
    ("empty-reason", "[0].reason: empty (required)"),
    ("entered-by-number", "[0].entered_by: expected text, got 110 (put it in quotes)"),
    ("instant-date", "[0].date: '2025-07-15T09:00:00+08:00' is not a date (use YYYY-MM-DD, e.g. 2025-06-01)"),
    ("item-not-mapping", "[0]: expected a mapping, got 'MI-1'"),
    ("missing-contract", "[0].contract: missing (required)"),
    ("missing-date", "[0].date: missing (required)"),
    ("missing-entered-by", "[0].entered_by: missing (required)"),
    ("missing-id", "[0].id: missing (required)"),
    ("missing-reason", "[0].reason: missing (required)"),
    ("not-a-list", "expected a list of missed inspections, got a mapping"),
    ("site-of-another-contract", "[0].site: site 'YJ-S002' has no device of contract MIN-1"),
    ("unknown-contract", "[0].contract: unknown contract 'YJ-2024'"),
    ("unknown-key", "[0].approved_by: unknown key"),
    ("unknown-site", "[0].site: unknown site 'YJ-S009'"),
]


@pytest.mark.parametrize(("name", "message"), REJECTS, ids=[name for name, _ in REJECTS])
def test_load_inspections_rejects(
    name: str, message: str, inventory: Inventory, contracts: dict[ContractId, Contract]
) -> None:
    path = BAD / f"{name}.yaml"
    with pytest.raises(InspectionError, match=f"^{re.escape(f'{path}: {message}')}$"):
        load_inspections(path, inventory, contracts)


def test_every_bad_file_is_in_the_table() -> None:
    assert sorted(p.stem for p in BAD.glob("*.yaml")) == sorted(name for name, _ in REJECTS)


def test_missing_file(inventory: Inventory, contracts: dict[ContractId, Contract]) -> None:
    path = INSPECTIONS / "nope.yaml"
    with pytest.raises(InspectionError, match=f"^{re.escape(f'{path}: file not found')}$"):
        load_inspections(path, inventory, contracts)


def test_good_inspections_in_file_order(inventory: Inventory, contracts: dict[ContractId, Contract]) -> None:
    assert load_inspections(INSPECTIONS / "good.yaml", inventory, contracts) == (
        MissedInspection(
            id=InspectionId("MI-2025-07-01"),
            contract=ContractId("YJ-2025"),
            date=date(2025, 7, 15),
            reason="月度巡检未按时完成",
            entered_by="张工",
            site=SiteId("YJ-S002"),
        ),
        MissedInspection(
            id=InspectionId("MI-2025-07-02"),
            contract=ContractId("YJ-2025"),
            date=date(2025, 7, 31),  # quoted or not, a date
            reason="巡检记录缺少建设方签字",
            entered_by="ops-lead",
        ),
    )


@pytest.mark.parametrize("name", ["empty.yaml", "empty-list.yaml"])
def test_no_inspections(name: str, inventory: Inventory, contracts: dict[ContractId, Contract]) -> None:
    assert load_inspections(INSPECTIONS / name, inventory, contracts) == ()


def test_round_trip_through_the_canonical_form(
    inventory: Inventory, contracts: dict[ContractId, Contract]
) -> None:
    found = load_inspections(INSPECTIONS / "good.yaml", inventory, contracts)
    assert [inspection_to_dict(i) for i in found][1] == {
        "id": "MI-2025-07-02",
        "contract": "YJ-2025",
        "date": "2025-07-31",
        "site": None,
        "reason": "巡检记录缺少建设方签字",
        "entered_by": "ops-lead",
    }
    assert (
        tuple(inspection_from_dict(json.loads(canonical_json(inspection_to_dict(i)))) for i in found) == found
    )


def test_the_store_mirrors_the_file(tmp_path: Path) -> None:
    """Like exclusions: each sync makes the stored inspections what the file says now (written,
    changed, reordered, removed), and names what changed."""
    from slamon.store import Store

    fleet = load_fleet(load_config(TESTDATA / "config" / "good" / "slamon.yaml"))
    first, second = fleet.inspections
    store = Store(f"sqlite:///{tmp_path / 'slamon.db'}")
    try:
        with store.begin() as tx:
            changes = tx.versions.record(fleet, 1)
            assert [c for c in changes if c.startswith("inspection")] == [
                "inspection MI-2025-07-01",
                "inspection MI-2025-07-02",
            ]
            assert tx.versions.inspections() == (first, second)
            assert tx.versions.record(fleet, 2) == []
            edited = replace(first, reason="巡检未做")
            changes = tx.versions.record(replace(fleet, inspections=(second, edited)), 3)
            assert changes == ["inspection MI-2025-07-01"]  # reordering alone is no change of content
            assert tx.versions.inspections() == (second, edited)
            assert tx.versions.record(replace(fleet, inspections=()), 4) == [
                "inspection MI-2025-07-01 removed",
                "inspection MI-2025-07-02 removed",
            ]
            assert tx.versions.inspections() == ()
    finally:
        store.close()


def test_the_fleet_cache_key_follows_the_inspections_file(tmp_path: Path) -> None:
    """A cached fleet is keyed by the bytes of every file it is loaded from, the inspections file
    too: an edited inspection is never read back stale."""
    from slamon.loaders.fleet import inputs_key

    good = TESTDATA / "config" / "good"
    for name in ("slamon.yaml", "inventory.yaml", "exclusions.yaml", "inspections.yaml"):
        (tmp_path / name).write_bytes((good / name).read_bytes())
    shutil.copytree(good / "contracts", tmp_path / "contracts")
    config = load_config(tmp_path / "slamon.yaml")
    before = inputs_key(config)
    (tmp_path / "inspections.yaml").write_text("[]\n", encoding="utf-8")
    assert inputs_key(config) != before


def test_the_documented_example_loads(tmp_path: Path) -> None:
    """docs/formats.md's inspections example, against the July example's contract and inventory."""
    doc = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    block = doc.split("## Inspections", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "inspections.yaml").write_text(block, encoding="utf-8")
    example = ROOT / "examples" / "july-2025"
    contracts = load_contracts(sorted((example / "contracts").glob("*.yaml")))
    found = load_inspections(
        tmp_path / "inspections.yaml", load_inventory(example / "inventory.yaml", contracts), contracts
    )
    assert [(i.id, i.date, i.site) for i in found] == [
        ("MI-2025-07-01", date(2025, 7, 15), "YJ-S004"),
        ("MI-2025-07-02", date(2025, 7, 31), None),
    ]
