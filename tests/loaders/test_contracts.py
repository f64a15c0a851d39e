"""Contract files: every rule has a bad file in tests/testdata/contracts/bad and its exact message."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from slamon.canonical import canonical_json, contract_from_dict, contract_to_dict
from slamon.errors import ContractError
from slamon.loaders.contracts import load_contract, load_contracts
from slamon.model import (
    ContractId,
    DeviceKind,
    ExclusionCategory,
    FaultHours,
    FaultTime,
    Kpi,
    KpiTarget,
    PayBand,
    PerPoint,
    PointCount,
    RepairOverrun,
    ScoreCard,
    SlaTerms,
    Tier,
    UnknownCountsAs,
)
from tests.conftest import TESTDATA

GOOD = TESTDATA / "contracts" / "good"
BAD = TESTDATA / "contracts" / "bad"
HINT = "(use 500ms, 30s, 15m, 4h, 1d)"
ID_HINT = "(use letters, digits, '.', '_', '-')"
TERM_HINT = "(use a date from 1970-01-01 to 2199-12-31)"

REJECTS = [
    ("unknown-key", "vendorr: unknown key"),
    ("sla-unknown-key", "sla.down_afterr: unknown key"),
    ("missing-id", "id: missing (required)"),
    ("missing-term", "term: missing (required)"),
    ("missing-fees", "fees: missing (required)"),
    ("empty-vendor", "vendor: empty (required)"),
    ("blank-vendor", "vendor: empty (required)"),
    ("blank-buyer", "buyer: empty (give the buyer's name, or leave the key out)"),
    ("buyer-number", "buyer: expected text, got 110 (put it in quotes)"),
    ("bad-id", f"id: 'YJ 2025' is not a valid id {ID_HINT}"),
    ("id-number", "id: expected text, got 2025 (put it in quotes)"),
    ("bad-currency", "currency: 'cny' is not a currency code (use 3 capital letters, e.g. CNY)"),
    ("bad-timezone", "timezone: unknown time zone 'Asia/Shangai'"),
    ("term-not-mapping", "term: expected a mapping, got 2025-06-01"),
    ("term-bad-start", "term.start: 'June' is not a date (use YYYY-MM-DD, e.g. 2025-06-01)"),
    (
        "term-datetime-start",
        "term.start: 2025-06-01T00:00:00+08:00 is not a date (use YYYY-MM-DD, e.g. 2025-06-01)",
    ),
    ("term-months-zero", "term.months: 0 must be at least 1"),
    ("term-months-float", "term.months: 1.5 is not a whole number"),
    ("term-unknown-key", "term.end: unknown key"),
    ("fees-unknown-kind", "fees.camra: unknown device kind (use camera, switch, link)"),
    ("fees-comma", "fees.camera: '92,29' is not a decimal number"),
    ("fees-space", "fees.camera: '9 2' is not a decimal number"),
    ("fees-negative", "fees.camera: -1 must not be negative"),
    ("fees-bool", "fees.camera: true is not a decimal number"),
    ("fees-nan", "fees.camera: nan is not a decimal number"),
    ("fees-infinity", "fees.camera: 'Infinity' is not a decimal number"),
    ("prorate-not-bool", "prorate: 'sometimes' is not true or false"),
    ("sla-not-mapping", "sla: expected a mapping, got 'strict'"),
    ("down-after-zero", "sla.down_after: 0 must be at least 1"),
    ("up-after-bool", "sla.up_after: true is not a whole number"),
    ("degrade-after-text", "sla.degrade_after: 'two' is not a whole number"),
    ("stale-after-zero", "sla.stale_after: '0s' must be longer than 0s"),
    ("stale-after-space", f"sla.stale_after: '5 m' is not a duration {HINT}"),
    ("stale-after-number", f"sla.stale_after: 300 is not a duration {HINT}"),
    ("upstream-grace-negative", f"sla.upstream_grace: '-5m' is not a duration {HINT}"),
    ("upstream-grace-fraction", f"sla.upstream_grace: '0.5h' is not a duration {HINT}"),
    (
        "unknown-counts-as",
        "sla.unknown_counts_as: 'ignored' is not a way to count unknown time (use up, down, excluded)",
    ),
    ("upstream-counts", "sla.upstream_counts: 'maybe' is not true or false"),
    ("tiers-not-list", "sla.availability_tiers: expected a list, got a mapping"),
    ("tier-below-zero", "sla.availability_tiers[1].below: 0 must be more than 0 and at most 1"),
    ("tier-below-above-one", "sla.availability_tiers[1].below: 1.5 must be more than 0 and at most 1"),
    ("tier-deduct", "sla.availability_tiers[0].deduct: 1.1 must be between 0 and 1"),
    ("tier-missing-deduct", "sla.availability_tiers[0].deduct: missing (required)"),
    ("tier-unknown-key", "sla.availability_tiers[0].deduction: unknown key"),
    ("tier-not-mapping", "sla.availability_tiers[2]: expected a mapping, got 0.9"),
    (
        "repair-deadline-area",
        "sla.repair_deadline.Urban: 'Urban' is not an area name (use lowercase letters, digits and _, e.g. urban)",
    ),
    ("repair-deadline-zero", "sla.repair_deadline.urban: '0h' must be longer than 0s"),
    ("repair-deadline-empty", "sla.repair_deadline.rural: empty (required)"),
    ("repair-overrun-missing", "sla.repair_overrun.per_started_hour: missing (required)"),
    ("repair-overrun-negative", "sla.repair_overrun.max_per_incident: -500.00 must not be negative"),
    ("fleet-kinds-empty", "sla.fleet_kinds: empty (give at least one of camera, switch, link)"),
    ("fleet-kinds-unknown", "sla.fleet_kinds[1]: 'router' is not a device kind (use camera, switch, link)"),
    ("fleet-kinds-duplicate", "sla.fleet_kinds[1]: duplicate kind 'camera'"),
    ("fleet-kpis-unknown", "sla.fleet_kpis.uptime: unknown kpi (use online_rate, intact_rate)"),
    ("fleet-kpi-target-zero", "sla.fleet_kpis.online_rate.target: 0 must be more than 0 and at most 1"),
    ("fleet-kpi-deduct", "sla.fleet_kpis.intact_rate.deduct: -0.05 must be between 0 and 1"),
    ("fleet-kpi-missing-target", "sla.fleet_kpis.intact_rate.target: missing (required)"),
    ("cap-above-one", "sla.cap: 1.5 must be between 0 and 1"),
    ("min-coverage-above-one", "sla.min_coverage: 1.2 must be between 0 and 1"),
    (
        "exclusions-unknown",
        (
            "sla.exclusions[2]: 'holiday' is not an exclusion category "
            "(use maintenance, power, fiber_cut, force_majeure, customer)"
        ),
    ),
    ("exclusions-duplicate", "sla.exclusions[2]: duplicate category 'power'"),
    ("duplicate-key", "line 4, column 1: duplicate key 'vendor' (first on line 2)"),
    ("syntax-error", "line 26, column 13: expected ',' or ']', but got ':'"),
    ("top-level-list", "expected a mapping, got a list"),
    ("empty-file", "the file is empty"),
    # bounds: every value check accepts works downstream
    ("fees-too-much", "fees.camera: 1000000000.01 must be at most 1,000,000,000"),
    ("fees-1e30", "fees.camera: '1e30' is out of range"),
    ("fees-huge-exponent", "fees.camera: '1e999999999' is out of range"),
    ("fees-tiny-exponent", "fees.camera: '1e-999999999' is out of range"),
    ("fees-long-number", f"fees.camera: '{'9' * 40}'… is out of range"),
    ("fees-three-places", "fees.camera: 92.295 has more than 2 decimal places"),
    ("fees-float-places", "fees.camera: 0.001 has more than 2 decimal places"),
    ("fees-yaml-huge-float", "fees.camera: 1e+300 is out of range"),
    ("repair-overrun-places", "sla.repair_overrun.per_started_hour: 50.005 has more than 2 decimal places"),
    ("repair-overrun-too-much", "sla.repair_overrun.max_per_incident: 5E+9 must be at most 1,000,000,000"),
    ("tier-places", "sla.availability_tiers[1].deduct: 0.3000001 has more than 6 decimal places"),
    ("cap-out-of-range", "sla.cap: '1e-31' is out of range"),
    ("down-after-too-many", "sla.down_after: 10001 must be at most 10,000"),
    ("up-after-huge", "sla.up_after: a 60-digit number must be at most 10,000"),
    ("degrade-after-giant", f"line 14, column 18: '{'9' * 40}'… is too long a number"),
    ("stale-after-too-long", "sla.stale_after: '2d' must be at most 1d"),
    ("stale-after-long-digits", f"sla.stale_after: '{'1' * 40}'… is too long a duration"),
    ("upstream-grace-too-long", "sla.upstream_grace: '1d1s' must be at most 1d"),
    ("repair-deadline-too-long", "sla.repair_deadline.rural: '366d' must be at most 365d"),
    ("term-months-too-many", "term.months: 1201 must be at most 1,200"),
    ("term-start-too-early", f"term.start: 1969-12-31 is out of range {TERM_HINT}"),
    ("term-start-too-late", f"term.start: 2200-01-01 is out of range {TERM_HINT}"),
    ("id-too-long", "id: 'YJ-2025-YJ-2025-YJ-2025-YJ-2025-YJ-2025-'… is 104 characters long (at most 100)"),
    ("deep-nesting", "line 2, column 40: nested more than 32 levels deep"),
    # per-point KPI shortfalls and score cards (docs/sla.md §6.5, §6.6)
    ("kpi-missing-deduct", "sla.fleet_kpis.online_rate.deduct: missing (required unless per_point is given)"),
    ("per-point-not-mapping", "sla.fleet_kpis.online_rate.per_point: expected a mapping, got 0.02"),
    ("per-point-missing-deduct", "sla.fleet_kpis.online_rate.per_point.deduct: missing (required)"),
    ("per-point-unknown-key", "sla.fleet_kpis.online_rate.per_point.rounding: unknown key"),
    (
        "per-point-count",
        "sla.fleet_kpis.online_rate.per_point.points: 'half' is not a way to count points (use started, whole)",
    ),
    ("per-point-ratio-zero", "sla.fleet_kpis.online_rate.per_point.deduct: '1/0' divides by zero"),
    (
        "per-point-ratio-decimal",
        "sla.fleet_kpis.online_rate.per_point.deduct: '1/4.5' is not a ratio (use whole numbers, e.g. 1/45)",
    ),
    (
        "per-point-ratio-spaces",
        "sla.fleet_kpis.online_rate.per_point.deduct: '1 / 45' is not a ratio (use whole numbers, e.g. 1/45)",
    ),
    (
        "per-point-ratio-above-one",
        "sla.fleet_kpis.online_rate.per_point.deduct: '46/45' must be between 0 and 1",
    ),
    (
        "per-point-ratio-long",
        "sla.fleet_kpis.online_rate.per_point.deduct: '1/1234567890' has more than 9 digits on a side",
    ),
    (
        "per-point-deduct-negative",
        "sla.fleet_kpis.online_rate.per_point.deduct: -0.02 must be between 0 and 1",
    ),
    (
        "per-point-deduct-places",
        "sla.fleet_kpis.online_rate.per_point.deduct: 0.0222222 has more than 6 decimal places",
    ),
    ("per-point-deduct-text", "sla.fleet_kpis.online_rate.per_point.deduct: 'two' is not a decimal number"),
    ("per-point-max-zero", "sla.fleet_kpis.online_rate.per_point.max: 0 must be more than 0 and at most 1"),
    (
        "per-point-max-above-one",
        "sla.fleet_kpis.online_rate.per_point.max: 1.5 must be more than 0 and at most 1",
    ),
    ("score-card-not-mapping", "sla.score_card: expected a mapping, got 100"),
    (
        "score-card-no-items",
        "sla.score_card: give at least one of fault_hours, repair_overrun, missed_inspection",
    ),
    ("score-card-missing-pay", "sla.score_card.pay: missing (required)"),
    ("score-card-unknown-item", "sla.score_card.hotline: unknown key"),
    ("score-card-pay-not-list", "sla.score_card.pay: expected a list, got a mapping"),
    (
        "score-card-pay-empty",
        "sla.score_card.pay: empty (give the bands from the highest score down, the last at_least: 0)",
    ),
    (
        "score-card-pay-gap",
        "sla.score_card.pay[2].at_least: 80 leaves the scores below 80 without a band (the last band must be at_least: 0)",
    ),
    (
        "score-card-pay-overlap",
        "sla.score_card.pay[2].at_least: 90 must be below 90, where the band above starts (list the bands from the highest score down)",
    ),
    (
        "score-card-pay-ascending",
        "sla.score_card.pay[1].at_least: 90 must be below 0, where the band above starts (list the bands from the highest score down)",
    ),
    ("score-card-pay-more-below", "sla.score_card.pay[1].pay: 0.98 is more than the band above pays (0.95)"),
    ("score-card-band-above-100", "sla.score_card.pay[0].at_least: 101 must be at most 100"),
    ("score-card-band-places", "sla.score_card.pay[0].at_least: 92.125 has more than 2 decimal places"),
    ("score-card-band-negative", "sla.score_card.pay[1].at_least: -10 must not be negative"),
    ("score-card-pay-above-one", "sla.score_card.pay[0].pay: 1.05 must be between 0 and 1"),
    ("score-card-band-unknown-key", "sla.score_card.pay[0].from: unknown key"),
    ("score-card-band-missing-pay", "sla.score_card.pay[1].pay: missing (required)"),
    ("score-card-band-not-mapping", "sla.score_card.pay[0]: expected a mapping, got 95"),
    ("score-card-points-negative", "sla.score_card.fault_hours.points: -1 must not be negative"),
    ("score-card-points-too-many", "sla.score_card.missed_inspection.points: 101 must be at most 100"),
    (
        "score-card-points-places",
        "sla.score_card.missed_inspection.points: 0.125 has more than 2 decimal places",
    ),
    ("score-card-points-text", "sla.score_card.missed_inspection.points: 'five' is not a decimal number"),
    ("score-card-points-missing", "sla.score_card.missed_inspection.points: missing (required)"),
    ("score-card-fault-over-missing", "sla.score_card.fault_hours.over: missing (required)"),
    ("score-card-fault-over-long", "sla.score_card.fault_hours.over: '32d' must be at most 31d"),
    (
        "score-card-fault-over-bad",
        "sla.score_card.fault_hours.over: '8 hours' is not a duration (use 500ms, 30s, 15m, 4h, 1d)",
    ),
    (
        "score-card-fault-time",
        "sla.score_card.fault_hours.time: 'image' is not a fault time (use down, down_or_degraded)",
    ),
    ("score-card-fault-unknown-key", "sla.score_card.fault_hours.per: unknown key"),
    ("score-card-event-not-mapping", "sla.score_card.repair_overrun: expected a mapping, got 2"),
    (
        "score-card-with-tiers",
        "sla.score_card.fault_hours: a device's downtime is judged by sla.availability_tiers already (a contract has one or the other)",
    ),
    (
        "score-card-with-overrun-money",
        "sla.score_card.repair_overrun: overruns are charged by sla.repair_overrun already (a contract has one or the other)",
    ),
    (
        "score-card-overrun-no-deadline",
        "sla.score_card.repair_overrun: needs sla.repair_deadline (the deadlines an overrun is measured against)",
    ),
    (
        "filing-deadline-text",
        "sla.filing_deadline: 'ten days' is not a duration (use 500ms, 30s, 15m, 4h, 1d)",
    ),
    (
        "filing-deadline-negative",
        "sla.filing_deadline: '-1d' is not a duration (use 500ms, 30s, 15m, 4h, 1d)",
    ),
    ("filing-deadline-too-long", "sla.filing_deadline: '400d' must be at most 366d"),
]


@pytest.mark.parametrize(("name", "message"), REJECTS, ids=[name for name, _ in REJECTS])
def test_load_contract_rejects(name: str, message: str) -> None:
    path = BAD / f"{name}.yaml"
    with pytest.raises(ContractError, match=f"^{re.escape(f'{path}: {message}')}$"):
        load_contract(path)


def test_every_bad_file_is_in_the_table() -> None:
    assert sorted(p.stem for p in BAD.glob("*.yaml")) == sorted(name for name, _ in REJECTS)


def test_missing_file() -> None:
    path = TESTDATA / "contracts" / "nope.yaml"
    with pytest.raises(ContractError, match=f"^{re.escape(f'{path}: file not found')}$"):
        load_contract(path)


def test_full_contract() -> None:
    """FORMATS.md's example, value by value: YAML floats become the decimals they look like."""
    contract = load_contract(GOOD / "YJ-2025.yaml")
    assert contract.id == "YJ-2025"
    assert contract.vendor == "某某科技有限公司"
    assert contract.buyer is None  # optional: a contract file without it stays valid
    assert contract.currency == "CNY"
    assert contract.timezone == "Asia/Shanghai"
    assert contract.term_start == date(2025, 6, 1)
    assert contract.term_months == 36
    assert contract.fees == {
        DeviceKind.CAMERA: Decimal("92.29"),
        DeviceKind.SWITCH: Decimal(0),
        DeviceKind.LINK: Decimal(0),
    }
    assert contract.prorate is True
    assert contract.sla == SlaTerms(
        down_after=3,
        up_after=2,
        degrade_after=2,
        stale_after=timedelta(minutes=5),
        unknown_counts_as=UnknownCountsAs.UP,
        upstream_counts=False,
        upstream_grace=timedelta(minutes=5),
        availability_tiers=(
            Tier(below=Decimal("0.99"), deduct=Decimal("0.10")),
            Tier(below=Decimal("0.95"), deduct=Decimal("0.30")),
            Tier(below=Decimal("0.90"), deduct=Decimal("1.00")),
        ),
        repair_deadline={"urban": timedelta(hours=4), "rural": timedelta(hours=8)},
        repair_overrun=RepairOverrun(per_started_hour=Decimal("50.00"), max_per_incident=Decimal("500.00")),
        fleet_kinds=frozenset({DeviceKind.CAMERA}),
        fleet_kpis={
            Kpi.ONLINE_RATE: KpiTarget(target=Decimal("0.95"), deduct=Decimal("0.05")),
            Kpi.INTACT_RATE: KpiTarget(target=Decimal("0.90"), deduct=Decimal("0.05")),
        },
        cap=Decimal("0.30"),
        exclusions=frozenset(ExclusionCategory),
    )
    # Exact decimals, never binary floats.
    assert all(type(fee) is Decimal for fee in contract.fees.values())
    assert str(contract.sla.availability_tiers[0].deduct) == "0.1"
    assert contract.sla.cap is not None
    assert str(contract.sla.cap) == "0.3"


