"""SLA at risk, for the month in progress (pure): how much more can go wrong before money is lost.

Read off a month-to-date statement (statement.compute over the month so far) by the same rules the
statement charges by (deductions.py), so what pages ops and what the vendor is charged agree:

- a device's **tier margin**: the counted downtime it can still have this month before its
  availability, over the whole month's service window, falls below the next availability tier that
  would deduct more than the tier it is in now (SLA.md §6.1);
- an open outage's **repair time left**: its repair deadline (by its site's area) minus the counted
  downtime it has had so far, every month included; negative once overrun (§6.2);
- a contract's **KPI margin**: each fleet rate so far minus its target (§6.3).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from slamon.billing.periods import Period, service_window
from slamon.billing.rates import DeviceFigures
from slamon.model import Contract, DeviceId, Kpi, Micros, Site, SiteId, Tier, to_micros


@dataclass(frozen=True, slots=True)
class TierMargin:
    device: DeviceId
    seconds: Micros  # counted downtime left before the tier applies
    below: str  # the tier's threshold (as the contract writes it)


@dataclass(frozen=True, slots=True)
class RepairLeft:
    device: DeviceId
    outage_start: Micros
    left: Micros  # the deadline minus the counted downtime so far; negative once overrun
    area: str


def tier_margin(figures: DeviceFigures, whole_month: Period, tiers: Sequence[Tier]) -> TierMargin | None:
    """The downtime left before the next tier that deducts more; None when no tier is ahead (none
    set, or the largest applies already, or the device is not in service)."""
    start, end = service_window(figures.device, whole_month)
    basis = max(0, end - start) - figures.excluded  # S - X over the whole month, X so far
    if basis <= 0 or not tiers:
        return None
    projected = 1 - Fraction(figures.down, basis)
    applied = max((t.deduct for t in tiers if Fraction(t.below) > projected), default=None)
    ahead = [t for t in tiers if Fraction(t.below) <= projected and (applied is None or t.deduct > applied)]
    if not ahead:
        return None
    # the tier applies once availability < below, i.e. once D > (1 - below) × basis
    margins = [(int((1 - Fraction(t.below)) * basis) - figures.down, t) for t in ahead]
    left, tier = min(margins, key=lambda m: (m[0], m[1].below))
    return TierMargin(figures.device.id, max(0, left), str(tier.below))


def repair_left(
    figures: DeviceFigures, contract: Contract, sites: Mapping[SiteId, Site]
) -> Iterator[RepairLeft]:
    """For each open outage of the device: the time left before its repair deadline."""
    site = sites.get(figures.device.site)
    area = site.area if site is not None else None
    deadline = contract.sla.repair_deadline.get(area) if area is not None else None
    if deadline is None or area is None:
        return
    for o in figures.outages:
        if not o.closed:
            yield RepairLeft(figures.device.id, o.outage.start, to_micros(deadline) - o.counted_total, area)


def kpi_margins(rates: Mapping[Kpi, Fraction], contract: Contract) -> dict[Kpi, Fraction]:
    """Each fleet rate so far minus its target (negative: the KPI's deduction applies now)."""
    return {
        kpi: rates[kpi] - Fraction(target.target)
        for kpi, target in contract.sla.fleet_kpis.items()
        if kpi in rates
    }
