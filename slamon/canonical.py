"""Canonical JSON forms of the inventory, contracts, exclusions and missed inspections.

These dicts are stored as versions in the database and hashed into statements, so the same
value must always give the same bytes, and reading them back must give the same value:
`x_from_dict(x_to_dict(x)) == x`. The shapes follow the YAML files, with one spelling per type:

- decimals: strings, exactly as held (`"92.29"`, `"0.1"`), never JSON numbers;
- durations: integer microseconds (`stale_after: 300000000`), exact at any resolution;
- instants: ISO-8601 in UTC with `Z` (`"2025-05-31T16:00:00Z"`, fractions only when non-zero);
- dates: `"2025-06-01"`; enums: their spec words; sets: sorted lists; absent values: `null`;
- mappings keyed by id become lists sorted by id (sites, devices), other mappings stay objects.

Pure: no I/O. `canonical_json` gives the bytes to store and hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import TypeAlias

from slamon.model import (
    Contract,
    ContractId,
    Device,
    DeviceId,
    DeviceKind,
    Exclusion,
    ExclusionCategory,
    ExclusionId,
    ExclusionStatus,
    FaultHours,
    FaultTime,
    InspectionId,
    Inventory,
    Kpi,
    KpiTarget,
    MissedInspection,
    PayBand,
    PerPoint,
    PointCount,
    RepairOverrun,
    Scope,
    ScoreCard,
    Site,
    SiteId,
    SlaTerms,
    SnmpTarget,
    Tier,
    UnknownCountsAs,
    Uplink,
    to_micros,
)

JsonDict: TypeAlias = dict[str, object]


def canonical_json(obj: object) -> bytes:
    """Sorted keys, no whitespace, UTF-8 as is: the bytes that get stored and hashed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# --- scalars ------------------------------------------------------------------------------------


def _instant(value: datetime) -> str:
    if value.utcoffset() is None:
        raise ValueError(f"{value.isoformat()} has no UTC offset")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_instant(value: object) -> datetime:
    text = _str(value)
    if not text.endswith("Z"):
        raise ValueError(f"instant {text!r} is not in UTC with Z")
    return datetime.fromisoformat(text).astimezone(UTC)


def _optional_instant(value: datetime | None) -> str | None:
    return None if value is None else _instant(value)


def _parse_optional_instant(value: object) -> datetime | None:
    return None if value is None else _parse_instant(value)


def _micros(value: timedelta) -> int:
    return to_micros(value)


def _parse_micros(value: object) -> timedelta:
    return timedelta(microseconds=_int(value))


def _decimal(value: Decimal) -> str:
    return str(value)


def _parse_decimal(value: object) -> Decimal:
    number = Decimal(_str(value))
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal")
    return number


def share_text(value: Fraction) -> str:
    """A share as a decimal when it is one ("0.02"), else as the ratio it is ("1/45")."""
    denominator = value.denominator
    for p in (2, 5):
        while denominator % p == 0:
            denominator //= p
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    return f"{Decimal(value.numerator) / Decimal(value.denominator):.{places}f}"


def _parse_share(value: object) -> Fraction:
    text = _str(value)
    return Fraction(text) if "/" in text else Fraction(_parse_decimal(text))


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _optional_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _dict(value: object) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {value!r}")
    return value


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return value


def _sorted(values: frozenset[str]) -> list[str]:
    return sorted(values)


# --- inventory ----------------------------------------------------------------------------------


def site_to_dict(site: Site) -> JsonDict:
    return {"id": site.id, "name": site.name, "district": site.district, "area": site.area}


def site_from_dict(data: object) -> Site:
    d = _dict(data)
    return Site(
        id=SiteId(_str(d["id"])), name=_str(d["name"]), district=_str(d["district"]), area=_str(d["area"])
    )