def test_minimal_contract_takes_the_defaults() -> None:
    contract = load_contract(GOOD / "MIN-1.yaml")
    assert contract.id == "MIN-1"
    assert contract.currency == "CNY"
    assert contract.timezone == "Asia/Shanghai"
    assert contract.term_start == date(2025, 1, 1)
    assert contract.fees == {DeviceKind.CAMERA: Decimal(10)}
    assert contract.prorate is True
    assert contract.sla == SlaTerms()
    assert contract.sla.cap is None
    assert contract.sla.exclusions == frozenset()
    assert contract.sla.fleet_kinds == frozenset({DeviceKind.CAMERA})
    assert (contract.sla.min_coverage, contract.sla.coverage_needed) == (None, Decimal("0.99"))


def test_other_settings() -> None:
    contract = load_contract(GOOD / "other-settings.yaml")
    assert contract.id == "OT.2026_a"
    assert contract.buyer == "Town of Other, Police Department"
    assert contract.currency == "USD"
    assert contract.timezone == "America/New_York"
    assert contract.prorate is False
    assert contract.fees == {
        DeviceKind.CAMERA: Decimal("0.1"),
        DeviceKind.SWITCH: Decimal(12),
        DeviceKind.LINK: Decimal(100),
    }
    sla = contract.sla
    assert (sla.down_after, sla.up_after, sla.degrade_after) == (1, 1, 5)
    assert sla.stale_after == timedelta(hours=1, minutes=30)
    assert sla.unknown_counts_as is UnknownCountsAs.EXCLUDED
    assert sla.upstream_counts is True
    assert sla.upstream_grace == timedelta(0)
    assert sla.availability_tiers == ()
    assert sla.repair_deadline == {}
    assert sla.repair_overrun == RepairOverrun(per_started_hour=Decimal(0))
    assert sla.fleet_kinds == frozenset({DeviceKind.CAMERA, DeviceKind.SWITCH})
    assert sla.fleet_kpis == {Kpi.INTACT_RATE: KpiTarget(target=Decimal(1), deduct=Decimal(0))}
    assert sla.cap is None
    assert sla.exclusions == frozenset({ExclusionCategory.POWER})
    assert (sla.min_coverage, sla.coverage_needed) == (Decimal("0.95"), Decimal("0.95"))


