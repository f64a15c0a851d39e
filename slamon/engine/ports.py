"""What a switch port's state means as evidence, and what the ledger says of a port during an
outage (pure: the service's live view, the outages API and statements all read ports this way).

A port fault of the vendor's switch is the vendor's: a camera's outage stays `device` (SLA.md §3,
docs/sla.md). The port only says why.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from slamon.model import DeviceId, Event, Uplink

PortState = Mapping[str, object]  # one port of an SNMP result's detail: index, oper, admin, poe, …
POE_FAULTS = frozenset({"fault", "otherFault"})  # pethPsePortDetectionStatus words that cut power


def port_fault(name: str, port: PortState) -> str | None:
    """What is wrong with a port, as evidence reads it ("port Gi0/5 down"), or None. Shut beats
    down (a shut port is down too), and a PoE fault shows even on a port that is up: the camera has
    a link but no power. A port fault of the vendor's switch is the vendor's: the camera's outage
    stays `device` (SLA.md §3, docs/sla.md); this only says why."""
    if port.get("admin") == "down":
        return f"port {name} admin-down"
    oper = port.get("oper")
    if oper is not None and oper != "up":
        return f"port {name} {oper}"
    if port.get("poe") in POE_FAULTS:
        return f"port {name} poe {port['poe']}"
    return None


@dataclass(frozen=True, slots=True)
class PortEvidence:
    """A device's uplink port at fault, as the ledger saw it."""

    at: int  # µs: the port event that says so
    switch: DeviceId
    port: str  # as the switch names it
    fault: str  # port_fault's words


def port_evidence(events: Iterable[Event], uplink: Uplink, start: int, end: int) -> PortEvidence | None:
    """What a device's uplink port said during an outage [start, end): the fault it was in at
    `start` (its latest port event before then), else the first fault a poll saw before `end`; from
    the ledger's port events of its switch, oldest first. None when the port showed no fault."""
    ports: dict[str, PortState] = {}
    at_start: PortEvidence | None = None
    for e in events:
        if e.subject != uplink.switch or e.kind not in ("port", "ports"):
            continue
        if e.at >= end:
            break
        body = e.body.get("ports")
        if not isinstance(body, dict):
            continue
        merged = dict(body) if e.kind == "ports" else {**ports, **body}  # `ports`: a whole table
        ports = {name: state for name, state in merged.items() if state is not None}  # None: left the table
        found = find_port(ports, uplink.port)
        fault = None if found is None else port_fault(found[0], found[1])
        seen = None if found is None or fault is None else PortEvidence(e.at, uplink.switch, found[0], fault)
        if e.at < start:
            at_start = seen
            continue
        if at_start is not None:
            return at_start
        if seen is not None:
            return seen
    return at_start


class PortLedger:
    """Port events by switch, each switch's whole tables indexed, for reading many outages back
    (a statement, the outages API): an outage's port is replayed from the latest whole table before
    it (they are written daily), not from the switch's first event, nor through other switches'."""

    def __init__(self, events: Iterable[Event]) -> None:
        self._events: dict[str, list[Event]] = {}
        for e in events:
            if e.kind in ("port", "ports"):
                self._events.setdefault(e.subject, []).append(e)
        self._tables: dict[str, tuple[list[int], list[int]]] = {}  # switch: (whole tables' at, index)
        for switch, listed in self._events.items():
            found = [(e.at, i) for i, e in enumerate(listed) if e.kind == "ports"]
            self._tables[switch] = ([at for at, _ in found], [i for _, i in found])

    def evidence(self, uplink: Uplink, start: int, end: int) -> PortEvidence | None:
        """port_evidence over the switch's events from its latest whole table before `start`."""
        listed = self._events.get(uplink.switch)
        if listed is None:
            return None
        ats, where = self._tables[uplink.switch]
        k = bisect_left(ats, start) - 1
        return port_evidence(listed[where[k] :] if k >= 0 else listed, uplink, start, end)


def find_port(ports: Mapping[str, PortState], port: str) -> tuple[str, PortState] | None:
    """A port by the name an uplink gives: its ifName, or its ifIndex as digits."""
    state = ports.get(port)
    if state is not None:
        return port, state
    if port.isdigit():
        index = int(port)
        for name, state in ports.items():
            if state.get("index") == index:
                return name, state
    return None
