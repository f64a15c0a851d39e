"""Why each second of an outage was down (SLA.md §3), and which exclusions count (§4).

The first cause that applies wins: an approved exclusion of a category the contract honours, then
the nearest ancestor that was down (or had recovered less than `upstream_grace` ago from an outage
this one overlapped), then the device itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from slamon.billing.intervals import Intervals, intersect, normalize, subtract
from slamon.engine.timeline import Outage
from slamon.model import Contract, Device, DeviceId, Exclusion, ExclusionStatus, Micros, to_micros

DEVICE = "device"


def excluded_cause(exclusion: Exclusion) -> str:
    return f"excluded:{exclusion.category.value}"


def upstream_cause(device: DeviceId) -> str:
    return f"upstream:{device}"


def honoured(exclusion: Exclusion, contract: Contract) -> bool:
    """Only approved exclusions of a category the contract lists change anything."""
    return exclusion.status is ExclusionStatus.APPROVED and exclusion.category in contract.sla.exclusions


def why_not_honoured(exclusion: Exclusion, contract: Contract) -> str | None:
    if exclusion.status is not ExclusionStatus.APPROVED:
        return f"status is {exclusion.status.value}"
    if exclusion.category not in contract.sla.exclusions:
        return f"contract {contract.id} does not honour category {exclusion.category.value}"
    return None


@dataclass(frozen=True, slots=True)
class Cover:
    """An honoured exclusion that covers one device, as an interval set."""

    exclusion: Exclusion
    intervals: Intervals


def covers_for(device: Device, exclusions: Sequence[Exclusion], contract: Contract) -> list[Cover]:
    """The honoured exclusions covering `device`, in file order (the first one names the category)."""
    return [
        Cover(e, [(to_micros(e.start), to_micros(e.end))])
        for e in exclusions
        if honoured(e, contract) and e.scope.covers(device)
    ]


def attribute(
    span: Intervals,
    covers: Sequence[Cover],
    ancestors: Sequence[tuple[DeviceId, Sequence[Outage]]],
    grace: timedelta,
    begun: Micros | None = None,
) -> dict[str, Intervals]:
    """Split `span` (the outage, clipped to the service window) into causes.

    `ancestors` are (id, outages) nearest first; each `down` stretch [as, ae) of an ancestor's
    outage covers this one from `as` until `ae + grace`, provided it was still running when this
    outage began (ae > begun; `begun` defaults to the span's start: where the outage starts as the
    contract sees it, inside the service window). An ancestor's monitoring gap is not `down`: it
    covers nothing beyond the grace after the stretch before it.
    """
    remaining = span
    parts: dict[str, Intervals] = {}

    def take(cause: str, cover: Intervals) -> None:
        nonlocal remaining
        part = intersect(remaining, cover)
        if part:
            parts[cause] = normalize([*parts.get(cause, []), *part])
            remaining = subtract(remaining, part)

    for c in covers:
        take(excluded_cause(c.exclusion), c.intervals)
    g = to_micros(grace)
    begun = span[0][0] if begun is None else begun
    for ancestor, their_outages in ancestors:
        if not remaining:
            break
        take(
            upstream_cause(ancestor),
            normalize(
                (a, b + g) for o in their_outages for a, b in o.stretches() if b > begun and a < span[-1][1]
            ),
        )
    if remaining:
        parts[DEVICE] = remaining
    return parts


def cause_at(
    at: Micros,
    begun: Micros,
    covers: Sequence[Cover],
    ancestors: Sequence[tuple[DeviceId, Sequence[Outage]]],
    grace: timedelta,
) -> str:
    """The cause of second `at` of an outage that began at `begun`: what a statement would charge
    that second to, asked while the outage is still going on (metrics, the device API)."""
    parts = attribute([(at, at + 1)], covers, ancestors, grace, begun=begun)
    return next(iter(parts))


def counted(parts: dict[str, Intervals], upstream_counts: bool) -> Intervals:
    """Counted downtime: `device` seconds, plus `upstream:*` seconds when the contract says so."""
    chosen = [
        iv
        for cause, ivs in parts.items()
        for iv in ivs
        if cause == DEVICE or (upstream_counts and cause.startswith("upstream:"))
    ]
    return normalize(chosen)