def test_load_contracts_by_id() -> None:
    contracts = load_contracts(sorted(GOOD.glob("*.yaml")))
    assert sorted(contracts) == ["MIN-1", "OT.2026_a", "TENDER-1", "YJ-2025"]
    assert contracts[ContractId("YJ-2025")] == load_contract(GOOD / "YJ-2025.yaml")


def test_load_contracts_rejects_an_id_in_two_files() -> None:
    first, second = TESTDATA / "contracts" / "dup" / "a.yaml", TESTDATA / "contracts" / "dup" / "b.yaml"
    message = f"{second}: id: duplicate contract id 'DUP-1' (also in {first})"
    with pytest.raises(ContractError, match=f"^{re.escape(message)}$"):
        load_contracts([first, second])


def test_tender_rules() -> None:
    """Per-point shortfalls and a score card, value by value: a ratio stays exact (1/45 is no
    decimal), the keys left out take their defaults."""
    sla = load_contract(GOOD / "tender-rules.yaml").sla
    assert sla.fleet_kpis == {
        Kpi.ONLINE_RATE: KpiTarget(
            target=Decimal("0.95"), deduct=None, per_point=PerPoint(deduct=Fraction(1, 45))
        ),
        Kpi.INTACT_RATE: KpiTarget(
            target=Decimal("0.90"),
            deduct=Decimal("0.05"),
            per_point=PerPoint(deduct=Fraction(1, 50), points=PointCount.WHOLE, limit=Decimal("0.5")),
        ),
    }
    assert sla.fleet_kpis[Kpi.ONLINE_RATE].per_point == PerPoint(Fraction(1, 45), PointCount.STARTED, None)
    assert sla.score_card == ScoreCard(
        pay=(
            PayBand(at_least=Decimal(95), pay=Decimal("1.00")),
            PayBand(at_least=Decimal(90), pay=Decimal("0.95")),
            PayBand(at_least=Decimal(85), pay=Decimal("0.90")),
            PayBand(at_least=Decimal(80), pay=Decimal("0.85")),
            PayBand(at_least=Decimal(0), pay=Decimal("0.70")),
        ),
        fault_hours=FaultHours(over=timedelta(hours=8), points=Decimal(1), time=FaultTime.DOWN_OR_DEGRADED),
        repair_overrun=Decimal(2),
        missed_inspection=Decimal("0.5"),
    )
    assert sla.availability_tiers == ()
    assert sla.repair_overrun is None
    assert load_contract(GOOD / "YJ-2025.yaml").sla.score_card is None  # optional


