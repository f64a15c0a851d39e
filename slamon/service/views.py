"""What people see of the fleet right now: one view per round, shared by /metrics and the device API.

After every round the monitor takes a `FleetView` of the live state (on the event loop, a slice of
devices at a time, so the loop is never held for long) and hands it to the metrics renderer (in a
thread). Both /metrics and /api/v1/devices read that view, so they always agree; a device's cause
comes from `billing.causes`, the same rule a statement charges by, over the same exclusions (the
store's in force, re-read when they change).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from slamon.billing.causes import Cover, cause_at, covers_for
from slamon.engine.live import DeviceLive, FleetState
from slamon.engine.timeline import Outage
from slamon.model import Defect, Device, DeviceId, DeviceState, Exclusion, Fleet, Micros

SLICE = 10_000  # devices viewed between two looks at the event loop


class DeviceView(NamedTuple):
    """One device as people see it now (a tuple: a view of 100,000 devices is made every round)."""

    device: Device
    district: str
    state: DeviceState
    since: Micros | None  # when the current state began (None: not known)
    last_probe: Micros | None
    rtt_ms: float | None
    loss: float | None
    error: str | None
    defects: frozenset[Defect]
    cause: str | None  # why it is down (device, upstream:<id>, excluded:<category>); None when not down


@dataclass(frozen=True, slots=True)
class FleetView:
    at: Micros  # the instant the states are taken at
    fleet: Fleet
    devices: tuple[DeviceView, ...]


class LiveCauses:
    """The cause of a down device now, by SLA.md §3 as billing.causes implements it: an honoured
    exclusion covering now, else the nearest ancestor that is down or came back less than
    `upstream_grace` ago from an outage this one overlapped, else the device itself.

    `exclusions`: those in force, as the store holds them (the workflow's decisions and the
    file's: what statements and /api/v1/outages judge by); the file's until the store was read."""

    def __init__(self, fleet: Fleet, exclusions: Sequence[Exclusion] | None = None) -> None:
        self.fleet = fleet
        self.exclusions = tuple(fleet.exclusions if exclusions is None else exclusions)
        self._covers: dict[DeviceId, list[Cover]] = {}
        for d in fleet.inventory.devices.values():
            covers = covers_for(d, self.exclusions, fleet.contracts[d.contract])
            if covers:
                self._covers[d.id] = covers

    def of(self, state: FleetState, live: DeviceLive, now: Micros) -> str:
        device = live.device
        ancestors: list[tuple[DeviceId, Sequence[Outage]]] = []
        for a in self.fleet.inventory.ancestors(device.id):
            parent = state.get(a.id)
            ancestors.append((a.id, parent.outages_near(now) if parent is not None else ()))
        begun = live.outage_start if live.outage_start is not None else (live.since(now) or now)
        grace = self.fleet.contracts[device.contract].sla.upstream_grace
        return cause_at(now, min(begun, now), self._covers.get(device.id, ()), ancestors, grace)


def view_of(live: DeviceLive, fleet: Fleet, state: FleetState, causes: LiveCauses, now: Micros) -> DeviceView:
    d = live.device
    site = fleet.inventory.sites.get(d.site)
    current = live.state_at(now)
    return DeviceView(
        d,
        site.district if site else "",
        current,
        live.since(now),
        live.last_probe,
        live.rtt_ms,
        live.loss,
        live.error,
        live.defects,
        causes.of(state, live, now) if current is DeviceState.DOWN else None,
    )


async def take_view(state: FleetState, causes: LiveCauses, now: Micros) -> FleetView:
    """Every device's view at `now`, yielding to the loop between slices."""
    fleet = state.fleet
    if causes.fleet is not fleet:
        causes = LiveCauses(fleet, causes.exclusions)
    out: list[DeviceView] = []
    for i, live in enumerate(list(state)):
        if i and i % SLICE == 0:
            await asyncio.sleep(0)
        out.append(view_of(live, fleet, state, causes, now))
    return FleetView(now, fleet, tuple(out))
