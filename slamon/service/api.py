"""The read API, /api/v1: devices now (from the round's view) and outages over a window (from the
store). Filters may repeat (`?state=down&state=unknown` is either); a value that cannot match is a
400 naming it, an unknown device a 404, a store that is away a 503 to retry."""

from __future__ import annotations

import asyncio
import bisect
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

from slamon.billing.causes import DEVICE, attribute, covers_for
from slamon.billing.intervals import clip
from slamon.billing.to_date import MonthToDate
from slamon.canonical import exclusion_to_dict
from slamon.engine.ports import PortLedger, port_fault
from slamon.engine.timeline import Outage
from slamon.errors import StoreError
from slamon.model import (
    SECOND,
    Device,
    DeviceId,
    DeviceKind,
    DeviceState,
    Exclusion,
    ExclusionStatus,
    Fleet,
    Micros,
    from_micros,
    to_micros,
)
from slamon.service.keys import CLOCK, FIGURES, MONITOR, READER
from slamon.service.ports import SwitchPorts
from slamon.service.video import LastSample
from slamon.service.views import DeviceView, FleetView
from slamon.store import Store

T = TypeVar("T")
MAX_OUTAGES = 10_000
INLINE_DEVICES = 2_000  # a device list longer than this is built on a reader thread
EARLIEST = to_micros(datetime.fromisoformat("1970-01-01T00:00:00+00:00"))
LATEST = to_micros(datetime.fromisoformat("2200-01-01T00:00:00+00:00"))
CAUSE_KINDS = ("device", "upstream", "excluded")
RETRY_AFTER_S = 10
MAX_JSON = 1024 * 1024  # a request body, unless its endpoint takes more (evidence, a statement to verify)

Query = dict[str, frozenset[str]]


def _query(request: web.Request, allowed: tuple[str, ...]) -> Query:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown query parameter {unknown[0]!r} (use {', '.join(allowed)})\n")
    return {name: frozenset(request.query.getall(name)) for name in set(request.query)}


def _one(q: Query, name: str) -> str | None:
    values = q.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise web.HTTPBadRequest(text=f"{name}: give it once\n")
    return next(iter(values))


def _choices(q: Query, name: str, allowed: tuple[str, ...]) -> None:
    for value in sorted(q.get(name, ())):
        if value not in allowed:
            raise web.HTTPBadRequest(text=f"{name}: {value!r} is not one of {', '.join(allowed)}\n")


def _cause_choices(q: Query) -> None:
    for cause in sorted(q.get("cause", ())):
        if cause.split(":")[0] not in CAUSE_KINDS:
            raise web.HTTPBadRequest(
                text=f"cause: {cause!r} is not device, upstream[:ID] or excluded[:CATEGORY]\n"
            )


def _instant(text: str, name: str) -> Micros:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: {text!r} is not an ISO-8601 instant\n") from None
    if value.tzinfo is None:
        raise web.HTTPBadRequest(text=f"{name}: {text!r} has no UTC offset\n")
    try:
        us = to_micros(value)
    except OverflowError:
        us = EARLIEST - 1
    if not EARLIEST <= us < LATEST:
        raise web.HTTPBadRequest(text=f"{name}: {text!r} is out of range (1970 to 2199)\n")
    return us


