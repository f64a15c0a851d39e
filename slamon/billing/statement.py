"""A month's statement for one contract (SLA.md §7): a pure function of its inputs, and its hash.

`compute(BillingInput) -> Statement`; `Statement.document(...)` is the JSON of FORMATS.md. The hash
is SHA-256 over the canonical inputs' digest and the canonical statement body, so anyone holding
the same inputs gets the same hash, and a changed figure or a changed input changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from slamon.billing.causes import DEVICE, covers_for, honoured, why_not_honoured
from slamon.billing.deductions import Line, cap_line, device_fee, kpi_lines, overrun_line, tier_line
from slamon.billing.periods import Period
from slamon.billing.rates import DeviceFigures, OutageFigures, device_figures, fleet_rates
from slamon.canonical import canonical_json, contract_to_dict, device_to_dict, exclusion_to_dict, site_to_dict
from slamon.engine.ports import PortEvidence, PortLedger
from slamon.engine.timeline import Timeline
from slamon.model import (
    SECOND,
    Contract,
    Device,
    DeviceId,
    Event,
    Exclusion,
    Inventory,
    Kpi,
    Micros,
    from_micros,
    to_micros,
)

STATUS_DRAFT = "draft"
STATUS_ISSUED = "issued"


@dataclass(frozen=True, slots=True)
class BillingInput:
    """Everything a statement depends on, and nothing else.

    `timelines` holds the contract's devices and their ancestors: transitions from the month's start
    (plus the one in force then), outages that reach into the month or end in it, all as known up
    to the month's end (an outage still running then is open).
    """

    contract: Contract
    period: Period
    inventory: Inventory
    timelines: Mapping[DeviceId, Timeline]
    exclusions: tuple[Exclusion, ...]
    # the ledger's port events of the switches the devices' uplinks name, before the month's end,
    # oldest first: an outage's port evidence (engine/ports.port_evidence)
    port_events: tuple[Event, ...] = ()

    def devices(self) -> list[DeviceId]:
        return sorted(d.id for d in self.inventory.devices.values() if d.contract == self.contract.id)

    def related(self) -> list[DeviceId]:
        """The contract's devices and every ancestor of theirs."""
        found = set(self.devices())
        for d in list(found):
            found.update(a.id for a in self.inventory.ancestors(d))
        return sorted(found)

    def relevant_exclusions(self) -> list[Exclusion]:
        devices = [self.inventory.devices[d] for d in self.related()]
        return [e for e in self.exclusions if any(e.scope.covers(d) for d in devices)]

    def digest(self) -> str:
        """SHA-256 of the canonical inputs."""
        related = self.related()
        sites = sorted({self.inventory.devices[d].site for d in related})
        doc: dict[str, object] = {
            "contract": contract_to_dict(self.contract),
            "month": self.period.month,
            "sites": [site_to_dict(self.inventory.sites[s]) for s in sites],
            "devices": [device_to_dict(self.inventory.devices[d]) for d in related],
            "timelines": {
                d: {
                    "transitions": [[t.at, t.state.value] for t in tl.transitions],
                    "outages": [o.row() for o in tl.outages],
                }
                for d in related
                if (tl := self.timelines.get(d)) is not None
            },
            "exclusions": [exclusion_to_dict(e) for e in self.relevant_exclusions()],
        }
        if self.port_events:  # only when there are: statements without SNMP keep their digest
            doc["port_events"] = [[e.at, e.subject, dict(e.body)] for e in self.port_events]
        return "sha256:" + hashlib.sha256(canonical_json(doc)).hexdigest()


@dataclass(frozen=True, slots=True)
class ExclusionRow:
    exclusion: Exclusion
    honoured: bool
    excluded: Micros  # seconds of the exclusion inside the month, when honoured
    why_not: str | None


