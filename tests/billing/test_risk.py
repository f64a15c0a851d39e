"""SLA at risk (billing/risk.py): the downtime left before the next tier is exactly what the
statement's own tier rule (deductions.tier_line) allows, a microsecond more tips it; an open
outage's time left is its deadline minus its counted downtime; KPI margins are rate - target."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from slamon.billing.deductions import tier_line
from slamon.billing.periods import period_of
from slamon.billing.rates import DeviceFigures, OutageFigures
from slamon.billing.risk import kpi_margins, repair_left, tier_margin
from slamon.engine.timeline import Outage
from slamon.model import (
    HOUR,
    Contract,
    ContractId,
    Device,
    DeviceId,
    DeviceKind,
    Kpi,
    KpiTarget,
    RepairOverrun,
    Site,
    SiteId,
    SlaTerms,
    Tier,
)

JULY = period_of("2025-07", "Asia/Shanghai")
JULY_START = date(2025, 7, 1)
CAMERA = Device(DeviceId("C1"), DeviceKind.CAMERA, "127.0.0.1", SiteId("S1"), ContractId("K"))
TIERS = (Tier(Decimal("0.99"), Decimal("0.10")), Tier(Decimal("0.95"), Decimal("0.30")))


def figures(down: int, excluded: int = 0, outages: tuple[OutageFigures, ...] = ()) -> DeviceFigures:
    """A camera in service all July; S so far is a third of the month (the month is in progress)."""
    so_far = (JULY.end - JULY.start) // 3
    return DeviceFigures(CAMERA, (JULY.start, JULY.start + so_far), so_far, excluded, down, 0, 0, outages)


def deduct_at_month_end(down: int, excluded: int = 0) -> Decimal:
    """What the statement's tier rule charges a 100.00 fee if nothing more happens this month."""
    basis = JULY.end - JULY.start - excluded
    line = tier_line(CAMERA, Decimal("100.00"), 1 - Fraction(down, basis), TIERS)
    return Decimal("0.00") if line is None else line.amount


def test_the_margin_of_a_healthy_camera_is_to_the_first_tier() -> None:
    month = JULY.end - JULY.start  # 31 days
    margin = tier_margin(figures(down=HOUR), JULY, TIERS)
    assert margin is not None
    assert margin.below == "0.99"
    assert margin.seconds == month // 100 - HOUR  # 1 % of the month: 7 h 26 min 24 s, less the hour


def test_past_the_first_tier_the_margin_is_to_the_second_and_past_the_last_there_is_none() -> None:
    month = JULY.end - JULY.start
    margin = tier_margin(figures(down=month // 50), JULY, TIERS)  # 2 % down: the 0.99 tier applies
    assert margin is not None
    assert margin.below == "0.95"
    assert tier_margin(figures(down=month // 10), JULY, TIERS) is None
    assert tier_margin(figures(down=0), JULY, ()) is None


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5 * 86_400 * 10**6), st.integers(0, 86_400 * 10**6))
def test_the_margin_is_exactly_what_the_tier_rule_allows(down: int, excluded: int) -> None:
    margin = tier_margin(figures(down, excluded), JULY, TIERS)
    if margin is None:
        assert deduct_at_month_end(down, excluded) == Decimal("30.00")
        return
    now = deduct_at_month_end(down, excluded)
    assert deduct_at_month_end(down + margin.seconds, excluded) == now, "the margin itself costs nothing"
    assert deduct_at_month_end(down + margin.seconds + 1, excluded) > now, "a microsecond more does"


def test_repair_time_left_of_open_outages() -> None:
    outage = Outage(JULY.start + HOUR, JULY.start + 4 * HOUR, True, None, JULY.start + HOUR, None, None)
    open_ = OutageFigures(outage, (outage.start, outage.end), False, {"device": 3 * HOUR}, 3 * HOUR, 3 * HOUR)
    closed = OutageFigures(outage, (outage.start, outage.end), True, {"device": 3 * HOUR}, 3 * HOUR, 3 * HOUR)
    contract = Contract(
        ContractId("K"), "v", "CNY", "Asia/Shanghai", JULY_START, 12, {DeviceKind.CAMERA: Decimal(100)},
        sla=SlaTerms(repair_deadline={"urban": timedelta(hours=4)}, repair_overrun=RepairOverrun(Decimal(50))),
    )  # fmt: skip
    sites = {SiteId("S1"): Site(SiteId("S1"), "n", "D", "urban")}
    left = list(repair_left(figures(3 * HOUR, outages=(open_, closed)), contract, sites))
    assert [(r.device, r.left, r.area) for r in left] == [("C1", HOUR, "urban")]
    rural = {SiteId("S1"): Site(SiteId("S1"), "n", "D", "rural")}
    assert list(repair_left(figures(3 * HOUR, outages=(open_,)), contract, rural)) == [], "no deadline set"


def test_kpi_margins() -> None:
    contract = Contract(
        ContractId("K"), "v", "CNY", "Asia/Shanghai", JULY_START, 12, {DeviceKind.CAMERA: Decimal(100)},
        sla=SlaTerms(fleet_kpis={Kpi.ONLINE_RATE: KpiTarget(Decimal("0.98"), Decimal("0.05"))}),
    )  # fmt: skip
    rates = {Kpi.ONLINE_RATE: Fraction(97, 100), Kpi.INTACT_RATE: Fraction(96, 100)}
    assert kpi_margins(rates, contract) == {Kpi.ONLINE_RATE: Fraction(-1, 100)}
