"""Time to render /metrics for a large fleet (goal: < 2 s at 100,000 devices).

    python benchmarks/bench_metrics.py [--devices 100000] [--runs 5] [--port 19182] [--profile]

- Fleet: make_history's (links -> switches -> cameras, one site per ~20 devices, three districts,
  one contract, four exclusions), written as inventory.csv and loaded with slamon's own loader
  (`load_fleet`), so the Fleet is what `slamon run` would monitor.
- Live state: a FleetState fed three ICMP rounds 30 s apart (the last one 1 s ago) of synthetic
  results: 1% of the cameras fail every round (down, cause `device`), ten switches and one link
  fail with everything below them (down, cause `upstream:<id>`), 0.5% of the cameras fail only in
  the last round (still up: one failure is not an outage), 100 devices get no result (unknown);
  the others answer with an RTT and no loss. Each feed is timed too (it is what a round costs the
  live state).
- Timed in-process, --runs times each: `FleetRenderer.render()` (the first call builds the label
  cache: reported apart) and `exposition()` (render + slamon's own registry, the /metrics body).
- Through HTTP: the aiohttp app of `slamon run` (`slamon.service.web.create_app`) around a Monitor whose
  state is the one fed above, served on 127.0.0.1:--port, each GET /metrics timed by `curl` in its
  own process (time_total, as a scraper sees it).
- `promtool check metrics` on the body: its verdict and what it says.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from common import OUT, describe, finish, machine, port_free, save, spread
from make_history import TIMEZONE, plan_fleet, write_fleet
from prometheus_client import CollectorRegistry

from slamon.clock import FakeClock
from slamon.engine.live import FleetState
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.model import DeviceKind, DeviceState, Fleet, Kpi, ProbeKind, ProbeResult, to_micros
from slamon.service.metrics import Figures, FleetRenderer, SelfCollector, exposition
from slamon.service.monitor import Monitor, RoundStats
from slamon.service.web import create_app
from slamon.store import Store


def build_fleet(out: Path, devices: int) -> tuple[Fleet, float]:
    month = datetime.now(ZoneInfo(TIMEZONE)).strftime("%Y-%m")
    plan = plan_fleet(devices, month)
    write_fleet(plan, out, 30)
    started = time.perf_counter()
    fleet = load_fleet(load_config(out / "slamon-csv.yaml"))
    return fleet, time.perf_counter() - started


def failing(fleet: Fleet, seed: int = 7) -> tuple[set[str], set[str], set[str]]:
    """(devices failing every round, devices failing only the last round, devices never probed)."""
    rng = random.Random(seed)
    devices = sorted(fleet.inventory.devices.values(), key=lambda d: d.id)
    cameras = [d.id for d in devices if d.kind is DeviceKind.CAMERA]
    switches = [d.id for d in devices if d.kind is DeviceKind.SWITCH]
    links = [d.id for d in devices if d.kind is DeviceKind.LINK]
    down = set(rng.sample(cameras, len(cameras) // 100))
    roots = set(rng.sample(switches, min(10, len(switches)))) | set(links[1:2])
    children: dict[str, list[str]] = {}
    for d in devices:
        if d.parent is not None:
            children.setdefault(d.parent, []).append(d.id)
    stack = list(roots)
    while stack:
        x = stack.pop()
        down.add(x)
        stack.extend(children.get(x, ()))
    rest = [c for c in cameras if c not in down]
    blip = set(rng.sample(rest, len(cameras) // 200))
    unseen = set(rng.sample([c for c in rest if c not in blip], min(100, len(rest) // 10)))
    return down, blip, unseen


def feed_rounds(fleet: Fleet, now: datetime) -> tuple[FleetState, list[float], dict[str, int]]:
    state = FleetState(fleet)
    down, blip, unseen = failing(fleet)
    ids = sorted(d for d in fleet.inventory.devices if d not in unseen)
    took: list[float] = []
    for k, at in enumerate(
        (now - timedelta(seconds=61), now - timedelta(seconds=31), now - timedelta(seconds=1))
    ):
        last = k == 2
        results = []
        for i, d in enumerate(ids):
            if d in down or (last and d in blip):
                results.append(ProbeResult(d, ProbeKind.ICMP, at, ok=False, loss=1.0, error="no echo reply"))
            else:
                results.append(
                    ProbeResult(d, ProbeKind.ICMP, at, ok=True, rtt_ms=0.05 + (i % 97) / 100, loss=0.0)
                )
        started = time.perf_counter()
        for lo in range(0, len(results), 5000):  # the monitor hands results over in batches of 5,000
            state.feed(results[lo : lo + 5000])
        took.append(time.perf_counter() - started)
    n = to_micros(now)
    counts = {s.value: 0 for s in DeviceState}
    for live in state:
        counts[live.state_at(n).value] += 1
    counts |= {"failing_every_round": len(down), "failing_last_round": len(blip), "unprobed": len(unseen)}
    return state, took, counts


def stats_for(now: datetime) -> dict[ProbeKind, RoundStats]:
    return {
        ProbeKind.ICMP: RoundStats(
            rounds=3, probes=300_000, failed=9_000, last_duration=2.5, last_started=now.timestamp() - 1
        )
    }


def figures_for(fleet: Fleet) -> Figures:
    """Month-to-date figures as the background job leaves them (contract and districts)."""
    figures = Figures(computed_at=time.time())
    for c in fleet.contracts:
        figures.contract[c] = {Kpi.ONLINE_RATE: 0.9912, Kpi.INTACT_RATE: 0.9734}
        for district in sorted({s.district for s in fleet.inventory.sites.values()}):
            figures.district[(c, district)] = {Kpi.ONLINE_RATE: 0.99, Kpi.INTACT_RATE: 0.97}
    return figures


def time_in_process(
    renderer: FleetRenderer, registry: CollectorRegistry, runs: int
) -> tuple[dict[str, Any], bytes]:
    started = time.perf_counter()
    renderer.render()
    first = time.perf_counter() - started
    render_s = []
    for _ in range(runs):
        started = time.perf_counter()
        renderer.render()
        render_s.append(time.perf_counter() - started)
    expo_s = []
    body = b""
    for _ in range(runs):
        started = time.perf_counter()
        body = exposition(renderer, registry)
        expo_s.append(time.perf_counter() - started)
    return {"first_render_s": first, "render_s": render_s, "exposition_s": expo_s}, body


async def through_http(
    fleet: Fleet, state: FleetState, clock: FakeClock, now: datetime, out: Path, port: int, runs: int
) -> dict[str, Any]:
    """GET /metrics of slamon run's app, timed by curl in its own process."""
    curl = shutil.which("curl")
    if curl is None:
        return {"skipped": "curl not found"}
    store = Store(f"sqlite:///{out / 'metrics-bench.db'}")
    monitor = Monitor(fleet, store, clock, {}, {ProbeKind.ICMP: timedelta(seconds=30)})
    monitor.state = state
    monitor.stats = stats_for(now)
    app = create_app(monitor, clock, {ProbeKind.ICMP: timedelta(seconds=30)}, figures_for(fleet))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    result: dict[str, Any] = {}
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        times: list[float] = []
        sizes: list[int] = []
        for _ in range(runs + 1):  # the first builds the renderer's label cache
            proc = await asyncio.create_subprocess_exec(
                curl,
                "-s",
                "-o",
                str(out / "metrics-http.txt"),
                "-w",
                "%{http_code} %{time_total} %{size_download}",
                "--max-time",
                "60",
                f"http://127.0.0.1:{port}/metrics",
                stdout=asyncio.subprocess.PIPE,
            )
            stdout, _ = await asyncio.wait_for(proc.communicate(), 90)
            code, total, size = stdout.decode().split()
            if code != "200":
                raise RuntimeError(f"GET /metrics: HTTP {code}")
            times.append(float(total))
            sizes.append(int(size))
        result = {"first_s": times[0], "get_s": times[1:], "bytes": sizes[-1]}
    finally:
        await runner.cleanup()
        await monitor.close()
        store.close()
    return result


