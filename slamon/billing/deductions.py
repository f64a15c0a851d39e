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
from slamon.model import HOUR, Contract, Device, DeviceId, Kpi, Micros, Tier, to_micros
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
class Line:
    """One deduction with its reason; `amount` is positive except for the cap adjustment."""

    rule: str  # availability_tier | repair_overrun | fleet_kpi | cap
    amount: Decimal
    reason: str
    device: DeviceId | None = None
    kpi: Kpi | None = None
    outage_start: Micros | None = None
    hours: int = 0


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
    if deadline is None or terms is None:
        return None
    over = counted_total - to_micros(deadline)
    if over <= 0:
        return None
    hours = -(-over // HOUR)
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


def kpi_lines(rates: Mapping[Kpi, Fraction], contract: Contract, fee_total: Decimal) -> list[Line]:
    lines = []
    for kpi in (Kpi.ONLINE_RATE, Kpi.INTACT_RATE):
        target = contract.sla.fleet_kpis.get(kpi)
        if target is not None and rates[kpi] < Fraction(target.target):
            lines.append(
                Line(
                    "fleet_kpi",
                    round_money(Fraction(fee_total) * Fraction(target.deduct)),
                    f"{kpi.value} {truncated(rates[kpi])} < {target.target}",
                    kpi=kpi,
                )
            )
    return lines


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