@pytest.mark.parametrize("name", ["YJ-2025.yaml", "MIN-1.yaml", "other-settings.yaml", "tender-rules.yaml"])
def test_tender_rules_round_trip_through_the_canonical_form(name: str) -> None:
    contract = load_contract(GOOD / name)
    assert contract_from_dict(json.loads(canonical_json(contract_to_dict(contract)))) == contract


def test_the_canonical_form_of_the_tender_rules() -> None:
    """A share that is a decimal is spelled as one, a ratio as the ratio; `deduct` is left out of a
    KPI that has none, `max` is null when not given."""
    sla = contract_to_dict(load_contract(GOOD / "tender-rules.yaml"))["sla"]
    assert isinstance(sla, dict)
    assert sla["fleet_kpis"] == {
        "online_rate": {"target": "0.95", "per_point": {"deduct": "1/45", "points": "started", "max": None}},
        "intact_rate": {
            "target": "0.9",
            "deduct": "0.05",
            "per_point": {"deduct": "0.02", "points": "whole", "max": "0.5"},
        },
    }
    assert sla["score_card"] == {
        "fault_hours": {"over": 8 * 3600 * 10**6, "points": "1", "time": "down_or_degraded"},
        "repair_overrun": "2",
        "missed_inspection": "0.5",
        "pay": [
            {"at_least": "95", "pay": "1.0"},  # YAML's 1.00 is the float 1.0
            {"at_least": "90", "pay": "0.95"},
            {"at_least": "85", "pay": "0.9"},
            {"at_least": "80", "pay": "0.85"},
            {"at_least": "0", "pay": "0.7"},
        ],
    }