@dataclass(frozen=True, slots=True)
class Statement:
    input: BillingInput
    devices: tuple[DeviceFigures, ...]
    fees: Mapping[DeviceId, Decimal]
    rates: Mapping[Kpi, Fraction]
    lines: tuple[Line, ...]
    exclusions: tuple[ExclusionRow, ...]
    fee_total: Decimal
    deduction_total: Decimal
    payable: Decimal

    def _port(self, ledger: PortLedger, device: Device, o: OutageFigures) -> PortEvidence | None:
        """What the device's uplink port said during an outage it is charged for (device seconds):
        evidence, not a cause (docs/sla.md)."""
        if device.uplink is None or DEVICE not in o.causes:
            return None
        return ledger.evidence(device.uplink, o.span[0], min(o.end, self.input.period.end))

    def body(self) -> dict[str, Any]:
        """The statement's figures as JSON-able data: what the hash covers besides the inputs."""
        tz = ZoneInfo(self.input.period.timezone)
        contract = self.input.contract

        def instant(us: Micros | None) -> str | None:
            return None if us is None else from_micros(us).astimezone(tz).isoformat()

        per_device: dict[DeviceId, Decimal] = {}
        for line in self.lines:
            if line.device is not None:
                per_device[line.device] = per_device.get(line.device, Decimal("0.00")) + line.amount
        charged = {
            (line.device, line.outage_start): line for line in self.lines if line.rule == "repair_overrun"
        }
        period = self.input.period
        ledger = PortLedger(self.input.port_events)  # each outage's uplink port, read back once per switch
        return {
            "contract": contract.id,
            "vendor": contract.vendor,
            "month": period.month,
            "currency": contract.currency,
            "timezone": period.timezone,
            "period": {"start": instant(period.start), "end": instant(period.end)},
            "fee_total": str(self.fee_total),
            "deduction_total": str(self.deduction_total),
            "payable": str(self.payable),
            "rates": {k.value: float(v) for k, v in self.rates.items()},
            "devices": [
                _device(f, self.fees[f.device.id], per_device.get(f.device.id, Decimal("0.00")))
                for f in self.devices
            ],
            "outages": [
                _outage(
                    f.device.id,
                    o,
                    charged.get((f.device.id, o.outage.start)),
                    instant,
                    period,
                    self._port(ledger, f.device, o),
                )
                for f in self.devices
                for o in f.outages
            ],
            "exclusions": [_exclusion(r, instant) for r in self.exclusions],
            "deductions": [_line(line, instant) for line in self.lines],
        }

    def document(
        self, *, status: str, revision: int, replaces: str | None, inputs: str | None = None
    ) -> dict[str, Any]:
        """The statement JSON of FORMATS.md, with its hash."""
        body = self.body()
        inputs = inputs or self.input.digest()
        head = {
            "contract": body["contract"],
            "month": body["month"],
            "currency": body["currency"],
            "status": status,
            "revision": revision,
            "hash": statement_hash(inputs, body),
            "inputs_sha256": inputs,
            **({"replaces": replaces} if replaces else {}),
        }
        return {**head, **{k: v for k, v in body.items() if k not in head}}


def seconds(us: Micros) -> int | float:
    """Exact seconds: an integer when whole (the usual case), else the decimal value."""
    return us // SECOND if us % SECOND == 0 else us / SECOND


def _device(f: DeviceFigures, fee: Decimal, deduction: Decimal) -> dict[str, Any]:
    return {
        "id": f.device.id,
        "kind": f.device.kind.value,
        "site": f.device.site,
        "channels": f.device.channels,
        "fee": str(fee),
        "scheduled_s": seconds(f.scheduled),
        "excluded_s": seconds(f.excluded),
        "down_s": seconds(f.down),
        "degraded_s": seconds(f.degraded),
        "unknown_s": seconds(f.unknown),
        "availability": float(f.availability),
        "deduction": str(deduction),
    }


def _exclusion(r: ExclusionRow, instant: Callable[[Micros | None], str | None]) -> dict[str, Any]:
    return {
        "id": r.exclusion.id,
        "category": r.exclusion.category.value,
        "status": r.exclusion.status.value,
        "start": instant(to_micros(r.exclusion.start)),
        "end": instant(to_micros(r.exclusion.end)),
        "reason": r.exclusion.reason,
        "approved_by": r.exclusion.approved_by,
        "honoured": r.honoured,
        "excluded_s": seconds(r.excluded),
        **({"not_honoured_because": r.why_not} if r.why_not else {}),
    }


