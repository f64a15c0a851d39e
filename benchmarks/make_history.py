"""Write a deterministic fleet and a month of probe history for the benchmarks.

    python benchmarks/make_history.py --devices 100 --interval 60 --month 2025-07 \
        --fail-rate 0.01 --out benchmarks/out/history-100

writes, under --out:

- slamon.yaml, inventory.yaml, contracts/YJ-BENCH.yaml, exclusions.yaml (a few exclusions), and
  slamon-csv.yaml with the same fleet as inventory.csv;
- probes-<month>.csv: one ICMP row per device per interval over the whole month in the contract's
  time zone (Asia/Shanghai), rows time-major as a collector writes them (every device at 00:00,
  then every device at 00:01, ...);
- manifest.json: the parameters, row count, size and the planned outages.

The fleet is links -> switches -> cameras (1 link per ~200 devices, 1 switch and one site per ~20),
so 10,000 devices are 50 links, 500 switches and 9,450 cameras. Every result is a pure function of
(seed, device index, sample number): isolated failures at --fail-rate (too short to make an outage: the
contract says down_after 3), plus real outages planned per device (a link or switch outage makes
every device below it fail too), plus a scripted power cut of the first link during the approved
exclusion EX-POWER-1. bench_statement.py reuses these functions to build its store directly.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

CONTRACT = "YJ-BENCH"
TIMEZONE = "Asia/Shanghai"
SECOND = 1_000_000  # slamon's instants are microseconds since the epoch
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


@dataclass(frozen=True, slots=True)
class Device:
    index: int
    id: str
    kind: str  # link | switch | camera
    address: str
    site: str
    parent: int | None  # index of the parent device


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    district: str
    area: str  # urban | rural


@dataclass(slots=True)
class Plan:
    """A fleet and its month: who exists, and when each device itself was really down."""

    devices: list[Device]
    sites: list[Site]
    month: str
    start: int  # first instant of the month (microseconds, UTC epoch)
    end: int  # first instant of the next month
    seed: int
    # (device index, start, end): the device's own outages; its descendants fail along with it
    outages: list[tuple[int, int, int]] = field(default_factory=list)

    def children(self) -> dict[int, list[int]]:
        kids: dict[int, list[int]] = {}
        for d in self.devices:
            if d.parent is not None:
                kids.setdefault(d.parent, []).append(d.index)
        return kids

    def failing_windows(self) -> list[list[tuple[int, int]]]:
        """Per device, the windows in which it cannot answer: its own outages and its ancestors'."""
        windows: list[list[tuple[int, int]]] = [[] for _ in self.devices]
        kids = self.children()
        for dev, a, b in self.outages:
            stack = [dev]
            while stack:
                d = stack.pop()
                windows[d].append((a, b))
                stack.extend(kids.get(d, ()))
        return windows


def fleet_sizes(n: int) -> tuple[int, int, int]:
    """(links, switches, cameras) for n devices: 10,000 -> 50, 500, 9,450."""
    if n < 3:
        raise ValueError("--devices must be at least 3 (a link, a switch and a camera)")
    links = max(1, math.floor(n / 200 + 0.5))
    switches = max(1, math.floor(n / 20 + 0.5))
    return links, switches, n - links - switches


def _address(i: int) -> str:
    return f"127.{1 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def plan_fleet(n: int, month: str, seed: int = 1) -> Plan:
    links, switches, cameras = fleet_sizes(n)
    rng = np.random.default_rng([seed, 0])
    sites = [
        Site(
            f"YJ-S{j + 1:04d}",
            f"路口{j + 1:04d}",
            ("右江区", "田阳区", "田东县")[j % 3],
            "rural" if rng.random() < 0.3 else "urban",
        )
        for j in range(switches)
    ]
    devices: list[Device] = []
    for j in range(links):
        first_switch = j * switches // links
        devices.append(Device(len(devices), f"YJ-L{j + 1:03d}", "link", "", sites[first_switch].id, None))
    for j in range(switches):
        devices.append(
            Device(len(devices), f"YJ-SW{j + 1:04d}", "switch", "", sites[j].id, j * links // switches)
        )
    for k in range(cameras):
        sw = k * switches // cameras
        devices.append(Device(len(devices), f"YJ-C{k + 1:05d}", "camera", "", sites[sw].id, links + sw))
    devices = [Device(d.index, d.id, d.kind, _address(d.index + 1), d.site, d.parent) for d in devices]
    start, end = month_bounds(month)
    return Plan(devices, sites, month, start, end, seed)


def month_bounds(month: str, timezone: str = TIMEZONE) -> tuple[int, int]:
    zone = ZoneInfo(timezone)
    first = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=zone)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return to_micros(first), to_micros(nxt)


