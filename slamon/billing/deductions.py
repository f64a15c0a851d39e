"""Money (SLA.md §6): fees and deduction lines, in Decimal, rounded half up to 0.01 per line.

This is the only module that rounds money. Inputs are exact (Fractions of seconds, Decimals from
the contract); every line is rounded once; totals are sums of rounded lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

from slamon.billing.periods import Period
from slamon.canonical import share_text
from slamon.model import (
    HOUR,
    Contract,
    Device,
    DeviceId,
    FaultTime,
    Kpi,
    KpiTarget,
    Micros,
    MissedInspection,
    PayBand,
    PointCount,
    ScoreCard,
    ScoreCause,
    Tier,
    to_micros,
)
from slamon.units import format_duration

CENT = Decimal("0.01")


def round_money(value: Fraction | Decimal | int) -> Decimal:
    """Exactly round half up (away from zero) to 0.01."""
    x = Fraction(value) * 100
    sign = -1 if x < 0 else 1
    cents = math.floor(abs(x) + Fraction(1, 2))
    return (Decimal(sign * cents) / 100).quantize(CENT)


def truncated(rate: Fraction, places: int = 4) -> str:
    """A rate for a reason text, cut (not rounded) so it never shows as reaching a threshold it misses."""
    scale = 10**places
    return f"{Decimal(math.floor(rate * scale)) / scale:.{places}f}"


def device_fee(device: Device, contract: Contract, scheduled: Micros, period: Period) -> Decimal:
    """channels × fee per channel-month of its kind, prorated by S/|P| unless the contract says not."""
    full = Fraction(contract.fees[device.kind]) * device.channels
    if contract.prorate:
        return round_money(full * Fraction(scheduled, period.length))
    return round_money(full) if scheduled > 0 else Decimal("0.00")


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """One thing a score card took points off for: a channel's fault time, an outage past its
    repair deadline, a missed inspection."""

    cause: ScoreCause
    points: Decimal
    device: DeviceId | None = None
    channels: int = 0  # fault_hours: the device's channels, each losing the item's points
    fault: Micros = 0  # fault_hours: the device's fault time in the month
    outage_start: Micros | None = None  # repair_overrun
    hours: int = 0  # repair_overrun: started hours past the deadline
    inspection: MissedInspection | None = None


@dataclass(frozen=True, slots=True)
class Score:
    """A month's score card: 100 less the points lost (never below 0), and the band it falls in."""

    score: Decimal
    band: PayBand
    lost: Mapping[ScoreCause, Decimal]  # points by cause, every cause the card scores
    items: tuple[ScoreItem, ...]


@dataclass(frozen=True, slots=True)
class Line:
    """One deduction with its reason; `amount` is positive except for the cap adjustment."""

    rule: str  # availability_tier | repair_overrun | fleet_kpi | kpi_shortfall | score_card | cap
    amount: Decimal
    reason: str
    device: DeviceId | None = None
    kpi: Kpi | None = None
    outage_start: Micros | None = None
    hours: int = 0
    points: int = 0  # kpi_shortfall: the percentage points charged
    score: Score | None = None  # score_card


def tier_line(device: Device, fee: Decimal, availability: Fraction, tiers: Sequence[Tier]) -> Line | None:
    """Of the tiers whose threshold the availability is below, the largest deduction applies."""
    matching = [t for t in tiers if Fraction(t.below) > availability]
    if not matching:
        return None
    tier = max(matching, key=lambda t: (t.deduct, -t.below))
    return Line(
        "availability_tier",
        round_money(Fraction(fee) * Fraction(tier.deduct)),
        f"availability {truncated(availability)} < {tier.below}",
        device=device.id,
    )


def overrun_line(
    device: Device, area: str, outage_start: Micros, counted_total: Micros, contract: Contract
) -> Line | None:
    """Counted downtime past the repair deadline, charged per started hour up to a cap per incident."""
    deadline = contract.sla.repair_deadline.get(area)
    terms = contract.sla.repair_overrun
    hours = overrun_hours(area, counted_total, contract)
    if deadline is None or terms is None or hours == 0:
        return None
    amount = Fraction(terms.per_started_hour) * hours
    capped = terms.max_per_incident is not None and amount > Fraction(terms.max_per_incident)
    if capped:
        assert terms.max_per_incident is not None
        amount = Fraction(terms.max_per_incident)
    reason = (
        f"{format_duration(timedelta(microseconds=counted_total))} > {format_duration(deadline)} ({area}): "
        f"{hours} started hour{'s' if hours != 1 else ''}"
    )
    if capped:
        reason += f", capped at {terms.max_per_incident} per incident"
    return Line(
        "repair_overrun",
        round_money(amount),
        reason,
        device=device.id,
        outage_start=outage_start,
        hours=hours,
    )