def test_contracts_without_the_new_keys_keep_their_canonical_bytes() -> None:
    """The stored and hashed form of a contract that uses neither rule is what it was before them:
    no score_card key, KPIs of exactly {target, deduct} (so every stored version and statement
    hash stays as it is)."""
    sla = contract_to_dict(load_contract(GOOD / "YJ-2025.yaml"))["sla"]
    assert isinstance(sla, dict)
    assert "score_card" not in sla
    assert sla["fleet_kpis"] == {
        "online_rate": {"target": "0.95", "deduct": "0.05"},
        "intact_rate": {"target": "0.9", "deduct": "0.05"},
    }


HEAD = 'id: DOC-1\nvendor: v\nterm: {start: 2025-06-01, months: 36}\nfees: {camera: "92.29"}\n'


def _yaml_after(path: str, marker: str) -> str:
    doc = (TESTDATA.parent.parent / path).read_text(encoding="utf-8")
    return doc.split(marker, 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(
    ("path", "marker", "indent"),
    [
        ("docs/formats.md", "The rule kinds seen in tenders", False),
        ("docs/sla.md", "### 6.5 Per-point KPI shortfall", True),
        ("docs/sla.md", "### 6.6 Score card", False),
    ],
)
def test_the_documented_examples_load(tmp_path: Path, path: str, marker: str, indent: bool) -> None:
    """The contract snippets of the docs are contracts slamon accepts."""
    block = _yaml_after(path, marker)
    if indent:  # a snippet of sla: alone
        block = "sla:\n" + "".join(f"  {line}\n" for line in block.splitlines())
    (tmp_path / "c.yaml").write_text(HEAD + block, encoding="utf-8")
    sla = load_contract(tmp_path / "c.yaml").sla
    assert sla.score_card is not None or sla.fleet_kpis[Kpi.ONLINE_RATE].per_point is not None


def test_the_filing_deadline_is_read_and_kept_out_of_contracts_without_it(tmp_path: Path) -> None:
    good = (GOOD / "YJ-2025.yaml").read_text(encoding="utf-8")
    without = load_contract(GOOD / "YJ-2025.yaml")
    assert without.sla.filing_deadline is None
    assert "filing_deadline" not in contract_to_dict(without)["sla"], "contracts without it keep their bytes"
    for text, deadline in (("10d", timedelta(days=10)), ("0s", timedelta(0))):
        path = tmp_path / f"with-{text}.yaml"
        path.write_text(good + f"  filing_deadline: {text}\n", encoding="utf-8")
        contract = load_contract(path)
        assert contract.sla.filing_deadline == deadline
        assert contract_from_dict(contract_to_dict(contract)) == contract