def to_micros(at: datetime) -> int:
    return int(at.timestamp()) * SECOND + at.microsecond


def plan_outages(plan: Plan, per_device: float, least: int = 3) -> None:
    """Draw each device's own outages: per_device outages a month on average (at least `least` in
    all), lasting 5 minutes to 12 hours (log-uniform), 1 in 20 of them 1 to 3 days; plus a 3-hour
    power cut of the first link inside the approved exclusion EX-POWER-1."""
    rng = np.random.default_rng([plan.seed, 1])
    n = len(plan.devices)
    counts = rng.poisson(per_device, n)
    if counts.sum() < least:
        for i in rng.choice(n, least - int(counts.sum()), replace=False):
            counts[i] += 1
    span = plan.end - plan.start
    outages: list[tuple[int, int, int]] = []
    for d, k in enumerate(counts.tolist()):
        for _ in range(k):
            if rng.random() < 0.05:
                length = int(rng.uniform(1, 3) * DAY)
            else:
                length = int(math.exp(rng.uniform(math.log(5), math.log(720))) * MINUTE)
            start = plan.start + int(rng.integers(0, span // MINUTE)) * MINUTE
            outages.append((d, start, min(start + length, plan.end)))
    cut = plan.start + 9 * DAY + 8 * HOUR + 30 * MINUTE  # the 10th, 08:30-11:30 local
    outages.append((0, cut, cut + 3 * HOUR))
    plan.outages = sorted(outages, key=lambda o: (o[1], o[0]))


def exclusions(plan: Plan) -> list[dict[str, Any]]:
    """A few exclusions of each status, in the contract's local time."""
    zone = ZoneInfo(TIMEZONE)

    def at(day: int, hour: int) -> str:
        t = datetime.fromtimestamp((plan.start + (day - 1) * DAY + hour * HOUR) / SECOND, zone)
        return t.isoformat()

    cameras = [d for d in plan.devices if d.kind == "camera"]
    switches = [d for d in plan.devices if d.kind == "switch"]
    return [
        {
            "id": "EX-MAINT-1",
            "category": "maintenance",
            "scope": {"sites": [s.id for s in plan.sites[:3]]},
            "start": at(3, 1),
            "end": at(3, 3),
            "reason": "计划检修",
            "status": "approved",
            "approved_by": "ops-lead",
        },
        {
            "id": "EX-POWER-1",
            "category": "power",
            "scope": {"devices": [plan.devices[0].id]},
            "start": at(10, 8),
            "end": at(10, 12),
            "reason": "供电局停电",
            "status": "approved",
            "approved_by": "ops-lead",
        },
        {
            "id": "EX-FIBER-1",
            "category": "fiber_cut",
            "scope": {"devices": [switches[len(switches) // 2].id]},
            "start": at(15, 2),
            "end": at(15, 6),
            "reason": "road works cut the fibre",
            "status": "proposed",
        },
        {
            "id": "EX-CUST-1",
            "category": "customer",
            "scope": {"devices": [cameras[len(cameras) // 3].id]},
            "start": at(20, 0),
            "end": at(21, 0),
            "reason": "customer moved the pole",
            "status": "rejected",
        },
    ]


# --- results ------------------------------------------------------------------------------------


def sample_times(plan: Plan, interval_s: int) -> npt.NDArray[np.int64]:
    return np.arange(plan.start, plan.end, interval_s * SECOND, dtype=np.int64)


def device_results(
    plan: Plan,
    index: int,
    times: npt.NDArray[np.int64],
    fail_rate: float,
    windows: list[tuple[int, int]],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint16]]:
    """One device's ICMP outcomes at `times` and round-trip times in 1/100 ms (0 where failed)."""
    ok = np.random.default_rng([plan.seed, 2, index]).random(len(times)) >= fail_rate
    rtt = np.random.default_rng([plan.seed, 3, index]).integers(20, 250, len(times), dtype=np.uint16)
    for a, b in windows:
        ok[np.searchsorted(times, a) : np.searchsorted(times, b)] = False
    rtt[~ok] = 0
    return ok, rtt


# --- files --------------------------------------------------------------------------------------


def _duration(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


INVENTORY_COLUMNS = (
    "site,site_name,site_district,site_area,id,kind,address,contract,parent,channels,stream,snmp,"
    "in_service,out_of_service"
)


def write_fleet(plan: Plan, out: Path, interval_s: int, database: str = "sqlite:///slamon.db") -> None:
    """slamon.yaml (inventory.yaml) and slamon-csv.yaml (inventory.csv, the same fleet), contracts/,
    exclusions.yaml; both configs use the same database."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "contracts").mkdir(exist_ok=True)
    timeout = "1s" if interval_s > 1 else "500ms"
    for config, inventory in (("slamon.yaml", "inventory.yaml"), ("slamon-csv.yaml", "inventory.csv")):
        (out / config).write_text(
            f"database: {database}\n"
            f"inventory: {inventory}\n"
            "contracts: [contracts/*.yaml]\n"
            "exclusions: exclusions.yaml\n"
            "listen: 127.0.0.1:9108\n"
            "probes:\n"
            f"  icmp: {{interval: {_duration(interval_s)}, timeout: {timeout}}}\n",
            encoding="utf-8",
        )
    stale = max(300, 2 * interval_s)
    first = plan.month + "-01"
    (out / "contracts" / f"{CONTRACT}.yaml").write_text(
        f"""id: {CONTRACT}
vendor: 某某科技有限公司
currency: CNY
timezone: {TIMEZONE}
term: {{start: {first}, months: 36}}
fees: {{camera: "92.29", switch: "0", link: "0"}}
prorate: true
sla:
  down_after: 3
  up_after: 2
  degrade_after: 2
  stale_after: {_duration(stale)}
  unknown_counts_as: up
  upstream_counts: false
  upstream_grace: 5m
  availability_tiers:
    - {{below: 0.99, deduct: 0.10}}
    - {{below: 0.95, deduct: 0.30}}
    - {{below: 0.90, deduct: 1.00}}
  repair_deadline: {{urban: 4h, rural: 8h}}
  repair_overrun: {{per_started_hour: "50.00", max_per_incident: "500.00"}}
  fleet_kinds: [camera]
  fleet_kpis:
    online_rate: {{target: 0.95, deduct: 0.05}}
    intact_rate: {{target: 0.90, deduct: 0.05}}
  cap: 0.30
  exclusions: [maintenance, power, fiber_cut, force_majeure, customer]
""",
        encoding="utf-8",
    )
    lines = ["sites:"]
    lines += [
        f"  - {{id: {s.id}, name: {s.name}, district: {s.district}, area: {s.area}}}" for s in plan.sites
    ]
    lines.append("devices:")
    for d in plan.devices:
        parent = f", parent: {plan.devices[d.parent].id}" if d.parent is not None else ""
        extra = f", channels: 1, in_service: {first}" if d.kind == "camera" else ""
        lines.append(
            f"  - {{id: {d.id}, kind: {d.kind}, address: {d.address}, site: {d.site}, "
            f"contract: {CONTRACT}{parent}{extra}}}"
        )
    (out / "inventory.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sites = {s.id: s for s in plan.sites}
    rows = [INVENTORY_COLUMNS]
    for d in plan.devices:
        s = sites[d.site]
        parent = plan.devices[d.parent].id if d.parent is not None else ""
        camera = d.kind == "camera"
        rows.append(
            f"{s.id},{s.name},{s.district},{s.area},{d.id},{d.kind},{d.address},{CONTRACT},{parent},"
            f"{'1' if camera else ''},,,{first if camera else ''},"
        )
    (out / "inventory.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    ex_lines = [json.dumps(e, ensure_ascii=False) for e in exclusions(plan)]  # JSON is YAML flow style
    (out / "exclusions.yaml").write_text("".join(f"- {e}\n" for e in ex_lines), encoding="utf-8")


def _stamps(times: npt.NDArray[np.int64]) -> Iterator[str]:
    zone = ZoneInfo(TIMEZONE)
    for t in times.tolist():
        yield datetime.fromtimestamp(t / SECOND, zone).isoformat()


def write_history(
    plan: Plan,
    path: Path,
    interval_s: int,
    fail_rate: float,
    hours: int | None = None,
    order: str = "time",
    chunk: int = 1440,
) -> tuple[int, int]:
    """The month (or its first `hours`) as CSV; returns (rows, failed rows). Rows are time-major
    (order="time", as a collector writes them) or device-major (order="device", each device's
    whole history in turn, as a per-device export would be)."""
    times = sample_times(plan, interval_s)
    if hours is not None:
        times = times[times < plan.start + hours * HOUR]
    windows = plan.failing_windows()
    n = len(plan.devices)
    ok = np.empty((n, len(times)), dtype=bool)
    rtt = np.empty((n, len(times)), dtype=np.uint16)
    for d in range(n):
        ok[d], rtt[d] = device_results(plan, d, times, fail_rate, windows[d])
    rtt_text = [f"{v / 100:.2f}" for v in range(256)]
    names = [d.id for d in plan.devices]
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("device,time,probe,ok,rtt_ms,defects\n")
        if order == "device":
            stamps = list(_stamps(times))
            for d in range(n):
                _write_chunk(f, [names[d]], stamps, ok[d : d + 1].T, rtt[d : d + 1].T, rtt_text)
            return n * len(times), int((~ok).sum())
        for lo in range(0, len(times), chunk):
            hi = min(lo + chunk, len(times))
            _write_chunk(f, names, list(_stamps(times[lo:hi])), ok[:, lo:hi].T, rtt[:, lo:hi].T, rtt_text)
            rows += (hi - lo) * n
    return rows, int((~ok).sum())


def _write_chunk(
    f: IO[str],
    names: list[str],
    stamps: list[str],
    ok: npt.NDArray[np.bool_],
    rtt: npt.NDArray[np.uint16],
    rtt_text: list[str],
) -> None:
    out: list[str] = []
    for stamp, oks, rtts in zip(stamps, ok.tolist(), rtt.tolist(), strict=True):
        mid = f",{stamp},icmp,"
        out.extend(
            f"{name}{mid}1,{rtt_text[r]},\n" if good else f"{name}{mid}0,,\n"
            for name, good, r in zip(names, oks, rtts, strict=True)
        )
    f.write("".join(out))


def build_plan(devices: int, month: str, seed: int = 1, outages_per_device: float = 0.05) -> Plan:
    """The fleet and its outages: the same for the same arguments."""
    plan = plan_fleet(devices, month, seed)
    plan_outages(plan, outages_per_device)
    return plan


def make(
    devices: int,
    interval_s: int,
    month: str,
    fail_rate: float,
    out: Path,
    *,
    seed: int = 1,
    outages_per_device: float = 0.05,
    history: bool = True,
    hours: int | None = None,
    order: str = "time",
) -> dict[str, Any]:
    """Write the fleet (and, with history, the CSV); returns the manifest, also saved as manifest.json."""
    started = time.monotonic()
    plan = build_plan(devices, month, seed, outages_per_device)
    write_fleet(plan, out, interval_s)
    links, switches, cameras = fleet_sizes(devices)
    manifest: dict[str, Any] = {
        "devices": devices,
        "links": links,
        "switches": switches,
        "cameras": cameras,
        "interval_s": interval_s,
        "month": month,
        "fail_rate": fail_rate,
        "seed": seed,
        "outages_per_device": outages_per_device,
        "hours": hours,
        "order": order,
        "planned_outages": len(plan.outages),
        "contract": CONTRACT,
    }
    if history:
        csv_path = out / f"probes-{month}.csv"
        rows, failed = write_history(plan, csv_path, interval_s, fail_rate, hours, order)
        manifest.update(csv=csv_path.name, rows=rows, failed_rows=failed, bytes=csv_path.stat().st_size)
    manifest["seconds"] = round(time.monotonic() - started, 1)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def same_parameters(out: Path, wanted: dict[str, Any]) -> bool:
    """Whether out/ already holds data made with these parameters (so it can be reused)."""
    try:
        have = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if any(have.get(k) != v for k, v in wanted.items()):
        return False
    csv_name = have.get("csv")
    return csv_name is None or (out / str(csv_name)).is_file()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100, help="fleet size (default 100)")
    p.add_argument("--interval", type=int, default=60, help="seconds between probes (default 60)")
    p.add_argument("--month", default="2025-07", help="YYYY-MM in Asia/Shanghai (default 2025-07)")
    p.add_argument("--fail-rate", type=float, default=0.01, help="isolated failures (default 0.01)")
    p.add_argument("--outages", type=float, default=0.05, help="real outages per device (default 0.05)")
    p.add_argument("--hours", type=int, help="only the month's first HOURS (default: all of it)")
    p.add_argument(
        "--order", choices=("time", "device"), default="time", help="row order (default time, as collected)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "history")
    args = p.parse_args(argv)
    m = make(
        args.devices,
        args.interval,
        args.month,
        args.fail_rate,
        args.out,
        seed=args.seed,
        outages_per_device=args.outages,
        hours=args.hours,
        order=args.order,
    )
    sys.stderr.write(
        f"{args.out}: {m['devices']} devices ({m['links']} links, {m['switches']} switches, "
        f"{m['cameras']} cameras), {m['rows']:,} rows, {int(str(m['bytes'])) / 1e6:.0f} MB, "
        f"{m['planned_outages']} planned outages, in {m['seconds']} s\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
