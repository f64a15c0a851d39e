"""Hand-computed tiny cases proving the reference implementation right, rule by rule.

All cases are in July 2025, Asia/Shanghai (|P| = 31 days = 2,678,400 s); probes are hourly (index h =
hours after 2025-07-01 00:00+08:00) with stale_after = 2h so that the probes cover the month.
"""

from __future__ import annotations

from fractions import Fraction as F
from pathlib import Path

import pytest

from tests.reference.casekit import JULY_S, Case, H, at, contract, reach, video
from tests.reference.sla_reference import (
    compute_statement,
    compute_statements,
    money_str,
    parse_duration,
    round_money,
)

pytestmark = pytest.mark.slow  # generated months against the reference implementation

MONTH = range(745)  # one result per hour, 07-01 00:00 .. 08-01 00:00


def run(case: Case, cid: str, month: str = "2025-07") -> dict:
    inv, cs, ex, probes = case.write()
    return compute_statement(inv, cs, ex, probes, cid, month)


def dev(st: dict, did: str) -> dict:
    (row,) = [d for d in st["devices"] if d["id"] == did]
    return row


def outs(st: dict, did: str) -> list[dict]:
    return [o for o in st["outages"] if o["device"] == did]


def lines(st: dict, rule: str) -> list[dict]:
    return [ln for ln in st["deductions"] if ln["rule"] == rule]


SITE_U = {"id": "S1", "name": "a", "district": "d", "area": "urban"}
SITE_R = {"id": "S2", "name": "b", "district": "d", "area": "rural"}


def cam(did: str, addr: int, **kw) -> dict:
    d = {"id": did, "kind": "camera", "address": f"127.0.30.{addr}", "site": "S1", "contract": "K"}
    d.update(kw)
    return d


# ------------------------------------------------------------------------------------------ helpers


def test_helpers():
    assert parse_duration("500ms") == 500_000
    assert parse_duration("15m") == 900 * 10**6
    assert parse_duration("1d") == 86400 * 10**6
    assert round_money(F("0.125")) == F("0.13")  # half up, not half even
    assert round_money(F("0.135")) == F("0.14")
    assert round_money(F("0.1249999")) == F("0.12")
    assert money_str(F(-5, 2)) == "-2.50"
    assert money_str(F(0)) == "0.00"


# --------------------------------------------------------- runs, back-dating, tiers, overrun, KPI, cap


def test_runs_backdating_tiers_overrun_kpi_and_cap(tmp_path: Path):
    k = contract(
        "K",
        availability_tiers=[
            {"below": 0.999, "deduct": 0.10},
            {"below": 0.995, "deduct": 0.30},
            {"below": 0.90, "deduct": 1.00},
        ],
        repair_overrun={"per_started_hour": "7.50", "max_per_incident": "100.00"},
        fleet_kpis={
            "online_rate": {"target": 0.999, "deduct": 0.05},
            "intact_rate": {"target": 0.5, "deduct": 0.05},
        },
        cap=0.40,
    )
    # 10,11: blip (2 < down_after); 20-22 fail -> down from 20; 23 single success (< up_after);
    # 24 fail; 25,26 success -> up from 25.
    rows = reach("C1", MONTH, fails={10, 11, 20, 21, 22, 24})
    st = run(Case(tmp_path, [SITE_U], [cam("C1", 1)], [k], [], rows), "K")
    (o,) = outs(st, "C1")
    assert o["start"] == at(20)
    assert o["end"] == at(25)
    assert o["counted_s"] == 5 * H
    assert o["counted_total_s"] == 5 * H
    assert o["causes"] == {"device": 5 * H}
    assert o["evidence"] == {"first_failure": at(20), "last_failure": at(24), "recovered": at(25)}
    assert o["overrun_hours"] == 1
    assert o["deduction"] == "7.50"
    d = dev(st, "C1")
    assert d["scheduled_s"] == JULY_S
    assert d["down_s"] == 5 * H
    assert d["excluded_s"] == 0
    assert d["availability"] == 1 - F(5 * H, JULY_S)  # 0.99328: tiers 0.999 and 0.995 match
    assert d["fee"] == "100.00"
    assert d["deduction"] == "37.50"  # 30.00 tier + 7.50 overrun
    assert st["rates"]["online_rate"] == 1 - F(5 * H, JULY_S)
    assert st["rates"]["intact_rate"] == 1 - F(5 * H, JULY_S)
    assert [(ln["rule"], ln["amount"]) for ln in st["deductions"]] == [
        ("availability_tier", "30.00"),
        ("repair_overrun", "7.50"),
        ("fleet_kpi", "5.00"),  # online only; intact 0.993 >= 0.5
        ("cap", "-2.50"),  # 42.50 > 40.00
    ]
    assert st["fee_total"] == "100.00"
    assert st["deduction_total"] == "40.00"
    assert st["payable"] == "60.00"