def device_to_dict(device: Device) -> JsonDict:
    out: JsonDict = {
        "id": device.id,
        "kind": device.kind.value,
        "address": device.address,
        "site": device.site,
        "contract": device.contract,
        "parent": device.parent,
        "channels": device.channels,
        "stream": device.stream,
        "snmp": None if device.snmp is None else {"version": device.snmp.version, "port": device.snmp.port},
        "in_service": _optional_instant(device.in_service),
        "out_of_service": _optional_instant(device.out_of_service),
    }
    if device.uplink is not None:  # absent when none: inventories without uplinks keep their hash
        out["uplink"] = {"switch": device.uplink.switch, "port": device.uplink.port}
    return out


def device_from_dict(data: object) -> Device:
    d = _dict(data)
    snmp: SnmpTarget | None = None
    if d["snmp"] is not None:
        s = _dict(d["snmp"])
        snmp = SnmpTarget(version=_str(s["version"]), port=_int(s["port"]))
    parent = _optional_str(d["parent"])
    uplink: Uplink | None = None
    if d.get("uplink") is not None:
        u = _dict(d["uplink"])
        uplink = Uplink(switch=DeviceId(_str(u["switch"])), port=_str(u["port"]))
    return Device(
        id=DeviceId(_str(d["id"])),
        kind=DeviceKind(_str(d["kind"])),
        address=_str(d["address"]),
        site=SiteId(_str(d["site"])),
        contract=ContractId(_str(d["contract"])),
        parent=None if parent is None else DeviceId(parent),
        channels=_int(d["channels"]),
        stream=_optional_str(d["stream"]),
        snmp=snmp,
        in_service=_parse_optional_instant(d["in_service"]),
        out_of_service=_parse_optional_instant(d["out_of_service"]),
        uplink=uplink,
    )


def inventory_to_dict(inventory: Inventory) -> JsonDict:
    """Sites and devices as lists sorted by id: the order of the file is not part of the inventory."""
    return {
        "sites": [site_to_dict(inventory.sites[k]) for k in sorted(inventory.sites)],
        "devices": [device_to_dict(inventory.devices[k]) for k in sorted(inventory.devices)],
    }


def inventory_from_dict(data: object) -> Inventory:
    d = _dict(data)
    sites = [site_from_dict(item) for item in _list(d["sites"])]
    devices = [device_from_dict(item) for item in _list(d["devices"])]
    return Inventory(sites={s.id: s for s in sites}, devices={x.id: x for x in devices})


# --- contracts ----------------------------------------------------------------------------------


def _sla_to_dict(sla: SlaTerms) -> JsonDict:
    overrun = sla.repair_overrun
    out: JsonDict = {
        "down_after": sla.down_after,
        "up_after": sla.up_after,
        "degrade_after": sla.degrade_after,
        "stale_after": _micros(sla.stale_after),
        "unknown_counts_as": sla.unknown_counts_as.value,
        "upstream_counts": sla.upstream_counts,
        "upstream_grace": _micros(sla.upstream_grace),
        "availability_tiers": [
            {"below": _decimal(t.below), "deduct": _decimal(t.deduct)} for t in sla.availability_tiers
        ],
        "repair_deadline": {area: _micros(td) for area, td in sla.repair_deadline.items()},
        "repair_overrun": None
        if overrun is None
        else {
            "per_started_hour": _decimal(overrun.per_started_hour),
            "max_per_incident": None
            if overrun.max_per_incident is None
            else _decimal(overrun.max_per_incident),
        },
        "fleet_kinds": _sorted(frozenset(k.value for k in sla.fleet_kinds)),
        "fleet_kpis": {kpi.value: _kpi_to_dict(t) for kpi, t in sla.fleet_kpis.items()},
        "cap": None if sla.cap is None else _decimal(sla.cap),
        "exclusions": _sorted(frozenset(c.value for c in sla.exclusions)),
    }
    if sla.score_card is not None:  # absent when none: contracts without one keep their hash
        out["score_card"] = _score_card_to_dict(sla.score_card)
    if sla.filing_deadline is not None:  # absent when none, as score_card
        out["filing_deadline"] = _micros(sla.filing_deadline)
    if sla.min_coverage is not None:  # absent when not given (the default): contracts keep their hash
        out["min_coverage"] = _decimal(sla.min_coverage)
    return out