def _outage(
    device: DeviceId,
    o: OutageFigures,
    line: Line | None,
    instant: Any,
    period: Period,
    port: PortEvidence | None = None,
) -> dict[str, Any]:
    ended = o.closed and o.end <= period.end
    ev = o.outage
    return {
        "device": device,
        "start": instant(o.span[0]),
        "end": instant(o.end) if ended else None,
        "open": not ended,
        "end_reason": (
            "out_of_service" if o.end < o.outage.end else ev.end_reason.value if ev.end_reason else None
        )
        if ended
        else None,
        "counted_s": seconds(o.counted),
        "counted_total_s": seconds(o.counted_total),
        "causes": {cause: seconds(v) for cause, v in o.causes.items()},
        "overrun_hours": line.hours if line else 0,
        "deduction": str(line.amount) if line else "0.00",
        "evidence": {
            "first_failure": instant(ev.first_failure),
            "last_failure": instant(ev.last_failure),
            "recovered": instant(ev.recovered) if ended else None,
            # the monitoring gaps the outage spans (SLA.md §3): only when there are some, so the
            # statements of outages without gaps keep their shape and hash
            **({"gaps": [{"start": instant(a), "end": instant(b)} for a, b in o.gaps]} if o.gaps else {}),
            **(
                {}
                if port is None
                else {
                    "port": {
                        "at": instant(port.at),
                        "switch": port.switch,
                        "port": port.port,
                        "fault": port.fault,
                    }
                }
            ),
        },
    }


def _line(line: Line, instant: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": line.rule}
    if line.device is not None:
        out["device"] = line.device
    if line.kpi is not None:
        out["kpi"] = line.kpi.value
    if line.outage_start is not None:
        out["outage_start"] = instant(line.outage_start)
    out["reason"] = line.reason
    out["amount"] = str(line.amount)
    return out


def statement_hash(inputs: str, body: Mapping[str, Any]) -> str:
    doc = {"inputs": inputs, "statement": body}
    return "sha256:" + hashlib.sha256(canonical_json(doc)).hexdigest()


def compute(inp: BillingInput) -> Statement:
    """The statement the contract implies for the month (SLA.md §3–§7)."""
    contract, period, inv = inp.contract, inp.period, inp.inventory
    empty = Timeline((), ())
    figures: list[DeviceFigures] = []
    for device_id in inp.devices():
        device = inv.devices[device_id]
        ancestors = [(a.id, inp.timelines.get(a.id, empty).outages) for a in inv.ancestors(device_id)]
        fig = device_figures(
            device,
            contract,
            period,
            inp.timelines.get(device_id, empty),
            covers_for(device, inp.exclusions, contract),
            ancestors,
        )
        if fig is not None:
            figures.append(fig)

    fees = {f.device.id: device_fee(f.device, contract, f.scheduled, period) for f in figures}
    fee_total = sum(fees.values(), Decimal("0.00"))
    lines: list[Line] = []
    for f in figures:
        tier = tier_line(f.device, fees[f.device.id], f.availability, contract.sla.availability_tiers)
        if tier is not None:
            lines.append(tier)
    for f in figures:
        area = inv.sites[f.device.site].area
        for o in f.outages:
            if o.closed and period.start <= o.end < period.end:
                line = overrun_line(f.device, area, o.outage.start, o.counted_total, contract)
                if line is not None:
                    lines.append(line)
    rates = fleet_rates(figures, contract)
    lines += kpi_lines(rates, contract, fee_total)
    cap = cap_line(lines, contract, fee_total)
    if cap is not None:
        lines.append(cap)
    deduction_total = sum((line.amount for line in lines), Decimal("0.00"))
    on_statement = [inv.devices[f.device.id] for f in figures]
    rows = []
    for e in inp.exclusions:
        start, end = max(to_micros(e.start), period.start), min(to_micros(e.end), period.end)
        if end <= start or not any(e.scope.covers(d) for d in on_statement):
            continue
        ok = honoured(e, contract)
        rows.append(ExclusionRow(e, ok, end - start if ok else 0, why_not_honoured(e, contract)))
    return Statement(
        input=inp,
        devices=tuple(figures),
        fees=fees,
        rates=rates,
        lines=tuple(lines),
        exclusions=tuple(rows),
        fee_total=fee_total,
        deduction_total=deduction_total,
        payable=fee_total - deduction_total,
    )