def test_cap_not_binding_and_kpi_boundary(tmp_path: Path):
    k = contract("K", fleet_kpis={"online_rate": {"target": 1, "deduct": 0.05}}, cap=0.30)
    st = run(Case(tmp_path, [SITE_U], [cam("C1", 1)], [k], [], reach("C1", MONTH)), "K")
    assert st["rates"]["online_rate"] == 1
    assert st["deductions"] == []  # 1 < 1 is false
    assert st["payable"] == "100.00"


# ------------------------------------------------------------------------------ ties icmp/snmp


def test_ties_icmp_before_snmp(tmp_path: Path):
    k = contract("K", fees={"camera": "1", "switch": "10", "link": "0"})
    sw = {"id": "SW", "kind": "switch", "address": "127.0.20.1", "site": "S1", "contract": "K"}
    # hour 10, 11: icmp F, snmp S -> F S F S: no outage.
    # hour 30: icmp S, snmp F; hour 31: both F; 32 both S -> F(30 snmp) F F -> down [30, 32)
    # (in snmp-first order the failure run would be only 2 long).
    rows = reach("SW", MONTH, fails={10, 11, 31}, probe="icmp") + reach(
        "SW", MONTH, fails={30, 31}, probe="snmp"
    )
    st = run(Case(tmp_path, [SITE_U], [sw], [k], [], rows), "K")
    (o,) = outs(st, "SW")
    assert (o["start"], o["end"]) == (at(30), at(32))
    assert o["evidence"] == {"first_failure": at(30), "last_failure": at(31), "recovered": at(32)}
    assert dev(st, "SW")["down_s"] == 2 * H
    # the switch is not a fleet kind: rates over no device are 1
    assert st["rates"] == {"online_rate": 1, "intact_rate": 1}


# ------------------------------------------------------------------- staleness and unknown_counts_as


