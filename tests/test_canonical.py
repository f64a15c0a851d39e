"""Canonical dicts: exact round trips, one spelling per value, deterministic bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slamon.canonical import (
    canonical_json,
    contract_from_dict,
    contract_to_dict,
    exclusion_from_dict,
    exclusion_to_dict,
    inventory_from_dict,
    inventory_to_dict,
)
from slamon.loaders.contracts import load_contract, load_contracts
from slamon.loaders.exclusions import load_exclusions
from slamon.loaders.inventory import load_inventory
from slamon.model import (
    Contract,
    ContractId,
    Device,
    DeviceId,
    DeviceKind,
    Exclusion,
    ExclusionCategory,
    ExclusionId,
    ExclusionStatus,
    Inventory,
    Scope,
    SiteId,
    SlaTerms,
)
from tests.conftest import TESTDATA

CONTRACTS = TESTDATA / "contracts" / "good"


@pytest.fixture(scope="module")
def contracts() -> dict[ContractId, Contract]:
    return load_contracts(sorted(CONTRACTS.glob("*.yaml")))


@pytest.fixture(scope="module")
def inventory(contracts: dict[ContractId, Contract]) -> Inventory:
    return load_inventory(TESTDATA / "inventory" / "good.yaml", contracts)


def _through_json(data: dict[str, object]) -> object:
    """What the database hands back: the stored bytes, parsed."""
    return json.loads(canonical_json(data))


@pytest.mark.parametrize("name", ["YJ-2025.yaml", "MIN-1.yaml", "other-settings.yaml"])
def test_contract_round_trip(name: str) -> None:
    contract = load_contract(CONTRACTS / name)
    assert contract_from_dict(contract_to_dict(contract)) == contract
    assert contract_from_dict(_through_json(contract_to_dict(contract))) == contract
    again = contract_from_dict(_through_json(contract_to_dict(contract)))
    assert canonical_json(contract_to_dict(again)) == canonical_json(contract_to_dict(contract))


def test_inventory_round_trip(inventory: Inventory) -> None:
    assert inventory_from_dict(inventory_to_dict(inventory)) == inventory
    assert inventory_from_dict(_through_json(inventory_to_dict(inventory))) == inventory


def test_exclusions_round_trip(inventory: Inventory, contracts: dict[ContractId, Contract]) -> None:
    exclusions = load_exclusions(TESTDATA / "exclusions" / "good.yaml", inventory, contracts)
    for exclusion in exclusions:
        assert exclusion_from_dict(exclusion_to_dict(exclusion)) == exclusion
        assert exclusion_from_dict(_through_json(exclusion_to_dict(exclusion))) == exclusion


def test_yaml_and_csv_give_the_same_bytes(contracts: dict[ContractId, Contract]) -> None:
    """File order and file format are not part of the inventory: the stored version does not change."""
    from_yaml = load_inventory(TESTDATA / "inventory" / "good.yaml", contracts)
    from_csv = load_inventory(TESTDATA / "inventory" / "good.csv", contracts)
    assert canonical_json(inventory_to_dict(from_yaml)) == canonical_json(inventory_to_dict(from_csv))


def test_contract_dict() -> None:
    assert contract_to_dict(load_contract(CONTRACTS / "YJ-2025.yaml")) == {
        "id": "YJ-2025",
        "vendor": "某某科技有限公司",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "term": {"start": "2025-06-01", "months": 36},
        "fees": {"camera": "92.29", "switch": "0", "link": "0"},
        "prorate": True,
        "sla": {
            "down_after": 3,
            "up_after": 2,
            "degrade_after": 2,
            "stale_after": 300_000_000,
            "unknown_counts_as": "up",
            "upstream_counts": False,
            "upstream_grace": 300_000_000,
            "availability_tiers": [
                {"below": "0.99", "deduct": "0.1"},
                {"below": "0.95", "deduct": "0.3"},
                {"below": "0.9", "deduct": "1.0"},
            ],
            "repair_deadline": {"urban": 14_400_000_000, "rural": 28_800_000_000},
            "repair_overrun": {"per_started_hour": "50.00", "max_per_incident": "500.00"},
            "fleet_kinds": ["camera"],
            "fleet_kpis": {
                "online_rate": {"target": "0.95", "deduct": "0.05"},
                "intact_rate": {"target": "0.9", "deduct": "0.05"},
            },
            "cap": "0.3",
            "exclusions": ["customer", "fiber_cut", "force_majeure", "maintenance", "power"],
        },
    }


def test_the_buyer_is_in_the_dict_only_when_the_contract_names_one() -> None:
    """An optional key added later: contracts without it keep the bytes (and hashes) they had."""
    assert "buyer" not in contract_to_dict(load_contract(CONTRACTS / "YJ-2025.yaml"))
    assert contract_to_dict(load_contract(CONTRACTS / "other-settings.yaml"))["buyer"] == (
        "Town of Other, Police Department"
    )


def test_min_coverage_is_in_the_dict_only_when_the_contract_sets_it() -> None:
    """Like the buyer: contracts without sla.min_coverage (the default 0.99) keep their bytes."""
    assert "min_coverage" not in contract_to_dict(load_contract(CONTRACTS / "YJ-2025.yaml"))["sla"]
    assert contract_to_dict(load_contract(CONTRACTS / "other-settings.yaml"))["sla"]["min_coverage"] == "0.95"


def test_minimal_contract_dict_spells_out_the_defaults() -> None:
    data = contract_to_dict(load_contract(CONTRACTS / "MIN-1.yaml"))
    assert data["sla"] == {
        "down_after": 3,
        "up_after": 2,
        "degrade_after": 2,
        "stale_after": 300_000_000,
        "unknown_counts_as": "up",
        "upstream_counts": False,
        "upstream_grace": 300_000_000,
        "availability_tiers": [],
        "repair_deadline": {},
        "repair_overrun": None,
        "fleet_kinds": ["camera"],
        "fleet_kpis": {},
        "cap": None,
        "exclusions": [],
    }


def test_inventory_dict(inventory: Inventory) -> None:
    data = json.loads(canonical_json(inventory_to_dict(inventory)))
    assert [s["id"] for s in data["sites"]] == ["YJ-S001", "YJ-S002"]
    devices = {d["id"]: d for d in data["devices"]}
    assert list(devices) == sorted(devices)
    assert devices["YJ-C0001"] == {
        "id": "YJ-C0001",
        "kind": "camera",
        "address": "127.0.30.1",
        "site": "YJ-S001",
        "contract": "YJ-2025",
        "parent": "YJ-SW001",
        "channels": 1,
        "stream": "rtsp://127.0.30.1:8554/main",
        "snmp": None,
        "in_service": "2025-05-31T16:00:00Z",
        "out_of_service": None,
        "uplink": {"switch": "YJ-SW001", "port": "Gi0/5"},
    }
    assert devices["YJ-SW001"]["snmp"] == {"version": "2c", "port": 1161}
    assert "uplink" not in devices["MIN-C0001"]  # only when given: older inventories keep their hash


def test_exclusion_dict(inventory: Inventory, contracts: dict[ContractId, Contract]) -> None:
    third = load_exclusions(TESTDATA / "exclusions" / "good.yaml", inventory, contracts)[2]
    assert exclusion_to_dict(third) == {
        "id": "EX-3",
        "category": "fiber_cut",
        "scope": {"devices": ["YJ-C0002", "YJ-SW002"], "sites": ["YJ-S002"], "contracts": ["YJ-2025"]},
        "start": "2025-07-20T02:00:00Z",
        "end": "2025-07-20T04:30:00.500000Z",
        "reason": "road works cut the fibre",
        "status": "rejected",
        "approved_by": None,
    }


def test_canonical_json() -> None:
    assert (
        canonical_json({"b": [1, "二"], "a": {"d": None, "c": True}})
        == '{"a":{"c":true,"d":null},"b":[1,"二"]}'.encode()
    )
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"x": float("nan")})


def test_instants_in_other_offsets_are_stored_in_utc() -> None:
    shanghai = timezone(timedelta(hours=8))
    exclusion = Exclusion(
        id=ExclusionId("EX-9"),
        category=ExclusionCategory.CUSTOMER,
        scope=Scope(contracts=frozenset({ContractId("YJ-2025")})),
        start=datetime(2025, 7, 3, 1, tzinfo=shanghai),
        end=datetime(2025, 7, 3, 3, tzinfo=shanghai),
        reason="r",
        status=ExclusionStatus.APPROVED,
        approved_by="me",
    )
    data = exclusion_to_dict(exclusion)
    assert (data["start"], data["end"]) == ("2025-07-02T17:00:00Z", "2025-07-02T19:00:00Z")
    assert exclusion_from_dict(data) == exclusion


_aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-14 * 60, 14 * 60)),
)
_decimals = st.decimals(allow_nan=False, allow_infinity=False)


@given(
    in_service=st.none() | _aware,
    channels=st.integers(1, 64),
    stale=st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=10_000)),
    fee=_decimals,
    cap=st.none() | _decimals,
)
def test_round_trip_property(
    in_service: datetime | None, channels: int, stale: timedelta, fee: Decimal, cap: Decimal | None
) -> None:
    device = Device(
        id=DeviceId("D"),
        kind=DeviceKind.CAMERA,
        address="::1",
        site=SiteId("S"),
        contract=ContractId("C"),
        channels=channels,
        in_service=in_service,
    )
    inventory = Inventory(sites={}, devices={device.id: device})
    assert inventory_from_dict(_through_json(inventory_to_dict(inventory))) == inventory
    contract = Contract(
        id=ContractId("C"),
        vendor="v",
        currency="CNY",
        timezone="Asia/Shanghai",
        term_start=datetime(2025, 1, 1).date(),
        term_months=1,
        fees={DeviceKind.CAMERA: fee},
        sla=SlaTerms(stale_after=stale, cap=cap),
    )
    back = contract_from_dict(_through_json(contract_to_dict(contract)))
    assert back == contract
    assert str(back.fees[DeviceKind.CAMERA]) == str(fee)  # the same digits, not just the same value
