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
- Timed in-process, --runs times each, the path `slamon run` takes after every round
  (`Monitor.refresh_view`): `LiveCauses(fleet)` (once per inventory), `take_view()` (the FleetView,
  on the event loop a slice of 10,000 devices at a time: the longest the loop was held is measured
  by a ticker task beside it), `FleetExposition.render()` (the first call builds the label cache:
  reported apart), the body's `encode()` and `gzip.compress()`, and `FleetExposition.update()`
  (render + encode + gzip + malloc_trim, in a thread in the service); then what a scrape costs:
  `exposition(gzipped=True)` (the cached gzip members + the month-to-date figures + slamon's own
  registry, on the event loop) and `exposition(gzipped=False)` (decompressed, on a reader thread).
- Through HTTP: the aiohttp app of `slamon run` (`slamon.service.web.create_app`) around a Monitor whose
  state is the one fed above, `Monitor.refresh_view()` timed as a whole, served on 127.0.0.1:--port,
  each GET /metrics timed by `curl` in its own process (time_total, as a scraper sees it): with
  `Accept-Encoding: gzip` as Prometheus sends it (the compressed bytes, not decompressed), with
  `--compressed` (curl decompresses too), and plain; the decompressed gzip body must equal the plain one.
- `promtool check metrics` on the body: its verdict and what it says.
- Memory (--no-memory skips it): this process's RSS (after gc and malloc_trim) with the fleet, with
  the live state, with a FleetView and with a FleetExposition kept; and what each step allocates
  at its peak under tracemalloc: take_view, render, update, an uncompressed scrape, and a fourth
  round of every device (its ProbeResults and FleetState.feed).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import gzip
import io
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
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
from slamon.model import DeviceKind, DeviceState, Fleet, Kpi, Micros, ProbeKind, ProbeResult, to_micros
from slamon.service.memory import give_back
from slamon.service.metrics import GZIP_LEVEL, Figures, FleetExposition, SelfCollector, exposition
from slamon.service.monitor import Monitor, RoundStats
from slamon.service.views import FleetView, LiveCauses, take_view
from slamon.service.web import create_app
from slamon.service.writer import WriterStatus
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


def rss_mb() -> float:
    """This process's resident memory now, after a collection and malloc_trim (what stays)."""
    gc.collect()
    give_back()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def traced_peak(fn: Any) -> float:
    """MB allocated at the peak of fn() above what was allocated before (tracemalloc)."""
    gc.collect()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    kept = fn()
    peak = tracemalloc.get_traced_memory()[1] - before
    del kept
    return peak / 2**20


def memory(state: FleetState, figures: Figures, registry: CollectorRegistry, now: datetime) -> dict[str, Any]:
    """What the per-round objects hold (RSS before and after, each kept alive) and what each step
    allocates at its peak (tracemalloc, which slows them: timings are taken apart)."""
    fleet = state.fleet
    at = to_micros(now)
    res: dict[str, Any] = {"rss_before_mb": rss_mb()}
    causes = LiveCauses(fleet)
    view = asyncio.run(take_view(state, causes, at))
    res["rss_with_view_mb"] = rss_mb()
    fx = FleetExposition()
    fx.update(view)
    res["rss_with_exposition_mb"] = rss_mb()
    res["held_by_view_mb"] = res["rss_with_view_mb"] - res["rss_before_mb"]
    res["held_by_exposition_mb"] = res["rss_with_exposition_mb"] - res["rss_with_view_mb"]
    tracemalloc.start()
    try:
        peaks = {
            "take_view": traced_peak(lambda: asyncio.run(take_view(state, causes, at))),
            "FleetExposition.render": traced_peak(lambda: fx.render(view)),
            "FleetExposition.update": traced_peak(lambda: fx.update(view)),
            "exposition(gzipped=False)": traced_peak(
                lambda: exposition(fx, figures, registry, gzipped=False)
            ),
        }
        # a fourth round of every device fed to the live state, as the monitor's _Taken does
        later = now + timedelta(seconds=29)
        ids = sorted(d.id for d in fleet.inventory.devices.values())

        def round_results() -> tuple[list[ProbeResult], list[object]]:
            results = [ProbeResult(d, ProbeKind.ICMP, later, ok=True, rtt_ms=0.5, loss=0.0) for d in ids]
            changes: list[object] = []
            for lo in range(0, len(results), 5000):
                changes += state.feed(results[lo : lo + 5000])
            return results, changes

        peaks["a round: ProbeResults + FleetState.feed"] = traced_peak(round_results)
    finally:
        tracemalloc.stop()
    res["peak_mb"] = peaks
    return res