@pytest.mark.parametrize("uca", ["up", "down", "excluded"])
def test_stale_gaps_unknown_and_an_outage_across_a_gap(tmp_path: Path, uca: str):
    k = contract("K", unknown_counts_as=uca)
    # C1: results at ..99 then 105..: unknown [101, 105) = 4h; an approved exclusion [102, 103).
    rows = reach("C1", MONTH, skip=range(100, 105))
    # C2: fails 200..210 with results 203..206 missing: down [200, 204), unknown [204, 207),
    # down again [207, 211) (state carried over the gap), up from 211. The first result after the
    # gap (207) fails and nothing succeeds inside it: one outage [200, 211) across the gap (§3).
    rows += reach("C2", MONTH, fails=range(200, 211), skip=range(203, 207))
    # C3: the same, but the first result after the gap (307) succeeds: down [300, 304) ends where
    # the unknown began. One success is not up_after (2), so the device is still down from 307:
    # a second outage [307, 311) that starts at that success (its first failure is 308).
    rows += reach("C3", MONTH, fails=set(range(300, 311)) - {307}, skip=range(303, 307))
    ex = [
        {
            "id": "EX-1",
            "category": "maintenance",
            "scope": {"devices": ["C1"]},
            "start": at(102),
            "end": at(103),
            "reason": "r",
            "status": "approved",
            "approved_by": "x",
        }
    ]
    st = run(Case(tmp_path, [SITE_U], [cam("C1", 1), cam("C2", 2), cam("C3", 3)], [k], ex, rows), "K")
    c1, c2, c3 = dev(st, "C1"), dev(st, "C2"), dev(st, "C3")
    if uca == "up":
        assert (c1["excluded_s"], c1["down_s"]) == (H, 0)
        assert (c2["excluded_s"], c2["down_s"]) == (0, 8 * H)
        assert (c3["excluded_s"], c3["down_s"]) == (0, 8 * H)
    elif uca == "down":
        assert (c1["excluded_s"], c1["down_s"]) == (H, 3 * H)
        assert (c2["excluded_s"], c2["down_s"]) == (0, 11 * H)
        assert (c3["excluded_s"], c3["down_s"]) == (0, 11 * H)
    else:
        assert (c1["excluded_s"], c1["down_s"]) == (4 * H, 0)
        assert (c2["excluded_s"], c2["down_s"]) == (3 * H, 8 * H)
        assert (c3["excluded_s"], c3["down_s"]) == (3 * H, 8 * H)
    assert c1["availability"] == 1 - F(c1["down_s"], JULY_S - c1["excluded_s"])
    assert outs(st, "C1") == []  # unknown never forms an outage

    # C2: one outage; the gap's 3h have no cause and count only when unknown counts as down
    counted = 11 * H if uca == "down" else 8 * H
    (o,) = outs(st, "C2")
    assert (o["start"], o["end"], o["counted_s"], o["counted_total_s"]) == (
        at(200),
        at(211),
        counted,
        counted,
    )
    assert o["causes"] == {"device": 8 * H}
    assert o["evidence"] == {
        "first_failure": at(200),
        "last_failure": at(210),
        "recovered": at(211),
        "gaps": [{"start": at(204), "end": at(207)}],
    }
    # urban deadline 4h: 8h → 4 started hours → 200.00; 11h → 7 → 350.00
    hours = 7 if uca == "down" else 4
    assert o["overrun_hours"] == hours
    assert [(ln["device"], ln["amount"]) for ln in lines(st, "repair_overrun")] == [
        ("C2", f"{hours * 50}.00")
    ]

    # C3: two outages of 4h each, neither beyond the deadline; the gap is between them, in neither
    o1, o2 = outs(st, "C3")
    assert (o1["start"], o1["end"], o1["counted_s"]) == (at(300), at(304), 4 * H)
    assert o1["evidence"] == {"first_failure": at(300), "last_failure": at(302), "recovered": None}
    assert (o2["start"], o2["end"], o2["counted_s"]) == (at(307), at(311), 4 * H)
    assert o2["evidence"] == {"first_failure": at(308), "last_failure": at(310), "recovered": at(311)}
    # counted == deadline (4h, urban) is not an overrun
    assert (o1["overrun_hours"], o1["deduction"], o2["overrun_hours"]) == (0, "0.00", 0)


# --------------------------------------------------------------------------------- open outages


def test_open_outage_not_charged(tmp_path: Path):
    k = contract("K", repair_deadline={"urban": "1h", "rural": "1h"})
    rows = reach("C1", MONTH, fails=range(700, 745))  # data ends failing at 744 (= 08-01 00:00)
    case = Case(tmp_path, [SITE_U], [cam("C1", 1)], [k], [], rows)
    inv, cs, ex, probes = case.write()
    both = compute_statements(inv, cs, ex, probes, [("K", "2025-07"), ("K", "2025-08")])
    jul, aug = both[("K", "2025-07")], both[("K", "2025-08")]
    (o,) = outs(jul, "C1")
    assert (o["start"], o["end"]) == (at(700), None)
    assert o["counted_s"] == 44 * H
    assert o["counted_total_s"] == 46 * H  # runs to t_last + stale_after
    assert o["evidence"] == {"first_failure": at(700), "last_failure": at(744), "recovered": None}
    assert (o["overrun_hours"], o["deduction"]) == (0, "0.00")
    (o,) = outs(aug, "C1")
    assert (o["start"], o["end"], o["counted_s"]) == (at(700), None, 2 * H)
    assert lines(jul, "repair_overrun") == lines(aug, "repair_overrun") == []
    assert dev(aug, "C1")["down_s"] == 2 * H  # then unknown (counts as up)


