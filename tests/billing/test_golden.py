"""Golden statements: small cases whose every figure is computed by hand from SLA.md.

Each expectation carries its arithmetic. Conventions used throughout:
- all instants are Asia/Shanghai (+08:00); July 2025 = 31 d = 2,678,400 s = |P|;
  June 2025 = 30 d = 2,592,000 s; August 2025 = 31 d = 2,678,400 s;
- "up all month" means icmp every 300 s from 07-01 00:00 to 07-31 23:55: every gap is exactly
  stale_after (5 m), so nothing is unknown inside the month;
- an outage [a, b) is written as icmp failures every 60 s from a and successes from b (so down_after
  and up_after are met and D = b - a exactly);
- default contract = FORMATS.md's: fee camera 100.00, tiers 0.99/0.10, 0.95/0.30, 0.90/1.00,
  deadline urban 4 h / rural 8 h, 50.00 per started hour up to 500.00, KPIs online 0.95/0.05 and
  intact 0.90/0.05, cap 0.30. A test that is about one rule switches the others off
  (NO_TIERS, NO_KPIS, NO_OVERRUN = 31 d deadlines, NO_CAP = cap 1.0).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.billing.golden_helpers import (
    AUGUST_S,
    DAY,
    HOUR,
    JULY_S,
    JUNE_S,
    NO_CAP,
    NO_KPIS,
    NO_OVERRUN,
    NO_TIERS,
    at,
    cam,
    contract,
    dev,
    device,
    down_between,
    excl,
    exclusion,
    inventory,
    iso,
    lines,
    outage_plan,
    outages,
    reach,
    run,
    totals,
    up_all,
    video,
)

JUL1 = at(7, 1)
AUG1 = at(8, 1)
SEP1 = at(9, 1)
BIG_FEES = {"camera": "10000.00", "switch": "0", "link": "0"}  # cap 0.30 × 10000 = 3000: never binding


def one_outage(dev_id: str, start: datetime, seconds: int, end: datetime = AUG1) -> str:
    """Up all July except one outage [start, start + seconds)."""
    return down_between(dev_id, start, start + timedelta(seconds=seconds), JUL1, end)


# --- a clean month: the shape of a statement -------------------------------------------------------


def test_clean_month(tmp_path: Path) -> None:
    doc = run(tmp_path, inventory(cam("CAM1", 1)), up_all("CAM1", JUL1, AUG1))
    d = device(doc, "CAM1")
    # S = 31 d = 2,678,400 s; nothing down, degraded, unknown or excluded; A = 1
    assert (d["fee"], d["scheduled_s"], d["excluded_s"], d["down_s"], d["degraded_s"], d["unknown_s"]) == (
        "100.00",
        JULY_S,
        0,
        0,
        0,
        0,
    )
    assert d["availability"] == 1
    assert d["deduction"] == "0.00"
    assert doc["rates"] == {"online_rate": 1, "intact_rate": 1}
    assert (doc["outages"], doc["deductions"], doc["exclusions"]) == ([], [], [])
    assert totals(doc) == ("100.00", "0.00", "100.00")


# --- §6.1 availability tiers ----------------------------------------------------------------------

TIERS_ONLY = contract(**NO_OVERRUN, **NO_KPIS, **NO_CAP)


@pytest.mark.parametrize(
    ("down_s", "tier_amount"),
    [
        # D = 0.01 × 2,678,400 = 26,784 → A = 0.99 exactly; 0.99 > 0.99 is false → no tier
        pytest.param(26_784, None, id="A=0.99-exactly"),
        # D = 26,785 → A = 1 - 26785/2678400 = 0.98999963 → tier 0.99 → 0.10 × 100.00 = 10.00
        pytest.param(26_785, "10.00", id="A-just-under-0.99"),
        # D = 0.05 × 2,678,400 = 133,920 → A = 0.95 exactly → only the 0.99 tier → 10.00
        pytest.param(133_920, "10.00", id="A=0.95-exactly"),
        # D = 133,921 → A = 0.94999996 → tiers 0.99 (0.10) and 0.95 (0.30) match → largest 0.30 → 30.00
        pytest.param(133_921, "30.00", id="A-just-under-0.95"),
        # D = 0.10 × 2,678,400 = 267,840 → A = 0.90 exactly → tiers 0.99, 0.95 → 0.30 → 30.00
        pytest.param(267_840, "30.00", id="A=0.90-exactly"),
        # D = 267,841 → A = 0.89999996 → all three match → 1.00 × 100.00 = 100.00 (cap 1.0: 100 ≤ 100)
        pytest.param(267_841, "100.00", id="A-just-under-0.90"),
    ],
)
def test_availability_tier_boundaries(tmp_path: Path, down_s: int, tier_amount: str | None) -> None:
    doc = run(
        tmp_path, inventory(cam("CAM1", 1)), one_outage("CAM1", at(7, 10), down_s), contract_text=TIERS_ONLY
    )
    d = device(doc, "CAM1")
    assert d["down_s"] == down_s
    assert d["availability"] == pytest.approx(1 - down_s / JULY_S, abs=1e-12)
    expected = [] if tier_amount is None else [("availability_tier", "CAM1", tier_amount)]
    assert lines(doc) == expected
    amount = tier_amount or "0.00"
    assert d["deduction"] == amount
    # payable = 100.00 - deduction
    assert totals(doc) == ("100.00", amount, f"{100 - float(amount):.2f}")


@pytest.mark.parametrize(
    ("down_s", "amount"),
    [
        # D = 0.06 × 2,678,400 = 160,704 → A = 0.94: tiers below 0.99 (0.50) and below 0.95 (0.20) match;
        # the LARGEST deduct wins, not the tightest threshold → 0.50 × 100.00 = 50.00
        pytest.param(160_704, "50.00", id="two-match"),
        # D = 300,000 → A = 1 - 300000/2678400 = 0.887993: all three match → max(0.50, 0.20, 0.40) → 50.00
        pytest.param(300_000, "50.00", id="three-match"),
    ],
)
def test_largest_deduct_wins_whatever_the_order(tmp_path: Path, down_s: int, amount: str) -> None:
    tiers = [
        {"below": 0.95, "deduct": 0.20},
        {"below": 0.99, "deduct": 0.50},
        {"below": 0.90, "deduct": 0.40},
    ]
    text = contract(availability_tiers=tiers, **NO_OVERRUN, **NO_KPIS, **NO_CAP)
    doc = run(tmp_path, inventory(cam("CAM1", 1)), one_outage("CAM1", at(7, 10), down_s), contract_text=text)
    assert lines(doc) == [("availability_tier", "CAM1", amount)]
    assert totals(doc) == ("100.00", amount, "50.00")


# --- §6.2 repair overrun --------------------------------------------------------------------------

OVERRUN_ONLY = contract(fees=BIG_FEES, **NO_TIERS, **NO_KPIS)


@pytest.mark.parametrize(
    ("down_s", "hours", "amount"),
    [
        # 4 h = 14,400 s = the urban deadline exactly: not beyond it → no line
        pytest.param(4 * HOUR, 0, None, id="at-deadline"),
        # 14,401 s: overrun 1 s → ceil(1/3600) = 1 started hour → 50.00
        pytest.param(4 * HOUR + 1, 1, "50.00", id="one-second-over"),
        # 6 h 30 m = 23,400 s: overrun 9,000 s → ceil(2.5) = 3 → 3 × 50 = 150.00
        pytest.param(23_400, 3, "150.00", id="several-hours"),
        # 15 h = 54,000 s: overrun 39,600 s = 11 h → 11 × 50 = 550 → min(550, 500) = 500.00
        pytest.param(15 * HOUR, 11, "500.00", id="max-per-incident"),
    ],
)
def test_repair_overrun_urban(tmp_path: Path, down_s: int, hours: int, amount: str | None) -> None:
    start = at(7, 10, 10)
    doc = run(
        tmp_path, inventory(cam("CAM1", 1)), one_outage("CAM1", start, down_s), contract_text=OVERRUN_ONLY
    )
    [o] = outages(doc, "CAM1")
    end = start + timedelta(seconds=down_s)
    assert (o["start"], o["end"], o["open"], o["end_reason"]) == (iso(start), iso(end), False, "recovered")
    assert (o["counted_s"], o["counted_total_s"], o["causes"]) == (down_s, down_s, {"device": down_s})
    assert o["overrun_hours"] == hours
    assert o["evidence"] == {
        "first_failure": iso(start),
        # failures every 60 s from the start; the last one is the last whole minute before the end
        "last_failure": iso(start + timedelta(seconds=(down_s - 1) // 60 * 60)),
        "recovered": iso(end),
    }
    assert o["deduction"] == (amount or "0.00")
    if amount is None:
        assert lines(doc) == []
    else:
        assert [(d["rule"], d["device"], d["outage_start"], d["amount"]) for d in doc["deductions"]] == [
            ("repair_overrun", "CAM1", iso(start), amount)
        ]
    assert device(doc, "CAM1")["deduction"] == (amount or "0.00")
    # fee 10,000.00; cap 3,000.00 not reached
    assert totals(doc) == ("10000.00", amount or "0.00", f"{10000 - float(amount or 0):.2f}")


def test_repair_overrun_rural_vs_urban(tmp_path: Path) -> None:
    inv = inventory(cam("CAM1", 1, site="S1"), cam("CAM2", 2, site="S2"))
    six_h = (at(7, 10, 10), at(7, 10, 16))  # 6 h = 21,600 s
    nine_h = (at(7, 12, 10), at(7, 12, 19))  # 9 h = 32,400 s
    probes = reach("CAM1", outage_plan(JUL1, AUG1, [six_h]), AUG1) + reach(
        "CAM2", outage_plan(JUL1, AUG1, [six_h, nine_h]), AUG1
    )
    doc = run(tmp_path, inv, probes, contract_text=OVERRUN_ONLY)
    # CAM1 urban (4 h): 21,600 - 14,400 = 7,200 s → 2 started hours → 100.00
    # CAM2 rural (8 h): 21,600 ≤ 28,800 → nothing; 32,400 - 28,800 = 3,600 s → 1 hour → 50.00
    assert lines(doc) == [("repair_overrun", "CAM1", "100.00"), ("repair_overrun", "CAM2", "50.00")]
    assert [(o["overrun_hours"], o["deduction"]) for o in outages(doc, "CAM2")] == [(0, "0.00"), (1, "50.00")]
    assert device(doc, "CAM1")["deduction"] == "100.00"
    assert device(doc, "CAM2")["deduction"] == "50.00"
    # fees 2 × 10,000.00; deductions 150.00
    assert totals(doc) == ("20000.00", "150.00", "19850.00")


def test_outage_crossing_the_month_is_charged_where_it_ends(tmp_path: Path) -> None:
    start, end = at(7, 31, 20), at(8, 1, 6)  # 10 h = 36,000 s: 4 h in July, 6 h in August
    probes = down_between("CAM1", start, end, JUL1, SEP1)
    docs = run(
        tmp_path, inventory(cam("CAM1", 1)), probes, months=["2025-07", "2025-08"], contract_text=OVERRUN_ONLY
    )
    jul, aug = docs["2025-07"], docs["2025-08"]

    # July: listed, still running at the month's end → end null, open; 20:00 → 24:00 = 14,400 s; no charge
    [o] = outages(jul, "CAM1")
    assert (o["start"], o["end"], o["open"]) == (iso(start), None, True)
    assert o["counted_s"] == 4 * HOUR
    assert o["deduction"] == "0.00"
    assert device(jul, "CAM1")["down_s"] == 4 * HOUR
    assert lines(jul) == []
    assert totals(jul) == ("10000.00", "0.00", "10000.00")

    # August: 00:00 → 06:00 = 21,600 s inside; whole outage 36,000 s; 36,000 - 14,400 = 21,600 = 6 h → 300.00
    [o] = outages(aug, "CAM1")
    assert (o["start"], o["end"], o["open"]) == (iso(start), iso(end), False)
    assert (o["counted_s"], o["counted_total_s"], o["overrun_hours"], o["deduction"]) == (
        6 * HOUR,
        10 * HOUR,
        6,
        "300.00",
    )
    assert device(aug, "CAM1")["down_s"] == 6 * HOUR
    assert device(aug, "CAM1")["deduction"] == "300.00"
    assert lines(aug) == [("repair_overrun", "CAM1", "300.00")]
    assert totals(aug) == ("10000.00", "300.00", "9700.00")


def test_outage_ending_at_midnight_on_the_first_ends_in_the_next_month(tmp_path: Path) -> None:
    start, end = at(7, 31, 18), at(8, 1)  # 6 h = 21,600 s, all of it in July
    probes = down_between("CAM1", start, end, JUL1, SEP1)
    docs = run(
        tmp_path, inventory(cam("CAM1", 1)), probes, months=["2025-07", "2025-08"], contract_text=OVERRUN_ONLY
    )
    jul, aug = docs["2025-07"], docs["2025-08"]
    # July: 18:00 → 24:00 = 21,600 s counted, but the outage ends on 08-01 00:00 (in August): no charge
    assert device(jul, "CAM1")["down_s"] == 6 * HOUR
    [o] = outages(jul, "CAM1")
    assert (o["start"], o["counted_s"], o["deduction"]) == (iso(start), 6 * HOUR, "0.00")
    assert lines(jul) == []
    assert totals(jul) == ("10000.00", "0.00", "10000.00")
    # August: no downtime in August, but the outage ends here: 21,600 - 14,400 = 7,200 s → 2 h → 100.00
    assert device(aug, "CAM1")["down_s"] == 0
    assert device(aug, "CAM1")["deduction"] == "100.00"
    assert [(d["rule"], d["device"], d["outage_start"], d["amount"]) for d in aug["deductions"]] == [
        ("repair_overrun", "CAM1", iso(start), "100.00")
    ]
    assert totals(aug) == ("10000.00", "100.00", "9900.00")


def test_outage_open_at_the_end_of_the_data_is_never_charged(tmp_path: Path) -> None:
    # up from 07-01, failing every 60 s from 07-31 20:00 to the end of the data (last row 08-01 05:59)
    probes = reach("CAM1", [(JUL1, 1, 300), (at(7, 31, 20), 0, 60)], at(8, 1, 6))
    docs = run(
        tmp_path, inventory(cam("CAM1", 1)), probes, months=["2025-07", "2025-08"], contract_text=OVERRUN_ONLY
    )
    jul, aug = docs["2025-07"], docs["2025-08"]
    for doc in (jul, aug):
        [o] = outages(doc, "CAM1")
        assert (o["start"], o["end"], o["open"]) == (iso(at(7, 31, 20)), None, True)
        assert o["deduction"] == "0.00"
        assert lines(doc) == []  # > 4 h down, but never ended → never charged
        assert totals(doc) == ("10000.00", "0.00", "10000.00")
    # July: 20:00 → 24:00 = 14,400 s
    assert device(jul, "CAM1")["down_s"] == 4 * HOUR
    # August: down until last row 05:59 + 5 m = 06:04 → 21,840 s; unknown 06:04 → 09-01 00:00
    assert device(aug, "CAM1")["down_s"] == 6 * HOUR + 240
    assert device(aug, "CAM1")["unknown_s"] == AUGUST_S - (6 * HOUR + 240)  # 2,656,560


def test_unknown_gap_ends_an_outage_which_is_then_charged(tmp_path: Path) -> None:
    # failures every 60 s 10:00 … 14:59, no rows until 20:00, then successes
    probes = reach("CAM1", [(JUL1, 1, 300), (at(7, 10, 10), 0, 60)], at(7, 10, 15)) + reach(
        "CAM1", [(at(7, 10, 20), 1, 60), (at(7, 10, 20, 10), 1, 300)], AUG1
    )
    # gap 14:59 → 20:00 > 5 m: down until 14:59 + 5 m = 15:04, unknown 15:04 → 20:00 = 17,760 s
    # outage [10:00, 15:04) = 18,240 s, closed by the gap → charged: 18,240 - 14,400 = 3,840 s → 2 h → 100.00
    doc = run(tmp_path, inventory(cam("CAM1", 1)), probes, contract_text=OVERRUN_ONLY)
    [o] = outages(doc, "CAM1")
    assert (o["start"], o["end"], o["open"], o["end_reason"]) == (
        iso(at(7, 10, 10)),
        iso(at(7, 10, 15, 4)),
        False,
        "unknown",
    )
    assert (o["counted_s"], o["counted_total_s"], o["overrun_hours"]) == (18_240, 18_240, 2)
    d = device(doc, "CAM1")
    assert (d["down_s"], d["unknown_s"]) == (18_240, 17_760)
    assert lines(doc) == [("repair_overrun", "CAM1", "100.00")]
    assert totals(doc) == ("10000.00", "100.00", "9900.00")


# --- §6.4 the cap -----------------------------------------------------------------------------------


def test_cap_binding(tmp_path: Path) -> None:
    # default contract; one 5 h outage: A = 1 - 18000/2678400 = 0.993280 → no tier; online 0.99328 ≥ 0.95
    # overrun 18,000 - 14,400 = 3,600 → 1 h → 50.00 > cap 0.30 × 100.00 = 30.00 → cap line 30.00 - 50.00
    doc = run(tmp_path, inventory(cam("CAM1", 1)), one_outage("CAM1", at(7, 10, 10), 5 * HOUR))
    assert lines(doc) == [("cap", None, "-20.00"), ("repair_overrun", "CAM1", "50.00")]
    assert device(doc, "CAM1")["deduction"] == "50.00"  # tier + overrun lines; the cap is contract-wide
    assert totals(doc) == ("100.00", "30.00", "70.00")


def test_cap_not_binding(tmp_path: Path) -> None:
    # default contract; two outages of exactly 4 h (no overrun): D = 28,800
    # A = 1 - 28800/2678400 = 0.989247 → tier 0.10 → 10.00 ≤ 30.00 → no cap line
    plan = outage_plan(JUL1, AUG1, [(at(7, 10, 10), at(7, 10, 14)), (at(7, 20, 10), at(7, 20, 14))])
    doc = run(tmp_path, inventory(cam("CAM1", 1)), reach("CAM1", plan, AUG1))
    assert device(doc, "CAM1")["down_s"] == 28_800
    assert lines(doc) == [("availability_tier", "CAM1", "10.00")]
    assert totals(doc) == ("100.00", "10.00", "90.00")


def test_cap_exactly_reached_adds_no_line(tmp_path: Path) -> None:
    # D = 133,921 → A < 0.95 → tier 0.30 → 30.00 = cap 0.30 × 100.00: the sum does not EXCEED it
    text = contract(**NO_OVERRUN, **NO_KPIS)
    doc = run(tmp_path, inventory(cam("CAM1", 1)), one_outage("CAM1", at(7, 10), 133_921), contract_text=text)
    assert lines(doc) == [("availability_tier", "CAM1", "30.00")]
    assert totals(doc) == ("100.00", "30.00", "70.00")


def test_cap_over_several_rules(tmp_path: Path) -> None:
    # D = 40 h = 144,000 → A = 1 - 144000/2678400 = 0.946237 → tier 0.30 → 30.00
    # online = 0.946237 < 0.95 → 0.05 × 100.00 = 5.00; intact = 0.946237 ≥ 0.90 → none
    # 35.00 > 30.00 → cap line -5.00; total 30.00
    text = contract(**NO_OVERRUN)
    doc = run(
        tmp_path, inventory(cam("CAM1", 1)), one_outage("CAM1", at(7, 10), 40 * HOUR), contract_text=text
    )
    assert lines(doc) == [
        ("availability_tier", "CAM1", "30.00"),
        ("cap", None, "-5.00"),
        ("fleet_kpi", "online_rate", "5.00"),
    ]
    assert device(doc, "CAM1")["deduction"] == "30.00"
    assert totals(doc) == ("100.00", "30.00", "70.00")


# --- §6 fee and proration --------------------------------------------------------------------------

PRORATION_INVENTORY = inventory(
    cam("CAM1", 1),
    cam("CAM2", 2, in_service="2025-07-11"),
    cam("CAM3", 3, out_of_service="2025-07-21"),
    cam("CAM4", 4, channels=4, in_service="2025-07-11", out_of_service="2025-07-21"),
    cam("CAM5", 5, in_service="2025-08-01"),
    cam("CAM6", 6, out_of_service="2025-07-01"),
)
PRORATION_PROBES = (
    up_all("CAM1", JUL1, AUG1)
    + up_all("CAM2", at(7, 11), AUG1)
    + up_all("CAM3", JUL1, at(7, 21))
    + up_all("CAM4", at(7, 11), at(7, 21))
)


@pytest.mark.parametrize(
    ("prorate", "fees", "fee_total"),
    [
        pytest.param(
            True,
            {
                "CAM1": "100.00",  # S = 31 d = 2,678,400 → 100.00
                "CAM2": "67.74",  # in 07-11: S = 21 d = 1,814,400 → 100 × 21/31 = 67.7419 → 67.74
                "CAM3": "64.52",  # out 07-21: S = 20 d = 1,728,000 → 100 × 20/31 = 64.5161 → 64.52
                # 4 ch, 07-11 → 07-21: S = 10 d = 864,000 → 4 × 100 × 10/31 = 129.0323 → 129.03
                # (rounded once per line: 4 × round(32.258) would be 129.04)
                "CAM4": "129.03",
            },
            "361.29",  # 100.00 + 67.74 + 64.52 + 129.03
            id="prorate",
        ),
        pytest.param(
            False,
            # full fee whenever S > 0: 100, 100, 100, 4 × 100
            {"CAM1": "100.00", "CAM2": "100.00", "CAM3": "100.00", "CAM4": "400.00"},
            "700.00",
            id="no-prorate",
        ),
    ],
)
def test_proration(tmp_path: Path, prorate: bool, fees: dict[str, str], fee_total: str) -> None:
    doc = run(tmp_path, PRORATION_INVENTORY, PRORATION_PROBES, contract_text=contract(prorate=prorate))
    # CAM5 (in service 08-01) and CAM6 (out of service 07-01) have S = 0: not on the statement
    assert sorted(d["id"] for d in doc["devices"]) == ["CAM1", "CAM2", "CAM3", "CAM4"]
    assert {d["id"]: d["fee"] for d in doc["devices"]} == fees
    assert {d["id"]: d["scheduled_s"] for d in doc["devices"]} == {
        "CAM1": JULY_S,
        "CAM2": 21 * DAY,
        "CAM3": 20 * DAY,
        "CAM4": 10 * DAY,
    }
    assert all(d["down_s"] == 0 and d["unknown_s"] == 0 and d["availability"] == 1 for d in doc["devices"])
    assert lines(doc) == []
    assert totals(doc) == (fee_total, "0.00", fee_total)


# --- §3 upstream causes ----------------------------------------------------------------------------

UPSTREAM_CONTRACT = {"fees": BIG_FEES, **NO_TIERS, **NO_KPIS}


def tree(*cameras: str) -> str:
    """LINK1 ← SW1 ← cameras, all at the urban site S1."""
    return inventory(
        dev("LINK1", "link", 1),
        dev("SW1", "switch", 2, parent="LINK1"),
        *(cam(c, i + 1, parent="SW1") for i, c in enumerate(cameras)),
    )


@pytest.mark.parametrize("upstream_counts", [False, True])
def test_camera_behind_a_down_switch(tmp_path: Path, upstream_counts: bool) -> None:
    # SW1 and CAM1 both down 07-10 10:00 → 15:00 (5 h = 18,000 s)
    a, b = at(7, 10, 10), at(7, 10, 15)
    probes = (
        up_all("LINK1", JUL1, AUG1)
        + down_between("SW1", a, b, JUL1, AUG1)
        + down_between("CAM1", a, b, JUL1, AUG1)
    )
    text = contract(**UPSTREAM_CONTRACT, upstream_counts=upstream_counts)
    doc = run(tmp_path, tree("CAM1"), probes, contract_text=text)

    # SW1's own outage: all `device`; 18,000 - 14,400 = 3,600 → 1 h → 50.00 (fee 0.00, the line still applies)
    [sw] = outages(doc, "SW1")
    assert (sw["causes"], sw["counted_s"], sw["deduction"]) == ({"device": 18_000}, 18_000, "50.00")
    # CAM1: every second while SW1 is down → upstream:SW1
    [o] = outages(doc, "CAM1")
    assert o["causes"] == {"upstream:SW1": 18_000}
    if upstream_counts:
        # counted for the child too: D = 18,000, A = 1 - 18000/2678400 = 0.993280; overrun 1 h → 50.00
        assert (o["counted_s"], o["counted_total_s"], o["deduction"]) == (18_000, 18_000, "50.00")
        assert device(doc, "CAM1")["down_s"] == 18_000
        assert doc["rates"]["online_rate"] == pytest.approx(1 - 18_000 / JULY_S, abs=1e-12)
        assert lines(doc) == [("repair_overrun", "CAM1", "50.00"), ("repair_overrun", "SW1", "50.00")]
        assert totals(doc) == ("10000.00", "100.00", "9900.00")
    else:
        assert (o["counted_s"], o["counted_total_s"], o["deduction"]) == (0, 0, "0.00")
        assert device(doc, "CAM1")["down_s"] == 0
        assert device(doc, "CAM1")["availability"] == 1
        assert doc["rates"]["online_rate"] == 1  # fleet_kinds [camera]: SW1 not in the rates
        assert lines(doc) == [("repair_overrun", "SW1", "50.00")]
        assert totals(doc) == ("10000.00", "50.00", "9950.00")


def test_upstream_grace(tmp_path: Path) -> None:
    # SW1 down [10:00, 11:00) on 07-10; grace 5 m → upstream until 11:05 for outages begun before 11:00
    day = at(7, 10)

    def t(hh: int, mm: int) -> datetime:
        return day + timedelta(hours=hh, minutes=mm)

    probes = (
        up_all("LINK1", JUL1, AUG1)
        + down_between("SW1", t(10, 0), t(11, 0), JUL1, AUG1)
        + down_between("CAM1", t(10, 0), t(11, 3), JUL1, AUG1)  # back within the grace
        + down_between("CAM2", t(10, 0), t(11, 8), JUL1, AUG1)  # back after the grace
        + down_between("CAM3", t(11, 2), t(11, 32), JUL1, AUG1)  # fails after SW1 recovered
        + down_between("CAM4", t(10, 0), t(11, 5), JUL1, AUG1)  # back exactly at 11:00 + grace
        + down_between("CAM5", t(9, 50), t(11, 0), JUL1, AUG1)  # failed before SW1 did
    )
    doc = run(
        tmp_path,
        tree("CAM1", "CAM2", "CAM3", "CAM4", "CAM5"),
        probes,
        contract_text=contract(**UPSTREAM_CONTRACT),
    )
    expected = {
        # 10:00 → 11:03 = 3,780 s, all upstream (down, then grace) → counted 0
        "CAM1": ({"upstream:SW1": 3_780}, 0),
        # 10:00 → 11:05 upstream = 3,900; 11:05 → 11:08 device = 180
        "CAM2": ({"upstream:SW1": 3_900, "device": 180}, 180),
        # began 11:02, after SW1's outage ended at 11:00 → device 11:02 → 11:32 = 1,800
        "CAM3": ({"device": 1_800}, 1_800),
        # 10:00 → 11:05 = 3,900 s: grace is [11:00, 11:05) → all upstream
        "CAM4": ({"upstream:SW1": 3_900}, 0),
        # 09:50 → 10:00 device = 600; 10:00 → 11:00 upstream = 3,600
        "CAM5": ({"device": 600, "upstream:SW1": 3_600}, 600),
    }
    for cam_id, (causes, counted) in expected.items():
        [o] = outages(doc, cam_id)
        assert (cam_id, o["causes"], o["counted_s"]) == (cam_id, causes, counted)
        assert device(doc, cam_id)["down_s"] == counted
    assert device(doc, "SW1")["down_s"] == 3_600
    # everything < 4 h; tiers and KPIs off → no lines; 5 cameras × 10,000.00
    assert lines(doc) == []
    assert totals(doc) == ("50000.00", "0.00", "50000.00")


def test_nearest_ancestor_is_named(tmp_path: Path) -> None:
    # 07-10: LINK1 down [10:00, 11:00), SW1 down [10:00, 11:30), CAM1 down [10:00, 12:00)
    probes = (
        down_between("LINK1", at(7, 10, 10), at(7, 10, 11), JUL1, AUG1)
        + down_between("SW1", at(7, 10, 10), at(7, 10, 11, 30), JUL1, AUG1)
        + down_between("CAM1", at(7, 10, 10), at(7, 10, 12), JUL1, AUG1)
    )
    doc = run(tmp_path, tree("CAM1"), probes, contract_text=contract(**UPSTREAM_CONTRACT))
    # CAM1: 10:00 → 11:30 SW1 down (LINK1 too until 11:00, SW1 is nearer) = 5,400;
    # 11:30 → 11:35 SW1's grace = 300 → upstream:SW1 5,700; 11:35 → 12:00 device = 1,500
    [o] = outages(doc, "CAM1")
    assert (o["causes"], o["counted_s"]) == ({"upstream:SW1": 5_700, "device": 1_500}, 1_500)
    # SW1: 10:00 → 11:00 LINK1 down = 3,600; 11:00 → 11:05 LINK1's grace = 300; 11:05 → 11:30 device = 1,500
    [o] = outages(doc, "SW1")
    assert (o["causes"], o["counted_s"]) == ({"upstream:LINK1": 3_900, "device": 1_500}, 1_500)
    [o] = outages(doc, "LINK1")
    assert (o["causes"], o["counted_s"]) == ({"device": 3_600}, 3_600)
    assert lines(doc) == []


def test_exclusion_comes_before_upstream(tmp_path: Path) -> None:
    # SW1 and CAM1 down [10:00, 11:00); approved power exclusion on CAM1 [10:00, 10:30)
    a, b = at(7, 10, 10), at(7, 10, 11)
    probes = (
        up_all("LINK1", JUL1, AUG1)
        + down_between("SW1", a, b, JUL1, AUG1)
        + down_between("CAM1", a, b, JUL1, AUG1)
    )
    ex = [excl("EX-1", "power", {"devices": ["CAM1"]}, a, at(7, 10, 10, 30))]
    doc = run(tmp_path, tree("CAM1"), probes, contract_text=contract(**UPSTREAM_CONTRACT), exclusions=ex)
    [o] = outages(doc, "CAM1")
    # rule 1 first: 1,800 s excluded:power, then 1,800 s upstream:SW1; nothing counted
    assert (o["causes"], o["counted_s"]) == ({"excluded:power": 1_800, "upstream:SW1": 1_800}, 0)
    d = device(doc, "CAM1")
    assert (d["excluded_s"], d["down_s"], d["availability"]) == (1_800, 0, 1)


# --- §4 exclusions ----------------------------------------------------------------------------------

THREE_CAMS = inventory(cam("CAM1", 1, site="S1"), cam("CAM2", 2, site="S1"), cam("CAM3", 3, site="S2"))


def test_exclusion_statuses(tmp_path: Path) -> None:
    # CAM1 and CAM3 down [07-10 10:00, 14:00) = 14,400 s (exactly the urban deadline: no overrun;
    # CAM3 is rural anyway)
    a, b = at(7, 10, 10), at(7, 10, 14)
    probes = (
        down_between("CAM1", a, b, JUL1, AUG1)
        + up_all("CAM2", JUL1, AUG1)
        + down_between("CAM3", a, b, JUL1, AUG1)
    )
    ex = [
        excl("EX-A", "maintenance", {"devices": ["CAM1"]}, a, at(7, 10, 12)),
        excl("EX-P", "power", {"devices": ["CAM3"]}, a, at(7, 10, 12), status="proposed"),
        excl("EX-R", "maintenance", {"devices": ["CAM3"]}, at(7, 10, 12), b, status="rejected"),
    ]
    doc = run(tmp_path, THREE_CAMS, probes, exclusions=ex)
    # approved + honoured category: 2 h = 7,200 s
    assert (exclusion(doc, "EX-A")["honoured"], exclusion(doc, "EX-A")["excluded_s"]) == (True, 7_200)
    # proposed / rejected: shown, change nothing
    for ex_id in ("EX-P", "EX-R"):
        e = exclusion(doc, ex_id)
        assert (e["honoured"], e["excluded_s"]) == (False, 0)
        assert e.get("not_honoured_because")
    # CAM1: 10:00 → 12:00 excluded:maintenance, 12:00 → 14:00 device; X = 7,200, D = 7,200
    # A = 1 - 7200/(2678400 - 7200) = 1 - 7200/2671200 = 0.997305
    [o] = outages(doc, "CAM1")
    assert (o["causes"], o["counted_s"]) == ({"excluded:maintenance": 7_200, "device": 7_200}, 7_200)
    d1 = device(doc, "CAM1")
    assert (d1["excluded_s"], d1["down_s"]) == (7_200, 7_200)
    assert d1["availability"] == pytest.approx(1 - 7_200 / (JULY_S - 7_200), abs=1e-12)
    # CAM3: all 14,400 s device; A = 1 - 14400/2678400 = 0.994624
    [o] = outages(doc, "CAM3")
    assert (o["causes"], o["counted_s"]) == ({"device": 14_400}, 14_400)
    d3 = device(doc, "CAM3")
    assert (d3["excluded_s"], d3["down_s"]) == (0, 14_400)
    # online = 1 - (7200 + 14400)/(3 × 2678400 - 7200) = 1 - 21600/8028000 = 0.997309
    assert doc["rates"]["online_rate"] == pytest.approx(1 - 21_600 / 8_028_000, abs=1e-12)
    # all A > 0.99, no outage beyond 4 h, KPIs met → no lines; 3 × 100.00
    assert lines(doc) == []
    assert totals(doc) == ("300.00", "0.00", "300.00")


def test_exclusion_of_a_category_the_contract_does_not_honour(tmp_path: Path) -> None:
    a, b = at(7, 10, 10), at(7, 10, 14)
    text = contract(exclusions=["maintenance"])
    ex = [excl("EX-W", "power", {"devices": ["CAM1"]}, a, at(7, 10, 12))]
    doc = run(
        tmp_path,
        inventory(cam("CAM1", 1)),
        down_between("CAM1", a, b, JUL1, AUG1),
        contract_text=text,
        exclusions=ex,
    )
    e = exclusion(doc, "EX-W")
    assert (e["honoured"], e["excluded_s"]) == (False, 0)
    assert e.get("not_honoured_because")
    # nothing excluded: D = 14,400, A = 0.994624; 4 h = deadline → no overrun
    [o] = outages(doc, "CAM1")
    assert (o["causes"], o["counted_s"]) == ({"device": 14_400}, 14_400)
    d = device(doc, "CAM1")
    assert (d["excluded_s"], d["down_s"]) == (0, 14_400)
    assert lines(doc) == []


def test_exclusion_scopes(tmp_path: Path) -> None:
    inv = inventory(
        cam("CAM1", 1, site="S1"),
        cam("CAM2", 2, site="S1"),
        cam("CAM3", 3, site="S2"),
        cam("CAM5", 5, site="S1", in_service="2025-08-01"),
    )
    probes = up_all("CAM1", JUL1, AUG1) + up_all("CAM2", JUL1, AUG1) + up_all("CAM3", JUL1, AUG1)
    ex = [
        excl("EX-D", "maintenance", {"devices": ["CAM2"]}, at(7, 5), at(7, 5, 1)),  # 3,600 s
        excl("EX-S", "maintenance", {"sites": ["S1"]}, at(7, 6), at(7, 6, 2)),  # 7,200 s: CAM1, CAM2
        excl("EX-C", "power", {"contracts": ["C1"]}, at(7, 7), at(7, 7, 3)),  # 10,800 s: all
        excl("EX-S2", "power", {"sites": ["S2"]}, at(7, 7, 2), at(7, 7, 4)),  # 7,200 s: CAM3, overlaps EX-C
        excl("EX-J", "maintenance", {"devices": ["CAM1"]}, at(6, 10), at(6, 11)),  # June only: not listed
        excl("EX-N", "maintenance", {"devices": ["CAM5"]}, at(7, 8), at(7, 9)),  # CAM5 has S = 0: not listed
        excl(
            "EX-E", "maintenance", {"devices": ["CAM1"]}, at(6, 30, 22), JUL1
        ),  # ends at P.start: not listed
        excl("EX-F", "maintenance", {"devices": ["CAM1"]}, AUG1, at(8, 1, 2)),  # starts at P.end: not listed
    ]
    doc = run(tmp_path, inv, probes, exclusions=ex)
    assert sorted(e["id"] for e in doc["exclusions"]) == ["EX-C", "EX-D", "EX-S", "EX-S2"]
    # an exclusion's excluded_s = its own seconds inside the month
    assert {e["id"]: (e["honoured"], e["excluded_s"]) for e in doc["exclusions"]} == {
        "EX-D": (True, 3_600),
        "EX-S": (True, 7_200),
        "EX-C": (True, 10_800),
        "EX-S2": (True, 7_200),
    }
    assert {d["id"]: d["excluded_s"] for d in doc["devices"]} == {
        "CAM1": 7_200 + 10_800,  # EX-S + EX-C = 18,000
        "CAM2": 3_600 + 7_200 + 10_800,  # EX-D + EX-S + EX-C = 21,600
        "CAM3": 4 * HOUR,  # EX-C ∪ EX-S2 = [00:00, 04:00) on 07-07 = 14,400 (not 10,800 + 7,200)
    }
    assert all(d["availability"] == 1 for d in doc["devices"])
    assert lines(doc) == []


def test_exclusion_crossing_the_month(tmp_path: Path) -> None:
    ex = [excl("EX-X", "maintenance", {"devices": ["CAM1"]}, at(7, 31, 22), at(8, 1, 2))]
    docs = run(
        tmp_path,
        inventory(cam("CAM1", 1)),
        up_all("CAM1", JUL1, SEP1),
        months=["2025-07", "2025-08"],
        exclusions=ex,
    )
    # 22:00 → 24:00 in July, 00:00 → 02:00 in August: 7,200 s in each
    for month in ("2025-07", "2025-08"):
        assert (exclusion(docs[month], "EX-X")["honoured"], exclusion(docs[month], "EX-X")["excluded_s"]) == (
            True,
            7_200,
        )
        assert device(docs[month], "CAM1")["excluded_s"] == 7_200


def test_first_exclusion_in_file_order_names_the_category(tmp_path: Path) -> None:
    # CAM1 down [10:00, 14:00); EX-1 power [10:00, 12:00), EX-2 maintenance [11:00, 13:00)
    ex = [
        excl("EX-1", "power", {"devices": ["CAM1"]}, at(7, 10, 10), at(7, 10, 12)),
        excl("EX-2", "maintenance", {"devices": ["CAM1"]}, at(7, 10, 11), at(7, 10, 13)),
    ]
    doc = run(
        tmp_path,
        inventory(cam("CAM1", 1)),
        down_between("CAM1", at(7, 10, 10), at(7, 10, 14), JUL1, AUG1),
        exclusions=ex,
    )
    [o] = outages(doc, "CAM1")
    # 10-12 power (EX-1 first in the file, also for 11-12), 12-13 maintenance, 13-14 device
    assert o["causes"] == {"excluded:power": 7_200, "excluded:maintenance": 3_600, "device": 3_600}
    d = device(doc, "CAM1")
    # X = [10:00, 13:00) = 10,800 (union); D = 3,600; A = 1 - 3600/(2678400 - 10800) = 1 - 3600/2667600
    assert (d["excluded_s"], d["down_s"]) == (10_800, 3_600)
    assert d["availability"] == pytest.approx(1 - 3_600 / 2_667_600, abs=1e-12)


def test_excluded_time_leaves_the_denominator(tmp_path: Path) -> None:
    # D = 26,784 (A would be exactly 0.99 with S = 2,678,400); EX-1 excludes 1 h while CAM1 is up:
    # A = 1 - 26784/(2678400 - 3600) = 1 - 26784/2674800 = 0.989987 < 0.99 → tier 0.10 → 10.00
    ex = [excl("EX-1", "maintenance", {"devices": ["CAM1"]}, at(7, 20, 10), at(7, 20, 11))]
    doc = run(
        tmp_path,
        inventory(cam("CAM1", 1)),
        one_outage("CAM1", at(7, 10), 26_784),
        contract_text=TIERS_ONLY,
        exclusions=ex,
    )
    d = device(doc, "CAM1")
    assert (d["excluded_s"], d["down_s"]) == (3_600, 26_784)
    assert d["availability"] == pytest.approx(1 - 26_784 / 2_674_800, abs=1e-12)
    assert lines(doc) == [("availability_tier", "CAM1", "10.00")]


# --- §2 monitoring gaps and unknown -------------------------------------------------------------------

# CAM1: every 300 s, except no rows between 07-10 10:00 and 07-10 18:00:
# unknown from 10:00 + 5 m = 10:05 to 18:00 = 7 h 55 m = 28,500 s
GAP_PROBES = up_all("CAM1", JUL1, at(7, 10, 10, 1)) + up_all("CAM1", at(7, 10, 18), AUG1)


@pytest.mark.parametrize(
    ("counts_as", "down_s", "excluded_s", "amount"),
    [
        # up: nothing counted; A = 1
        pytest.param("up", 0, 0, None, id="up"),
        # down: D = 28,500 → A = 1 - 28500/2678400 = 0.989359 → tier 0.10 → 10.00;
        # no outage, so no overrun although 7 h 55 m > 4 h; online 0.989 ≥ 0.95
        pytest.param("down", 28_500, 0, "10.00", id="down"),
        # excluded: X = 28,500, D = 0 → A = 1
        pytest.param("excluded", 0, 28_500, None, id="excluded"),
    ],
)
def test_unknown_counts_as(
    tmp_path: Path, counts_as: str, down_s: int, excluded_s: int, amount: str | None
) -> None:
    doc = run(
        tmp_path, inventory(cam("CAM1", 1)), GAP_PROBES, contract_text=contract(unknown_counts_as=counts_as)
    )
    d = device(doc, "CAM1")
    assert (d["unknown_s"], d["down_s"], d["excluded_s"]) == (28_500, down_s, excluded_s)
    assert d["availability"] == pytest.approx(1 - down_s / (JULY_S - excluded_s), abs=1e-12)
    assert doc["outages"] == []
    assert lines(doc) == ([] if amount is None else [("availability_tier", "CAM1", amount)])
    assert totals(doc)[1] == (amount or "0.00")


def test_gap_of_exactly_stale_after_is_not_unknown(tmp_path: Path) -> None:
    # CAM2: every 300 s (gaps = stale_after exactly) → unknown 0
    # CAM1: one gap of 301 s (10:00:00 → 10:05:01): unknown [10:05:00, 10:05:01) = 1 s
    # unknown_counts_as: down → D(CAM1) = 1, A = 1 - 1/2678400
    probes = (
        up_all("CAM1", JUL1, at(7, 10, 10, 1))
        + up_all("CAM1", at(7, 10, 10, 5, 1), AUG1)
        + up_all("CAM2", JUL1, AUG1)
    )
    text = contract(unknown_counts_as="down")
    doc = run(tmp_path, inventory(cam("CAM1", 1), cam("CAM2", 2)), probes, contract_text=text)
    d1, d2 = device(doc, "CAM1"), device(doc, "CAM2")
    assert (d1["unknown_s"], d1["down_s"]) == (1, 1)
    assert d1["availability"] == pytest.approx(1 - 1 / JULY_S, abs=1e-12)
    assert (d2["unknown_s"], d2["down_s"], d2["availability"]) == (0, 0, 1)
    assert lines(doc) == []


@pytest.mark.parametrize(
    ("counts_as", "down_s", "amount"),
    [
        pytest.param("up", 0, None, id="up"),
        # D = 2 d = 172,800 → A = 1 - 172800/2678400 = 0.935484 → tier 0.30 → 30.00 (= cap, no cap line)
        pytest.param("down", 2 * DAY, "30.00", id="down"),
    ],
)
def test_history_starting_mid_month(tmp_path: Path, counts_as: str, down_s: int, amount: str | None) -> None:
    # in service all month, first result 07-03 00:00: unknown 07-01 00:00 → 07-03 00:00 = 172,800 s
    text = contract(unknown_counts_as=counts_as, **NO_KPIS)
    doc = run(tmp_path, inventory(cam("CAM1", 1)), up_all("CAM1", at(7, 3), AUG1), contract_text=text)
    d = device(doc, "CAM1")
    assert (d["scheduled_s"], d["unknown_s"], d["down_s"]) == (JULY_S, 2 * DAY, down_s)
    assert doc["outages"] == []
    assert lines(doc) == ([] if amount is None else [("availability_tier", "CAM1", amount)])


# --- §2 down_after / up_after ---------------------------------------------------------------------------


def rows(device_id: str, start: datetime, pattern: str, step: int = 60) -> str:
    """icmp rows from a '1'/'0' pattern, one every `step` s."""
    return "".join(
        f"{device_id},{iso(start + timedelta(seconds=i * step))},icmp,{c},{'0.5' if c == '1' else ''},\n"
        for i, c in enumerate(pattern)
    )


def test_flapping_and_short_recoveries(tmp_path: Path) -> None:
    t0 = at(7, 10, 10)
    after = t0 + timedelta(minutes=30)
    # CAM1: "001" × 20 from 10:00, one every 60 s: failure runs of 2 < down_after → never down
    # CAM2: 10 failures, 1 success, 9 failures, then successes: the lone success (< up_after) does not
    #       recover → one outage [10:00, 10:20) = 1,200 s
    # CAM3: exactly down_after failures then successes → outage [10:00, 10:03) = 180 s
    probes = ""
    for dev_id, pattern in (
        ("CAM1", "001" * 10),
        ("CAM2", "0" * 10 + "1" + "0" * 9 + "1" * 10),
        ("CAM3", "000" + "1" * 27),
    ):
        probes += up_all(dev_id, JUL1, t0) + rows(dev_id, t0, pattern) + up_all(dev_id, after, AUG1)
    doc = run(tmp_path, inventory(cam("CAM1", 1), cam("CAM2", 2), cam("CAM3", 3)), probes)
    assert outages(doc, "CAM1") == []
    assert device(doc, "CAM1")["down_s"] == 0
    [o] = outages(doc, "CAM2")
    assert (o["start"], o["end"], o["counted_s"]) == (iso(t0), iso(t0 + timedelta(minutes=20)), 1_200)
    assert o["evidence"] == {
        "first_failure": iso(t0),
        "last_failure": iso(t0 + timedelta(minutes=19)),
        "recovered": iso(t0 + timedelta(minutes=20)),
    }
    [o] = outages(doc, "CAM3")
    assert (o["start"], o["end"], o["counted_s"]) == (iso(t0), iso(t0 + timedelta(minutes=3)), 180)
    assert lines(doc) == []


# --- §2 video quality -----------------------------------------------------------------------------------

STREAM_CAM = cam("CAM1", 1, stream="rtsp://10.0.1.1:8554/main")


def test_degraded_from_defective_samples(tmp_path: Path) -> None:
    # video every 15 m; defective 07-10 10:00 … 11:45 (8 samples), good from 12:00 → G += 7,200
    # one defective sample 07-15 10:00 (< degrade_after 2) → nothing
    # two defective samples 07-16 10:00, 10:15, good 10:30 → G += 1,800
    plan = [
        (JUL1, 1, 900),
        (at(7, 10, 10), 0, 900),
        (at(7, 10, 12), 1, 900),
        (at(7, 15, 10), 0, 900),
        (at(7, 15, 10, 15), 1, 900),
        (at(7, 16, 10), 0, 900),
        (at(7, 16, 10, 30), 1, 900),
    ]
    doc = run(tmp_path, inventory(STREAM_CAM), up_all("CAM1", JUL1, AUG1) + video("CAM1", plan, AUG1))
    d = device(doc, "CAM1")
    # G = 9,000; availability ignores G → 1; online 1; intact = 1 - 9000/2678400 = 0.996640
    assert (d["degraded_s"], d["down_s"], d["availability"]) == (9_000, 0, 1)
    assert doc["rates"]["online_rate"] == 1
    assert doc["rates"]["intact_rate"] == pytest.approx(1 - 9_000 / JULY_S, abs=1e-12)
    assert lines(doc) == []


def test_down_wins_over_degraded(tmp_path: Path) -> None:
    # defective video 10:00 → 14:00 (good at 14:00), icmp down [11:00, 12:00)
    # G = 4 h - 1 h = 10,800; D = 3,600
    plan = [(JUL1, 1, 900), (at(7, 10, 10), 0, 900), (at(7, 10, 14), 1, 900)]
    probes = down_between("CAM1", at(7, 10, 11), at(7, 10, 12), JUL1, AUG1) + video("CAM1", plan, AUG1)
    doc = run(tmp_path, inventory(STREAM_CAM), probes)
    d = device(doc, "CAM1")
    assert (d["degraded_s"], d["down_s"]) == (10_800, 3_600)
    # online = 1 - 3600/2678400 = 0.998656; intact = 1 - 14400/2678400 = 0.994624
    assert doc["rates"]["online_rate"] == pytest.approx(1 - 3_600 / JULY_S, abs=1e-12)
    assert doc["rates"]["intact_rate"] == pytest.approx(1 - 14_400 / JULY_S, abs=1e-12)
    assert lines(doc) == []


@pytest.mark.parametrize(
    ("good_at_s", "amount"),
    [
        # G = 0.10 × 2,678,400 = 267,840 s (3 d 2 h 24 m) → intact = 0.90 exactly → no line
        pytest.param(267_840, None, id="at-target"),
        # G = 267,841 → intact 0.89999996 < 0.90 → 0.05 × 100.00 = 5.00
        pytest.param(267_841, "5.00", id="below-target"),
    ],
)
def test_intact_rate_kpi(tmp_path: Path, good_at_s: int, amount: str | None) -> None:
    start = at(7, 10)
    good = start + timedelta(seconds=good_at_s)
    plan = [(JUL1, 1, 900), (start, 0, 900), (good, 1, 900)]
    doc = run(tmp_path, inventory(STREAM_CAM), up_all("CAM1", JUL1, AUG1) + video("CAM1", plan, AUG1))
    assert device(doc, "CAM1")["degraded_s"] == good_at_s
    assert doc["rates"]["online_rate"] == 1  # online unaffected by degradation
    assert doc["rates"]["intact_rate"] == pytest.approx(1 - good_at_s / JULY_S, abs=1e-12)
    assert lines(doc) == ([] if amount is None else [("fleet_kpi", "intact_rate", amount)])
    assert totals(doc)[1] == (amount or "0.00")


# --- §6.3 fleet KPIs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cam2_down", "expected", "total"),
    [
        # D1 = D2 = 133,920: each A = 0.95 exactly → tier 0.10 → 10.00 each;
        # online = 1 - 267840/(2 × 2678400) = 1 - 267840/5356800 = 0.95 exactly → no KPI line
        pytest.param(
            133_920,
            [("availability_tier", "CAM1", "10.00"), ("availability_tier", "CAM2", "10.00")],
            "20.00",
            id="online-at-target",
        ),
        # D2 = 133,921: CAM2 A < 0.95 → 30.00; online = 1 - 267841/5356800 < 0.95 → 0.05 × 200.00 = 10.00;
        # intact = online ≥ 0.90; 50.00 ≤ cap 60.00
        pytest.param(
            133_921,
            [
                ("availability_tier", "CAM1", "10.00"),
                ("availability_tier", "CAM2", "30.00"),
                ("fleet_kpi", "online_rate", "10.00"),
            ],
            "50.00",
            id="online-below-target",
        ),
    ],
)
def test_online_rate_kpi(tmp_path: Path, cam2_down: int, expected: list[Any], total: str) -> None:
    probes = one_outage("CAM1", at(7, 10), 133_920) + one_outage("CAM2", at(7, 10), cam2_down)
    text = contract(**NO_OVERRUN)
    doc = run(tmp_path, inventory(cam("CAM1", 1), cam("CAM2", 2)), probes, contract_text=text)
    assert doc["rates"]["online_rate"] == pytest.approx(1 - (133_920 + cam2_down) / (2 * JULY_S), abs=1e-12)
    assert lines(doc) == expected
    assert totals(doc) == ("200.00", total, f"{200 - float(total):.2f}")


@pytest.mark.parametrize("kinds", [["camera"], ["camera", "switch"]])
def test_fleet_kinds(tmp_path: Path, kinds: list[str]) -> None:
    # CAM1 up; SW9 (no children) down 4 d = 345,600 s; deadlines 31 d
    inv = inventory(cam("CAM1", 1), dev("SW9", "switch", 9))
    probes = up_all("CAM1", JUL1, AUG1) + one_outage("SW9", at(7, 10), 4 * DAY)
    doc = run(tmp_path, inv, probes, contract_text=contract(fleet_kinds=kinds, **NO_OVERRUN))
    # SW9: A = 1 - 345600/2678400 = 0.870968 → tier 1.00 × fee 0.00 = 0.00 (a line whenever a tier matches)
    expected = [("availability_tier", "SW9", "0.00")]
    if kinds == ["camera"]:
        assert doc["rates"] == {"online_rate": 1, "intact_rate": 1}
    else:
        # online = intact = 1 - 345600/(2 × 2678400) = 0.935484 < 0.95 → 0.05 × 100.00 = 5.00; ≥ 0.90
        rate = 1 - 345_600 / (2 * JULY_S)
        assert doc["rates"]["online_rate"] == pytest.approx(rate, abs=1e-12)
        assert doc["rates"]["intact_rate"] == pytest.approx(rate, abs=1e-12)
        expected.append(("fleet_kpi", "online_rate", "5.00"))
    assert lines(doc) == sorted(expected)


def test_rates_are_per_device_not_per_channel(tmp_path: Path) -> None:
    # CAM1 (1 ch) up; CAM4 (4 ch) down 4 d = 345,600; fees 100.00 + 400.00 = 500.00; cap 1.0
    # CAM4: A = 0.870968 → tier 1.00 × 400.00 = 400.00
    # online = intact = 1 - 345600/5356800 = 0.935484 → online < 0.95 → 0.05 × 500.00 = 25.00;
    # intact ≥ 0.90 (channel-weighted it would be 1 - 4 × 345600/(5 × 2678400) = 0.896774)
    inv = inventory(cam("CAM1", 1), cam("CAM4", 4, channels=4))
    probes = up_all("CAM1", JUL1, AUG1) + one_outage("CAM4", at(7, 10), 4 * DAY)
    doc = run(tmp_path, inv, probes, contract_text=contract(**NO_OVERRUN, **NO_CAP))
    assert device(doc, "CAM4")["fee"] == "400.00"
    assert lines(doc) == [("availability_tier", "CAM4", "400.00"), ("fleet_kpi", "online_rate", "25.00")]
    assert totals(doc) == ("500.00", "425.00", "75.00")


# --- §6 money rounding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fee", "n", "line", "fee_total"),
    [
        # June, in service 06-16: S = 15 d = 1,296,000; |P| = 2,592,000 → 33.33 × 1/2 = 16.665 → 16.67
        pytest.param("33.33", 1, "16.67", "16.67", id="half-cent-up"),
        # 20.01 × 1/2 = 10.005 → 10.01 per line; total 3 × 10.01 = 30.03 (not round(30.015) = 30.02)
        pytest.param("20.01", 3, "10.01", "30.03", id="total-of-rounded-lines"),
    ],
)
def test_prorated_fee_rounds_half_up(tmp_path: Path, fee: str, n: int, line: str, fee_total: str) -> None:
    cams = [cam(f"CAM{i}", i, in_service="2025-06-16") for i in range(1, n + 1)]
    probes = "".join(up_all(f"CAM{i}", at(6, 16), at(7, 1)) for i in range(1, n + 1))
    text = contract(fees={"camera": fee, "switch": "0", "link": "0"})
    doc = run(tmp_path, inventory(*cams), probes, months="2025-06", contract_text=text)
    for c in cams:
        d = device(doc, c["id"])
        assert (d["scheduled_s"], d["fee"]) == (JUNE_S // 2, line)
    assert totals(doc) == (fee_total, "0.00", fee_total)


def test_tier_line_rounds_half_up(tmp_path: Path) -> None:
    # fee 16.65; D = 26,785 → A < 0.99 → 16.65 × 0.10 = 1.665 → 1.67; payable 16.65 - 1.67 = 14.98
    text = contract(fees={"camera": "16.65", "switch": "0", "link": "0"}, **NO_OVERRUN, **NO_KPIS)
    doc = run(tmp_path, inventory(cam("CAM1", 1)), one_outage("CAM1", at(7, 10), 26_785), contract_text=text)
    assert lines(doc) == [("availability_tier", "CAM1", "1.67")]
    assert totals(doc) == ("16.65", "1.67", "14.98")


def test_kpi_line_rounds_half_up(tmp_path: Path) -> None:
    # 2 cameras × 50.05 = 100.10; CAM1 down 5 d = 432,000 (tiers off, deadlines 31 d)
    # online = 1 - 432000/5356800 = 0.919355 < 0.95 → 100.10 × 0.05 = 5.005 → 5.01; intact ≥ 0.90
    # cap 0.30 × 100.10 = 30.03 not reached; payable 100.10 - 5.01 = 95.09
    text = contract(fees={"camera": "50.05", "switch": "0", "link": "0"}, **NO_TIERS, **NO_OVERRUN)
    probes = one_outage("CAM1", at(7, 10), 5 * DAY) + up_all("CAM2", JUL1, AUG1)
    doc = run(tmp_path, inventory(cam("CAM1", 1), cam("CAM2", 2)), probes, contract_text=text)
    assert lines(doc) == [("fleet_kpi", "online_rate", "5.01")]
    assert totals(doc) == ("100.10", "5.01", "95.09")


def test_cap_line_rounds_half_up(tmp_path: Path) -> None:
    # fee 100.05; 5 h outage → overrun 1 h → 50.00; cap = 100.05 × 0.30 = 30.015 → 30.02;
    # cap line 30.02 - 50.00 = -19.98; payable 100.05 - 30.02 = 70.03
    text = contract(fees={"camera": "100.05", "switch": "0", "link": "0"}, **NO_TIERS, **NO_KPIS)
    doc = run(
        tmp_path, inventory(cam("CAM1", 1)), one_outage("CAM1", at(7, 10, 10), 5 * HOUR), contract_text=text
    )
    assert lines(doc) == [("cap", None, "-19.98"), ("repair_overrun", "CAM1", "50.00")]
    assert totals(doc) == ("100.05", "30.02", "70.03")


# --- further edges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts_as", "down_s", "excluded_s"),
    [
        # excluded: X = EX-1 [10:00, 12:00) ∪ unknown [10:05, 18:00) = [10:00, 18:00) = 28,800 (a union,
        # not 7,200 + 28,500 = 35,700); D = 0
        pytest.param("excluded", 0, 28_800, id="excluded"),
        # down: X = 7,200; D = unknown not excluded = [12:00, 18:00) = 21,600
        # A = 1 - 21600/(2678400 - 7200) = 1 - 21600/2671200 = 0.991914 → no tier
        pytest.param("down", 21_600, 7_200, id="down"),
    ],
)
def test_unknown_under_an_exclusion(tmp_path: Path, counts_as: str, down_s: int, excluded_s: int) -> None:
    ex = [excl("EX-1", "maintenance", {"devices": ["CAM1"]}, at(7, 10, 10), at(7, 10, 12))]
    text = contract(unknown_counts_as=counts_as)
    doc = run(tmp_path, inventory(cam("CAM1", 1)), GAP_PROBES, contract_text=text, exclusions=ex)
    d = device(doc, "CAM1")
    assert (d["unknown_s"], d["down_s"], d["excluded_s"]) == (28_500, down_s, excluded_s)
    assert d["availability"] == pytest.approx(1 - down_s / (JULY_S - excluded_s), abs=1e-12)
    assert exclusion(doc, "EX-1")["excluded_s"] == 7_200
    assert lines(doc) == []


def test_degraded_under_an_exclusion_and_under_unknown(tmp_path: Path) -> None:
    # both cameras: defective video 07-10 10:00 → 12:00 (good at 12:00)
    # CAM1: up, exclusion [11:00, 13:00) → G = [10:00, 11:00) = 3,600; X = 7,200
    # CAM2: icmp gap, unknown [10:05, 18:00) → G = [10:00, 10:05) = 300 (unknown wins over degraded)
    plan = [(JUL1, 1, 900), (at(7, 10, 10), 0, 900), (at(7, 10, 12), 1, 900)]
    inv = inventory(STREAM_CAM, cam("CAM2", 2, stream="rtsp://10.0.1.2:8554/main"))
    gap = up_all("CAM2", JUL1, at(7, 10, 10, 1)) + up_all("CAM2", at(7, 10, 18), AUG1)
    probes = up_all("CAM1", JUL1, AUG1) + video("CAM1", plan, AUG1) + gap + video("CAM2", plan, AUG1)
    ex = [excl("EX-1", "maintenance", {"devices": ["CAM1"]}, at(7, 10, 11), at(7, 10, 13))]
    doc = run(tmp_path, inv, probes, exclusions=ex)
    d1, d2 = device(doc, "CAM1"), device(doc, "CAM2")
    assert (d1["degraded_s"], d1["excluded_s"]) == (3_600, 7_200)
    assert (d2["degraded_s"], d2["unknown_s"]) == (300, 28_500)
    # intact = 1 - (3600 + 300)/(2 × 2678400 - 7200) = 1 - 3900/5349600
    assert doc["rates"]["intact_rate"] == pytest.approx(1 - 3_900 / 5_349_600, abs=1e-12)
    assert doc["rates"]["online_rate"] == 1


def test_upstream_grace_after_the_switch_goes_unknown(tmp_path: Path) -> None:
    # SW1 fails every 60 s from 07-10 10:00, last row 10:59, no rows until 12:00, then up:
    # SW1 down [10:00, 11:04), unknown [11:04, 12:00). By the team's rule its down interval ended at
    # 11:04, so the grace runs [11:04, 11:09).
    sw = reach("SW1", [(JUL1, 1, 300), (at(7, 10, 10), 0, 60)], at(7, 10, 11)) + up_all(
        "SW1", at(7, 10, 12), AUG1
    )
    probes = (
        up_all("LINK1", JUL1, AUG1)
        + sw
        + down_between("CAM1", at(7, 10, 10), at(7, 10, 11, 7), JUL1, AUG1)
        + down_between("CAM2", at(7, 10, 10), at(7, 10, 11, 12), JUL1, AUG1)
    )
    doc = run(tmp_path, tree("CAM1", "CAM2"), probes, contract_text=contract(**UPSTREAM_CONTRACT))
    [o] = outages(doc, "SW1")
    assert (o["end"], o["end_reason"], o["counted_s"]) == (iso(at(7, 10, 11, 4)), "unknown", 3_840)
    # CAM1 [10:00, 11:07): down parent until 11:04, grace until 11:09 → all 4,020 s upstream
    [o] = outages(doc, "CAM1")
    assert (o["causes"], o["counted_s"]) == ({"upstream:SW1": 4_020}, 0)
    # CAM2 [10:00, 11:12): upstream [10:00, 11:09) = 4,140, device [11:09, 11:12) = 180
    [o] = outages(doc, "CAM2")
    assert (o["causes"], o["counted_s"]) == ({"upstream:SW1": 4_140, "device": 180}, 180)


def test_outage_from_the_previous_month_counts_only_its_device_seconds(tmp_path: Path) -> None:
    # CAM1 down [06-30 20:00, 07-01 06:00) = 36,000 s; EX-1 power [06-30 20:00, 22:00) = 7,200 s
    start, end = at(6, 30, 20), at(7, 1, 6)
    ex = [excl("EX-1", "power", {"devices": ["CAM1"]}, start, at(6, 30, 22))]
    probes = down_between("CAM1", start, end, at(6, 1), AUG1)
    docs = run(
        tmp_path,
        inventory(cam("CAM1", 1)),
        probes,
        months=["2025-06", "2025-07"],
        contract_text=OVERRUN_ONLY,
        exclusions=ex,
    )
    jun, jul = docs["2025-06"], docs["2025-07"]
    # June: 20:00-22:00 excluded, 22:00-24:00 device = 7,200; no charge (the outage ends in July)
    [o] = outages(jun, "CAM1")
    assert (o["causes"], o["counted_s"], o["deduction"]) == (
        {"excluded:power": 7_200, "device": 7_200},
        7_200,
        "0.00",
    )
    assert lines(jun) == []
    # July: 00:00-06:00 = 21,600 device; whole outage counted 7,200 + 21,600 = 28,800
    # 28,800 - 14,400 = 14,400 = 4 h → 200.00
    [o] = outages(jul, "CAM1")
    assert (o["causes"], o["counted_s"], o["counted_total_s"], o["overrun_hours"]) == (
        {"device": 21_600},
        21_600,
        28_800,
        4,
    )
    assert jul["exclusions"] == []  # EX-1 does not overlap July
    assert lines(jul) == [("repair_overrun", "CAM1", "200.00")]
    assert totals(jul) == ("10000.00", "200.00", "9800.00")


def test_outage_is_clipped_to_the_service_window(tmp_path: Path) -> None:
    # CAM1 in service 07-11; its probes (from 07-01) fail [07-10 20:00, 07-11 02:00) = 6 h
    # CAM2 out of service 07-21; its probes fail [07-20 18:00, 07-21 06:00) = 12 h
    inv = inventory(cam("CAM1", 1, in_service="2025-07-11"), cam("CAM2", 2, out_of_service="2025-07-21"))
    probes = down_between("CAM1", at(7, 10, 20), at(7, 11, 2), JUL1, AUG1) + down_between(
        "CAM2", at(7, 20, 18), at(7, 21, 6), JUL1, AUG1
    )
    doc = run(tmp_path, inv, probes, contract_text=OVERRUN_ONLY)
    # CAM1: clipped to [07-11 00:00, 02:00) = 7,200 ≤ 4 h → no overrun (unclipped 6 h would cost 100.00)
    [o] = outages(doc, "CAM1")
    assert (o["start"], o["end"], o["counted_s"], o["counted_total_s"]) == (
        iso(at(7, 11)),
        iso(at(7, 11, 2)),
        7_200,
        7_200,
    )
    # CAM2: clipped to [07-20 18:00, 07-21 00:00) = 21,600; it ends (at out_of_service) in July, and the
    # evidence goes on, so it is not open: 21,600 - 14,400 = 7,200 → 2 h → 100.00
    [o] = outages(doc, "CAM2")
    assert (o["start"], o["end"], o["open"], o["counted_s"], o["counted_total_s"]) == (
        iso(at(7, 20, 18)),
        iso(at(7, 21)),
        False,
        21_600,
        21_600,
    )
    assert lines(doc) == [("repair_overrun", "CAM2", "100.00")]
    # fees: 10000 × 21/31 = 6774.1935 → 6774.19; 10000 × 20/31 = 6451.6129 → 6451.61; total 13225.80
    assert (device(doc, "CAM1")["fee"], device(doc, "CAM2")["fee"]) == ("6774.19", "6451.61")
    assert totals(doc) == ("13225.80", "100.00", "13125.80")


def test_tier_and_kpi_lines_use_the_rounded_fee_lines(tmp_path: Path) -> None:
    # June; 3 cameras at "20.01", in service 06-16: each line 10.005 → 10.01, fee total 30.03
    # CAM1 down 1 d: S = 1,296,000, A = 1 - 86400/1296000 = 0.933 → tier 0.50: round(10.01 × 0.5 = 5.005)
    #   = 5.01 (from the unrounded 10.005: 5.0025 → 5.00)
    # online = 1 - 86400/3888000 = 0.977778 < 0.99 → round(30.03 × 0.5 = 15.015) = 15.02 (unrounded
    #   total 30.015 × 0.5 = 15.0075 → 15.01); total 20.03 ≤ cap 30.03; payable 10.00
    cams = [cam(f"CAM{i}", i, in_service="2025-06-16") for i in (1, 2, 3)]
    probes = (
        down_between("CAM1", at(6, 20), at(6, 21), at(6, 16), JUL1)
        + up_all("CAM2", at(6, 16), JUL1)
        + up_all("CAM3", at(6, 16), JUL1)
    )
    text = contract(
        fees={"camera": "20.01", "switch": "0", "link": "0"},
        availability_tiers=[{"below": 0.99, "deduct": 0.50}],
        fleet_kpis={"online_rate": {"target": 0.99, "deduct": 0.50}},
        **NO_OVERRUN,
        **NO_CAP,
    )
    doc = run(tmp_path, inventory(*cams), probes, months="2025-06", contract_text=text)
    assert device(doc, "CAM1")["down_s"] == DAY
    assert lines(doc) == [("availability_tier", "CAM1", "5.01"), ("fleet_kpi", "online_rate", "15.02")]
    assert totals(doc) == ("30.03", "20.03", "10.00")


def test_fully_excluded_device_has_availability_one(tmp_path: Path) -> None:
    # EX-1 covers CAM1 for the whole of July: X = S → S - X = 0 → A = 1; its 2-day outage is all excluded
    ex = [excl("EX-1", "force_majeure", {"devices": ["CAM1"]}, JUL1, AUG1)]
    probes = one_outage("CAM1", at(7, 10), 2 * DAY) + up_all("CAM2", JUL1, AUG1)
    doc = run(tmp_path, inventory(cam("CAM1", 1), cam("CAM2", 2)), probes, exclusions=ex)
    d = device(doc, "CAM1")
    assert (d["excluded_s"], d["down_s"], d["availability"]) == (JULY_S, 0, 1)
    [o] = outages(doc, "CAM1")
    assert (o["causes"], o["counted_s"]) == ({"excluded:force_majeure": 2 * DAY}, 0)
    assert exclusion(doc, "EX-1")["excluded_s"] == JULY_S
    assert doc["rates"] == {"online_rate": 1, "intact_rate": 1}
    assert lines(doc) == []
    assert totals(doc) == ("200.00", "0.00", "200.00")


def test_icmp_and_snmp_results_are_merged(tmp_path: Path) -> None:
    # SW9: icmp ok every 300 s all month; snmp fails every 60 s 10:00:30 … 10:59:30 on 07-10.
    # Merged: 10:00 ok, 10:00:30 … 10:04:30 five failures → down from 10:00:30; each later icmp success
    # (10:05, 10:10, …) is a run of 1 < up_after; 11:00, 11:05 ok → up from 11:00.
    # outage [10:00:30, 11:00) = 3,570 s
    snmp = reach("SW9", [(at(7, 10, 10, 0, 30), 0, 60)], at(7, 10, 11), probe="snmp")
    probes = up_all("CAM1", JUL1, AUG1) + up_all("SW9", JUL1, AUG1) + snmp
    doc = run(tmp_path, inventory(cam("CAM1", 1), dev("SW9", "switch", 9)), probes)
    [o] = outages(doc, "SW9")
    assert (o["start"], o["end"], o["counted_s"]) == (iso(at(7, 10, 10, 0, 30)), iso(at(7, 10, 11)), 3_570)
    assert o["evidence"] == {
        "first_failure": iso(at(7, 10, 10, 0, 30)),
        "last_failure": iso(at(7, 10, 10, 59, 30)),
        "recovered": iso(at(7, 10, 11)),
    }
    assert device(doc, "SW9")["down_s"] == 3_570
    assert lines(doc) == []


def test_upstream_device_of_another_contract(tmp_path: Path) -> None:
    # SW1 belongs to C2, CAM1 (C1) hangs off it; both down 07-10 [10:00, 15:00) = 18,000 s;
    # EX-1 (approved maintenance) covers SW1 only, [10:00, 12:00)
    inv = inventory(dev("SW1", "switch", 1, contract="C2"), cam("CAM1", 1, parent="SW1"))
    a, b = at(7, 10, 10), at(7, 10, 15)
    probes = down_between("SW1", a, b, JUL1, AUG1) + down_between("CAM1", a, b, JUL1, AUG1)
    ex = [excl("EX-1", "maintenance", {"devices": ["SW1"]}, a, at(7, 10, 12))]
    others = {"c2.yaml": contract(contract_id="C2")}
    c1 = run(tmp_path, inv, probes, exclusions=ex, other_contracts=others)
    # C1: EX-1 does not cover CAM1 → rule 2: SW1 is down the whole time → all upstream, nothing counted
    assert [d["id"] for d in c1["devices"]] == ["CAM1"]
    [o] = outages(c1, "CAM1")
    assert (o["causes"], o["counted_s"]) == ({"upstream:SW1": 18_000}, 0)
    assert c1["exclusions"] == []  # EX-1 covers no device on C1's statement
    assert totals(c1) == ("100.00", "0.00", "100.00")
    # C2: SW1 10:00-12:00 excluded, 12:00-15:00 device = 10,800 (≤ 4 h: no overrun)
    # A = 1 - 10800/(2678400 - 7200) = 1 - 10800/2671200 = 0.995957
    c2 = run(tmp_path, inv, probes, exclusions=ex, other_contracts=others, contract_id="C2")
    [o] = outages(c2, "SW1")
    assert (o["causes"], o["counted_s"]) == ({"excluded:maintenance": 7_200, "device": 10_800}, 10_800)
    d = device(c2, "SW1")
    assert (d["fee"], d["excluded_s"], d["down_s"]) == ("0.00", 7_200, 10_800)
    assert d["availability"] == pytest.approx(1 - 10_800 / 2_671_200, abs=1e-12)
    assert (exclusion(c2, "EX-1")["honoured"], exclusion(c2, "EX-1")["excluded_s"]) == (True, 7_200)
    assert lines(c2) == []


def test_state_carries_over_from_the_previous_month(tmp_path: Path) -> None:
    # unknown_counts_as: down, so any unknown second would show in D
    # CAM1: June rows every 300 s up to 06-30 23:57, July rows from 07-01 00:02: gap 300 s → nothing unknown
    # CAM2: last June row 06-30 23:50, first July row 07-01 00:10: gap 20 m → unknown from 23:55;
    #       inside July [00:00, 00:10) = 600 s → D = 600
    probes = (
        up_all("CAM1", at(6, 1, 0, 2), at(6, 30, 23, 58))
        + up_all("CAM1", at(7, 1, 0, 2), AUG1)
        + up_all("CAM2", at(6, 1), at(6, 30, 23, 51))
        + up_all("CAM2", at(7, 1, 0, 10), AUG1)
    )
    text = contract(unknown_counts_as="down")
    doc = run(tmp_path, inventory(cam("CAM1", 1), cam("CAM2", 2)), probes, contract_text=text)
    assert (device(doc, "CAM1")["unknown_s"], device(doc, "CAM1")["down_s"]) == (0, 0)
    assert (device(doc, "CAM2")["unknown_s"], device(doc, "CAM2")["down_s"]) == (600, 600)
    assert lines(doc) == []


def test_evidence_of_an_outage_open_at_the_months_end(tmp_path: Path) -> None:
    # CAM1 fails every 60 s from 07-31 20:00, recovers 08-01 06:00. July's statement shows the outage as
    # it stood at the month's end: open, first failure 20:00; its last failure and recovery belong to
    # August's statement, so July's stays the same whenever it is computed (and after retention).
    start, end = at(7, 31, 20), at(8, 1, 6)
    probes = down_between("CAM1", start, end, JUL1, SEP1)
    doc = run(tmp_path, inventory(cam("CAM1", 1)), probes, contract_text=OVERRUN_ONLY)
    [o] = outages(doc, "CAM1")
    assert o["open"] is True
    assert o["evidence"] == {
        "first_failure": iso(start),
        "last_failure": None,
        "recovered": None,
    }


# --- §3 an outage across a monitoring gap ------------------------------------------------------------
# A stretch of `unknown` between two `down` stretches, with no successful result inside it (nor as
# the first result after it), does not end the outage: one outage spans both stretches and the gap,
# and its evidence names the gap. The gap's seconds have no cause; they are counted downtime (in the
# outage and its overrun) only under `unknown_counts_as: down`. CAM1 here is rural (8 h deadline)
# unless told; failures are every 60 s, and a silence of more than 5 m leaves the time from the last
# result + 5 m to the next result `unknown`.

RURAL_CAM = cam("CAM1", 1, site="S2")


def failing(dev_id: str, start: datetime, end: datetime) -> str:
    """Failed icmp probes every 60 s in [start, end)."""
    return reach(dev_id, [(start, 0, 60)], end)


def recovering(dev_id: str, start: datetime, end: datetime) -> str:
    """Successes from `start`: every 60 s for 10 minutes, then every 300 s until `end`."""
    return reach(dev_id, [(start, 1, 60), (start + timedelta(minutes=10), 1, 300)], end)


def failure_with_a_gap(until: datetime) -> str:
    """CAM1 up all July except a failure 07-10 06:00 → `until`, in which no result comes between the
    failure at 12:50 and the one at 13:05: `unknown` [12:55, 13:05) = 600 s."""
    return (
        up_all("CAM1", JUL1, at(7, 10, 6))
        + failing("CAM1", at(7, 10, 6), at(7, 10, 12, 51))
        + failing("CAM1", at(7, 10, 13, 5), until)
        + recovering("CAM1", until, AUG1)
    )


def test_a_gap_inside_a_14_hour_failure_does_not_end_the_outage(tmp_path: Path) -> None:
    # down 06:00 → 12:55 (24,900 s), unknown 12:55 → 13:05 (600 s), down 13:05 → 20:00 (24,900 s):
    # one outage [06:00, 20:00) of 50,400 s, of which 49,800 s are `device` and counted.
    # rural 8 h: 49,800 - 28,800 = 21,000 s = 5 h 50 m → 6 started hours → 300.00
    # (split at the gap it would be two outages of 6 h 55 m, each inside 8 h: no overrun at all)
    doc = run(tmp_path, inventory(RURAL_CAM), failure_with_a_gap(at(7, 10, 20)), contract_text=OVERRUN_ONLY)
    [o] = outages(doc, "CAM1")
    assert (o["start"], o["end"], o["open"], o["end_reason"]) == (
        iso(at(7, 10, 6)),
        iso(at(7, 10, 20)),
        False,
        "recovered",
    )
    assert (o["counted_s"], o["counted_total_s"], o["causes"]) == (49_800, 49_800, {"device": 49_800})
    assert (o["overrun_hours"], o["deduction"]) == (6, "300.00")
    assert o["evidence"] == {
        "first_failure": iso(at(7, 10, 6)),
        "last_failure": iso(at(7, 10, 19, 59)),
        "recovered": iso(at(7, 10, 20)),
        "gaps": [{"start": iso(at(7, 10, 12, 55)), "end": iso(at(7, 10, 13, 5))}],
    }
    d = device(doc, "CAM1")
    assert (d["down_s"], d["unknown_s"], d["excluded_s"]) == (49_800, 600, 0)
    assert [
        (x["rule"], x["device"], x["outage_start"], x["reason"], x["amount"]) for x in doc["deductions"]
    ] == [("repair_overrun", "CAM1", iso(at(7, 10, 6)), "13h50m > 8h (rural): 6 started hours", "300.00")]
    assert totals(doc) == ("10000.00", "300.00", "9700.00")


@pytest.mark.parametrize(
    ("counts_as", "counted_s", "down_s", "excluded_s", "amount"),
    [
        # up: the gap is not counted: 28,500 s = 7 h 55 m ≤ 8 h → no overrun
        pytest.param("up", 28_500, 28_500, 0, None, id="up"),
        # down: the gap counts, in D and in the outage: 29,100 s = 8 h 5 m → 300 s over → 1 h → 50.00
        pytest.param("down", 29_100, 29_100, 0, "50.00", id="down"),
        # excluded: the gap leaves the rates (X = 600) and is not counted: as `up` for the outage
        pytest.param("excluded", 28_500, 28_500, 600, None, id="excluded"),
    ],
)
def test_a_gap_inside_an_outage_under_each_unknown_counts_as(
    tmp_path: Path, counts_as: str, counted_s: int, down_s: int, excluded_s: int, amount: str | None
) -> None:
    # down 06:00 → 12:55 (24,900 s), unknown 12:55 → 13:05 (600 s), down 13:05 → 14:05 (3,600 s):
    # one outage [06:00, 14:05) = 29,100 s, 28,500 s of them `device`
    text = contract(fees=BIG_FEES, unknown_counts_as=counts_as, **NO_TIERS, **NO_KPIS)
    doc = run(tmp_path, inventory(RURAL_CAM), failure_with_a_gap(at(7, 10, 14, 5)), contract_text=text)
    [o] = outages(doc, "CAM1")
    assert (o["start"], o["end"], o["end_reason"]) == (iso(at(7, 10, 6)), iso(at(7, 10, 14, 5)), "recovered")
    assert o["causes"] == {"device": 28_500}  # the gap's seconds have no cause, whatever they count as
    assert (o["counted_s"], o["counted_total_s"]) == (counted_s, counted_s)
    assert o["evidence"]["gaps"] == [{"start": iso(at(7, 10, 12, 55)), "end": iso(at(7, 10, 13, 5))}]
    d = device(doc, "CAM1")
    assert (d["down_s"], d["excluded_s"], d["unknown_s"]) == (down_s, excluded_s, 600)
    assert d["availability"] == pytest.approx(1 - down_s / (JULY_S - excluded_s), abs=1e-12)
    assert o["overrun_hours"] == (1 if amount else 0)
    assert lines(doc) == ([] if amount is None else [("repair_overrun", "CAM1", amount)])


def test_an_excluded_part_of_a_gap_is_not_counted(tmp_path: Path) -> None:
    # as above, unknown_counts_as: down, with an approved power exclusion [12:00, 13:00):
    # `excluded:power` [12:00, 12:55) = 3,300; `device` [06:00, 12:00) + [13:05, 14:05) = 25,200;
    # the gap [12:55, 13:05): [12:55, 13:00) excluded (not counted), [13:00, 13:05) = 300 counted
    ex = [excl("EX-1", "power", {"devices": ["CAM1"]}, at(7, 10, 12), at(7, 10, 13))]
    text = contract(fees=BIG_FEES, unknown_counts_as="down", **NO_TIERS, **NO_KPIS)
    doc = run(
        tmp_path,
        inventory(RURAL_CAM),
        failure_with_a_gap(at(7, 10, 14, 5)),
        contract_text=text,
        exclusions=ex,
    )
    [o] = outages(doc, "CAM1")
    assert o["causes"] == {"device": 25_200, "excluded:power": 3_300}
    assert (o["counted_s"], o["counted_total_s"], o["overrun_hours"]) == (25_500, 25_500, 0)
    d = device(doc, "CAM1")
    # X = the exclusion, 3,600; D = device 25,200 + unknown not excluded 300
    assert (d["excluded_s"], d["down_s"], d["unknown_s"]) == (3_600, 25_500, 600)


@pytest.mark.parametrize(("counts_as", "down_s"), [("up", 18_240), ("down", 18_240 + 17_760)])
def test_a_gap_then_a_success_ends_the_outage_where_the_gap_began(
    tmp_path: Path, counts_as: str, down_s: int
) -> None:
    # failures 10:00 … 14:59, no rows until 20:00, then successes: down until 15:04, unknown
    # [15:04, 20:00) = 17,760 s, then up. The outage ends where the unknown began: [10:00, 15:04) =
    # 18,240 s, closed by the gap, charged (urban 4 h): 3,840 s over → 2 h → 100.00. The unknown
    # after it is no part of it, so it adds nothing to its overrun even when it counts as down.
    probes = (
        up_all("CAM1", JUL1, at(7, 10, 10))
        + failing("CAM1", at(7, 10, 10), at(7, 10, 15))
        + recovering("CAM1", at(7, 10, 20), AUG1)
    )
    text = contract(fees=BIG_FEES, unknown_counts_as=counts_as, **NO_TIERS, **NO_KPIS)
    doc = run(tmp_path, inventory(cam("CAM1", 1)), probes, contract_text=text)
    [o] = outages(doc, "CAM1")
    assert (o["start"], o["end"], o["end_reason"]) == (iso(at(7, 10, 10)), iso(at(7, 10, 15, 4)), "unknown")
    assert (o["counted_s"], o["counted_total_s"], o["overrun_hours"]) == (18_240, 18_240, 2)
    assert o["evidence"] == {
        "first_failure": iso(at(7, 10, 10)),
        "last_failure": iso(at(7, 10, 14, 59)),
        "recovered": None,
    }
    assert (device(doc, "CAM1")["down_s"], device(doc, "CAM1")["unknown_s"]) == (down_s, 17_760)
    assert lines(doc) == [("repair_overrun", "CAM1", "100.00")]


def test_a_passing_video_sample_inside_the_gap_makes_two_outages(tmp_path: Path) -> None:
    # the failure of the first test (06:00 → 20:00, unknown [12:55, 13:05)), on a camera whose video
    # is sampled once, at 13:00, inside the gap. A good picture is a successful result: it shows the
    # camera worked, so the gap ends the outage. Two outages of 24,900 s, each inside 8 h: no overrun.
    inv = inventory(cam("CAM1", 1, site="S2", stream="rtsp://10.0.1.1:8554/main"))
    sample = video("CAM1", [(at(7, 10, 13), 1, 60)], at(7, 10, 13, 0, 1))
    doc = run(tmp_path, inv, failure_with_a_gap(at(7, 10, 20)) + sample, contract_text=OVERRUN_ONLY)
    o1, o2 = outages(doc, "CAM1")
    assert (o1["start"], o1["end"], o1["end_reason"], o1["counted_s"]) == (
        iso(at(7, 10, 6)),
        iso(at(7, 10, 12, 55)),
        "unknown",
        24_900,
    )
    assert o1["evidence"] == {
        "first_failure": iso(at(7, 10, 6)),
        "last_failure": iso(at(7, 10, 12, 50)),
        "recovered": None,
    }
    assert (o2["start"], o2["end"], o2["end_reason"], o2["counted_s"]) == (
        iso(at(7, 10, 13, 5)),
        iso(at(7, 10, 20)),
        "recovered",
        24_900,
    )
    assert "gaps" not in o2["evidence"]
    assert lines(doc) == []
    # a defective sample there proves nothing: one outage, charged as in the first test
    doc = run(
        tmp_path / "defective",
        inv,
        failure_with_a_gap(at(7, 10, 20)) + video("CAM1", [(at(7, 10, 13), 0, 60)], at(7, 10, 13, 0, 1)),
        contract_text=OVERRUN_ONLY,
    )
    [o] = outages(doc, "CAM1")
    assert (o["counted_s"], o["deduction"]) == (49_800, "300.00")


def test_one_answer_during_the_silence_makes_two_outages(tmp_path: Path) -> None:
    # failures 06:00 … 12:50, one success at 13:00, failures 13:10 … 19:59, up from 20:00:
    # down [06:00, 12:55), unknown [12:55, 13:00), down [13:00, 13:05) (one success is not up_after:
    # the camera stays down, §2), unknown [13:05, 13:10), down [13:10, 20:00).
    # The success after the first gap ends the first outage where that gap began; the second gap has
    # no success in it, so the second outage spans it: [13:00, 20:00), starting at that success.
    probes = (
        up_all("CAM1", JUL1, at(7, 10, 6))
        + failing("CAM1", at(7, 10, 6), at(7, 10, 12, 51))
        + reach("CAM1", [(at(7, 10, 13), 1, 60)], at(7, 10, 13, 0, 1))
        + failing("CAM1", at(7, 10, 13, 10), at(7, 10, 20))
        + recovering("CAM1", at(7, 10, 20), AUG1)
    )
    doc = run(tmp_path, inventory(RURAL_CAM), probes, contract_text=OVERRUN_ONLY)
    o1, o2 = outages(doc, "CAM1")
    assert (o1["start"], o1["end"], o1["end_reason"], o1["counted_s"]) == (
        iso(at(7, 10, 6)),
        iso(at(7, 10, 12, 55)),
        "unknown",
        24_900,
    )
    # [13:00, 20:00) = 25,200 s less the gap's 300 s
    assert (o2["start"], o2["end"], o2["end_reason"], o2["counted_s"]) == (
        iso(at(7, 10, 13)),
        iso(at(7, 10, 20)),
        "recovered",
        24_900,
    )
    assert o2["evidence"] == {
        "first_failure": iso(at(7, 10, 13, 10)),
        "last_failure": iso(at(7, 10, 19, 59)),
        "recovered": iso(at(7, 10, 20)),
        "gaps": [{"start": iso(at(7, 10, 13, 5)), "end": iso(at(7, 10, 13, 10))}],
    }
    assert device(doc, "CAM1")["unknown_s"] == 600
    assert lines(doc) == []


@pytest.mark.parametrize(
    ("counts_as", "counted_s", "down_s", "hours", "amount"),
    [
        # 50,640 - 1,500 = 49,140 s = 13 h 39 m; 49,140 - 28,800 = 20,340 s → 6 h → 300.00
        pytest.param("up", 49_140, 49_140, 6, "300.00", id="up"),
        # 50,640 s = 14 h 4 m; 21,840 s over → 7 h → 350.00; D also has the unknown after it (3,360)
        pytest.param("down", 50_640, 54_000, 7, "350.00", id="down"),
    ],
)
def test_several_gaps_in_one_outage(
    tmp_path: Path, counts_as: str, counted_s: int, down_s: int, hours: int, amount: str
) -> None:
    # failures 06:00 … 09:50, 10:05 … 15:50, 16:10 … 19:59; silence until 21:00, then successes:
    # down [06:00, 09:55), unknown [09:55, 10:05) = 600, down [10:05, 15:55), unknown [15:55, 16:10)
    # = 900, down [16:10, 20:04), unknown [20:04, 21:00) = 3,360, then up. The first two gaps end in a
    # failure: one outage; the last ends in a success: the outage ends at 20:04, where it began.
    probes = (
        up_all("CAM1", JUL1, at(7, 10, 6))
        + failing("CAM1", at(7, 10, 6), at(7, 10, 9, 51))
        + failing("CAM1", at(7, 10, 10, 5), at(7, 10, 15, 51))
        + failing("CAM1", at(7, 10, 16, 10), at(7, 10, 20))
        + recovering("CAM1", at(7, 10, 21), AUG1)
    )
    text = contract(fees=BIG_FEES, unknown_counts_as=counts_as, **NO_TIERS, **NO_KPIS)
    doc = run(tmp_path, inventory(RURAL_CAM), probes, contract_text=text)
    [o] = outages(doc, "CAM1")
    assert (o["start"], o["end"], o["end_reason"]) == (iso(at(7, 10, 6)), iso(at(7, 10, 20, 4)), "unknown")
    assert o["causes"] == {"device": 49_140}
    assert (o["counted_s"], o["counted_total_s"], o["overrun_hours"], o["deduction"]) == (
        counted_s,
        counted_s,
        hours,
        amount,
    )
    assert o["evidence"] == {
        "first_failure": iso(at(7, 10, 6)),
        "last_failure": iso(at(7, 10, 19, 59)),
        "recovered": None,
        "gaps": [
            {"start": iso(at(7, 10, 9, 55)), "end": iso(at(7, 10, 10, 5))},
            {"start": iso(at(7, 10, 15, 55)), "end": iso(at(7, 10, 16, 10))},
        ],
    }
    d = device(doc, "CAM1")
    assert (d["down_s"], d["unknown_s"]) == (down_s, 600 + 900 + 3_360)
    assert lines(doc) == [("repair_overrun", "CAM1", amount)]


@pytest.mark.parametrize(
    ("counts_as", "july_counted", "aug_counted", "total", "hours", "amount"),
    [
        # up: July 14,100; August 14,100; whole 28,200 = 7 h 50 m; 13,800 s over 4 h → 4 h → 200.00
        pytest.param("up", 14_100, 14_100, 28_200, 4, "200.00", id="up"),
        # down: July 14,100 + 300; August 14,100 + 600; whole 29,100 = 8 h 5 m → 14,700 over → 5 h → 250.00
        pytest.param("down", 14_400, 14_700, 29_100, 5, "250.00", id="down"),
    ],
)
def test_an_outage_across_a_gap_across_midnight_at_the_months_end(
    tmp_path: Path, counts_as: str, july_counted: int, aug_counted: int, total: int, hours: int, amount: str
) -> None:
    # urban CAM1 fails from 07-31 20:00; no results between 23:50 and 08-01 00:10; fails until 04:05:
    # down [20:00, 23:55) = 14,100 (July); unknown [23:55, 00:10) = 300 in July + 600 in August;
    # down [00:10, 04:05) = 14,100 (August). One outage [07-31 20:00, 08-01 04:05) = 29,100 s.
    # (split at the gap: 3 h 55 m in July, closed by the gap, and 3 h 55 m in August: no overrun.)
    probes = (
        up_all("CAM1", JUL1, at(7, 31, 20))
        + failing("CAM1", at(7, 31, 20), at(7, 31, 23, 51))
        + failing("CAM1", at(8, 1, 0, 10), at(8, 1, 4, 5))
        + recovering("CAM1", at(8, 1, 4, 5), SEP1)
    )
    text = contract(fees=BIG_FEES, unknown_counts_as=counts_as, **NO_TIERS, **NO_KPIS)
    docs = run(tmp_path, inventory(cam("CAM1", 1)), probes, months=["2025-07", "2025-08"], contract_text=text)
    jul, aug = docs["2025-07"], docs["2025-08"]

    # July: still running at the month's end (in its gap): open, nothing charged; its evidence is its
    # first failure and the gap as far as the month goes
    [o] = outages(jul, "CAM1")
    assert (o["start"], o["end"], o["open"], o["end_reason"]) == (iso(at(7, 31, 20)), None, True, None)
    assert (o["counted_s"], o["counted_total_s"], o["causes"]) == (
        july_counted,
        july_counted,
        {"device": 14_100},
    )
    assert o["evidence"] == {
        "first_failure": iso(at(7, 31, 20)),
        "last_failure": None,
        "recovered": None,
        "gaps": [{"start": iso(at(7, 31, 23, 55)), "end": iso(AUG1)}],
    }
    assert (device(jul, "CAM1")["down_s"], device(jul, "CAM1")["unknown_s"]) == (july_counted, 300)
    assert lines(jul) == []

    # August: it ends here, charged on the counted downtime of the whole span
    [o] = outages(aug, "CAM1")
    assert (o["start"], o["end"], o["open"], o["end_reason"]) == (
        iso(at(7, 31, 20)),
        iso(at(8, 1, 4, 5)),
        False,
        "recovered",
    )
    assert (o["counted_s"], o["counted_total_s"], o["causes"]) == (aug_counted, total, {"device": 14_100})
    assert (o["overrun_hours"], o["deduction"]) == (hours, amount)
    assert o["evidence"] == {
        "first_failure": iso(at(7, 31, 20)),
        "last_failure": iso(at(8, 1, 4, 4)),
        "recovered": iso(at(8, 1, 4, 5)),
        "gaps": [{"start": iso(at(7, 31, 23, 55)), "end": iso(at(8, 1, 0, 10))}],
    }
    assert (device(aug, "CAM1")["down_s"], device(aug, "CAM1")["unknown_s"]) == (aug_counted, 600)
    assert lines(aug) == [("repair_overrun", "CAM1", amount)]


def test_a_switchs_gap_is_not_upstream_time_for_its_camera(tmp_path: Path) -> None:
    # SW1 fails 10:00 … 11:59, no rows until 13:00, fails 13:00 … 14:59, up from 15:00: one outage
    # [10:00, 15:00) with the gap [12:04, 13:00) = 3,360 s; counted 18,000 - 3,360 = 14,640 s;
    # 240 s over the urban 4 h → 1 h → 50.00 (fee 0.00: the line still applies).
    # CAM1 is down [10:00, 15:05). SW1 is `down` until 12:04 (grace until 12:09) and from 13:00
    # (grace until 15:05); in SW1's gap it is `unknown`, not down (§3 names a down ancestor), so
    # [12:09, 13:00) = 3,060 s is CAM1's own: upstream 7,740 + 7,500 = 15,240, device 3,060.
    sw = (
        up_all("SW1", JUL1, at(7, 10, 10))
        + failing("SW1", at(7, 10, 10), at(7, 10, 12))
        + failing("SW1", at(7, 10, 13), at(7, 10, 15))
        + recovering("SW1", at(7, 10, 15), AUG1)
    )
    probes = (
        up_all("LINK1", JUL1, AUG1) + sw + down_between("CAM1", at(7, 10, 10), at(7, 10, 15, 5), JUL1, AUG1)
    )
    doc = run(tmp_path, tree("CAM1"), probes, contract_text=contract(**UPSTREAM_CONTRACT))
    [o] = outages(doc, "SW1")
    assert (o["start"], o["end"], o["causes"], o["counted_s"], o["deduction"]) == (
        iso(at(7, 10, 10)),
        iso(at(7, 10, 15)),
        {"device": 14_640},
        14_640,
        "50.00",
    )
    assert o["evidence"]["gaps"] == [{"start": iso(at(7, 10, 12, 4)), "end": iso(at(7, 10, 13))}]
    [o] = outages(doc, "CAM1")
    assert (o["causes"], o["counted_s"], o["deduction"]) == (
        {"upstream:SW1": 15_240, "device": 3_060},
        3_060,
        "0.00",
    )
    assert lines(doc) == [("repair_overrun", "SW1", "50.00")]
    assert totals(doc) == ("10000.00", "50.00", "9950.00")
