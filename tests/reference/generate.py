"""Random but valid input sets for comparing slamon with the reference implementation.

`generate_case(seed, out_dir)` writes inventory.yaml, contracts/<id>.yaml, exclusions.yaml and
probes.csv: a small mixed fleet (links -> switches -> cameras) with three calendar months of probe
history in Asia/Shanghai.

The generator deliberately stays away from the places where the specification is ambiguous (see
the report in tests/reference/README.md): every device shares the same state-machine settings
(down_after, up_after, degrade_after, stale_after), no instant coincides with a month boundary, and
no device leaves service on the 1st of a month.
"""

from __future__ import annotations

import csv
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

CST = timezone(timedelta(hours=8))
MIN = 60
HOUR = 3600
DAY = 86400
CATEGORIES = ["maintenance", "power", "fiber_cut", "force_majeure", "customer"]
DEFECTS = [
    "no_signal",
    "low_resolution",
    "black",
    "frozen",
    "blur",
    "too_dark",
    "too_bright",
    "color_cast",
    "noise",
    "occluded",
]
START_MONTHS = [(2025, 5), (2025, 6), (2024, 11), (2024, 12), (2025, 1), (2025, 3)]


@dataclass
class CaseInfo:
    seed: int
    out_dir: Path
    inventory: Path
    contracts: list[Path]
    exclusions: Path
    probes: list[Path]
    contract_ids: list[str]
    months: list[str]
    interesting: list[tuple[str, str]]  # (contract id, month) pairs worth a statement
    features: dict[str, Any] = field(default_factory=dict)
    inspections: Path | None = None  # missed inspections (score cards)


def _month_start(y: int, m: int) -> datetime:
    return datetime(y, m, 1, tzinfo=CST)


def _next(y: int, m: int) -> tuple[int, int]:
    return (y + 1, 1) if m == 12 else (y, m + 1)


def _ts(t: float) -> datetime:
    """Seconds since epoch (float with at most microsecond precision) -> aware datetime in CST."""
    us = round(t * 1_000_000)
    return datetime(1970, 1, 1, tzinfo=UTC).astimezone(CST) + timedelta(microseconds=us)


def _epoch(dt: datetime) -> float:
    return dt.timestamp()


class _Intervals:
    """A union of half-open intervals, for membership tests."""

    def __init__(self, ivs: list[tuple[float, float]]) -> None:
        merged: list[list[float]] = []
        for a, b in sorted(ivs):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self.starts = [a for a, _ in merged]
        self.ends = [b for _, b in merged]

    def contains(self, t: float) -> bool:
        k = bisect_right(self.starts, t) - 1
        return k >= 0 and t < self.ends[k]