# ------------------------------------------------------------ cross-month overrun, ceil, max, carry-over


def test_overrun_charged_in_month_of_end(tmp_path: Path):
    k = contract(
        "K",
        repair_deadline={"urban": "4h", "rural": "150m"},
        repair_overrun={"per_started_hour": "5.00", "max_per_incident": "25.00"},
    )
    two = range(62 * 24 + 1)
    rows = reach("C1", two, fails=range(740, 750))  # down [07-31 20:00, 08-01 06:00) = 10h
    rows += reach("C2", two, fails=range(800, 805))  # rural, down 5h in August
    devs = [cam("C1", 1), cam("C2", 2, site="S2")]
    case = Case(tmp_path, [SITE_U, SITE_R], devs, [k], [], rows)
    inv, cs, ex, probes = case.write()
    both = compute_statements(inv, cs, ex, probes, [("K", "2025-07"), ("K", "2025-08")])
    jul, aug = both[("K", "2025-07")], both[("K", "2025-08")]
    (o,) = outs(jul, "C1")
    assert (o["counted_s"], o["counted_total_s"], o["overrun_hours"], o["deduction"]) == (
        4 * H,
        10 * H,
        0,
        "0.00",
    )
    assert o["end"] == at(750)
    assert lines(jul, "repair_overrun") == []
    (o,) = outs(aug, "C1")  # state carried into August: down from 00:00
    assert (o["counted_s"], o["counted_total_s"], o["overrun_hours"], o["deduction"]) == (
        6 * H,
        10 * H,
        6,
        "25.00",
    )
    (o2,) = outs(aug, "C2")  # 5h - 2.5h = 2.5h -> 3 started hours
    assert (o2["overrun_hours"], o2["deduction"]) == (3, "15.00")
    assert dev(aug, "C1")["down_s"] == 6 * H
    assert dev(aug, "C1")["deduction"] == "25.00"
    assert aug["deduction_total"] == "40.00"
    assert aug["payable"] == "160.00"


# ------------------------------------------------------------------------------------ video quality


def test_quality_degraded_and_down_wins(tmp_path: Path):
    k = contract("K", degrade_after=2)
    rows = reach("C1", MONTH, fails={30, 31, 32})
    # 10: single defect (< degrade_after); 20-22 defective (21 without a defect list) -> degraded [20,23);
    # 29-35 defective -> degraded [29, 36) but down [30, 33) wins; 743-744 defective -> degraded after.
    bad = {10, 20, 21, 22, *range(29, 36), 743, 744}
    rows += video("C1", MONTH, bad=bad, no_defect_list={21})
    st = run(Case(tmp_path, [SITE_U], [cam("C1", 1, stream="rtsp://x")], [k], [], rows), "K")
    d = dev(st, "C1")
    assert d["down_s"] == 3 * H
    assert d["degraded_s"] == (3 + 1 + 3 + 1) * H
    assert st["rates"]["online_rate"] == 1 - F(3 * H, JULY_S)
    assert st["rates"]["intact_rate"] == 1 - F(11 * H, JULY_S)
    assert d["availability"] == 1 - F(3 * H, JULY_S)  # degraded time is available
    (o,) = outs(st, "C1")
    assert (o["start"], o["end"]) == (at(30), at(33))
    assert o["evidence"]["recovered"] == at(33)  # recovered into `degraded`


# ------------------------------------------------------------------ causes: exclusions and upstream


