"""The HTTP side of `slamon run`: /metrics, /healthz and the read API (/api/v1).

An app factory with typed AppKeys (no globals). /metrics and /api/v1/devices read memory only;
/api/v1/outages reads the store on the monitor's writer thread, so it never blocks the loop and
never races a write.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CollectorRegistry

from slamon.billing.causes import attribute as attribute_causes
from slamon.billing.causes import covers_for
from slamon.billing.intervals import clip
from slamon.clock import Clock
from slamon.engine.live import DeviceLive
from slamon.engine.timeline import Timeline
from slamon.model import SECOND, DeviceId, Micros, ProbeKind, from_micros, to_micros
from slamon.service.metrics import Figures, FleetRenderer, SelfCollector, current_cause, exposition
from slamon.service.monitor import Monitor
from slamon.store import StoreTx

MONITOR = web.AppKey("monitor", Monitor)
CLOCK = web.AppKey("clock", Clock)
REGISTRY = web.AppKey("registry", CollectorRegistry)
RENDERER = web.AppKey("renderer", FleetRenderer)
FIGURES = web.AppKey("figures", Figures)
INTERVALS = web.AppKey("intervals", dict)  # ProbeKind -> timedelta, for /healthz
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_OUTAGES = 10_000


def create_app(
    monitor: Monitor, clock: Clock, intervals: Mapping[ProbeKind, timedelta], figures: Figures | None = None
) -> web.Application:
    app = web.Application()
    registry = CollectorRegistry()
    registry.register(SelfCollector(monitor.stats, monitor.state))
    figures = figures or Figures()
    app[MONITOR] = monitor
    app[CLOCK] = clock
    app[REGISTRY] = registry
    app[FIGURES] = figures
    app[RENDERER] = FleetRenderer(monitor.state, figures, clock)
    app[INTERVALS] = dict(intervals)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/devices", devices)
    app.router.add_get("/api/v1/outages", outages)
    app.router.add_get("/", index)
    return app


async def index(request: web.Request) -> web.Response:
    return web.Response(text="slamon: /metrics /healthz /api/v1/devices /api/v1/outages\n")


async def metrics(request: web.Request) -> web.Response:
    body = exposition(request.app[RENDERER], request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    """200 while every probe kind has run a round recently (within three intervals), else 503."""
    monitor = request.app[MONITOR]
    now = time.time()
    kinds: dict[str, Any] = {}
    healthy = True
    for kind, interval in request.app[INTERVALS].items():
        stats = monitor.stats.get(kind)
        started = stats.last_started if stats else 0.0
        late = not started or now - started > 3 * interval.total_seconds()
        healthy &= not late
        kinds[kind.value] = {
            "last_round": None
            if not started
            else datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds"),
            "late": late,
            "rounds": stats.rounds if stats else 0,
            "errors": stats.errors if stats else 0,
        }
    body = {"status": "ok" if healthy else "late", "devices": len(monitor.state), "probes": kinds}
    return web.json_response(body, status=200 if healthy else 503)


def _filters(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown query parameter {unknown[0]!r} (use {', '.join(allowed)})\n")
    return dict(request.query)


def _instant(text: str, name: str) -> Micros:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: {text!r} is not an ISO-8601 instant\n") from None
    if value.tzinfo is None:
        raise web.HTTPBadRequest(text=f"{name}: {text!r} has no UTC offset\n")
    return to_micros(value)


async def devices(request: web.Request) -> web.Response:
    """Every device's current state, cause and since when; filter by contract, site, kind, state."""
    q = _filters(request, ("contract", "site", "kind", "state", "district"))
    monitor = request.app[MONITOR]
    fleet = monitor.state.fleet
    now = to_micros(request.app[CLOCK].now())
    out = []
    for live in monitor.state:
        d = live.device
        site = fleet.inventory.sites.get(d.site)
        if (
            ("contract" in q and d.contract != q["contract"])
            or ("site" in q and d.site != q["site"])
            or ("kind" in q and d.kind.value != q["kind"])
            or ("district" in q and (site is None or site.district != q["district"]))
        ):
            continue
        view = _device_view(live, now, fleet.contracts[d.contract].timezone)
        if "state" in q and view["state"] != q["state"]:
            continue
        view["cause"] = current_cause(fleet, monitor.state, live, now)
        view.update(
            {
                "kind": d.kind.value,
                "site": d.site,
                "district": site.district if site else None,
                "contract": d.contract,
                "address": d.address,
            }
        )
        out.append(view)
    return web.json_response({"devices": out, "count": len(out)}, dumps=_dumps)