def idle_writer() -> WriterStatus:
    """The writer's status with nothing waiting (what slamon's own metrics read at a scrape)."""
    return WriterStatus(
        writes=0,
        rows=0,
        memory_bytes=0,
        journaled=0,
        oldest_age_s=None,
        failing=None,
        failures={},
        replayed=0,
        written=3,
        set_aside=0,
        fatal=None,
    )


async def viewed(state: FleetState, causes: LiveCauses, at: Micros) -> tuple[FleetView, float, float]:
    """take_view as the monitor calls it on the event loop: (view, seconds, longest the loop was
    held between two of its yields, as a ticker task beside it saw it)."""
    longest = 0.0
    done = False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = time.perf_counter()
    view = await take_view(state, causes, at)
    took = time.perf_counter() - started
    done = True
    await tick
    return view, took, longest


def time_in_process(
    state: FleetState, figures: Figures, registry: CollectorRegistry, at: Micros, runs: int
) -> tuple[dict[str, Any], FleetExposition, FleetView, bytes]:
    """The per-round path (LiveCauses once, take_view, FleetExposition.update and its parts) and
    the per-scrape one (exposition gzipped and plain), --runs times each."""
    fleet = state.fleet
    res: dict[str, Any] = {}
    started = time.perf_counter()
    causes = LiveCauses(fleet)
    res["live_causes_s"] = time.perf_counter() - started
    view_s, held_s = [], []
    view = None
    for _ in range(runs):
        view, took, held = asyncio.run(viewed(state, causes, at))
        view_s.append(took)
        held_s.append(held)
    assert view is not None
    res["take_view_s"], res["take_view_loop_held_s"] = view_s, held_s
    fx = FleetExposition()
    started = time.perf_counter()
    text = fx.render(view)
    res["first_render_s"] = time.perf_counter() - started
    render_s, encode_s, gzip_s = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        text = fx.render(view)
        render_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        raw = text.encode()
        encode_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        gzip.compress(raw, GZIP_LEVEL)
        gzip_s.append(time.perf_counter() - started)
    del text, raw
    res["render_s"], res["encode_s"], res["gzip_s"] = render_s, encode_s, gzip_s
    update_s = []
    for _ in range(runs):
        started = time.perf_counter()
        fx.update(view)
        update_s.append(time.perf_counter() - started)
    res["update_s"] = update_s
    res["gzipped_bytes"] = len(fx.gzipped)
    scrape_gz, scrape_plain = [], []
    body = b""
    for _ in range(runs):
        started = time.perf_counter()
        exposition(fx, figures, registry, gzipped=True)
        scrape_gz.append(time.perf_counter() - started)
        started = time.perf_counter()
        body = exposition(fx, figures, registry, gzipped=False)
        scrape_plain.append(time.perf_counter() - started)
    res["exposition_gzip_s"], res["exposition_plain_s"] = scrape_gz, scrape_plain
    return res, fx, view, body


async def curl_get(curl: str, url: str, into: Path, extra: list[str]) -> tuple[float, int]:
    """(time_total, bytes received) of one GET by curl in its own process."""
    proc = await asyncio.create_subprocess_exec(
        curl,
        "-s",
        *extra,
        "-o",
        str(into),
        "-w",
        "%{http_code} %{time_total} %{size_download}",
        "--max-time",
        "60",
        url,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), 90)
    code, total, size = stdout.decode().split()
    if code != "200":
        raise RuntimeError(f"GET {url} {' '.join(extra)}: HTTP {code}")
    return float(total), int(size)


async def through_http(
    fleet: Fleet, state: FleetState, clock: FakeClock, now: datetime, out: Path, port: int, runs: int
) -> dict[str, Any]:
    """Monitor.refresh_view() and GET /metrics of slamon run's app, timed by curl in its own process."""
    curl = shutil.which("curl")
    if curl is None:
        return {"skipped": "curl not found"}
    store = Store(f"sqlite:///{out / 'metrics-bench.db'}")
    monitor = Monitor(fleet, store, clock, {}, {ProbeKind.ICMP: timedelta(seconds=30)})
    monitor.state = state
    monitor.stats = stats_for(now)
    refresh_s = []
    for _ in range(runs):
        started = time.perf_counter()
        await monitor.refresh_view()  # take_view on the loop, then FleetExposition.update in a thread
        refresh_s.append(time.perf_counter() - started)
    app = create_app(monitor, clock, {ProbeKind.ICMP: timedelta(seconds=30)}, figures_for(fleet))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    url = f"http://127.0.0.1:{port}/metrics"
    result: dict[str, Any] = {"refresh_view_s": refresh_s}
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        variants = {
            "gzip": ["-H", "Accept-Encoding: gzip"],  # what Prometheus asks for; bytes as sent
            "compressed": ["--compressed"],  # asked for and decompressed by curl
            "plain": [],
        }
        for name, extra in variants.items():
            times, size = [], 0
            for _ in range(runs):
                took, size = await curl_get(curl, url, out / f"metrics-http-{name}.bin", extra)
                times.append(took)
            result[name] = {"get_s": times, "bytes": size}
        plain = (out / "metrics-http-plain.bin").read_bytes()
        unzipped = gzip.decompress((out / "metrics-http-gzip.bin").read_bytes())
        # the registry's part (round counters, backlog) is made at each scrape: compare the fleet part
        cut = plain.index(b"# HELP slamon_round_duration_seconds")
        result["gzip_equals_plain"] = unzipped[: len(plain[:cut])] == plain[:cut]
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