def overrun_hours(area: str, counted_total: Micros, contract: Contract) -> int:
    """Started hours of an outage's counted downtime past its area's repair deadline (0: none)."""
    deadline = contract.sla.repair_deadline.get(area)
    if deadline is None:
        return 0
    over = counted_total - to_micros(deadline)
    return -(-over // HOUR) if over > 0 else 0


def kpi_lines(rates: Mapping[Kpi, Fraction], contract: Contract, fee_total: Decimal) -> list[Line]:
    """For each KPI below its target: the flat line (`deduct`), then the per-point line (`per_point`)."""
    lines = []
    for kpi in (Kpi.ONLINE_RATE, Kpi.INTACT_RATE):
        target = contract.sla.fleet_kpis.get(kpi)
        if target is None or rates[kpi] >= Fraction(target.target):
            continue
        if target.deduct is not None:
            lines.append(
                Line(
                    "fleet_kpi",
                    round_money(Fraction(fee_total) * Fraction(target.deduct)),
                    f"{kpi.value} {truncated(rates[kpi])} < {target.target}",
                    kpi=kpi,
                )
            )
        shortfall = shortfall_line(kpi, rates[kpi], target, fee_total)
        if shortfall is not None:
            lines.append(shortfall)
    return lines


def shortfall_points(rate: Fraction, target: Fraction, count: PointCount) -> int:
    """Percentage points `rate` is below `target`: every started one, or whole ones only."""
    if rate >= target:
        return 0
    points = (target - rate) * 100
    return math.ceil(points) if count is PointCount.STARTED else math.floor(points)


def shortfall_line(kpi: Kpi, rate: Fraction, target: KpiTarget, fee_total: Decimal) -> Line | None:
    """fee total × min(points × deduct, max) for a KPI below its target (docs/sla.md §6.5)."""
    terms = target.per_point
    if terms is None:
        return None
    points = shortfall_points(rate, Fraction(target.target), terms.points)
    if points == 0:
        return None
    share = points * terms.deduct
    limited = terms.limit is not None and share > Fraction(terms.limit)
    if terms.limit is not None and limited:
        share = Fraction(terms.limit)
    reason = (
        f"{kpi.value} {truncated(rate)} < {target.target}: {points} {terms.points.value} "
        f"point{'s' if points != 1 else ''} × {share_text(terms.deduct)} of the fee total {fee_total}"
    )
    if terms.limit is not None and limited:
        reason += f", at most {percent(terms.limit)}%"
    return Line("kpi_shortfall", round_money(Fraction(fee_total) * share), reason, kpi=kpi, points=points)


def percent(share: Decimal) -> str:
    return f"{(share * 100).normalize():f}"


def number(value: Decimal) -> str:
    """A score or points as people write them: 87, 87.5, 0.5."""
    return f"{value.normalize():f}"


def fault_item(card: ScoreCard, device: Device, down: Micros, degraded: Micros) -> ScoreItem | None:
    """A score card's fault_hours item for a device with more fault time than the card allows."""
    rule = card.fault_hours
    if rule is None:
        return None
    fault = down + (degraded if rule.time is FaultTime.DOWN_OR_DEGRADED else 0)
    if fault <= to_micros(rule.over):
        return None
    return ScoreItem(
        ScoreCause.FAULT_HOURS,
        rule.points * device.channels,
        device=device.id,
        channels=device.channels,
        fault=fault,
    )


def score_card_line(card: ScoreCard, items: Sequence[ScoreItem], fee_total: Decimal) -> Line:
    """100 less the points lost, floored at 0; the band the score falls in sets the share of the fee
    total paid, and the line withholds the rest (docs/sla.md §6.6). Always on the statement."""
    scored = [
        cause
        for cause, points in (
            (ScoreCause.FAULT_HOURS, card.fault_hours),
            (ScoreCause.REPAIR_OVERRUN, card.repair_overrun),
            (ScoreCause.MISSED_INSPECTION, card.missed_inspection),
        )
        if points is not None
    ]
    lost = {cause: sum((i.points for i in items if i.cause is cause), Decimal(0)) for cause in scored}
    total = sum(lost.values(), Decimal(0))
    score = max(Decimal(100) - total, Decimal(0))
    band = next(b for b in card.pay if b.at_least <= score)
    counts = {
        ScoreCause.FAULT_HOURS: _counted(
            sum(i.channels for i in items if i.cause is ScoreCause.FAULT_HOURS), "channel"
        ),
        ScoreCause.REPAIR_OVERRUN: _counted(
            sum(1 for i in items if i.cause is ScoreCause.REPAIR_OVERRUN), "outage"
        ),
        ScoreCause.MISSED_INSPECTION: _counted(
            sum(1 for i in items if i.cause is ScoreCause.MISSED_INSPECTION), "inspection"
        ),
    }
    parts = " − ".join(f"{number(lost[c])} {c.value} ({counts[c]})" for c in scored)
    head = f"score {number(score)} = 100 − {parts}" if total <= 100 else f"score 0: 100 − {parts} is below 0"
    reason = (
        f"{head}: at least {number(band.at_least)} pays {percent(band.pay)}% of the fee total {fee_total}"
    )
    return Line(
        "score_card",
        round_money(Fraction(fee_total) * (1 - Fraction(band.pay))),
        reason,
        score=Score(score=score, band=band, lost=lost, items=tuple(items)),
    )


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def cap_line(lines: Sequence[Line], contract: Contract, fee_total: Decimal) -> Line | None:
    """A negative line bringing the deductions down to `fee total × cap` when they exceed it."""
    cap = contract.sla.cap
    if cap is None:
        return None
    total = sum((line.amount for line in lines), Decimal("0.00"))
    limit = round_money(Fraction(fee_total) * Fraction(cap))
    if total <= limit:
        return None
    return Line(
        "cap",
        limit - total,
        f"deductions {total} exceed the cap of {(cap * 100).normalize():f}% of the fee total {fee_total} = {limit}",
    )
