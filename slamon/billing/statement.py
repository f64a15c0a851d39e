"""A month's statement for one contract (SLA.md §7): a pure function of its inputs, and its hash.

`compute(BillingInput) -> Statement`; `Statement.document(...)` is the JSON of FORMATS.md. The hash
is SHA-256 over the canonical inputs' digest and the canonical statement body, so anyone holding
the same inputs gets the same hash, and a changed figure or a changed input changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from slamon.billing.causes import DEVICE, covers_for, honoured, why_not_honoured
from slamon.billing.deductions import (
    Line,
    ScoreItem,
    cap_line,
    device_fee,
    fault_item,
    kpi_lines,
    number,
    overrun_hours,
    overrun_line,
    score_card_line,
    tier_line,
)
from slamon.billing.hd import HdFigures, hd_figures
from slamon.billing.periods import Period
from slamon.billing.rates import DeviceFigures, OutageFigures, device_figures, fleet_rates
from slamon.canonical import (
    canonical_json,
    contract_to_dict,
    device_to_dict,
    exclusion_to_dict,
    inspection_to_dict,
    site_to_dict,
)
from slamon.engine.ports import PortEvidence, PortLedger
from slamon.engine.timeline import Timeline
from slamon.model import (
    SECOND,
    Contract,
    ContractId,
    Device,
    DeviceId,
    Event,
    Exclusion,
    Inventory,
    Kpi,
    Micros,
    MissedInspection,
    ScoreCause,
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
    # the contract's missed inspections dated in the month, when its score card counts them
    inspections: tuple[MissedInspection, ...] = ()
    # the evidence digest of the month's raw result blocks of these devices (store Results.evidence),
    # or None when there are none (a store fed timelines directly)
    evidence: str | None = None
    # per camera: its video samples in the month, and how many were below the resolution minimum
    # (None: not counted); the HD rate's input (billing/hd.py)
    video: Mapping[DeviceId, tuple[int, int | None]] = field(default_factory=dict)

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
        if self.inspections:  # likewise: statements without missed inspections keep their digest
            doc["inspections"] = [inspection_to_dict(i) for i in self.inspections]
        if self.evidence is not None:  # the raw results the timelines were built from
            doc["evidence"] = self.evidence
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
    coverage: Fraction | None = None  # 1 − ΣU / ΣS over the devices; None when nothing was scheduled
    hd: HdFigures | None = None  # the HD rate's figures; None when no camera was sampled

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
        scored = {  # outages a score card took points off for (their overrun, with no money)
            (item.device, item.outage_start): item.hours
            for line in self.lines
            if line.score is not None
            for item in line.score.items
            if item.cause is ScoreCause.REPAIR_OVERRUN
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
            "coverage": None if self.coverage is None else float(self.coverage),
            **({} if self.hd is None else {"hd": _hd(self.hd)}),
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
                    scored.get((f.device.id, o.outage.start), 0),
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
    scored_hours: int = 0,
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
        "overrun_hours": line.hours if line else scored_hours,
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
    if line.rule == "kpi_shortfall":
        out["points"] = line.points
    if line.score is not None:
        score = line.score
        out["score"] = number(score.score)
        out["pay"] = number(score.band.pay)
        out["points_lost"] = {cause.value: number(points) for cause, points in score.lost.items()}
        out["items"] = [_score_item(item, instant) for item in score.items]
    out["reason"] = line.reason
    out["amount"] = str(line.amount)
    return out


def _score_item(item: ScoreItem, instant: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"cause": item.cause.value}
    if item.cause is ScoreCause.FAULT_HOURS:
        out |= {"device": item.device, "channels": item.channels, "fault_s": seconds(item.fault)}
    elif item.cause is ScoreCause.REPAIR_OVERRUN:
        out |= {
            "device": item.device,
            "outage_start": instant(item.outage_start),
            "overrun_hours": item.hours,
        }
    elif item.inspection is not None:
        i = item.inspection
        out |= {"inspection": i.id, "date": i.date.isoformat(), "site": i.site}
    out["points"] = number(item.points)
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
    card = contract.sla.score_card
    scored: list[ScoreItem] = []  # what the score card takes points off for, by cause
    for f in figures:
        tier = tier_line(f.device, fees[f.device.id], f.availability, contract.sla.availability_tiers)
        if tier is not None:
            lines.append(tier)
        if card is not None and f.device.kind in contract.sla.fleet_kinds:
            fault = fault_item(card, f.device, f.down, f.degraded)
            if fault is not None:
                scored.append(fault)
    for f in figures:
        area = inv.sites[f.device.site].area
        for o in f.outages:
            if o.closed and period.start <= o.end < period.end:
                line = overrun_line(f.device, area, o.outage.start, o.counted_total, contract)
                if line is not None:
                    lines.append(line)
                hours = overrun_hours(area, o.counted_total, contract)
                if card is not None and card.repair_overrun is not None and hours > 0:
                    scored.append(
                        ScoreItem(
                            ScoreCause.REPAIR_OVERRUN,
                            card.repair_overrun,
                            device=f.device.id,
                            outage_start=o.outage.start,
                            hours=hours,
                        )
                    )
    rates = fleet_rates(figures, contract)
    lines += kpi_lines(rates, contract, fee_total)
    if card is not None:
        if card.missed_inspection is not None:
            scored += [
                ScoreItem(ScoreCause.MISSED_INSPECTION, card.missed_inspection, inspection=i)
                for i in missed_in(inp.inspections, contract.id, period)
            ]
        lines.append(score_card_line(card, scored, fee_total))
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
        coverage=coverage(figures),
        hd=hd_figures(figures, inp.video),
    )


def _hd(hd: HdFigures) -> dict[str, Any]:
    return {
        "cameras_sampled": hd.sampled,
        "hd_cameras": hd.hd,
        "uncounted": hd.uncounted,
        "hd_rate": None if hd.rate is None else float(hd.rate),
    }


def coverage(figures: Sequence[DeviceFigures]) -> Fraction | None:
    """The share of the devices' scheduled seconds with evidence: 1 − ΣU / ΣS (unknown seconds in
    their service windows, however the contract counts them); None when nothing was scheduled."""
    scheduled = sum(f.scheduled for f in figures)
    if not scheduled:
        return None
    return 1 - Fraction(sum(f.unknown for f in figures), scheduled)


def missed_in(
    inspections: Sequence[MissedInspection], contract: ContractId, period: Period
) -> list[MissedInspection]:
    """The contract's missed inspections due on a day of the period, by date and id."""
    tz = ZoneInfo(period.timezone)
    found = [
        i
        for i in inspections
        if i.contract == contract
        and period.start <= to_micros(datetime.combine(i.date, time(), tzinfo=tz)) < period.end
    ]
    return sorted(found, key=lambda i: (i.date, i.id))