def profile(out: Path, name: str, fn: Any, *args: Any) -> str:
    prof = cProfile.Profile()
    prof.runcall(fn, *args)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(20)
    path = out / f"profile-{name}.txt"
    path.write_text(buf.getvalue(), encoding="utf-8")
    return str(path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    res: dict[str, Any] = {"machine": info, "devices": args.devices}
    rss_start = rss_mb()
    fleet, load_s = build_fleet(out, args.devices)
    res["fleet_load_s"] = load_s
    rss_fleet = rss_mb()
    res["kinds"] = {k.value: sum(d.kind is k for d in fleet.inventory.devices.values()) for k in DeviceKind}
    now = datetime.now(UTC)
    clock = FakeClock(now)
    state, feed_s, counts = feed_rounds(fleet, now)
    res["feed_s"] = feed_s
    res["states"] = counts
    res["rss_mb"] = {"start": rss_start, "with_fleet": rss_fleet, "with_fleet_and_state": rss_mb()}
    registry = CollectorRegistry()
    registry.register(SelfCollector(stats_for(now), state, idle_writer, lambda: 0))
    figures = figures_for(fleet)
    timing, fx, view, body = time_in_process(state, figures, registry, to_micros(now), args.runs)
    res.update(timing)
    path = out / f"metrics-{args.devices}.txt"
    path.write_bytes(body)
    text = body.decode()
    res["body"] = {
        "bytes": len(body),
        "gzipped_bytes": len(exposition(fx, figures, registry, gzipped=True)),
        "lines": text.count("\n"),
        "series": sum(1 for ln in text.splitlines() if ln and not ln.startswith("#")),
        "cause_upstream": text.count('cause="upstream:'),
        "cause_device": text.count('cause="device"'),
        "file": str(path),
    }
    del text
    if args.profile:
        res["profile"] = [
            profile(out, f"update-{args.devices}", fx.update, view),
            profile(
                out,
                f"take-view-{args.devices}",
                lambda: asyncio.run(take_view(state, LiveCauses(fleet), to_micros(now))),
            ),
        ]
    if not args.no_http:
        if not port_free(args.port):
            raise SystemExit(f"port {args.port} is taken; pick another with --port")
        res["http"] = asyncio.run(through_http(fleet, state, clock, now, out, args.port, args.runs))
        for f in out.glob("metrics-bench.db*"):
            if f.is_dir():
                shutil.rmtree(f)
            else:
                f.unlink()
        for f in out.glob("metrics-http-*.bin"):
            f.unlink()
    res["promtool"] = promtool(path)
    if not args.no_memory:
        del fx, view
        res["memory"] = memory(state, figures, registry, now)
    res["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finish(info)
    return res


def report(res: dict[str, Any]) -> str:
    n = res["devices"]
    body, st = res["body"], res["states"]
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
            f"body: {body['bytes'] / 1e6:.1f} MB plain, {body['gzipped_bytes'] / 1e6:.1f} MB gzipped, "
            f"{body['lines']:,} lines, {body['series']:,} series "
            f"({body['cause_device']} cause=device, {body['cause_upstream']} cause=upstream)"
        ),
        "",
        "| what | where in slamon run | runs | seconds (median, min–max) |",
        "|---|---|---|---|",
        f"| LiveCauses(fleet) | once per inventory | 1 | {res['live_causes_s']:.2f} |",
        f"| take_view() | event loop, every round | {len(res['take_view_s'])} | {spread(res['take_view_s'])} |",
        (
            f"| … longest the loop was held between two yields | event loop | {len(res['take_view_loop_held_s'])} | "
            f"{spread(res['take_view_loop_held_s'], '{:.3f}')} |"
        ),
        f"| FleetExposition.render(), first call (builds the label cache) | thread | 1 | {res['first_render_s']:.2f} |",
        f"| FleetExposition.render() | thread, every round | {len(res['render_s'])} | {spread(res['render_s'])} |",
        f"| … str.encode() of the body | thread | {len(res['encode_s'])} | {spread(res['encode_s'], '{:.3f}')} |",
        f"| … gzip.compress(level 5) of the body | thread | {len(res['gzip_s'])} | {spread(res['gzip_s'])} |",
        (
            f"| FleetExposition.update() = render + encode + gzip + malloc_trim | thread, every round | "
            f"{len(res['update_s'])} | {spread(res['update_s'])} |"
        ),
        (
            f"| exposition(gzipped=True): a scrape with gzip | event loop, every scrape | "
            f"{len(res['exposition_gzip_s'])} | {spread(res['exposition_gzip_s'], '{:.4f}')} |"
        ),
        (
            f"| exposition(gzipped=False): a scrape without gzip | reader thread, every scrape | "
            f"{len(res['exposition_plain_s'])} | {spread(res['exposition_plain_s'])} |"
        ),
    ]
    http = res.get("http", {})
    if "gzip" in http:
        lines += [
            (
                f"| Monitor.refresh_view() = take_view + update (in a thread) | after every round | "
                f"{len(http['refresh_view_s'])} | {spread(http['refresh_view_s'])} |"
            ),
            (
                f"| GET /metrics, Accept-Encoding: gzip ({http['gzip']['bytes'] / 1e6:.1f} MB), curl time_total | "
                f"HTTP | {len(http['gzip']['get_s'])} | {spread(http['gzip']['get_s'], '{:.3f}')} |"
            ),
            (
                f"| GET /metrics, curl --compressed (decompressed by curl) | HTTP | "
                f"{len(http['compressed']['get_s'])} | {spread(http['compressed']['get_s'], '{:.3f}')} |"
            ),
            (
                f"| GET /metrics, plain ({http['plain']['bytes'] / 1e6:.1f} MB) | HTTP | "
                f"{len(http['plain']['get_s'])} | {spread(http['plain']['get_s'], '{:.3f}')} |"
            ),
        ]
    per_round = statistics.median(res["take_view_s"]) + statistics.median(res["update_s"])
    scrapes = [*res["exposition_gzip_s"], *res["exposition_plain_s"]]
    for name in ("gzip", "compressed", "plain"):
        scrapes += http.get(name, {}).get("get_s", [])
    worst = max(scrapes)
    pt = res["promtool"]
    lines += [
        "",
        (
            f"- goal /metrics < 2 s at {n:,} devices: a scrape serves the body rendered after the round; "
            f"worst scrape {worst:.2f} s → **{'pass' if worst < 2 else 'FAIL'}**; the render after each "
            f"round (take_view + update, medians) {per_round:.2f} s"
            + (
                f", refresh_view as the monitor runs it {statistics.median(http['refresh_view_s']):.2f} s"
                if "refresh_view_s" in http
                else ""
            )
        ),
        (
            f"- gzip body decompressed equals the plain one: {http.get('gzip_equals_plain')}"
            if "gzip_equals_plain" in http
            else "- HTTP part skipped"
        ),
        (
            f"- promtool check metrics ({pt.get('version', '')}): **{pt['verdict']}** "
            f"(exit {pt.get('returncode')}, {pt.get('seconds')} s) {'; '.join(pt.get('output', [])[:5])}"
        ),
        f"- peak RSS of this process: {res['maxrss_mb']:.0f} MB",
    ]
    rss = res["rss_mb"]
    lines.append(
        f"- memory held (RSS after gc + malloc_trim): interpreter and imports {rss['start']:.0f} MB, + the fleet "
        f"{rss['with_fleet'] - rss['start']:.0f} MB, + the live state fed 3 rounds "
        f"{rss['with_fleet_and_state'] - rss['with_fleet']:.0f} MB"
    )
    mem = res.get("memory")
    if mem:
        lines.append(
            f"- held between rounds: a FleetView {mem['held_by_view_mb']:.0f} MB, a FleetExposition (label cache "
            f"and gzipped body) {mem['held_by_exposition_mb']:.0f} MB"
        )
        lines.append(
            "- allocated at the peak of each step (tracemalloc): "
            + "; ".join(f"{k} {v:.0f} MB" for k, v in mem["peak_mb"].items())
        )
    if "profile" in res:
        lines.append(f"- profiles: {', '.join(res['profile'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--port", type=int, default=19182, help="127.0.0.1 port for the HTTP part")
    p.add_argument("--no-http", action="store_true")
    p.add_argument("--no-memory", action="store_true", help="skip the memory part (tracemalloc)")
    p.add_argument("--profile", action="store_true", help="cProfile of one update() and one take_view()")
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