def promtool(path: Path) -> dict[str, Any]:
    tool = shutil.which("promtool")
    if tool is None:
        return {"verdict": "promtool not found (apt-get install prometheus)"}
    started = time.perf_counter()
    with path.open("rb") as f:
        done = subprocess.run(
            [tool, "check", "metrics"], stdin=f, capture_output=True, timeout=600, check=False
        )
    text = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
    return {
        "returncode": done.returncode,
        "verdict": "pass"
        if done.returncode == 0 and not text
        else ("FAIL" if done.returncode else "warnings"),
        "output": text.splitlines()[:20],
        "seconds": round(time.perf_counter() - started, 2),
        "version": subprocess.run(
            [tool, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.splitlines()[0],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    res: dict[str, Any] = {"machine": info, "devices": args.devices}
    fleet, load_s = build_fleet(out, args.devices)
    res["fleet_load_s"] = load_s
    res["kinds"] = {k.value: sum(d.kind is k for d in fleet.inventory.devices.values()) for k in DeviceKind}
    now = datetime.now(UTC)
    clock = FakeClock(now)
    state, feed_s, counts = feed_rounds(fleet, now)
    res["feed_s"] = feed_s
    res["states"] = counts
    registry = CollectorRegistry()
    registry.register(SelfCollector(stats_for(now), state))
    renderer = FleetRenderer(state, figures_for(fleet), clock)
    timing, body = time_in_process(renderer, registry, args.runs)
    res.update(timing)
    path = out / f"metrics-{args.devices}.txt"
    path.write_bytes(body)
    text = body.decode()
    res["body"] = {
        "bytes": len(body),
        "lines": text.count("\n"),
        "series": sum(1 for ln in text.splitlines() if ln and not ln.startswith("#")),
        "cause_upstream": text.count('cause="upstream:'),
        "cause_device": text.count('cause="device"'),
        "file": str(path),
    }
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(exposition, renderer, registry)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(20)
        (out / f"profile-metrics-{args.devices}.txt").write_text(buf.getvalue(), encoding="utf-8")
        res["profile"] = str(out / f"profile-metrics-{args.devices}.txt")
    if not args.no_http:
        if not port_free(args.port):
            raise SystemExit(f"port {args.port} is taken; pick another with --port")
        res["http"] = asyncio.run(through_http(fleet, state, clock, now, out, args.port, args.runs))
        for f in out.glob("metrics-bench.db*"):
            f.unlink()
    res["promtool"] = promtool(path)
    res["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finish(info)
    return res


def report(res: dict[str, Any]) -> str:
    n = res["devices"]
    body, st = res["body"], res["states"]
    expo = statistics.median(res["exposition_s"])
    lines = [
        f"# /metrics for {n:,} devices",
        describe(res["machine"]),
        (
            f"fleet: {res['kinds']} loaded from inventory.csv in {res['fleet_load_s']:.1f} s; states now: "
            f"{st['up']} up, {st['down']} down, {st['unknown']} unknown ({st['failing_every_round']} failing every "
            f"round, {st['failing_last_round']} only the last one, {st['unprobed']} never probed)"
        ),
        (
            f"feeding one round of {n - st['unprobed']:,} results to FleetState (batches of 5,000): "
            f"{', '.join(f'{s:.2f}' for s in res['feed_s'])} s (rounds 1, 2, 3)"
        ),
        (
            f"body: {body['bytes'] / 1e6:.1f} MB, {body['lines']:,} lines, {body['series']:,} series "
            f"({body['cause_device']} cause=device, {body['cause_upstream']} cause=upstream)"
        ),
        "",
        "| what | runs | seconds (median, min–max) |",
        "|---|---|---|",
        f"| FleetRenderer.render(), first call (builds the label cache) | 1 | {res['first_render_s']:.2f} |",
        f"| FleetRenderer.render() | {len(res['render_s'])} | {spread(res['render_s'])} |",
        (
            f"| exposition() = render + registry (the /metrics body) | {len(res['exposition_s'])} | "
            f"{spread(res['exposition_s'])} |"
        ),
    ]
    http = res.get("http", {})
    if "get_s" in http:
        lines += [
            f"| GET /metrics through slamon.service.web's app, curl time_total, first | 1 | {http['first_s']:.2f} |",
            f"| GET /metrics, curl time_total | {len(http['get_s'])} | {spread(http['get_s'])} |",
        ]
    worst = max([*res["exposition_s"], *http.get("get_s", [])])
    pt = res["promtool"]
    lines += [
        "",
        f"- goal /metrics < 2 s at {n:,} devices: median {expo:.2f} s in-process"
        + (f", {statistics.median(http['get_s']):.2f} s over HTTP" if "get_s" in http else "")
        + f" (worst run {worst:.2f} s) → **{'pass' if worst < 2 and expo < 2 else 'FAIL'}**",
        (
            f"- promtool check metrics ({pt.get('version', '')}): **{pt['verdict']}** "
            f"(exit {pt.get('returncode')}, {pt.get('seconds')} s) {'; '.join(pt.get('output', [])[:5])}"
        ),
        f"- peak RSS of this process: {res['maxrss_mb']:.0f} MB",
    ]
    if "profile" in res:
        lines.append(f"- profile: {res['profile']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--port", type=int, default=19182, help="127.0.0.1 port for the HTTP part")
    p.add_argument("--no-http", action="store_true")
    p.add_argument("--profile", action="store_true", help="cProfile of one exposition()")
    p.add_argument("--out", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    args.out = args.out or OUT / f"metrics-{args.devices}"
    res = run(args)
    print(report(res))
    save(args.json or args.out / "bench_metrics.json", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