def _kpi_to_dict(t: KpiTarget) -> JsonDict:
    """`deduct` and `per_point` only when given: a KPI of the classic form keeps its bytes."""
    out: JsonDict = {"target": _decimal(t.target)}
    if t.deduct is not None:
        out["deduct"] = _decimal(t.deduct)
    if t.per_point is not None:
        p = t.per_point
        out["per_point"] = {
            "deduct": share_text(p.deduct),
            "points": p.points.value,
            "max": None if p.limit is None else _decimal(p.limit),
        }
    return out


def _kpi_from_dict(data: object) -> KpiTarget:
    d = _dict(data)
    per_point: PerPoint | None = None
    if d.get("per_point") is not None:
        p = _dict(d["per_point"])
        per_point = PerPoint(
            deduct=_parse_share(p["deduct"]),
            points=PointCount(_str(p["points"])),
            limit=None if p["max"] is None else _parse_decimal(p["max"]),
        )
    deduct = d.get("deduct")
    return KpiTarget(
        target=_parse_decimal(d["target"]),
        deduct=None if deduct is None else _parse_decimal(deduct),
        per_point=per_point,
    )


def _score_card_to_dict(card: ScoreCard) -> JsonDict:
    fault = card.fault_hours
    return {
        "fault_hours": None
        if fault is None
        else {"over": _micros(fault.over), "points": _decimal(fault.points), "time": fault.time.value},
        "repair_overrun": None if card.repair_overrun is None else _decimal(card.repair_overrun),
        "missed_inspection": None if card.missed_inspection is None else _decimal(card.missed_inspection),
        "pay": [{"at_least": _decimal(b.at_least), "pay": _decimal(b.pay)} for b in card.pay],
    }


def _score_card_from_dict(data: object) -> ScoreCard:
    d = _dict(data)
    fault: FaultHours | None = None
    if d["fault_hours"] is not None:
        f = _dict(d["fault_hours"])
        fault = FaultHours(
            over=_parse_micros(f["over"]), points=_parse_decimal(f["points"]), time=FaultTime(_str(f["time"]))
        )
    overrun, missed = d["repair_overrun"], d["missed_inspection"]
    return ScoreCard(
        pay=tuple(
            PayBand(at_least=_parse_decimal(_dict(b)["at_least"]), pay=_parse_decimal(_dict(b)["pay"]))
            for b in _list(d["pay"])
        ),
        fault_hours=fault,
        repair_overrun=None if overrun is None else _parse_decimal(overrun),
        missed_inspection=None if missed is None else _parse_decimal(missed),
    )


def _sla_from_dict(data: object) -> SlaTerms:
    d = _dict(data)
    overrun: RepairOverrun | None = None
    if d["repair_overrun"] is not None:
        o = _dict(d["repair_overrun"])
        cap = o["max_per_incident"]
        overrun = RepairOverrun(
            per_started_hour=_parse_decimal(o["per_started_hour"]),
            max_per_incident=None if cap is None else _parse_decimal(cap),
        )
    tiers = [_dict(t) for t in _list(d["availability_tiers"])]
    kpis = _dict(d["fleet_kpis"])
    return SlaTerms(
        down_after=_int(d["down_after"]),
        up_after=_int(d["up_after"]),
        degrade_after=_int(d["degrade_after"]),
        stale_after=_parse_micros(d["stale_after"]),
        unknown_counts_as=UnknownCountsAs(_str(d["unknown_counts_as"])),
        upstream_counts=_bool(d["upstream_counts"]),
        upstream_grace=_parse_micros(d["upstream_grace"]),
        availability_tiers=tuple(
            Tier(below=_parse_decimal(t["below"]), deduct=_parse_decimal(t["deduct"])) for t in tiers
        ),
        repair_deadline={area: _parse_micros(td) for area, td in _dict(d["repair_deadline"]).items()},
        repair_overrun=overrun,
        fleet_kinds=frozenset(DeviceKind(_str(k)) for k in _list(d["fleet_kinds"])),
        fleet_kpis={Kpi(name): _kpi_from_dict(t) for name, t in kpis.items()},
        cap=None if d["cap"] is None else _parse_decimal(d["cap"]),
        exclusions=frozenset(ExclusionCategory(_str(c)) for c in _list(d["exclusions"])),
        score_card=None if d.get("score_card") is None else _score_card_from_dict(d["score_card"]),
        filing_deadline=None if d.get("filing_deadline") is None else _parse_micros(d["filing_deadline"]),
        min_coverage=None if d.get("min_coverage") is None else _parse_decimal(d["min_coverage"]),
    )


