"""Golden statements for the rule kinds seen in tenders (docs/sla.md §6.5 per-point shortfall,
§6.6 score card): small cases whose every figure is computed by hand, the arithmetic beside it.

Conventions as in test_golden.py: July 2025, Asia/Shanghai, |P| = 2,678,400 s; "up all month" is
icmp every 300 s; an outage [a, b) is failures every 60 s from a and successes from b, so D = b - a.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.billing.golden_helpers import (
    HOUR,
    JULY_S,
    NO_CAP,
    NO_OVERRUN,
    NO_TIERS,
    at,
    cam,
    contract,
    device,
    down_between,
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
from tests.billing.harness import statement_of

JUL1 = at(7, 1)
AUG1 = at(8, 1)
FEE = {"camera": "1234.57", "switch": "0", "link": "0"}


def one_outage(dev_id: str, start: datetime, seconds: int) -> str:
    return down_between(dev_id, start, start + timedelta(seconds=seconds), JUL1, AUG1)


def line(doc: dict[str, Any], rule: str) -> dict[str, Any]:
    [found] = [d for d in doc["deductions"] if d["rule"] == rule]
    return found


# --- §6.5 per-point shortfall ---------------------------------------------------------------------


def per_point(target: float, flat: float | None = None, **terms: Any) -> dict[str, Any]:
    """fleet_kpis with online_rate {target, per_point: terms} (and the flat `deduct` when given)."""
    kpi: dict[str, Any] = {"target": target, "per_point": terms}
    if flat is not None:
        kpi["deduct"] = flat
    return {"online_rate": kpi}


@pytest.mark.parametrize(
    ("down_s", "points", "started", "whole"),
    [
        # D = 26,784 = 1 % of |P| → online 0.99 = the target: no shortfall, no line either way
        pytest.param(26_784, (0, 0), None, None, id="at-target"),
        # D = 26,785 → 0.98999963: shortfall (0.99 - 0.98999963) × 100 = 0.0000373 points:
        # started ⌈⌉ = 1 → 1234.57 × 0.05 × 1 = 61.7285 → 61.73; whole ⌊⌋ = 0 → no line
        pytest.param(26_785, (1, 0), "61.73", None, id="a-hair-below"),
        # D = 40,176 = 1.5 % → 0.985 exactly: 0.5 points → started 1 (61.73), whole 0
        pytest.param(40_176, (1, 0), "61.73", None, id="half-a-point"),
        # D = 53,568 = 2 % → 0.98 exactly: 1 point, started and whole alike → 61.73 both
        pytest.param(53_568, (1, 1), "61.73", "61.73", id="one-whole-point"),
        # D = 53,569 → 0.97999996: 1.0000373 points → started 2: 1234.57 × 0.10 = 123.457 → 123.46;
        # whole 1 → 61.73
        pytest.param(53_569, (2, 1), "123.46", "61.73", id="just-past-one-point"),
        # D = 174,096 = 6.5 % → 0.935: 5.5 points → started 6: 1234.57 × 0.30 = 370.371 → 370.37;
        # whole 5: 1234.57 × 0.25 = 308.6425 → 308.64
        pytest.param(174_096, (6, 5), "370.37", "308.64", id="several-points"),
    ],
)
def test_per_point_started_and_whole(
    tmp_path: Path, down_s: int, points: tuple[int, int], started: str | None, whole: str | None
) -> None:
    for count, want, n in (("started", started, points[0]), ("whole", whole, points[1])):
        text = contract(
            fees=FEE,
            fleet_kpis=per_point(0.99, deduct="0.05", points=count),
            **NO_TIERS,
            **NO_OVERRUN,
            **NO_CAP,
        )
        doc = run(
            tmp_path / count,
            inventory(cam("CAM1", 1)),
            one_outage("CAM1", at(7, 10), down_s),
            contract_text=text,
        )
        assert doc["rates"]["online_rate"] == pytest.approx(1 - down_s / JULY_S, abs=1e-12)
        if want is None:
            assert doc["deductions"] == [], count
            assert totals(doc) == ("1234.57", "0.00", "1234.57")
            continue
        shortfall = line(doc, "kpi_shortfall")
        assert (shortfall["kpi"], shortfall["points"], shortfall["amount"]) == ("online_rate", n, want), count
        assert doc["deductions"] == [shortfall]  # no flat line: the KPI has no `deduct`
        assert totals(doc) == ("1234.57", want, f"{1234.57 - float(want):.2f}")


def test_a_ratio_share_beside_the_flat_deduct(tmp_path: Path) -> None:
    """The tender's 每低于1个百分点扣除1/45: D = 241,056 s = 9 % of |P| → online 0.91 exactly, 4 points
    below 0.95. Flat: 1234.57 × 0.05 = 61.7285 → 61.73. Per point: 1234.57 × 4/45 = 4938.28 / 45
    = 109.7395… → 109.74 (0.0222 per point would give 109.63: the ratio is kept exact)."""
    text = contract(
        fees=FEE, fleet_kpis=per_point(0.95, flat=0.05, deduct="1/45"), **NO_TIERS, **NO_OVERRUN, **NO_CAP
    )
    doc = run(tmp_path, inventory(cam("CAM1", 1)), one_outage("CAM1", at(7, 10), 241_056), contract_text=text)
    assert lines(doc) == [("fleet_kpi", "online_rate", "61.73"), ("kpi_shortfall", "online_rate", "109.74")]
    assert [d["rule"] for d in doc["deductions"]] == ["fleet_kpi", "kpi_shortfall"]  # flat first
    assert line(doc, "kpi_shortfall")["reason"] == (
        "online_rate 0.9100 < 0.95: 4 started points × 1/45 of the fee total 1234.57"
    )
    # 61.73 + 109.74 = 171.47; payable 1234.57 - 171.47 = 1063.10
    assert totals(doc) == ("1234.57", "171.47", "1063.10")


def test_max_bounds_the_line_and_the_cap_bounds_the_total(tmp_path: Path) -> None:
    """Same month, max 0.08: 4/45 = 0.0888… > 0.08 → 1234.57 × 0.08 = 98.7656 → 98.77. With cap 0.10:
    limit 1234.57 × 0.10 = 123.457 → 123.46; lines 61.73 + 98.77 = 160.50 > 123.46 → cap -37.04."""
    kpis = per_point(0.95, flat=0.05, deduct="1/45", max=0.08)
    text = contract(fees=FEE, fleet_kpis=kpis, cap=0.10, **NO_TIERS, **NO_OVERRUN)
    doc = run(tmp_path, inventory(cam("CAM1", 1)), one_outage("CAM1", at(7, 10), 241_056), contract_text=text)
    assert lines(doc) == [
        ("cap", None, "-37.04"),
        ("fleet_kpi", "online_rate", "61.73"),
        ("kpi_shortfall", "online_rate", "98.77"),
    ]
    assert line(doc, "kpi_shortfall")["reason"].endswith("of the fee total 1234.57, at most 8%")
    assert totals(doc) == ("1234.57", "123.46", "1111.11")


def test_per_point_on_the_intact_rate(tmp_path: Path) -> None:
    """A stream camera up all month, its picture black 10 July 00:00 → 12 July 04:30 (G = 52h30m
    = 189,000 s): intact = 1 - 189,000 / 2,678,400 = 0.929435…, online 1. Target 0.95, whole points
    at 0.03: (0.95 - 0.929435) × 100 = 2.0564 → 2 points → 1234.57 × 0.06 = 74.0742 → 74.07."""
    stream = cam("CAM1", 1, stream="rtsp://10.0.1.1:8554/main")
    plan = [(JUL1, 1, 900), (at(7, 10), 0, 900), (at(7, 12, 4, 30), 1, 900)]
    kpis = {"intact_rate": {"target": 0.95, "per_point": {"deduct": 0.03, "points": "whole"}}}
    text = contract(fees=FEE, fleet_kpis=kpis, **NO_TIERS, **NO_OVERRUN, **NO_CAP)
    doc = run(
        tmp_path,
        inventory(stream),
        up_all("CAM1", JUL1, AUG1) + video("CAM1", plan, AUG1),
        contract_text=text,
    )
    assert device(doc, "CAM1")["degraded_s"] == 189_000
    assert lines(doc) == [("kpi_shortfall", "intact_rate", "74.07")]
    assert line(doc, "kpi_shortfall")["points"] == 2


# --- §6.6 score card -------------------------------------------------------------------------------

CARD: dict[str, Any] = {
    "fault_hours": {"over": "8h", "points": 1},
    "repair_overrun": {"points": 2},
    "missed_inspection": {"points": 5},
    "pay": [
        {"at_least": 95, "pay": "1.00"},
        {"at_least": 90, "pay": "0.95"},
        {"at_least": 85, "pay": "0.925"},
        {"at_least": 80, "pay": "0.85"},
        {"at_least": 0, "pay": "0.70"},
    ],
}
FEE_CARD = {"camera": "123.45", "switch": "0", "link": "0"}


def card_contract(card: dict[str, Any] | None = None, **sla: Any) -> str:
    """No tiers and no overrun money (the card judges those causes), no KPIs, no cap, unless told."""
    terms: dict[str, Any] = {
        "availability_tiers": [],
        "repair_overrun": None,
        "fleet_kpis": {},
        "cap": None,
        "score_card": card or CARD,
    }
    terms.update(sla)
    return contract(fees=FEE_CARD, **terms)


def missed(mi_id: str, day: str, contract_id: str = "C1", **extra: Any) -> dict[str, Any]:
    return {
        "id": mi_id,
        "contract": contract_id,
        "date": day,
        "reason": "未巡检",
        "entered_by": "ops-lead",
        **extra,
    }


THREE_CAMERAS = inventory(cam("CAM1", 1), cam("CAM2", 2, site="S2", channels=2), cam("CAM3", 3))


def three_cameras_month() -> str:
    """CAM1 (urban, 4h deadline) down 9h on 10 July; CAM2 (rural, 8h, 2 channels) down 8h on 12 July
    and 1h on 20 July; CAM3 up all month."""
    cam2 = [(at(7, 12, 6), at(7, 12, 14)), (at(7, 20, 6), at(7, 20, 7))]
    return (
        one_outage("CAM1", at(7, 10, 6), 9 * HOUR)
        + reach("CAM2", outage_plan(JUL1, AUG1, cam2), AUG1)
        + up_all("CAM3", JUL1, AUG1)
    )


def test_score_card(tmp_path: Path) -> None:
    """Points lost:
    - fault_hours (more than 8h of D): CAM1 9h → 1 × 1 channel = 1; CAM2 8h + 1h = 9h → 1 × 2 channels
      = 2 (its time adds up over outages); CAM3 0 → 3 points;
    - repair_overrun: CAM1's 9h outage is 5h past urban 4h → 2 points; CAM2's 8h and 1h outages are
      not past rural 8h → 2 points;
    - missed_inspection: MI-1 (15 July) and MI-3 (31 July) → 2 × 5 = 10; MI-2 (1 August) is August's.
    score = 100 - 3 - 2 - 10 = 85 → band at_least 85 pays 92.5 %.
    Fees 123.45 + 2 × 123.45 + 123.45 = 493.80; line = 493.80 × (1 - 0.925) = 37.035 → 37.04 (half up);
    payable 493.80 - 37.04 = 456.76."""
    inspections = [
        missed("MI-1", "2025-07-15", site="S1"),
        missed("MI-2", "2025-08-01"),
        missed("MI-3", "2025-07-31"),
    ]
    doc = run(
        tmp_path, THREE_CAMERAS, three_cameras_month(), contract_text=card_contract(), inspections=inspections
    )
    assert totals(doc) == ("493.80", "37.04", "456.76")
    score = line(doc, "score_card")
    assert doc["deductions"] == [score]
    assert (score["score"], score["pay"], score["amount"]) == ("85", "0.925", "37.04")
    assert score["points_lost"] == {"fault_hours": "3", "repair_overrun": "2", "missed_inspection": "10"}
    assert score["reason"] == (
        "score 85 = 100 − 3 fault_hours (3 channels) − 2 repair_overrun (1 outage) − 10 missed_inspection "
        "(2 inspections): at least 85 pays 92.5% of the fee total 493.80"
    )
    assert score["items"] == [
        {"cause": "fault_hours", "device": "CAM1", "channels": 1, "fault_s": 9 * HOUR, "points": "1"},
        {"cause": "fault_hours", "device": "CAM2", "channels": 2, "fault_s": 9 * HOUR, "points": "2"},
        {
            "cause": "repair_overrun",
            "device": "CAM1",
            "outage_start": iso(at(7, 10, 6)),
            "overrun_hours": 5,
            "points": "2",
        },
        {
            "cause": "missed_inspection",
            "inspection": "MI-1",
            "date": "2025-07-15",
            "site": "S1",
            "points": "5",
        },
        {
            "cause": "missed_inspection",
            "inspection": "MI-3",
            "date": "2025-07-31",
            "site": None,
            "points": "5",
        },
    ]
    # the outage shows the hours the card scored, and no money of its own
    [o] = outages(doc, "CAM1")
    assert (o["overrun_hours"], o["deduction"]) == (5, "0.00")
    assert [(o["overrun_hours"], o["deduction"]) for o in outages(doc, "CAM2")] == [(0, "0.00"), (0, "0.00")]
    # the card's line is the contract's, not a device's
    assert [device(doc, d)["deduction"] for d in ("CAM1", "CAM2", "CAM3")] == ["0.00", "0.00", "0.00"]
    # August: MI-2 alone → 100 - 5 = 95 → pays 100 %: the line is there, at 0.00
    august = run(
        tmp_path / "aug",
        THREE_CAMERAS,
        three_cameras_month(),
        "2025-08",
        card_contract(),
        inspections=inspections,
    )
    assert (line(august, "score_card")["score"], line(august, "score_card")["amount"]) == ("95", "0.00")


@pytest.mark.parametrize(
    ("n", "score", "pay", "amount"),
    [
        # 0 missed: 100 → at least 95 → 100 % → 0.00
        pytest.param(0, "100", "1", "0.00", id="full-marks"),
        # 1 missed: 95, exactly a band's start → that band (95 → 100 %)
        pytest.param(1, "95", "1", "0.00", id="on-a-band-start"),
        # 2 missed: 90 → 95 % → 493.80 × 0.05 = 24.69
        pytest.param(2, "90", "0.95", "24.69", id="90"),
        # 5 missed: 75 → at least 0 → 70 % → 493.80 × 0.30 = 148.14
        pytest.param(5, "75", "0.7", "148.14", id="bottom-band"),
        # 25 missed: 100 - 125 < 0 → score 0 → 70 % → 148.14 (never below 0)
        pytest.param(25, "0", "0.7", "148.14", id="floored-at-0"),
    ],
)
def test_the_pay_bands(tmp_path: Path, n: int, score: str, pay: str, amount: str) -> None:
    card = {"missed_inspection": {"points": 5}, "pay": CARD["pay"]}
    inspections = [missed(f"MI-{i}", f"2025-07-{i + 1:02d}") for i in range(n)]
    probes = up_all("CAM1", JUL1, AUG1) + up_all("CAM2", JUL1, AUG1) + up_all("CAM3", JUL1, AUG1)
    doc = run(tmp_path, THREE_CAMERAS, probes, contract_text=card_contract(card), inspections=inspections)
    score_line = line(doc, "score_card")
    assert (score_line["score"], score_line["pay"], score_line["amount"]) == (score, pay, amount)
    assert score_line["points_lost"] == {"missed_inspection": str(5 * n)}
    if n == 25:
        assert score_line["reason"].startswith(
            "score 0: 100 − 125 missed_inspection (25 inspections) is below 0"
        )
    assert totals(doc) == ("493.80", amount, f"{493.80 - float(amount):.2f}")


@pytest.mark.parametrize(
    ("time", "points"),
    [
        # D = 7h, G = 2h: `down` counts 7h, not more than 8h → 0
        pytest.param("down", "0", id="down"),
        # `down_or_degraded` counts D + G = 9h > 8h → 1 point
        pytest.param("down_or_degraded", "1", id="down-or-degraded"),
    ],
)
def test_fault_time_with_or_without_degraded(tmp_path: Path, time: str, points: str) -> None:
    card = {"fault_hours": {"over": "8h", "points": 1, "time": time}, "pay": CARD["pay"]}
    stream = cam("CAM1", 1, stream="rtsp://10.0.1.1:8554/main")
    plan = [(JUL1, 1, 900), (at(7, 20, 10), 0, 900), (at(7, 20, 12), 1, 900)]  # black 10:00 → 12:00
    probes = one_outage("CAM1", at(7, 10, 6), 7 * HOUR) + video("CAM1", plan, AUG1)
    doc = run(tmp_path, inventory(stream), probes, contract_text=card_contract(card))
    assert (device(doc, "CAM1")["down_s"], device(doc, "CAM1")["degraded_s"]) == (7 * HOUR, 2 * HOUR)
    assert line(doc, "score_card")["points_lost"] == {"fault_hours": points}


def test_exactly_over_is_not_more(tmp_path: Path) -> None:
    """fault_hours counts time *more than* `over`: D = 8h exactly → nothing; over 0s → any D counts."""
    doc = run(
        tmp_path,
        inventory(cam("CAM1", 1)),
        one_outage("CAM1", at(7, 10, 6), 8 * HOUR),
        contract_text=card_contract(),
    )
    assert line(doc, "score_card")["points_lost"]["fault_hours"] == "0"
    card = {**CARD, "fault_hours": {"over": "0s", "points": "0.5"}}
    doc = run(
        tmp_path / "zero",
        inventory(cam("CAM1", 1)),
        one_outage("CAM1", at(7, 10, 6), 180),  # 3 failures: down 3 minutes
        contract_text=card_contract(card),
    )
    assert line(doc, "score_card")["points_lost"]["fault_hours"] == "0.5"
    assert line(doc, "score_card")["score"] == "99.5"


def test_kpis_and_the_cap_beside_the_score_card(tmp_path: Path) -> None:
    """The card judges faults, overruns and inspections; the fleet KPIs still apply, and the cap takes
    every line. Same month as test_score_card with 4 more missed inspections: 100 - 3 - 2 - 30 = 65
    → 70 % → 493.80 × 0.30 = 148.14. Online rate: ΣD = 9h + 9h = 64,800 over 3 × |P| = 8,035,200
    → 0.991935 < 0.995 → flat 493.80 × 0.05 = 24.69. Cap 0.30: limit 148.14; lines 24.69 + 148.14
    = 172.83 → cap -24.69; payable 493.80 - 148.14 = 345.66."""
    inspections = [missed(f"MI-{i}", f"2025-07-{i + 1:02d}") for i in range(6)]
    text = card_contract(fleet_kpis={"online_rate": {"target": 0.995, "deduct": 0.05}}, cap=0.30)
    doc = run(tmp_path, THREE_CAMERAS, three_cameras_month(), contract_text=text, inspections=inspections)
    assert doc["rates"]["online_rate"] == pytest.approx(1 - 64_800 / (3 * JULY_S), abs=1e-12)
    assert [d["rule"] for d in doc["deductions"]] == ["fleet_kpi", "score_card", "cap"]
    assert lines(doc) == [
        ("cap", None, "-24.69"),
        ("fleet_kpi", "online_rate", "24.69"),
        ("score_card", None, "148.14"),
    ]
    assert line(doc, "score_card")["score"] == "65"
    assert totals(doc) == ("493.80", "148.14", "345.66")


def test_inspections_change_nothing_for_a_contract_without_a_score_card(tmp_path: Path) -> None:
    """The classic contract's statement, hash included, is the same with or without an inspections
    file: its inputs take no missed inspection (docs/sla.md §6.6)."""
    probes = three_cameras_month()
    text = contract(fees=FEE_CARD)
    without = run(tmp_path / "a", THREE_CAMERAS, probes, contract_text=text)
    with_file = run(
        tmp_path / "b", THREE_CAMERAS, probes, contract_text=text, inspections=[missed("MI-1", "2025-07-15")]
    )
    assert with_file["hash"] == without["hash"]
    assert with_file["inputs_sha256"] == without["inputs_sha256"]
    assert "score_card" not in [d["rule"] for d in with_file["deductions"]]


def test_a_missed_inspection_entered_after_issue_makes_a_revision(tmp_path: Path) -> None:
    """Like an exclusion approved after the fact: the inspections file is read as it is now, so an
    inspection entered once July is issued reaches July, as a draft of revision 2."""
    probes = three_cameras_month()
    first = run(tmp_path, THREE_CAMERAS, probes, contract_text=card_contract(), inspections=[])
    assert line(first, "score_card")["score"] == "95"  # 100 - 3 - 2
    config = tmp_path / "slamon.yaml"
    issued = statement_of(config, "2025-07", issue=True)
    assert (issued["status"], issued["revision"]) == ("issued", 1)
    (tmp_path / "inspections.yaml").write_text(json.dumps([missed("MI-1", "2025-07-15")]), encoding="utf-8")
    again = statement_of(config, "2025-07")
    assert (again["status"], again["revision"], again["replaces"]) == ("draft", 2, issued["hash"])
    # 95 - 5 = 90 → 95 %: 493.80 × 0.05 = 24.69
    assert (line(again, "score_card")["score"], line(again, "score_card")["amount"]) == ("90", "24.69")
    # an inspection of another month does not touch July
    (tmp_path / "inspections.yaml").write_text(json.dumps([missed("MI-9", "2025-08-03")]), encoding="utf-8")
    assert statement_of(config, "2025-07")["hash"] == issued["hash"]