async def _off_loop(request: web.Request, fn: Callable[[], T]) -> T:
    """Run `fn` on a reader thread; a store that is away is a 503 the client may retry."""
    try:
        return await asyncio.get_running_loop().run_in_executor(request.app[READER], fn)
    except StoreError as exc:
        raise web.HTTPServiceUnavailable(
            text=f"the store is unavailable, retry later: {exc}\n",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None


def json_response(body: object, status: int = 200) -> web.Response:
    """JSON in UTF-8 with Chinese text as is (aiohttp's own escapes it as \\uXXXX)."""
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


# --- /api/v1/devices ------------------------------------------------------------------------

DEVICE_FILTERS = ("contract", "site", "district", "kind", "state", "cause")


async def devices(request: web.Request) -> web.Response:
    """Every device's state, cause and since when, as of the last round; filter by contract, site,
    district, kind, state and cause (device, upstream, excluded, or a full cause)."""
    q = _query(request, DEVICE_FILTERS)
    _choices(q, "kind", tuple(k.value for k in DeviceKind))
    _choices(q, "state", tuple(s.value for s in DeviceState))
    _cause_choices(q)
    view = request.app[MONITOR].view
    if view is None:
        raise web.HTTPServiceUnavailable(
            text="starting: no view of the fleet yet\n", headers={"Retry-After": "1"}
        )
    ports = request.app[MONITOR].ports.snapshot()
    if len(view.devices) <= INLINE_DEVICES:
        return json_response(device_list(view, q, ports))
    return json_response(await _off_loop(request, lambda: device_list(view, q, ports)))


def device_list(view: FleetView, q: Query, ports: SwitchPorts | None = None) -> dict[str, Any]:
    zones = {cid: ZoneInfo(c.timezone) for cid, c in view.fleet.contracts.items()}
    out = [device_json(v, zones[v.device.contract], ports) for v in view.devices if _matches(v, q)]
    return {"as_of": from_micros(view.at).isoformat(timespec="seconds"), "devices": out, "count": len(out)}


def _matches(v: DeviceView, q: Query) -> bool:
    d = v.device
    checks: Mapping[str, str | None] = {
        "contract": d.contract,
        "site": d.site,
        "district": v.district,
        "kind": d.kind.value,
        "state": v.state.value,
    }
    if any(name in q and value not in q[name] for name, value in checks.items()):
        return False
    return "cause" not in q or (v.cause is not None and _cause_matches(v.cause, q["cause"]))


def _cause_matches(cause: str, wanted: frozenset[str]) -> bool:
    return cause in wanted or cause.split(":")[0] in wanted


def device_json(v: DeviceView, zone: ZoneInfo, ports: SwitchPorts | None = None) -> dict[str, Any]:
    """A device as the list shows it. `cause_detail`: for a device down by its own fault, what its
    uplink port says (service/ports.port_fault), when the latest poll of its switch says anything."""

    def when(us: Micros | None) -> str | None:
        return None if us is None else from_micros(us).astimezone(zone).isoformat(timespec="seconds")

    d = v.device
    detail = ports.fault_of(d.id) if ports is not None and v.cause == DEVICE else None
    return {
        "id": d.id,
        "state": v.state.value,
        "since": when(v.since),
        "cause": v.cause,
        "cause_detail": detail,
        "last_probe": when(v.last_probe),
        "rtt_ms": v.rtt_ms,
        "loss": v.loss,
        "error": v.error,
        "defects": sorted(x.value for x in v.defects),
        "kind": d.kind.value,
        "site": d.site,
        "district": v.district,
        "contract": d.contract,
        "address": d.address,
    }


def _view_id(v: DeviceView) -> str:
    return v.device.id


async def device(request: web.Request) -> web.Response:
    """One device as the list shows it, with what SNMP says of it: a switch's latest poll and its
    ports (with the devices behind each), a device's uplink port and its state; and a camera's
    latest video sample."""
    view = request.app[MONITOR].view
    if view is None:
        raise web.HTTPServiceUnavailable(
            text="starting: no view of the fleet yet\n", headers={"Retry-After": "1"}
        )
    wanted = request.match_info["id"]
    at = bisect.bisect_left(view.devices, wanted, key=_view_id)  # a view lists devices by id
    found = view.devices[at] if at < len(view.devices) and view.devices[at].device.id == wanted else None
    if found is None:
        raise web.HTTPNotFound(text=f"no device {wanted!r} in the inventory\n")
    ports = request.app[MONITOR].ports.snapshot()
    zone = ZoneInfo(view.fleet.contracts[found.device.contract].timezone)
    body = device_json(found, zone, ports)
    body.update(device_ports(found.device.id, ports, zone))
    video = request.app[MONITOR].video.latest.get(found.device.id)
    if video is not None:
        body["video"] = video_json(video, zone)
    return json_response(body)


def video_json(sample: LastSample, zone: ZoneInfo) -> dict[str, Any]:
    """A camera's latest video sample: when, its defects (no_signal with the reason), the stream's
    size and the metrics that judged it (docs/video.md)."""
    return {
        "at": from_micros(sample.at).astimezone(zone).isoformat(timespec="seconds"),
        "defects": sorted(d.value for d in sample.defects),
        "reason": sample.reason,
        "width": sample.width,
        "height": sample.height,
        "metrics": dict(sample.metrics),
    }


def device_ports(device: DeviceId, ports: SwitchPorts, zone: ZoneInfo) -> dict[str, Any]:
    """`snmp` for a polled switch (its latest poll, its ports, who hangs off each) and `uplink` for
    a device that names one."""
    out: dict[str, Any] = {}
    reading = ports.readings.get(device)
    if reading is not None:
        behind = ports.hanging.get(device, {})
        listed: dict[str, Any] = {}
        for name, state in reading.ports.items():
            hanging = list(behind.get(name, ()))
            index = state.get("index")
            if isinstance(index, int):  # an uplink may name the port by its ifIndex
                hanging += behind.get(str(index), [])
            listed[name] = {**state, "fault": port_fault(name, state), "devices": hanging}
        out["snmp"] = {
            "ok": reading.ok,
            "error": reading.error,
            "at": from_micros(reading.at).astimezone(zone).isoformat(timespec="seconds"),
            "polled_at": None
            if reading.polled_at is None
            else from_micros(reading.polled_at).astimezone(zone).isoformat(timespec="seconds"),
            "uptime_s": reading.uptime_s,
            "reboots": ports.reboots.get(device, 0),
            "poe": {"budget_w": reading.poe_budget_w, "used_w": reading.poe_used_w},
            "ports": listed,
        }
    uplink = ports.uplinks.get(device)
    if uplink is not None:
        found = ports.port_of(device)
        out["uplink"] = {
            "switch": uplink.switch,
            "port": uplink.port,
            "state": None if found is None else dict(found[2]),
            "fault": None if found is None else port_fault(found[1], found[2]),
        }
    return out


# --- /api/v1/sla ----------------------------------------------------------------------------

NOT_COMPUTED = (
    "the month-to-date figures are not computed in this process (yet): they come every 5 minutes "
    "from the process that runs the store's jobs"
)
RISK_LISTED = 100  # devices and open outages listed per contract, the closest to losing money first


async def sla(request: web.Request) -> web.Response:
    """The month in progress, per contract, as the statement says it so far: rates and their margin
    to the targets, the money if the month ended now, the devices closest to their next tier and
    the open outages closest to (or past) their repair deadline. From the month-to-date figures
    (every 5 minutes, where the store's jobs run); where they are not computed (yet), no contract
    and a `note` saying so."""
    q = _query(request, ("contract",))
    figures = request.app[FIGURES]
    mtd = figures.mtd
    if mtd is None or not figures.computed_at:
        return json_response({"computed_at": None, "contracts": [], "note": NOT_COMPUTED})
    wanted = set(q.get("contract", ())) or set(mtd.rates)
    unknown = sorted(wanted - set(mtd.rates))
    if unknown:
        raise web.HTTPNotFound(text=f"no contract {unknown[0]!r} this month\n")
    return json_response(
        {"computed_at": figures.computed_at, "contracts": [_sla_of(mtd, c) for c in sorted(wanted)]}
    )


def _sla_of(mtd: MonthToDate, contract: str) -> dict[str, Any]:
    money = mtd.money[contract]
    tiers = sorted((left, d, below) for d, c, left, below in mtd.tier_margins if c == contract)
    repairs = sorted((left, d, area) for d, c, left, area in mtd.repair_left if c == contract)
    return {
        "contract": contract,
        "rates": {k.value: v for k, v in mtd.rates[contract].items()},
        "kpi_margins": {k.value: v for k, v in mtd.kpi_margins.get(contract, {}).items()},
        "currency": money.currency,
        "fee_total": money.fee_total,
        "deductions": money.deductions,
        "payable": money.payable,
        "tier_margins": [
            {"device": d, "left_s": left, "below": below} for left, d, below in tiers[:RISK_LISTED]
        ],
        "repair_deadlines": [
            {"device": d, "left_s": left, "area": area} for left, d, area in repairs[:RISK_LISTED]
        ],
    }


# --- /api/v1/outages ------------------------------------------------------------------------

OUTAGE_FILTERS = ("contract", "site", "district", "device", "cause", "from", "to")


async def outages(request: web.Request) -> web.Response:
    """Outages overlapping [from, to) (default: the last 24 hours), with the seconds of each cause;
    filter by contract, site, district, device and cause (device, upstream, excluded, or a full cause). At
    most MAX_OUTAGES, by device id and start; `truncated` says when more matched."""
    q = _query(request, OUTAGE_FILTERS)
    now = to_micros(request.app[CLOCK].now())
    to_text, from_text = _one(q, "to"), _one(q, "from")
    end = _instant(to_text, "to") if to_text is not None else now  # `to=` is not an instant
    start = _instant(from_text, "from") if from_text is not None else end - 86_400 * SECOND
    if end <= start:
        raise web.HTTPBadRequest(text="to must be after from\n")
    _cause_choices(q)
    monitor = request.app[MONITOR]
    fleet = monitor.whole  # the store's outages of the whole fleet, whichever shard is asked
    missing = sorted(d for d in q.get("device", ()) if d not in fleet.inventory.devices)
    if missing:
        raise web.HTTPNotFound(text=f"no device {missing[0]!r}\n")
    store = monitor.store
    now_us = to_micros(request.app[CLOCK].now())
    dark = [s.proposal(now_us) for s in monitor.power.open.values() if s.since < end]
    report = await _off_loop(request, lambda: outage_report(store, fleet, q, start, end))
    # proposals of sites still dark (stored once they answer again), with the time so far
    report["proposed_exclusions"] += [
        {**exclusion_to_dict(x), "open": True} for x in dark if _proposal_chosen(x, fleet, q)
    ]
    return json_response(report)


def outage_report(store: Store, fleet: Fleet, q: Query, start: Micros, end: Micros) -> dict[str, Any]:
    """The outages of the chosen devices over [start, end), each with its causes by billing.causes
    (the rule a statement charges by), from the store's read-only side. Read by time: a question
    about the whole fleet costs what it finds."""
    grace = max((to_micros(c.sla.upstream_grace) for c in fleet.contracts.values()), default=0)
    filtered = any(name in q for name in CHOOSING)
    with store.read() as tx:
        keys: Sequence[int] | None = None
        if filtered:  # these devices and their ancestors only
            related = {
                x
                for d in fleet.inventory.devices.values()
                if _chosen(d, q, fleet)
                for x in (d.id, *(a.id for a in fleet.inventory.ancestors(d.id)))
            }
            keys = list(tx.keys.find(sorted(related)).values())
        found = tx.timelines.outages_between(start - grace, end, keys)
        ids = tx.keys.ids(found)
        devices = fleet.inventory.devices
        switches = {
            uplink.switch
            for k in found
            if k in ids and (uplink := getattr(devices.get(DeviceId(ids[k])), "uplink", None)) is not None
        }
        earliest = min((o.start for outs in found.values() for o in outs), default=start)
        port_ledger = PortLedger(tx.events.port_history(switches, since=earliest, until=end))
        in_force = tx.versions.exclusions()  # the store's: the workflow's decisions and the file's
        proposed = [
            e
            for e in in_force
            if e.status is ExclusionStatus.PROPOSED and to_micros(e.start) < end and to_micros(e.end) > start
        ]
    by_id = {ids[k]: outs for k, outs in found.items() if k in ids}
    out: list[dict[str, Any]] = []
    truncated = False  # more outages than MAX_OUTAGES matched: the list stops at MAX_OUTAGES
    for device_id in sorted(by_id):
        d = devices.get(device_id)
        if d is None or not _chosen(d, q, fleet):
            continue
        contract = fleet.contracts[d.contract]
        covers = covers_for(d, in_force, contract)
        ancestors = [(a.id, by_id.get(a.id, ())) for a in fleet.inventory.ancestors(d.id)]
        zone = ZoneInfo(contract.timezone)
        for o in by_id[device_id]:
            if o.end <= start or o.start >= end:
                continue
            # its `down` stretches: the monitoring gaps it spans carry no cause (SLA.md §3)
            parts = attribute(o.stretches(), covers, ancestors, contract.sla.upstream_grace, begun=o.start)
            inside = {cause: sum(b - a for a, b in clip(ivs, start, end)) for cause, ivs in parts.items()}
            # a cause whose time all falls outside the window is not this window's
            causes = {cause: us / SECOND for cause, us in inside.items() if us > 0}
            if "cause" in q and not any(_cause_matches(c, q["cause"]) for c in causes):
                continue
            if len(out) >= MAX_OUTAGES:
                truncated = True
                break
            entry = _outage_json(d, o, causes, zone)
            if d.uplink is not None and DEVICE in causes:  # the uplink port's word on it
                seen = port_ledger.evidence(d.uplink, o.start, o.end)
                if seen is not None:
                    entry["evidence"]["port"] = {
                        "at": from_micros(seen.at).astimezone(zone).isoformat(),
                        "switch": seen.switch,
                        "port": seen.port,
                        "fault": seen.fault,
                    }
            out.append(entry)
        if truncated:
            break
    return {
        "from": from_micros(start).isoformat(),
        "to": from_micros(end).isoformat(),
        "outages": out,
        "count": len(out),
        "truncated": truncated,
        # proposed exclusions over the window (a suspected power cut slamon proposes among them):
        # they change nothing until a contract manager approves them (SLA.md §4)
        "proposed_exclusions": [exclusion_to_dict(e) for e in proposed if _proposal_chosen(e, fleet, q)],
    }


def _proposal_chosen(e: Exclusion, fleet: Fleet, q: Query) -> bool:
    """A proposed exclusion is shown when it covers one of the chosen devices (all, unfiltered)."""
    if not any(name in q for name in CHOOSING):
        return True
    return any(_chosen(d, q, fleet) and e.scope.covers(d) for d in fleet.inventory.devices.values())


CHOOSING = ("contract", "site", "district", "device")  # the filters that choose devices


def _chosen(d: Device, q: Query, fleet: Fleet) -> bool:
    site = fleet.inventory.sites.get(d.site)
    district = None if site is None else site.district
    pairs = (("contract", d.contract), ("site", d.site), ("district", district), ("device", d.id))
    return all(name not in q or value in q[name] for name, value in pairs)


def _outage_json(d: Device, o: Outage, causes: dict[str, float], zone: ZoneInfo) -> dict[str, Any]:
    def when(us: Micros | None) -> str | None:
        return None if us is None else from_micros(us).astimezone(zone).isoformat(timespec="seconds")

    return {
        "device": d.id,
        "contract": d.contract,
        "site": d.site,
        "start": when(o.start),
        "end": None if o.open else when(o.end),
        "open": o.open,
        "causes": causes,
        "evidence": {
            "first_failure": when(o.first_failure),
            "last_failure": when(o.last_failure),
            "recovered": when(o.recovered),
            **({"gaps": [{"start": when(a), "end": when(b)} for a, b in o.gaps]} if o.gaps else {}),
        },
    }
