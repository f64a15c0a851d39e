"""The switches' ports as the latest SNMP polls saw them, and which devices hang off each port.

The monitor hands every SNMP round's results here (memory only). What it holds serves three
readers that must agree: the device API (a switch's ports and the cameras behind each, a camera's
uplink port), the metrics (port up, PoE, traffic counters, reboots, SNMP errors) and the evidence
of a failing camera (its uplink port down, shut or without power: engine/ports.port_fault, the one
place that says which port states are faults and how they read).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter

from slamon.engine.ports import POE_FAULTS, PortState, find_port, port_fault
from slamon.model import DeviceId, Event, Fleet, ProbeKind, ProbeResult, Uplink, to_micros


@dataclass(frozen=True, slots=True)
class Reading:
    """The latest SNMP result of one switch; `ports` are those of its latest good poll."""

    at: int  # µs, the result's time
    ok: bool
    error: str | None
    ports: Mapping[str, PortState]
    polled_at: int | None  # µs of the latest good poll (None: none yet)
    uptime_s: int | None = None
    poe_budget_w: int | None = None
    poe_used_w: int | None = None


@dataclass(slots=True)
class SwitchPorts:
    """Every polled switch's latest reading; the uplinks of the inventory, by switch and port."""

    readings: dict[DeviceId, Reading] = field(default_factory=dict)
    reboots: dict[DeviceId, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # failed polls by reason word
    full_at: dict[DeviceId, int] = field(default_factory=dict)  # µs of each switch's latest whole-table event
    uplinks: dict[DeviceId, Uplink] = field(default_factory=dict)
    hanging: dict[DeviceId, dict[str, list[DeviceId]]] = field(default_factory=dict)
    port_metrics: str = "all"  # all | uplinks: which ports get per-port series (probes.snmp.port_metrics)

    @classmethod
    def of(cls, fleet: Fleet, port_metrics: str = "all") -> SwitchPorts:
        ports = cls(port_metrics=port_metrics)
        ports.reload(fleet)
        return ports

    def reload(self, fleet: Fleet) -> None:
        """The uplinks of a new inventory; readings of switches that left it go."""
        devices = fleet.inventory.devices
        self.uplinks = {d.id: d.uplink for d in devices.values() if d.uplink is not None}
        hanging: dict[DeviceId, dict[str, list[DeviceId]]] = {}
        for device, uplink in sorted(self.uplinks.items()):
            hanging.setdefault(uplink.switch, {}).setdefault(uplink.port, []).append(device)
        self.hanging = hanging
        for table in (self.readings, self.reboots, self.full_at):
            for gone in set(table) - devices.keys():
                del table[gone]

    def take(self, results: Iterable[ProbeResult]) -> list[Event]:
        """A round's results: SNMP ones replace their switch's reading (a failed poll keeps the
        ports of the last good one, marked by `ok` and `polled_at`). Returns what goes into the
        ledger: a switch's whole port table at its first good poll since the start, then the ports
        whose state changed, and reboots."""
        events: list[Event] = []
        for r in sorted(results, key=_AT):  # a round's polls end in any order
            if r.kind is not ProbeKind.SNMP:
                continue
            before = self.readings.get(r.device)
            at = to_micros(r.time)
            if before is not None and at < before.at:
                continue  # older than what a poll since (a trap's) saw: kept as a result, not as the state
            if not r.ok:
                reason = str(r.detail.get("reason", "other"))
                self.errors[reason] = self.errors.get(reason, 0) + 1
                self.readings[r.device] = Reading(
                    at,
                    False,
                    r.error,
                    before.ports if before else {},
                    before.polled_at if before else None,
                    before.uptime_s if before else None,
                    before.poe_budget_w if before else None,
                    before.poe_used_w if before else None,
                )
                continue
            detail = r.detail
            ports = detail.get("ports")
            poe = detail.get("poe")
            uptime = detail.get("uptime_s")
            if "reboot" in detail:
                self.reboots[r.device] = self.reboots.get(r.device, 0) + 1
                events.append(Event(at, "reboot", r.device, dict(detail["reboot"])))  # type: ignore[call-overload]
            if isinstance(ports, dict):
                last_full = self.full_at.get(r.device)
                if (
                    before is None
                    or before.polled_at is None
                    or last_full is None
                    or at - last_full >= CHECKPOINT
                ):
                    # the whole table: at the first poll since the start, then once a day, so that
                    # reading a port back never needs the ledger's history from before it
                    self.full_at[r.device] = at
                    events.append(Event(at, "ports", r.device, {"ports": _changed(None, ports)}))
                else:
                    changed = _changed(before.ports, ports)
                    if changed:
                        events.append(Event(at, "port", r.device, {"ports": changed}))
            budget = poe.get("budget_w") if isinstance(poe, dict) else None
            used = poe.get("used_w") if isinstance(poe, dict) else None
            self.readings[r.device] = Reading(
                at,
                True,
                None,
                ports if isinstance(ports, dict) else {},
                at,
                uptime if isinstance(uptime, int) else None,
                budget if isinstance(budget, int) else None,
                used if isinstance(used, int) else None,
            )
        return events

    def snapshot(self) -> SwitchPorts:
        """A copy to render from in a thread while the loop takes the next round (readings are
        immutable; the dicts that hold them are copied)."""
        return SwitchPorts(
            dict(self.readings),
            dict(self.reboots),
            dict(self.errors),
            dict(self.full_at),
            self.uplinks,
            self.hanging,
            self.port_metrics,
        )

    def port_of(self, device: DeviceId) -> tuple[Uplink, str, PortState] | None:
        """A device's uplink, the port's name as its switch reports it, and its latest state;
        None when it names none or its switch has not been polled (or has no such port)."""
        uplink = self.uplinks.get(device)
        if uplink is None:
            return None
        reading = self.readings.get(uplink.switch)
        if reading is None:
            return None
        found = find_port(reading.ports, uplink.port)
        return None if found is None else (uplink, found[0], found[1])

    def fault_of(self, device: DeviceId) -> str | None:
        """The evidence a failing device's uplink port gives, if any (port_fault)."""
        found = self.port_of(device)
        return None if found is None else port_fault(found[1], found[2])


_KEPT = ("index", "oper", "admin", "poe")  # what a port event records of a port
CHECKPOINT = 86_400_000_000  # µs: a switch's whole port table goes into the ledger at least daily
_AT = attrgetter("time")


def _changed(
    before: Mapping[str, PortState] | None, now: Mapping[str, PortState]
) -> dict[str, dict[str, object] | None]:
    """The ports (all of them when there is no earlier poll) whose recorded state differs, a key
    that came or went included; a port that left the table is None."""
    out: dict[str, dict[str, object] | None] = {}
    for name, state in now.items():
        kept = {k: state[k] for k in _KEPT if k in state}
        old = None if before is None else before.get(name)
        if old is None or {k: old[k] for k in _KEPT if k in old} != kept:
            out[name] = kept
    for name in before or ():
        if name not in now:
            out[name] = None
    return out


Sample = tuple[tuple[str, ...], object]  # label values (in the family's label names), value


def port_families(ports: SwitchPorts) -> Iterator[tuple[str, str, str, tuple[str, ...], Iterable[Sample]]]:
    """(name, type, help, label names, samples) of each port metric family, for the exposition."""
    readings = sorted(ports.readings.items())
    port_labels = ("switch", "port")
    switch_labels = ("switch",)

    only_uplinks = ports.port_metrics == "uplinks"

    def each(value: str) -> Iterator[Sample]:
        for switch, reading in readings:
            named = ports.hanging.get(switch, {})
            for name, state in reading.ports.items():
                if only_uplinks and name not in named and str(state.get("index")) not in named:
                    continue  # a port no device names: a city's ports would be hundreds of thousands of series
                got = _sample(value, state)
                if got is not None:
                    yield (switch, name), got

    yield (
        "slamon_switch_port_up",
        "gauge",
        "1 when the port's ifOperStatus is up, else 0.",
        port_labels,
        each("up"),
    )
    yield (
        "slamon_switch_port_admin_up",
        "gauge",
        "1 when the port's ifAdminStatus is up, 0 when shut.",
        port_labels,
        each("admin"),
    )
    yield (
        "slamon_switch_port_poe_fault",
        "gauge",
        "1 when the port's PoE detection status is fault or otherFault, else 0 (PoE ports only).",
        port_labels,
        each("poe"),
    )
    yield (
        "slamon_switch_port_receive_bytes",
        "counter",
        "ifHCInOctets as the switch counts it (Prometheus handles resets).",
        port_labels,
        each("in_octets"),
    )
    yield (
        "slamon_switch_port_transmit_bytes",
        "counter",
        "ifHCOutOctets as the switch counts it.",
        port_labels,
        each("out_octets"),
    )
    yield (
        "slamon_switch_port_receive_errors",
        "counter",
        "ifInErrors as the switch counts it.",
        port_labels,
        each("in_errors"),
    )
    yield (
        "slamon_switch_poe_budget_watts",
        "gauge",
        "The switch's PoE budget (pethMainPsePower).",
        switch_labels,
        (((s,), r.poe_budget_w) for s, r in readings if r.poe_budget_w is not None),
    )
    yield (
        "slamon_switch_poe_used_watts",
        "gauge",
        "PoE power in use (pethMainPseConsumptionPower).",
        switch_labels,
        (((s,), r.poe_used_w) for s, r in readings if r.poe_used_w is not None),
    )
    yield (
        "slamon_switch_uptime_seconds",
        "gauge",
        "sysUpTime of the latest good poll.",
        switch_labels,
        (((s,), r.uptime_s) for s, r in readings if r.uptime_s is not None),
    )
    yield (
        "slamon_switch_snmp_up",
        "gauge",
        "1 when the latest SNMP poll of the switch succeeded, else 0.",
        switch_labels,
        (((s,), int(r.ok)) for s, r in readings),
    )
    yield (
        "slamon_switch_reboots",
        "counter",
        "Reboots seen (sysUpTime went back between two polls) since slamon started.",
        switch_labels,
        (((s,), n) for s, n in sorted(ports.reboots.items())),
    )
    yield (
        "slamon_snmp_poll_errors",
        "counter",
        "Failed SNMP polls by reason (timeout, malformed, error_status, v3_keys, v3_error, send, config).",
        ("reason",),
        (((r,), n) for r, n in sorted(ports.errors.items())),
    )
    yield (
        "slamon_device_uplink_info",
        "gauge",
        (
            "1 for each device's uplink: the switch port it hangs off, named as the switch names it once polled "
            "(to join with slamon_switch_port_up on switch and port)."
        ),
        ("device", "switch", "port"),
        (((d, u.switch, _reported(ports, d, u.port)), 1) for d, u in sorted(ports.uplinks.items())),
    )


def _reported(ports: SwitchPorts, device: DeviceId, port: str) -> str:
    found = ports.port_of(device)
    return port if found is None else found[1]


def _sample(value: str, state: PortState) -> int | None:
    if value == "up":
        oper = state.get("oper")
        return None if oper is None else int(oper == "up")
    if value == "admin":
        admin = state.get("admin")
        return None if admin is None else int(admin == "up")
    if value == "poe":
        poe = state.get("poe")
        return None if poe is None else int(poe in POE_FAULTS)
    got = state.get(value)
    return got if isinstance(got, int) else None