@pytest.mark.parametrize("upstream_counts", [False, True])
def test_causes_upstream_grace_and_exclusions(tmp_path: Path, upstream_counts: bool):
    k = contract(
        "K",
        down_after=1,
        up_after=1,
        upstream_grace="90m",
        upstream_counts=upstream_counts,
        exclusions=["maintenance", "power"],
    )
    devs = [
        {"id": "L", "kind": "link", "address": "127.0.10.1", "site": "S1", "contract": "K"},
        {"id": "SW", "kind": "switch", "address": "127.0.20.1", "site": "S1", "contract": "K", "parent": "L"},
        cam("C", 1, parent="SW"),
        cam("C2", 2, parent="SW"),
    ]
    rows = reach("L", MONTH, fails={12, 13})  # down [12, 14)
    rows += reach("SW", MONTH, fails=range(10, 15))  # down [10, 15)
    rows += reach("C", MONTH, fails=range(10, 17))  # down [10, 17)
    rows += reach("C2", MONTH, fails={15, 16})  # down [15, 17): starts when SW recovers
    ex = [
        {
            "id": "EX-A",
            "category": "maintenance",
            "scope": {"sites": ["S1"]},
            "start": at(10),
            "end": at(11),
            "reason": "r",
            "status": "approved",
            "approved_by": "x",
        },
        {
            "id": "EX-B",
            "category": "power",
            "scope": {"devices": ["C"]},
            "start": at(10.5),
            "end": at(12),
            "reason": "r",
            "status": "approved",
            "approved_by": "x",
        },
        {
            "id": "EX-C",
            "category": "fiber_cut",
            "scope": {"devices": ["C"]},
            "start": at(16),
            "end": at(17),
            "reason": "r",
            "status": "approved",
            "approved_by": "x",
        },  # not honoured by the contract
        {
            "id": "EX-D",
            "category": "power",
            "scope": {"devices": ["C"]},
            "start": at(16),
            "end": at(17),
            "reason": "r",
            "status": "proposed",
        },
        {
            "id": "EX-E",
            "category": "customer",
            "scope": {"contracts": ["K"]},
            "start": at(0),
            "end": at(1),
            "reason": "r",
            "status": "rejected",
        },
        {
            "id": "EX-F",
            "category": "maintenance",
            "scope": {"sites": ["S1"]},
            "start": at(-480),
            "end": at(-470),
            "reason": "r",
            "status": "approved",
            "approved_by": "x",
        },  # June: not listed
        {
            "id": "EX-G",
            "category": "maintenance",
            "scope": {"devices": ["ZZ"]},
            "start": at(1),
            "end": at(2),
            "reason": "r",
            "status": "approved",
            "approved_by": "x",
        },  # covers no device: not listed
        {
            "id": "EX-H",
            "category": "maintenance",
            "scope": {"sites": ["S1"]},
            "start": at(742),
            "end": at(746),
            "reason": "r",
            "status": "approved",
            "approved_by": "x",
        },  # crosses into August
    ]
    st = run(Case(tmp_path, [SITE_U], devs, [k], ex, rows), "K")
    (ol,) = outs(st, "L")
    assert ol["causes"] == {"device": 2 * H}
    (osw,) = outs(st, "SW")
    # [10,11) excluded; [11,12) device; [12,14) L down; [14,15) L recovered < 90m ago
    assert osw["causes"] == {"excluded:maintenance": H, "device": H, "upstream:L": 3 * H}
    (oc,) = outs(st, "C")
    # [10,11) EX-A first in file order; [11,12) EX-B; [12,15) SW down (nearest, though L is down too);
    # [15,16:30) SW recovered < 90m ago; [16:30,17) device (EX-C unhonoured, EX-D proposed)
    assert oc["causes"] == {
        "excluded:maintenance": H,
        "excluded:power": H,
        "upstream:SW": F(9, 2) * H,
        "device": H // 2,
    }
    (oc2,) = outs(st, "C2")  # its outage starts when SW's ends: no overlap, no grace
    assert oc2["causes"] == {"device": 2 * H}
    if upstream_counts:
        assert oc["counted_s"] == 5 * H
        assert dev(st, "C")["down_s"] == 5 * H
        assert dev(st, "SW")["down_s"] == 4 * H
    else:
        assert oc["counted_s"] == H // 2
        assert dev(st, "C")["down_s"] == H // 2
        assert dev(st, "SW")["down_s"] == H
    assert dev(st, "C2")["down_s"] == 2 * H
    assert dev(st, "C")["excluded_s"] == 2 * H + 2 * H  # [10,12) and EX-H's July part
    assert dev(st, "SW")["excluded_s"] == H + 2 * H
    assert st["exclusions"] == [
        {"id": "EX-A", "honoured": True, "excluded_s": H},
        {"id": "EX-B", "honoured": True, "excluded_s": 3 * H // 2},
        {"id": "EX-C", "honoured": False, "excluded_s": 0},
        {"id": "EX-D", "honoured": False, "excluded_s": 0},
        {"id": "EX-E", "honoured": False, "excluded_s": 0},
        {"id": "EX-H", "honoured": True, "excluded_s": 2 * H},
    ]
    both = F(2 * H + (5 * H if upstream_counts else H // 2))  # C2 + C
    assert st["rates"]["online_rate"] == 1 - both / (2 * JULY_S - 4 * H - 3 * H)


# ------------------------------------------------------------------- service window, fees, prorate


def test_service_window_fees_and_prorate(tmp_path: Path):
    k = contract(
        "K",
        fees={"camera": "92.29", "switch": "0", "link": "0"},
        repair_deadline={"urban": "4h", "rural": "1h"},
    )
    k2 = contract("K2", fees={"camera": "0.125", "switch": "0", "link": "0"}, prorate=False)
    devs = [
        cam("C1", 1, channels=2, in_service="2025-07-11"),
        cam("C2", 2, out_of_service="2025-07-01"),
        cam("C3", 3, in_service="2025-08-05"),
        cam("C4", 4, site="S2", out_of_service="2025-07-20T12:00:00+08:00"),
        cam("E1", 5, contract="K2", in_service="2025-07-20"),
    ]
    rows = reach("C1", MONTH, fails=range(238, 243))  # down [07-10 22:00, 07-11 03:00)
    rows += reach("C2", MONTH, fails=range(100))
    rows += reach("C4", MONTH, fails=range(466, 745))  # down from 07-20 10:00, out of service at 12:00
    st = run(Case(tmp_path, [SITE_U, SITE_R], devs, [k, k2], [], rows), "K")
    assert [d["id"] for d in st["devices"]] == ["C1", "C4"]  # C2, C3: S = 0
    c1, c4 = dev(st, "C1"), dev(st, "C4")
    assert c1["scheduled_s"] == 504 * H
    assert c1["fee"] == "125.04"  # 2 x 92.29 x 504/744 = 125.038...
    (o1,) = outs(st, "C1")
    assert (o1["start"], o1["end"], o1["counted_s"]) == (at(240), at(243), 3 * H)
    assert o1["evidence"] == {"first_failure": at(240), "last_failure": at(242), "recovered": at(243)}
    assert c4["scheduled_s"] == 468 * H
    assert c4["fee"] == "58.05"  # 92.29 x 468/744 = 58.053...
    (o4,) = outs(st, "C4")
    assert (o4["start"], o4["end"], o4["counted_s"]) == (at(466), at(468), 2 * H)
    assert o4["evidence"] == {"first_failure": at(466), "last_failure": at(467), "recovered": None}
    assert (o4["overrun_hours"], o4["deduction"]) == (1, "50.00")  # closed at out_of_service
    assert st["fee_total"] == "183.09"
    st2 = run(Case(tmp_path / "b", [SITE_U, SITE_R], devs, [k, k2], [], rows), "K2")
    (e1,) = st2["devices"]
    assert e1["fee"] == "0.13"  # not prorated, half up
    assert e1["availability"] == 1  # never probed: unknown, counts as up
    assert e1["scheduled_s"] == 12 * 86400


# ------------------------------------------------------------------------------------- tiers


def test_tiers_strict_and_zero_amount_line(tmp_path: Path):
    k = contract(
        "K",
        down_after=1,
        up_after=1,
        availability_tiers=[{"below": 0.99, "deduct": 0.5}, {"below": 0.991, "deduct": 0.1}],
    )
    devs = [
        cam("C1", 1, in_service="2025-07-27T20:00:00+08:00"),  # S = 100h
        {"id": "SW", "kind": "switch", "address": "127.0.20.1", "site": "S1", "contract": "K"},
    ]
    rows = reach("C1", MONTH, fails={700}) + reach("SW", MONTH, fails=range(700, 711))
    st = run(Case(tmp_path, [SITE_U], devs, [k], [], rows), "K")
    c1, sw = dev(st, "C1"), dev(st, "SW")
    assert c1["availability"] == F(99, 100)  # exactly 0.99: only the 0.991 tier matches
    assert c1["fee"] == "13.44"
    assert c1["deduction"] == "1.34"
    assert sw["availability"] == 1 - F(11 * H, JULY_S)  # 0.985: both match, largest deduct
    assert [(ln["rule"], ln["device"], ln["amount"]) for ln in lines(st, "availability_tier")] == [
        ("availability_tier", "C1", "1.34"),
        ("availability_tier", "SW", "0.00"),
    ]


# ------------------------------------------------------------------ generated cases: invariants


def _streaming_machine(results: list[bool], down_after: int, up_after: int) -> list[bool]:
    """A second, streaming formulation of the reachability machine (True = down)."""
    out: list[bool] = []
    down = False
    run_start = 0
    for i, ok in enumerate(results):
        if i > 0 and ok != results[i - 1]:
            run_start = i
        out.append(down)
        length = i - run_start + 1
        if not ok and not down and length == down_after:
            down = True
            out[run_start:] = [True] * length  # back-dated to the first failure of the run
        elif ok and down and length == up_after:
            down = False
            out[run_start:] = [False] * length
    return out


def test_run_machine_matches_streaming_formulation():
    import random

    from tests.reference.sla_reference import machine

    rng = random.Random(7)
    for _ in range(300):
        res = [rng.random() < 0.6 for _ in range(rng.randint(0, 40))]
        da, ua = rng.randint(1, 4), rng.randint(1, 4)
        assert machine(res, False, da, ua, true_on=False) == _streaming_machine(res, da, ua)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3])
def test_generated_case_invariants(tmp_path: Path, seed: int):
    import csv
    from datetime import datetime

    import yaml

    from tests.reference.generate import generate_case

    info = generate_case(seed, tmp_path / "case")
    again = generate_case(seed, tmp_path / "again")
    assert (info.out_dir / "probes.csv").read_bytes() == (again.out_dir / "probes.csv").read_bytes()
    # importing rows twice changes nothing
    dup = tmp_path / "dup.csv"
    with open(info.probes[0], newline="") as fh:
        rows = list(csv.reader(fh))
    with open(dup, "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *rows[1:2000]])
    res = compute_statements(info.inventory, info.contracts, info.exclusions, info.probes, info.interesting)
    res2 = compute_statements(
        info.inventory, info.contracts, info.exclusions, [*info.probes, dup], info.interesting[:1]
    )
    assert res2[info.interesting[0]] == res[info.interesting[0]]
    for (cid, _mo), st in res.items():
        contract_yaml = next(p for p in info.contracts if p.stem == cid)
        uca = (yaml.safe_load(contract_yaml.read_text())["sla"]).get("unknown_counts_as", "up")
        fees = sum(F(d["fee"]) for d in st["devices"])
        assert money_str(fees) == st["fee_total"]
        ded = sum(F(ln["amount"]) for ln in st["deductions"])
        assert money_str(ded) == st["deduction_total"]
        assert F(st["payable"]) == F(st["fee_total"]) - ded
        caps = lines(st, "cap")
        if caps:
            assert F(caps[0]["amount"]) < 0
        for d in st["devices"]:
            S, X, D, G = d["scheduled_s"], d["excluded_s"], d["down_s"], d["degraded_s"]
            assert S > 0
            assert 0 <= X <= S
            assert 0 <= D
            assert 0 <= G
            assert D + G <= S - X
            own = outs(st, d["id"])
            counted = sum(o["counted_s"] for o in own)
            if uca != "down":
                assert counted == D
            else:
                assert counted <= D
            for o in own:
                assert o["counted_total_s"] >= o["counted_s"]
                if uca != "down":  # (with it, the counted seconds of the gaps an outage spans have no cause)
                    assert sum(o["causes"].values()) >= o["counted_s"]
                ev = o["evidence"]
                if ev["first_failure"] is not None:
                    assert (
                        datetime.fromisoformat(o["start"])
                        <= datetime.fromisoformat(ev["first_failure"])
                        <= datetime.fromisoformat(ev["last_failure"])
                    )
                if ev["recovered"] is not None:
                    assert ev["recovered"] == o["end"]
            per_dev = sum(F(ln["amount"]) for ln in st["deductions"] if ln.get("device") == d["id"])
            assert money_str(per_dev) == d["deduction"]


# ------------------------------------------------------- rule kinds seen in tenders (sla.md §6.5, §6.6)


@pytest.mark.parametrize(("count", "points", "amount"), [("started", 5, "11.11"), ("whole", 4, "8.89")])
def test_per_point_shortfall(tmp_path: Path, count: str, points: int, amount: str):
    # fails 100..139: down [100, 140) → D = 40 h; online = 1 - 40/744 = 0.946236; target 0.99:
    # (0.99 - 0.946236) × 100 = 4.376 points → started 5, whole 4; per point 1/45 of 100.00:
    # 5/45 × 100 = 11.111 → 11.11, 4/45 × 100 = 8.888 → 8.89. No flat deduct, no line for it.
    k = contract(
        "K",
        repair_deadline={},
        fleet_kpis={"online_rate": {"target": 0.99, "per_point": {"deduct": "1/45", "points": count}}},
    )
    rows = reach("C1", MONTH, fails=set(range(100, 140)))
    st = run(Case(tmp_path, [SITE_U], [cam("C1", 1)], [k], [], rows), "K")
    assert st["rates"]["online_rate"] == 1 - F(40, 744)
    assert st["deductions"] == [
        {"rule": "kpi_shortfall", "kpi": "online_rate", "points": points, "amount": amount}
    ]
    assert (st["deduction_total"], st["payable"]) == (amount, f"{100 - float(amount):.2f}")


def test_score_card(tmp_path: Path):
    # C1 (urban) down [100, 110) = 10 h; C2 (rural, 2 channels) down [200, 205) = 5 h; C3 clean.
    # fault_hours over 8h, 2 points per channel: C1 only (10 h > 8 h) → 2; repair_overrun 3 per outage
    # past its deadline: C1 10 h > 4 h (6 started hours), C2 5 h ≤ 8 h → 3; missed_inspection 5:
    # one dated in July (another in August) → 5. Score 100 - 10 = 90 → band 90 pays 0.9 →
    # fee total 100 + 200 + 100 = 400.00 × 0.1 = 40.00.
    card = {
        "fault_hours": {"over": "8h", "points": 2},
        "repair_overrun": {"points": 3},
        "missed_inspection": {"points": 5},
        "pay": [{"at_least": 95, "pay": 1}, {"at_least": 90, "pay": 0.9}, {"at_least": 0, "pay": 0.5}],
    }
    k = contract("K", repair_overrun=None, score_card=card)
    devices = [cam("C1", 1), cam("C2", 2, site="S2", channels=2), cam("C3", 3)]
    rows = (
        reach("C1", MONTH, fails=set(range(100, 110)))
        + reach("C2", MONTH, fails=set(range(200, 205)))
        + reach("C3", MONTH)
    )
    inv, cs, ex, probes = Case(tmp_path, [SITE_U, SITE_R], devices, [k], [], rows).write()
    inspections = tmp_path / "inspections.yaml"
    inspections.write_text(
        "- {id: MI-1, contract: K, date: 2025-07-15, reason: x, entered_by: ops}\n"
        "- {id: MI-2, contract: K, date: 2025-08-01, reason: x, entered_by: ops}\n",
        encoding="utf-8",
    )
    st = compute_statement(inv, cs, ex, probes, "K", "2025-07", inspections)
    assert st["deductions"] == [
        {
            "rule": "score_card",
            "score": 90,
            "pay": F(9, 10),
            "points_lost": {"repair_overrun": 3, "fault_hours": 2, "missed_inspection": 5},
            "amount": "40.00",
        }
    ]
    assert [(o["device"], o["overrun_hours"], o["deduction"]) for o in st["outages"]] == [
        ("C1", 6, "0.00"),
        ("C2", 0, "0.00"),
    ]
    assert (st["fee_total"], st["deduction_total"], st["payable"]) == ("400.00", "40.00", "360.00")
