"""Per-device seconds and availability, and the fleet's online and intact rates (SLA.md §5).

All time is exact integer microseconds and rates are exact fractions; nothing is rounded here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from slamon.billing.causes import Cover, attribute, counted
from slamon.billing.intervals import Interval, clip, intersect, measure, normalize, subtract
from slamon.billing.periods import Period, service_span, service_window
from slamon.engine.timeline import Outage, Timeline
from slamon.model import Contract, Device, DeviceId, DeviceState, Kpi, Micros, UnknownCountsAs

_FOREVER = 1 << 62


@dataclass(frozen=True, slots=True)
class OutageFigures:
    """One outage of a device as one month's statement sees it."""

    outage: Outage
    span: Interval  # the outage clipped to the device's service span
    closed: bool  # it has ended (recovery, a monitoring gap then a success, out of service)
    causes: Mapping[str, Micros]  # seconds per cause inside the month's service window (gaps have none)
    counted: Micros  # counted downtime inside the month's service window
    counted_total: Micros  # counted downtime of the whole outage, every month
    gaps: tuple[Interval, ...] = ()  # its monitoring gaps inside the service span (SLA.md §3)

    @property
    def end(self) -> Micros:
        return self.span[1]


@dataclass(frozen=True, slots=True)
class DeviceFigures:
    device: Device
    window: Interval  # W, the month's service window
    scheduled: Micros  # S
    excluded: Micros  # X
    down: Micros  # D
    degraded: Micros  # G
    unknown: Micros  # unknown time inside W (however the contract counts it)
    outages: tuple[OutageFigures, ...]

    @property
    def availability(self) -> Fraction:
        basis = self.scheduled - self.excluded
        return Fraction(1) if basis == 0 else 1 - Fraction(self.down, basis)


def segments(tl: Timeline, start: Micros, end: Micros) -> list[tuple[Micros, Micros, DeviceState]]:
    """The timeline's states over [start, end); unknown before its first transition."""
    out: list[tuple[Micros, Micros, DeviceState]] = []
    state, since = DeviceState.UNKNOWN, start
    for tr in tl.transitions:
        if tr.at >= end:
            break
        if tr.at > since:
            out.append((since, tr.at, state))
            since = tr.at
        state = tr.state
    if since < end:
        out.append((since, end, state))
    return out


def device_figures(
    device: Device,
    contract: Contract,
    period: Period,
    timeline: Timeline,
    covers: Sequence[Cover],
    ancestors: Sequence[tuple[DeviceId, Sequence[Outage]]],
) -> DeviceFigures | None:
    """S, X, D, G and the outages of one device in one month; None when it was not in service."""
    w_start, w_end = service_window(device, period)
    if w_end <= w_start:
        return None
    window = [(w_start, w_end)]
    sla = contract.sla
    segs = segments(timeline, w_start, w_end)
    unknown = normalize((a, b) for a, b, s in segs if s is DeviceState.UNKNOWN)
    degraded = normalize((a, b) for a, b, s in segs if s is DeviceState.DEGRADED)
    excl = normalize(iv for c in covers for iv in c.intervals)
    excluded = measure(intersect(excl, window))
    unknown_not_excluded = measure(subtract(unknown, excl))
    first, last = service_span(device)
    span_lo = -_FOREVER if first is None else first
    span_hi = _FOREVER if last is None else last

    outages: list[OutageFigures] = []
    down = 0
    gaps_count = sla.unknown_counts_as is UnknownCountsAs.DOWN
    for o in timeline.outages:
        span = clip([(o.start, o.end)], span_lo, span_hi)
        stretches = intersect(o.stretches(), span)
        if not stretches:  # nothing `down` in service: unknown time never forms an outage on its own
            continue
        gaps = intersect(list(o.gaps), span)
        # each `down` second has a cause; a gap's seconds have none, and count (unless excluded)
        # only when unknown counts as down (SLA.md §3)
        parts = attribute(stretches, covers, ancestors, sla.upstream_grace, begun=span[0][0])
        total = counted(parts, sla.upstream_counts)
        counted_gaps = subtract(gaps, excl) if gaps_count else []
        inside = measure(intersect(total, window))
        closed = span[0][1] < o.end or not o.open
        ends_in_period = closed and period.start <= span[0][1] < period.end
        if not intersect(span, window) and not ends_in_period:
            continue
        down += inside  # (a gap's counted seconds are in D already: unknown time counted as down)
        outages.append(
            OutageFigures(
                outage=o,
                span=span[0],
                closed=closed,
                causes={
                    cause: m for cause, ivs in sorted(parts.items()) if (m := measure(intersect(ivs, window)))
                },
                counted=inside + measure(intersect(counted_gaps, window)),
                counted_total=measure(total) + measure(counted_gaps),
                gaps=tuple(gaps),
            )
        )
    if sla.unknown_counts_as is UnknownCountsAs.EXCLUDED:
        excluded += unknown_not_excluded
    elif sla.unknown_counts_as is UnknownCountsAs.DOWN:
        down += unknown_not_excluded
    return DeviceFigures(
        device=device,
        window=(w_start, w_end),
        scheduled=w_end - w_start,
        excluded=excluded,
        down=down,
        degraded=measure(subtract(degraded, excl)),
        unknown=measure(unknown),
        outages=tuple(outages),
    )


def fleet_rates(figures: Iterable[DeviceFigures], contract: Contract) -> dict[Kpi, Fraction]:
    """Online and intact rates over the devices of the contract's fleet kinds."""
    chosen = [f for f in figures if f.device.kind in contract.sla.fleet_kinds]
    basis = sum(f.scheduled - f.excluded for f in chosen)
    if basis == 0:
        return {Kpi.ONLINE_RATE: Fraction(1), Kpi.INTACT_RATE: Fraction(1)}
    down = sum(f.down for f in chosen)
    degraded = sum(f.degraded for f in chosen)
    return {
        Kpi.ONLINE_RATE: 1 - Fraction(down, basis),
        Kpi.INTACT_RATE: 1 - Fraction(down + degraded, basis),
    }