def contract_to_dict(contract: Contract) -> JsonDict:
    out: JsonDict = {
        "id": contract.id,
        "vendor": contract.vendor,
        "currency": contract.currency,
        "timezone": contract.timezone,
        "term": {"start": contract.term_start.isoformat(), "months": contract.term_months},
        "fees": {kind.value: _decimal(fee) for kind, fee in contract.fees.items()},
        "prorate": contract.prorate,
        "sla": _sla_to_dict(contract.sla),
    }
    if contract.buyer is not None:  # absent when none: contracts without a buyer keep their hash
        out["buyer"] = contract.buyer
    return out


def contract_from_dict(data: object) -> Contract:
    d = _dict(data)
    term = _dict(d["term"])
    return Contract(
        id=ContractId(_str(d["id"])),
        vendor=_str(d["vendor"]),
        currency=_str(d["currency"]),
        timezone=_str(d["timezone"]),
        term_start=date.fromisoformat(_str(term["start"])),
        term_months=_int(term["months"]),
        fees={DeviceKind(kind): _parse_decimal(fee) for kind, fee in _dict(d["fees"]).items()},
        prorate=_bool(d["prorate"]),
        sla=_sla_from_dict(d["sla"]),
        buyer=_optional_str(d.get("buyer")),
    )


# --- exclusions ---------------------------------------------------------------------------------


def exclusion_to_dict(exclusion: Exclusion) -> JsonDict:
    scope = exclusion.scope
    return {
        "id": exclusion.id,
        "category": exclusion.category.value,
        "scope": {
            "devices": _sorted(frozenset(scope.devices)),
            "sites": _sorted(frozenset(scope.sites)),
            "contracts": _sorted(frozenset(scope.contracts)),
        },
        "start": _instant(exclusion.start),
        "end": _instant(exclusion.end),
        "reason": exclusion.reason,
        "status": exclusion.status.value,
        "approved_by": exclusion.approved_by,
    }


def exclusion_from_dict(data: object) -> Exclusion:
    d = _dict(data)
    scope = _dict(d["scope"])
    return Exclusion(
        id=ExclusionId(_str(d["id"])),
        category=ExclusionCategory(_str(d["category"])),
        scope=Scope(
            devices=frozenset(DeviceId(_str(x)) for x in _list(scope["devices"])),
            sites=frozenset(SiteId(_str(x)) for x in _list(scope["sites"])),
            contracts=frozenset(ContractId(_str(x)) for x in _list(scope["contracts"])),
        ),
        start=_parse_instant(d["start"]),
        end=_parse_instant(d["end"]),
        reason=_str(d["reason"]),
        status=ExclusionStatus(_str(d["status"])),
        approved_by=_optional_str(d["approved_by"]),
    )


# --- inspections --------------------------------------------------------------------------------


def inspection_to_dict(inspection: MissedInspection) -> JsonDict:
    return {
        "id": inspection.id,
        "contract": inspection.contract,
        "date": inspection.date.isoformat(),
        "site": inspection.site,
        "reason": inspection.reason,
        "entered_by": inspection.entered_by,
    }


def inspection_from_dict(data: object) -> MissedInspection:
    d = _dict(data)
    site = _optional_str(d["site"])
    return MissedInspection(
        id=InspectionId(_str(d["id"])),
        contract=ContractId(_str(d["contract"])),
        date=date.fromisoformat(_str(d["date"])),
        reason=_str(d["reason"]),
        entered_by=_str(d["entered_by"]),
        site=None if site is None else SiteId(site),
    )
