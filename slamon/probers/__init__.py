"""Probers: one module per probe kind, one shared protocol, a registry by kind.

A prober works on a whole round of devices at once (at fleet scale a batch beats a probe per
device) and never raises for a failed target: a failure is a ProbeResult(ok=False, error=...),
which is evidence. The caller (monitor) owns the schedule and what happens to the results.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from operator import attrgetter
from typing import ClassVar, Protocol

from slamon.clock import Clock
from slamon.loaders.config import Config
from slamon.model import Device, DeviceKind, Fleet, ProbeKind, ProbeResult


class Prober(Protocol):
    kind: ClassVar[ProbeKind]

    def check(self, devices: Iterable[Device] = ()) -> str:
        """Open now what a round over `devices` needs (sockets…), so a missing privilege is an error
        at start (or at a reload), not a failure of every round; says how it probes."""
        ...

    def round(self, devices: Sequence[Device]) -> AsyncIterator[list[ProbeResult]]:
        """One result per device, in batches as they come (a batch per look at the network: at
        fleet scale a result at a time costs more than the probing); bounded by the prober's own
        timeouts."""
        ...

    async def aclose(self) -> None:
        """Release shared resources (sockets, engines, worker pools)."""
        ...


def build_probers(config: Config, clock: Clock, devices: Iterable[Device] = ()) -> dict[ProbeKind, Prober]:
    """The probers slamon.yaml asks for, by kind, checked against the devices they will probe.
    Opening them is where a missing privilege shows up (IcmpUnavailable; for IPv6 only when a device
    has an IPv6 address), so a service fails at start, not at its first round."""
    from slamon.probers.icmp import IcmpProber

    icmp = config.probes.icmp
    prober = IcmpProber(clock, timeout=icmp.timeout, count=icmp.count, rate=icmp.rate)
    prober.check(devices)
    return {ProbeKind.ICMP: prober}


def devices_for(fleet: Fleet, kind: ProbeKind) -> list[Device]:
    """Which devices a probe kind watches, by id: everyone answers ping; SNMP for switches that
    have it; video for cameras with a stream. (Here, not in the service, so that `probe --once`
    needs none of the service's imports.)"""
    devices = fleet.inventory.devices.values()
    if kind is ProbeKind.ICMP:
        return sorted(devices, key=_BY_ID)
    if kind is ProbeKind.SNMP:
        return sorted((d for d in devices if d.kind is DeviceKind.SWITCH and d.snmp), key=_BY_ID)
    return sorted((d for d in devices if d.kind is DeviceKind.CAMERA and d.stream), key=_BY_ID)


_BY_ID = attrgetter("id")