def generate_case(seed: int, out_dir: Path) -> CaseInfo:
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    (out_dir / "contracts").mkdir(parents=True, exist_ok=True)
    features: dict[str, Any] = {}

    # ---------------------------------------------------------------- calendar
    y, m = rng.choice(START_MONTHS)
    months_ym = [(y, m)]
    for _ in range(2):
        months_ym.append(_next(*months_ym[-1]))
    months = [f"{yy:04d}-{mm:02d}" for yy, mm in months_ym]
    bounds = [_epoch(_month_start(*ym)) for ym in [*months_ym, _next(*months_ym[-1])]]
    data_start = bounds[0] - rng.choice([0.5, 1, 2]) * DAY
    data_end = bounds[3] - rng.uniform(0.3, 3) * DAY

    # ---------------------------------------------------------------- shared state-machine settings
    interval, stale = rng.choice([(4 * MIN, "5m"), (5 * MIN, "6m"), (5 * MIN, "7m"), (5 * MIN, "10m")])
    stale_s = int(stale[:-1]) * MIN
    max_jitter = min(50, stale_s - interval - 5)
    down_after = rng.choice([1, 2, 3, 3, 4])
    up_after = rng.choice([1, 2, 2, 3])
    degrade_after = rng.choice([1, 2, 2, 3])
    video_interval = rng.choice([15 * MIN, 10 * MIN])
    fractional = rng.random() < 0.5  # probe instants with milliseconds
    mixed_offsets = rng.random() < 0.4  # some rows written in UTC
    features.update(
        interval=interval,
        stale_after=stale,
        down_after=down_after,
        up_after=up_after,
        degrade_after=degrade_after,
        fractional_times=fractional,
        mixed_offsets=mixed_offsets,
    )

    # ---------------------------------------------------------------- contracts
    two = rng.random() < 0.6
    cids = ["GX-A-2025", "GX-B-2025"] if two else ["GX-A-2025"]
    contracts: dict[str, dict[str, Any]] = {}
    uca_choices = ["up", "down", "excluded"]
    rng.shuffle(uca_choices)
    for i, cid in enumerate(cids):
        tiers_pool = [
            (0.999, 0.05),
            (0.995, 0.10),
            (0.99, 0.10),
            (0.98, 0.20),
            (0.95, 0.30),
            (0.90, 1.00),
            (0.97, 0.05),
        ]
        tiers = rng.sample(tiers_pool, rng.randint(1, 4))
        sla: dict[str, Any] = {
            "down_after": down_after,
            "up_after": up_after,
            "degrade_after": degrade_after,
            "stale_after": stale,
            "unknown_counts_as": uca_choices[i],
            "upstream_counts": rng.random() < 0.5,
            "upstream_grace": rng.choice(["5m", "5m", "10m", "3m", "0s"]),
            "availability_tiers": [{"below": b, "deduct": d} for b, d in tiers],
            "repair_deadline": {
                "urban": rng.choice(["1h", "2h", "4h"]),
                "rural": rng.choice(["4h", "6h", "8h"]),
            },
            "repair_overrun": {"per_started_hour": rng.choice(["50.00", "12.34", "100", "7.5"])},
        }
        if rng.random() < 0.7:
            sla["repair_overrun"]["max_per_incident"] = rng.choice(["500.00", "80.00", "37.02"])
        fk = rng.choice([None, ["camera"], ["camera", "switch"], ["camera", "switch", "link"]])
        if fk is not None:
            sla["fleet_kinds"] = fk
        kpis = {}
        if rng.random() < 0.8:
            kpis["online_rate"] = {
                "target": rng.choice([0.95, 0.99, 0.999, 0.9999]),
                "deduct": rng.choice([0.05, 0.02, 0.1]),
            }
        if rng.random() < 0.8:
            kpis["intact_rate"] = {
                "target": rng.choice([0.90, 0.98, 0.995, 0.9999]),
                "deduct": rng.choice([0.05, 0.03]),
            }
        sla["fleet_kpis"] = kpis
        cap = rng.choice([None, 0.02, 0.05, 0.30, 1.0])
        if cap is not None:
            sla["cap"] = cap
        sla["exclusions"] = sorted(rng.sample(CATEGORIES, rng.randint(0, 5)), key=CATEGORIES.index)
        c: dict[str, Any] = {
            "id": cid,
            "vendor": "某某科技有限公司",
            "currency": "CNY",
        }
        if rng.random() < 0.8:
            c["timezone"] = "Asia/Shanghai"
        c["term"] = {"start": date(2024, 1, 1), "months": 36}
        c["fees"] = {
            "camera": rng.choice(["92.29", "85.00", "120.5", "99.99", "66.67"]),
            "switch": rng.choice(["0", "15.50", "33.33"]),
            "link": rng.choice(["0", "300.00", "123.45"]),
        }
        prorate = rng.random() < 0.6
        if not (prorate and rng.random() < 0.5):
            c["prorate"] = prorate  # omitted means the default, true
        c["sla"] = sla
        contracts[cid] = c
    features["contracts"] = {
        cid: {k: c["sla"].get(k) for k in ("unknown_counts_as", "upstream_counts", "cap", "exclusions")}
        | {"prorate": c.get("prorate", True)}
        for cid, c in contracts.items()
    }

    # ---------------------------------------------------------------- inventory
    n_sites = rng.randint(2, 4)
    sites = []
    for i in range(n_sites):
        sites.append(
            {
                "id": f"S{i + 1:03d}",
                "name": f"路口{i + 1}",
                "district": "右江区",
                "area": rng.choice(["urban", "rural"]),
            }
        )
    site_contract = {s["id"]: cids[i % len(cids)] for i, s in enumerate(sites)}
    devices: list[dict[str, Any]] = []
    n_links = 1 if n_sites <= 2 else 2
    for i in range(n_links):
        devices.append(
            {
                "id": f"L{i + 1:02d}",
                "kind": "link",
                "address": f"127.0.10.{i + 1}",
                "site": sites[i]["id"],
                "contract": cids[0],
            }
        )
    budget = rng.randint(6, 13) - n_links
    cam_no = 0
    for i, s in enumerate(sites):
        if budget <= 0:
            break
        sw = {
            "id": f"SW{i + 1:02d}",
            "kind": "switch",
            "address": f"127.0.20.{i + 1}",
            "site": s["id"],
            "contract": site_contract[s["id"]],
            "parent": f"L{i % n_links + 1:02d}",
            "snmp": {"version": "2c", "port": 161},
        }
        devices.append(sw)
        budget -= 1
        per = rng.randint(1, 3) if i < n_sites - 1 else max(1, budget)
        for _ in range(min(per, max(budget, 1))):
            cam_no += 1
            d: dict[str, Any] = {
                "id": f"C{cam_no:04d}",
                "kind": "camera",
                "address": f"127.0.30.{cam_no}",
                "site": s["id"],
                "contract": site_contract[s["id"]],
                "parent": sw["id"],
                "channels": rng.choice([1, 1, 1, 2, 4]),
            }
            if rng.random() < 0.6:
                d["stream"] = f"rtsp://127.0.30.{cam_no}:8554/main"
            devices.append(d)
            budget -= 1
    if rng.random() < 0.3:  # a camera without parent
        cam_no += 1
        devices.append(
            {
                "id": f"C{cam_no:04d}",
                "kind": "camera",
                "address": f"127.0.30.{cam_no}",
                "site": sites[-1]["id"],
                "contract": cids[-1],
            }
        )
    {d["id"]: d for d in devices}
    cams = [d for d in devices if d["kind"] == "camera"]

    # service windows: commissioning / decommissioning (never on the 1st of a month)
    {d["id"]: (data_start, data_end) for d in devices}
    probe_span: dict[str, tuple[float, float]] = {d["id"]: (data_start, data_end) for d in devices}

    def mid_month(k: int) -> tuple[float, date]:
        yy, mm = months_ym[k]
        day = rng.randint(2, 27)
        return _epoch(datetime(yy, mm, day, tzinfo=CST)), date(yy, mm, day)

    chosen = rng.sample(cams, min(len(cams), rng.randint(1, 3)))
    for j, d in enumerate(chosen):
        kind = ["in", "out", "in_late", "out_early", "both"][(seed + j) % 5]
        if kind in ("in", "both", "in_late"):
            t, dd = mid_month(2 if kind == "in_late" else rng.choice([0, 1]))
            if rng.random() < 0.5:
                d["in_service"] = dd
            else:
                t += rng.randint(1, 23) * HOUR + rng.choice([0, 30]) * MIN
                d["in_service"] = _ts(t).isoformat()
            lo = t + rng.choice([-2 * DAY, -3 * HOUR, 0.0, 2 * HOUR])
            probe_span[d["id"]] = (max(lo, data_start), probe_span[d["id"]][1])
        if kind in ("out", "both", "out_early"):
            t, dd = mid_month(0 if kind == "out_early" else rng.choice([1, 2]))
            if rng.random() < 0.5:
                d["out_of_service"] = dd
            else:
                t += rng.randint(1, 23) * HOUR + rng.choice([0, 30]) * MIN
                d["out_of_service"] = _ts(t).isoformat()
            hi = t + rng.choice([-5 * HOUR, 0.0, 6 * HOUR, 3 * DAY])
            probe_span[d["id"]] = (probe_span[d["id"]][0], min(hi, data_end))
        features.setdefault("service_changes", []).append((d["id"], kind))

    # ---------------------------------------------------------------- physical truth: failure episodes
    def episode_length() -> float:
        r = rng.random()
        if r < 0.25:  # shorter than down_after probes
            return max(1, down_after - 1) * interval - 1
        if r < 0.40:
            return (down_after + rng.randint(0, 2)) * interval - 30
        if r < 0.75:
            return rng.uniform(10 * MIN, 3 * HOUR)
        return rng.uniform(4 * HOUR, 30 * HOUR)

    own: dict[str, list[tuple[float, float, bool]]] = {}  # (start, end, flapping)
    for d in devices:
        eps = []
        n = {"link": rng.randint(1, 3), "switch": rng.randint(2, 4), "camera": rng.randint(3, 8)}[d["kind"]]
        for _ in range(n):
            a = rng.uniform(data_start, data_end)
            eps.append((a, a + episode_length(), rng.random() < 0.25))
        own[d["id"]] = eps
    # failure runs across month boundaries
    for k in (1, 2):
        d = rng.choice(devices)
        a = bounds[k] - rng.uniform(10 * MIN, 6 * HOUR)
        own[d["id"]].append((a, bounds[k] + rng.uniform(10 * MIN, 10 * HOUR), False))
    # outages still open at the end of the data
    for d in rng.sample(devices, rng.randint(1, 2)):
        own[d["id"]].append((data_end - rng.uniform(1 * HOUR, 20 * HOUR), data_end + DAY, False))
    # an upstream outage: a switch down, its cameras come back a few minutes after it
    sws = [d for d in devices if d["kind"] == "switch"]
    if sws:
        sw = rng.choice(sws)
        a = rng.uniform(bounds[1], bounds[2] - DAY)
        own[sw["id"]].append((a, a + rng.uniform(30 * MIN, 5 * HOUR), False))

    children: dict[str, list[str]] = {}
    for d in devices:
        if d.get("parent"):
            children.setdefault(d["parent"], []).append(d["id"])

    fail_ivs: dict[str, list[tuple[float, float]]] = {}
    flap_ivs: dict[str, list[tuple[float, float]]] = {}

    def propagate(did: str, inherited: list[tuple[float, float]]) -> None:
        ivs = [(a, b) for a, b, _ in own[did]] + inherited
        fail_ivs[did] = ivs
        flap_ivs[did] = [(a, b) for a, b, f in own[did] if f]
        for ch in children.get(did, []):
            lagged = []
            for a, b in ivs:
                lag = rng.choice([0, 0, 1, 2, 3, 4, 6, 9, 15]) * MIN + rng.uniform(0, 50)
                lagged.append((a + rng.uniform(0, 40), b + lag))
            propagate(ch, lagged)

    for d in devices:
        if not d.get("parent"):
            propagate(d["id"], [])

    # monitoring gaps (no results), some device-local, one fleet-wide across a month boundary
    gaps: dict[str, list[tuple[float, float]]] = {d["id"]: [] for d in devices}
    for d in devices:
        for _ in range(rng.randint(0, 3)):
            a = rng.uniform(data_start, data_end)
            gaps[d["id"]].append((a, a + rng.choice([stale_s + 30, 20 * MIN, 2 * HOUR, 6 * HOUR])))
        # a gap inside one of its own outages
        long_eps = [(a, b) for a, b, _ in own[d["id"]] if b - a > 2 * HOUR]
        if long_eps and rng.random() < 0.5:
            a, b = rng.choice(long_eps)
            g0 = a + (b - a) * 0.4
            gaps[d["id"]].append((g0, g0 + rng.uniform(stale_s + 60, 90 * MIN)))
    k = rng.choice([1, 2])
    global_gap = (bounds[k] - rng.uniform(5 * MIN, 40 * MIN), bounds[k] + rng.uniform(5 * MIN, 60 * MIN))
    for d in devices:
        gaps[d["id"]].append(global_gap)

    # ---------------------------------------------------------------- probe rows
    rows: list[list[str]] = []

    def fmt(t: float) -> str:
        dt = _ts(t)
        if mixed_offsets and rng.random() < 0.1:
            dt = dt.astimezone(UTC)
        return dt.isoformat()

    def jitter() -> float:
        if fractional:
            return rng.randint(1000, max_jitter * 1000) / 1000
        return float(rng.randint(1, max_jitter))

    never_probed = None
    if rng.random() < 0.2:
        never_probed = rng.choice(cams)["id"]
        features["never_probed"] = never_probed

    base0 = (int(data_start) // interval) * interval
    for d in devices:
        did = d["id"]
        if did == never_probed:
            continue
        fails = _Intervals(fail_ivs[did])
        flaps = _Intervals(flap_ivs[did])
        gap = _Intervals(gaps[did])
        lo, hi = probe_span[did]
        if d["kind"] == "switch":
            probes = rng.choice([["snmp"], ["icmp"], ["icmp", "snmp"], ["icmp", "snmp"]])
        else:
            probes = ["icmp"]
        t = base0
        while t < hi:
            tt = t + jitter()
            t += interval
            if tt < lo or tt >= hi or gap.contains(tt):
                continue
            down = fails.contains(tt)
            if down and flaps.contains(tt) and rng.random() < 0.1:
                down = False
            if not down and rng.random() < 0.002:
                down = True  # a blip
            for p in probes:
                ok = not down
                if p == "snmp" and len(probes) == 2 and rng.random() < 0.01:
                    ok = not ok  # the two probes disagree at the same instant
                rows.append(
                    [did, fmt(tt), p, "1" if ok else "0", f"{rng.uniform(0.2, 9):.2f}" if ok else "", ""]
                )
        if d.get("stream"):
            bad_runs = []
            for _ in range(rng.randint(2, 8)):
                a = rng.uniform(lo, hi)
                bad_runs.append((a, a + rng.choice([1, 2, 3, 6, 20]) * video_interval - 1))
            bad = _Intervals(bad_runs)
            t = base0 + 7 * MIN
            while t < hi:
                tt = t + jitter()
                t += video_interval
                if tt < lo or tt >= hi or gap.contains(tt):
                    continue
                defective = bad.contains(tt) or fails.contains(tt) or rng.random() < 0.01
                if defective:
                    r = rng.random()
                    defects = "" if r < 0.15 else ";".join(rng.sample(DEFECTS, 1 if r < 0.8 else 2))
                    rows.append([did, fmt(tt), "video", "0", "", defects])
                else:
                    rows.append([did, fmt(tt), "video", "1", "", ""])
    rng.shuffle(rows)

    # ---------------------------------------------------------------- exclusions
    def around_episode(did: str) -> tuple[float, float]:
        eps = [(a, b) for a, b in fail_ivs[did] if b - a > 20 * MIN] or fail_ivs[did]
        a, b = rng.choice(eps)
        if rng.random() < 0.5:  # covers the start of the outage
            a -= rng.uniform(0, 30 * MIN)
            return a, a + rng.uniform(30 * MIN, 4 * HOUR)
        return a + (b - a) * rng.uniform(0.1, 0.6), b + rng.uniform(-10 * MIN, 2 * HOUR)

    exclusions = []
    statuses = ["approved", "approved", "approved", "proposed", "rejected"]
    n_ex = rng.randint(6, 12)
    for i in range(n_ex):
        cat = CATEGORIES[i % 5] if i < 5 else rng.choice(CATEGORIES)
        status = statuses[i % 5] if i < 5 else rng.choice(statuses)
        r = rng.random()
        scope: dict[str, list[str]] = {}
        if r < 0.45:
            scope["devices"] = [d["id"] for d in rng.sample(devices, rng.randint(1, 2))]
        elif r < 0.75:
            scope["sites"] = [rng.choice(sites)["id"]]
        elif r < 0.9:
            scope["contracts"] = [rng.choice(cids)]
        else:
            scope["devices"] = [rng.choice(devices)["id"]]
            scope["sites"] = [rng.choice(sites)["id"]]
        rr = rng.random()
        covered = [
            d["id"]
            for d in devices
            if d["id"] in scope.get("devices", [])
            or d["site"] in scope.get("sites", [])
            or d["contract"] in scope.get("contracts", [])
        ]
        if rr < 0.4 and covered:  # around a real failure episode
            a, b = around_episode(rng.choice(covered))
        elif rr < 0.6:  # crossing a month boundary
            kb = rng.choice([1, 2, 3])
            a = bounds[kb] - rng.uniform(1 * HOUR, 2 * DAY)
            b = bounds[kb] + rng.uniform(1 * HOUR, 2 * DAY)
        else:
            a = rng.uniform(data_start, data_end)
            b = a + rng.uniform(30 * MIN, 2 * DAY)
        a = round(a / 60) * 60  # whole minutes
        b = round(b / 60) * 60
        e: dict[str, Any] = {
            "id": f"EX-{i + 1}",
            "category": cat,
            "scope": scope,
            "start": _ts(a).isoformat(),
            "end": _ts(b).isoformat(),
            "reason": "计划检修" if cat == "maintenance" else "停电",
            "status": status,
        }
        if status == "approved":
            e["approved_by"] = "ops-lead"
        exclusions.append(e)
    # per contract, approved exclusions it honours, over real outages (causes `excluded:<category>`)
    for cid in cids:
        honoured = contracts[cid]["sla"]["exclusions"]
        mine = [d["id"] for d in devices if d["contract"] == cid]
        for _ in range(rng.randint(1, 3) if honoured else 0):
            did = rng.choice(mine)
            a, b = around_episode(did)
            a, b = round(a / 60) * 60, round(b / 60) * 60
            exclusions.append(
                {
                    "id": f"EX-{len(exclusions) + 1}",
                    "category": rng.choice(honoured),
                    "scope": {"devices": [did]},
                    "start": _ts(a).isoformat(),
                    "end": _ts(b).isoformat(),
                    "reason": "事后认定",
                    "status": "approved",
                    "approved_by": "buyer",
                }
            )

    # ---------------------------------------------------------------- rule kinds seen in tenders
    # (docs/sla.md §6.5, §6.6) drawn from a generator of their own, so that every seed's fleet,
    # history and exclusions stay what they were before these rules existed
    inspections = _tender_rules(random.Random(f"tender-{seed}"), contracts, devices, months_ym)
    features["tender"] = {
        cid: {
            "per_point": sorted(k for k, v in c["sla"]["fleet_kpis"].items() if "per_point" in v),
            "score_card": sorted(c["sla"].get("score_card", {})),
        }
        for cid, c in contracts.items()
    } | {"inspections": len(inspections)}

    # ---------------------------------------------------------------- write
    inv = out_dir / "inventory.yaml"
    inv.write_text(
        yaml.safe_dump({"sites": sites, "devices": devices}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    cpaths = []
    for cid, c in contracts.items():
        p = out_dir / "contracts" / f"{cid}.yaml"
        p.write_text(yaml.safe_dump(c, allow_unicode=True, sort_keys=False), encoding="utf-8")
        cpaths.append(p)
    exp = out_dir / "exclusions.yaml"
    exp.write_text(yaml.safe_dump(exclusions, allow_unicode=True, sort_keys=False), encoding="utf-8")
    insp = out_dir / "inspections.yaml"
    insp.write_text(yaml.safe_dump(inspections, allow_unicode=True, sort_keys=False), encoding="utf-8")
    probes_csv = out_dir / "probes.csv"
    with open(probes_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["device", "time", "probe", "ok", "rtt_ms", "defects"])
        w.writerows(rows)
    features["devices"] = len(devices)
    features["rows"] = len(rows)
    return CaseInfo(
        seed=seed,
        out_dir=out_dir,
        inventory=inv,
        contracts=cpaths,
        exclusions=exp,
        probes=[probes_csv],
        contract_ids=cids,
        months=months,
        interesting=[(cid, mo) for cid in cids for mo in months],
        features=features,
        inspections=insp,
    )


def _tender_rules(
    rng: random.Random,
    contracts: dict[str, dict[str, Any]],
    devices: list[dict[str, Any]],
    months_ym: list[tuple[int, int]],
) -> list[dict[str, Any]]:
    """Per-point shortfalls on some KPIs (sometimes instead of the flat deduct) and, for some
    contracts, a score card in place of the classic rules for the causes it scores; returns the
    missed inspections of the case (some in the three months, some around them)."""
    for c in contracts.values():
        sla = c["sla"]
        for kpi in sla["fleet_kpis"].values():
            if rng.random() < 0.5:
                per_point: dict[str, Any] = {"deduct": rng.choice(["1/45", "0.02", "0.005", "1/3", "1/7"])}
                if rng.random() < 0.6:
                    per_point["points"] = rng.choice(["started", "whole"])
                if rng.random() < 0.3:
                    per_point["max"] = rng.choice([0.1, 0.25, 1])
                kpi["per_point"] = per_point
                if rng.random() < 0.4:
                    del kpi["deduct"]
        if rng.random() < 0.5:
            continue
        card: dict[str, Any] = {}
        if rng.random() < 0.7:
            card["fault_hours"] = {
                "over": rng.choice(["0s", "30m", "1h", "4h", "8h"]),
                "points": rng.choice([0.5, 1, 2, 5]),
            }
            if rng.random() < 0.5:
                card["fault_hours"]["time"] = rng.choice(["down", "down_or_degraded"])
            sla["availability_tiers"] = []  # the card judges a device's downtime now
        if rng.random() < 0.7:
            card["repair_overrun"] = {"points": rng.choice([1, 2, 5, 12.5])}
            del sla["repair_overrun"]
        if not card or rng.random() < 0.7:
            card["missed_inspection"] = {"points": rng.choice([0.5, 2, 5, 10])}
        starts = sorted(rng.sample([99, 97.5, 95, 90, 85, 80, 70, 60, 40], rng.randint(0, 5)), reverse=True)
        pays: list[float] = []
        for _ in [*starts, 0]:
            top = pays[-1] if pays else 1.0
            pays.append(
                rng.choice([top, round(top - rng.choice([0.05, 0.1, 0.125, 0.3]), 3)]) if top > 0.3 else top
            )
        card["pay"] = [{"at_least": a, "pay": p} for a, p in zip([*starts, 0], pays, strict=True)]
        sla["score_card"] = card
    inspections: list[dict[str, Any]] = []
    first, last = months_ym[0], months_ym[-1]
    around = [
        (first[0] - (first[1] == 1), (first[1] - 2) % 12 + 1),
        *months_ym,
        (last[0] + (last[1] == 12), last[1] % 12 + 1),
    ]
    for cid in contracts:
        sites = sorted({d["site"] for d in devices if d["contract"] == cid})
        for _ in range(rng.randint(0, 6)):
            yy, mm = rng.choice(around)
            item: dict[str, Any] = {
                "id": f"MI-{len(inspections) + 1}",
                "contract": cid,
                "date": date(yy, mm, rng.choice([1, 2, 15, 28])),
                "reason": "巡检未做",
                "entered_by": "ops",
            }
            if sites and rng.random() < 0.5:
                item["site"] = rng.choice(sites)
            inspections.append(item)
    return inspections


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys
    import time

    from tests.reference.sla_reference import compute_statements

    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(f"/tmp/slaref-{seed}")
    info = generate_case(seed, out)
    t0 = time.time()
    res = compute_statements(
        info.inventory, info.contracts, info.exclusions, info.probes, info.interesting, info.inspections
    )
    for (cid, mo), st in res.items():
        print(
            cid,
            mo,
            st["fee_total"],
            st["deduction_total"],
            st["payable"],
            len(st["outages"]),
            [ln["rule"] for ln in st["deductions"]],
        )
    print(f"{len(info.interesting)} statements in {time.time() - t0:.2f}s", info.features)