def _device_view(live: DeviceLive, now: Micros, tz: str) -> dict[str, Any]:
    zone = ZoneInfo(tz)
    since = live.since(now)

    def when(us: Micros | None) -> str | None:
        return None if us is None else from_micros(us).astimezone(zone).isoformat(timespec="seconds")

    return {
        "id": live.device.id,
        "state": live.state_at(now).value,
        "since": when(since),
        "last_probe": when(live.last_probe),
        "rtt_ms": live.rtt_ms,
        "loss": live.loss,
        "error": live.error,
        "defects": sorted(d.value for d in live.defects),
    }


async def outages(request: web.Request) -> web.Response:
    """Outages overlapping [from, to) (default: the last 24 hours), with the seconds of each cause;
    filter by contract, site, device and cause (device, upstream, excluded, or a full cause). At
    most MAX_OUTAGES, by device id and start; `truncated` says when more matched."""
    q = _filters(request, ("contract", "site", "device", "cause", "from", "to"))
    clock = request.app[CLOCK]
    now = to_micros(clock.now())
    end = _instant(q["to"], "to") if "to" in q else now
    start = _instant(q["from"], "from") if "from" in q else end - 86_400 * SECOND
    if end <= start:
        raise web.HTTPBadRequest(text="to must be after from\n")
    monitor = request.app[MONITOR]
    fleet = monitor.state.fleet
    chosen = [
        d
        for d in fleet.inventory.devices.values()
        if ("contract" not in q or d.contract == q["contract"])
        and ("site" not in q or d.site == q["site"])
        and ("device" not in q or d.id == q["device"])
    ]
    if "device" in q and not chosen:
        raise web.HTTPNotFound(text=f"no device {q['device']!r}\n")
    related = {d.id for d in chosen} | {a.id for d in chosen for a in fleet.inventory.ancestors(d.id)}
    grace = max((to_micros(c.sla.upstream_grace) for c in fleet.contracts.values()), default=0)

    def load(tx: StoreTx) -> tuple[dict[int, Timeline], dict[DeviceId, int]]:
        keys = tx.keys.find(sorted(related))
        return tx.timelines.load(list(keys.values()), start, end, outages_from=start - grace), keys

    timelines, keys = await monitor.db(load)
    by_id = {d: timelines[k] for d, k in keys.items()}
    out: list[dict[str, Any]] = []
    truncated = False  # more outages than MAX_OUTAGES matched: the list stops at MAX_OUTAGES
    for d in sorted(chosen, key=lambda x: x.id):
        if truncated:
            break
        tl = by_id.get(d.id)
        if tl is None:
            continue
        contract = fleet.contracts[d.contract]
        covers = covers_for(d, fleet.exclusions, contract)
        ancestors = [
            (a.id, by_id[a.id].outages if a.id in by_id else ()) for a in fleet.inventory.ancestors(d.id)
        ]
        zone = ZoneInfo(contract.timezone)
        for o in tl.outages:
            if o.end <= start or o.start >= end:
                continue
            parts = attribute_causes([(o.start, o.end)], covers, ancestors, contract.sla.upstream_grace)
            causes = {
                cause: sum(b - a for a, b in clip(ivs, start, end)) / SECOND for cause, ivs in parts.items()
            }
            if "cause" in q and not any(c == q["cause"] or c.split(":")[0] == q["cause"] for c in causes):
                continue
            if len(out) >= MAX_OUTAGES:
                truncated = True
                break
            out.append(
                {
                    "device": d.id,
                    "contract": d.contract,
                    "site": d.site,
                    "start": from_micros(o.start).astimezone(zone).isoformat(timespec="seconds"),
                    "end": None
                    if o.open
                    else from_micros(o.end).astimezone(zone).isoformat(timespec="seconds"),
                    "open": o.open,
                    "causes": causes,
                    "evidence": {
                        k: None
                        if v is None
                        else from_micros(v).astimezone(zone).isoformat(timespec="seconds")
                        for k, v in (
                            ("first_failure", o.first_failure),
                            ("last_failure", o.last_failure),
                            ("recovered", o.recovered),
                        )
                    },
                }
            )
    return web.json_response(
        {
            "from": from_micros(start).isoformat(),
            "to": from_micros(end).isoformat(),
            "outages": out,
            "count": len(out),
            "truncated": truncated,
        },
        dumps=_dumps,
    )


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)
