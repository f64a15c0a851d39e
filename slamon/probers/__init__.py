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


def build_probers(
    config: Config,
    clock: Clock,
    devices: Iterable[Device] = (),
    *,
    degrade_after: int = 2,
    once: bool = False,
) -> dict[ProbeKind, Prober]:
    """The probers slamon.yaml asks for, by kind, checked against the devices they will probe.
    Opening them is where a missing privilege or secret shows up (IcmpUnavailable, for IPv6 only
    when a device has an IPv6 address; SnmpUnavailable when switches have `snmp` and no community
    is set), so a service fails at start, not at its first round. SNMP only when switches have it,
    video only when cameras have a `stream` (a camera that turned defective is sampled again soon,
    until `degrade_after` samples, the contracts' largest, have judged it). `once`: one round of
    every device (`probe --once`): the video round samples every camera, not those due."""
    from slamon.probers.icmp import IcmpProber

    listed = devices if isinstance(devices, Sequence) else list(devices)
    reachability = config.probes.snmp.reachability
    icmp = config.probes.icmp
    prober = IcmpProber(clock, timeout=icmp.timeout, count=icmp.count, rate=icmp.rate)
    prober.check(d for d in listed if pinged(d, reachability))
    probers: dict[ProbeKind, Prober] = {ProbeKind.ICMP: prober}
    switches = [d for d in listed if polled(d)]
    if switches:
        from slamon.probers.snmp import SnmpProber, settings_from

        snmp = SnmpProber(clock, settings_from(config.probes.snmp))
        snmp.check(switches)
        probers[ProbeKind.SNMP] = snmp
    cameras = [d for d in listed if streamed(d)]
    if cameras:
        from slamon.probers.video import VideoProber

        video = VideoProber(clock, config.probes.video, recheck=degrade_after, every_camera=once)
        video.check(cameras)
        probers[ProbeKind.VIDEO] = video
    return probers


def polled(device: Device) -> bool:
    """Polled over SNMP: a switch that names its agent (`snmp:` in the inventory)."""
    return device.kind is DeviceKind.SWITCH and device.snmp is not None


def streamed(device: Device) -> bool:
    """Sampled for video quality: a camera with a `stream`."""
    return device.kind is DeviceKind.CAMERA and device.stream is not None


def pinged(device: Device, reachability: str = "both") -> bool:
    """Pinged: every device, but a polled switch when SNMP alone says whether it answers."""
    return reachability != "snmp" or not polled(device)


def devices_for(fleet: Fleet, kind: ProbeKind, reachability: str = "both") -> list[Device]:
    """Which devices a probe kind watches, by id: everyone answers ping (but polled switches under
    `reachability: snmp`); SNMP for switches that have it; video for cameras with a stream. (Here,
    not in the service, so that `probe --once` needs none of the service's imports.)"""
    devices = fleet.inventory.devices.values()
    if kind is ProbeKind.ICMP:
        if reachability == "snmp":
            return sorted((d for d in devices if pinged(d, reachability)), key=_BY_ID)
        return sorted(devices, key=_BY_ID)
    if kind is ProbeKind.SNMP:
        return sorted(filter(polled, devices), key=_BY_ID)
    return sorted(filter(streamed, devices), key=_BY_ID)


_BY_ID = attrgetter("id")
