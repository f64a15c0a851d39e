"""Soak `slamon run`: the real service, for a long while, on a fleet whose targets come and go.

    python benchmarks/soak.py [--devices 10000] [--duration 30m] [--interval 30] [--port 19181]

Writes a fleet (make_history's: links -> switches -> cameras on 127.x addresses, one contract),
starts `slamon -c slamon.yaml run` inside a fresh FleetNamespace (so addresses can be silenced
with nftables; nothing leaves the machine) and, for --duration after its first round:

- silences and restores addresses on a schedule fixed to the rounds (changes at 20 s into each
  30 s interval, never while a round runs), so every round's silenced set is known:
  * outage groups: --group cameras at a time, each silenced for 4 rounds (they must go down:
    down_after is 3) and then restored (they must come back), a new group every 4 rounds;
  * flappers: --flappers cameras silenced every other round (never 3 failures in a row: they
    must never go down);
  * site cuts: every 20 rounds a switch and its cameras are silenced for 6 rounds;
- samples every --sample-every seconds (at 5, 15 and 25 s into each interval): the process's RSS
  (VmRSS, VmHWM of /proc/PID/status), its CPU time (utime + stime of /proc/PID/stat, every
  thread), and its /metrics (scraped from inside the namespace, as Prometheus would: the scrape
  costs the service a render of every device's series): rounds, overruns, errors, round duration,
  last round start, probes and failed probes, devices up/down.

At the end it stops the service with SIGTERM and checks: rounds run against rounds expected
(one per interval, none missed), overruns and errors (none), each round's failed probes against
the addresses silenced during it (false downs / false ups), the state changes the service logged
against what the silencing implies (a device down that was never silenced three rounds running is
a false down), and warnings or errors in its log. Samples go to samples.csv, rounds to rounds.csv,
figures to summary.json, the service's log to slamon.log, all under --out.

Every loop is bounded by the duration; the namespace (and the service in it) is removed on exit,
also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness.netns

from common import OUT, describe, finish, machine, port_free, save, slamon_command
from make_history import TIMEZONE, Plan, plan_fleet, write_fleet

from tests.harness.netns import FleetNamespace

DOWN_AFTER = 3  # make_history's contract
TRANSITION = re.compile(r" INFO slamon\.monitor: device (\S+) (up|down|degraded|unknown)\b")
CHANGE_AT = 20.0  # seconds into each interval at which the silenced set changes
SAMPLE_AT = 5.0  # seconds into each interval of the first sample of the interval
START_LIMIT = 300.0  # seconds the service gets to answer /healthz and run its first round
STOP_LIMIT = 20.0  # seconds it gets to exit after SIGTERM


def parse_duration(text: str) -> float:
    """30m, 90s, 1h, 1800 (seconds)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 30m, 90s, 1h)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


# --- the flapping schedule ------------------------------------------------------------------------


@dataclass(slots=True)
class Schedule:
    """Which addresses are silenced during round k (k = 0 is the first round)."""

    plan: Plan
    group: int
    flappers: int
    site_cuts: bool
    groups: list[list[str]] = field(default_factory=list)  # outage groups of camera addresses
    flapping: list[str] = field(default_factory=list)
    sites: list[list[str]] = field(default_factory=list)  # switch address + its cameras'

    def __post_init__(self) -> None:
        cameras = [d for d in self.plan.devices if d.kind == "camera"]
        self.flapping = [d.address for d in cameras[len(cameras) - self.flappers :]] if self.flappers else []
        rest = cameras[: len(cameras) - self.flappers]
        if self.group:
            self.groups = [
                [d.address for d in rest[i : i + self.group]] for i in range(0, len(rest), self.group)
            ]
        kids: dict[int, list[str]] = {}
        for d in cameras:
            if d.parent is not None:
                kids.setdefault(d.parent, []).append(d.address)
        switches = [d for d in self.plan.devices if d.kind == "switch"]
        # every 7th switch from the middle: spread over the fleet, rarely the same twice in a soak
        order = switches[len(switches) // 2 :: 7] + switches[: len(switches) // 2 : 7]
        self.sites = [[s.address, *kids.get(s.index, [])] for s in order]

    def silenced(self, k: int) -> set[str]:
        out: set[str] = set()
        if self.groups:
            out.update(self.groups[(k // 4) % len(self.groups)])
        if self.flapping and k % 2 == 1:
            out.update(self.flapping)
        if self.site_cuts and self.sites and k % 20 >= 10 and k % 20 < 16:
            out.update(self.sites[(k // 20) % len(self.sites)])
        return out


def expected_downs(rounds: list[set[str]], down_after: int = DOWN_AFTER) -> set[str]:
    """Addresses that must have gone down: silenced in down_after rounds running."""
    run: dict[str, int] = {}
    must: set[str] = set()
    for silenced in rounds:
        run = {a: run.get(a, 0) + 1 for a in silenced}
        must.update(a for a, n in run.items() if n >= down_after)
    return must


# --- the service ------------------------------------------------------------------------------------


def write_files(out: Path, devices: int, interval: int, timeout: str, port: int, rate: int | None) -> Plan:
    month = datetime.now(ZoneInfo(TIMEZONE)).strftime("%Y-%m")
    plan = plan_fleet(devices, month)
    write_fleet(plan, out, interval)
    probe = f"interval: {interval}s, timeout: {timeout}" + (f", rate: {rate}" if rate else "")
    (out / "slamon.yaml").write_text(
        "database: sqlite:///slamon.db\n"
        "inventory: inventory.yaml\n"
        "contracts: [contracts/*.yaml]\n"
        "exclusions: exclusions.yaml\n"
        f"listen: 127.0.0.1:{port}\n"
        f"probes:\n  icmp: {{{probe}}}\n",
        encoding="utf-8",
    )
    for f in out.glob("slamon.db*"):
        f.unlink()
    return plan


def fetch(ns: FleetNamespace, port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes, float]:
    """(status, body, seconds) of a GET from inside the namespace; status 0 when it failed."""
    started = time.perf_counter()
    with ns.inside():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
                body = resp.read()
                return resp.status, body, time.perf_counter() - started
        except urllib.error.HTTPError as err:
            return err.code, err.read(), time.perf_counter() - started
        except OSError:
            return 0, b"", time.perf_counter() - started


SELF_METRICS = {
    "slamon_rounds_total": "rounds",
    "slamon_round_overruns_total": "overruns",
    "slamon_round_errors_total": "errors",
    "slamon_round_duration_seconds": "round_duration_s",
    "slamon_round_last_start_timestamp_seconds": "last_start",
    "slamon_probes_total": "probes",
    "slamon_probes_failed_total": "probes_failed",
    "slamon_late_results_total": "late_results",
    "slamon_devices": "devices",
}


def parse_metrics(body: bytes) -> dict[str, float]:
    """slamon's own metrics (ICMP), and how many devices are up and down."""
    out: dict[str, float] = {"up": 0, "down": 0}
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("slamon_device_up{"):
            out["down" if line.endswith(" 0") else "up"] += 1
            continue
        if not line.startswith("slamon_") or line.startswith("slamon_device"):
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if base in SELF_METRICS and ("{" not in name or 'probe="icmp"' in name):
            out[SELF_METRICS[base]] = float(value)
    return out


@dataclass(slots=True)
class Sample:
    t_s: float  # seconds since the first round began
    at: str
    rss_mb: float
    hwm_mb: float
    cpu_s: float  # the service's utime + stime so far
    cpu_share: float  # of one core since the previous sample
    scrape_s: float
    scrape_cpu_s: float  # the service's CPU during the scrape (rendering /metrics, mostly)
    metrics_kb: float
    silenced: int
    rounds: float = math.nan
    overruns: float = math.nan
    errors: float = math.nan
    round_duration_s: float = math.nan
    last_start: float = math.nan
    probes: float = math.nan
    probes_failed: float = math.nan
    late_results: float = math.nan
    up: float = math.nan
    down: float = math.nan


def proc_figures(pid: int) -> tuple[float, float, float]:
    """(RSS MiB, peak RSS MiB, CPU seconds) of a live process."""
    rss = hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rfind(")") + 2 :].split()
    cpu = (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return rss, hwm, cpu


def sleep_until(t: float) -> None:
    left = t - time.time()
    if left > 0:
        time.sleep(left)


def events(t0: float, interval: float, every: float, end: float) -> Iterator[tuple[float, str, int]]:
    """(wall time, 'sample' or 'change', round index) in time order, up to end (bounded)."""
    out: list[tuple[float, str, int]] = []
    k = 0
    while t0 + k * interval <= end + interval:
        base = t0 + k * interval
        s = SAMPLE_AT
        while s < interval:
            if base + s <= end + SAMPLE_AT:
                out.append((base + s, "sample", k))
            s += every
        if base + CHANGE_AT < end:
            out.append((base + CHANGE_AT, "change", k + 1))  # the set for round k + 1
        k += 1
    yield from sorted(out)


def soak(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    plan = write_files(out, args.devices, args.interval, args.timeout, args.port, args.rate)
    schedule = Schedule(plan, args.group, args.flappers, not args.no_site_cuts)
    by_address = {d.address: d.id for d in plan.devices}
    log_path = out / "slamon.log"
    samples: list[Sample] = []
    round_sets: list[set[str]] = []  # silenced set of round k
    result: dict[str, Any] = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
    with FleetNamespace(prefix="slsoak") as ns, log_path.open("w", encoding="utf-8") as log:
        with ns.inside():
            free = port_free(args.port)
        if not free:
            raise SystemExit(f"port {args.port} is taken inside the namespace")
        cmd = [*slamon_command(), "-c", str(out / "slamon.yaml"), "run"]
        started = time.time()
        proc = ns.popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=out)
        print(f"soak: {ns.name}: started pid {proc.pid}: {' '.join(cmd)}", file=sys.stderr)
        # wait for the first round to finish (bounded)
        t0 = 0.0
        while time.time() < started + START_LIMIT:
            if proc.poll() is not None:
                raise SystemExit(f"slamon run exited {proc.returncode}; see {log_path}")
            status, body, _ = fetch(ns, args.port, "/metrics")
            if status == 200:
                m = parse_metrics(body)
                if m.get("rounds", 0) >= 1:
                    t0 = m["last_start"]
                    break
            time.sleep(0.5)
        else:
            raise SystemExit(f"no round within {START_LIMIT:.0f} s; see {log_path}")
        result["startup_s"] = round(t0 - started, 2)
        round_sets.append(set())  # round 0 ran with nothing silenced
        print(f"soak: first round at +{t0 - started:.1f} s; running {args.duration:.0f} s", file=sys.stderr)
        end = t0 + args.duration
        current: set[str] = set()
        prev_cpu: tuple[float, float] | None = None
        for when, what, k in events(t0, args.interval, args.sample_every, end):
            sleep_until(when)
            if proc.poll() is not None:
                result["died"] = f"slamon run exited {proc.returncode} at +{time.time() - t0:.0f} s"
                break
            if what == "change":
                wanted = schedule.silenced(k)
                if wanted != current:  # between rounds: two nft transactions are fine
                    ns.restore_all()
                    if wanted:
                        ns.silence(*sorted(wanted))
                current = wanted
                while len(round_sets) <= k:
                    round_sets.append(set(current))
                continue
            rss, hwm, cpu = proc_figures(proc.pid)
            now = time.time()
            share = (cpu - prev_cpu[0]) / (now - prev_cpu[1]) if prev_cpu else math.nan
            prev_cpu = (cpu, now)
            status, body, took = fetch(ns, args.port, "/metrics")
            scrape_cpu = proc_figures(proc.pid)[2] - cpu
            s = Sample(
                t_s=round(now - t0, 2),
                at=datetime.fromtimestamp(now).astimezone().isoformat(timespec="seconds"),
                rss_mb=round(rss, 1),
                hwm_mb=round(hwm, 1),
                cpu_s=round(cpu, 2),
                cpu_share=round(share, 4),
                scrape_s=round(took, 3),
                scrape_cpu_s=round(scrape_cpu, 2),
                metrics_kb=round(len(body) / 1024, 1),
                silenced=len(current),
            )
            if status == 200:
                for key, value in parse_metrics(body).items():
                    setattr(s, key, value)
            samples.append(s)
            if len(samples) % 30 == 1:
                print(
                    f"soak: +{s.t_s:.0f} s rss {s.rss_mb} MB cpu {s.cpu_s} s rounds {s.rounds:.0f} "
                    f"overruns {s.overruns:.0f} last round {s.round_duration_s:.2f} s down {s.down:.0f}",
                    file=sys.stderr,
                )
        # stop it and see that it stops
        stopping = time.monotonic()
        health = fetch(ns, args.port, "/healthz")
        result["healthz_end"] = health[0]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_LIMIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        result["stop_s"] = round(time.monotonic() - stopping, 2)
        result["exit_code"] = proc.returncode
    finish(info)
    result["samples"] = len(samples)
    write_csv(out / "samples.csv", [asdict(s) for s in samples])
    result.update(analyse(samples, round_sets, args, log_path, by_address, t0))
    write_csv(out / "rounds.csv", result.pop("round_rows"))
    save(out / "summary.json", result)
    return result


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        if not rows:
            return
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def analyse(
    samples: list[Sample],
    round_sets: list[set[str]],
    args: argparse.Namespace,
    log_path: Path,
    by_address: dict[str, str],
    t0: float,
) -> dict[str, Any]:
    ok = [s for s in samples if not math.isnan(s.rounds)]
    r: dict[str, Any] = {}
    if not ok:
        return {"round_rows": [], "error": "no sample of /metrics"}
    first, last = ok[0], ok[-1]
    at5 = min(ok, key=lambda s: abs(s.t_s - 300))
    r["rss_mb"] = {
        "first_sample": first.rss_mb,
        "at_5_min": at5.rss_mb,
        "at_5_min_t_s": at5.t_s,
        "end": last.rss_mb,
        "max": max(s.rss_mb for s in ok),
        "peak_hwm": last.hwm_mb,
    }
    # rounds: one started per interval from t0 on, the last sample is 5 s after the last start
    expected = math.floor((last.t_s - SAMPLE_AT) / args.interval + 1e-9) + 1
    r["rounds"] = {
        "run": int(last.rounds),
        "expected": expected,
        "overruns": int(last.overruns),
        "errors": int(last.errors),
        "max_duration_s": max(s.round_duration_s for s in ok),
        "median_duration_s": sorted(s.round_duration_s for s in ok)[len(ok) // 2],
    }
    starts = sorted({s.last_start for s in ok})
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    r["rounds"]["start_gap_s"] = {"min": min(gaps), "max": max(gaps)} if gaps else None
    r["rounds"]["late_results"] = int(last.late_results)
    elapsed = last.t_s - first.t_s
    scrapes = sum(s.scrape_cpu_s for s in ok[1:])
    r["cpu"] = {
        "seconds": round(last.cpu_s - first.cpu_s, 2),
        "over_s": round(elapsed, 1),
        "share_of_one_core": round((last.cpu_s - first.cpu_s) / elapsed, 4) if elapsed else math.nan,
        "scrapes_s": round(scrapes, 2),
        "share_without_scrapes": round((last.cpu_s - first.cpu_s - scrapes) / elapsed, 4)
        if elapsed
        else math.nan,
        "total_since_start_s": last.cpu_s,
        "max_10s_share": max((s.cpu_share for s in ok if not math.isnan(s.cpu_share)), default=math.nan),
    }
    r["scrape"] = {
        "median_s": sorted(s.scrape_s for s in ok)[len(ok) // 2],
        "median_cpu_s": sorted(s.scrape_cpu_s for s in ok)[len(ok) // 2],
        "max_s": max(s.scrape_s for s in ok),
        "size_kb": last.metrics_kb,
    }
    # each round's failed probes against what was silenced during it
    rows: list[dict[str, Any]] = []
    prev = None
    for s in ok:
        if prev is not None and s.rounds == prev.rounds + 1:
            k = int(s.rounds) - 1
            silenced = len(round_sets[k]) if k < len(round_sets) else None
            failed = int(s.probes_failed - prev.probes_failed)
            rows.append(
                {
                    "round": k,
                    "start_t_s": round(s.last_start - t0, 2),
                    "duration_s": s.round_duration_s,
                    "probes": int(s.probes - prev.probes),
                    "failed": failed,
                    "silenced": silenced,
                    "extra_failures": None if silenced is None else failed - silenced,
                }
            )
        prev = s
    checked = [x for x in rows if x["silenced"] is not None]
    r["per_round"] = {
        "checked": len(checked),
        "exact": sum(x["extra_failures"] == 0 for x in checked),
        "more_failed_than_silenced": sum(x["extra_failures"] > 0 for x in checked),
        "fewer_failed_than_silenced": sum(x["extra_failures"] < 0 for x in checked),
        "extra_failures_total": sum(max(0, x["extra_failures"]) for x in checked),
        "missing_failures_total": sum(max(0, -x["extra_failures"]) for x in checked),
    }
    r["round_rows"] = rows
    # state changes the service logged
    text = log_path.read_text(encoding="utf-8", errors="replace")
    went: dict[str, set[str]] = {"down": set(), "up": set(), "unknown": set(), "degraded": set()}
    changes = 0
    for m in TRANSITION.finditer(text):
        went[m.group(2)].add(m.group(1))
        changes += 1
    ran = int(last.rounds)
    # every round counted was logged before the sample that counted it
    must_ids = {by_address[a] for a in expected_downs(round_sets[:ran])}
    r["transitions"] = {
        "logged": changes,
        "devices_down": len(went["down"]),
        "devices_unknown": len(went["unknown"]),
        "expected_down": len(must_ids),
        "false_down": sorted(went["down"] - must_ids)[:50],
        "false_down_count": len(went["down"] - must_ids),
        "missed_down_count": len(must_ids - went["down"]),
        "missed_down": sorted(must_ids - went["down"])[:50],
    }
    r["log"] = {
        "warnings": [ln for ln in text.splitlines() if " WARNING " in ln][:20],
        "warning_count": sum(" WARNING " in ln for ln in text.splitlines()),
        "errors": [ln for ln in text.splitlines() if " ERROR " in ln or "Traceback" in ln][:20],
        "error_count": sum(" ERROR " in ln or "Traceback" in ln for ln in text.splitlines()),
        "stopped_cleanly": "stopped" in text.splitlines()[-1] if text.strip() else False,
    }
    return r


def report(res: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"# soak: slamon run, {args.devices} devices, ICMP every {args.interval} s, {args.duration:.0f} s"
    ]
    lines.append(describe(res["machine"]))
    if "rss_mb" not in res:
        return "\n".join([*lines, json.dumps(res, indent=2, default=str)])
    rss, rounds, cpu = res["rss_mb"], res["rounds"], res["cpu"]
    pr, tr, log = res["per_round"], res["transitions"], res["log"]
    lines += [
        (
            f"start-up to the first round: {res['startup_s']} s; stop after SIGTERM: {res['stop_s']} s "
            f"(exit {res['exit_code']}); /healthz at the end: {res['healthz_end']}"
        ),
        (
            f"RSS MB: first sample {rss['first_sample']}, at {rss['at_5_min_t_s']:.0f} s {rss['at_5_min']}, "
            f"end {rss['end']}, max {rss['max']} (peak HWM {rss['peak_hwm']})"
        ),
        (
            f"rounds: {rounds['run']} run / {rounds['expected']} expected; overruns {rounds['overruns']}; "
            f"errors {rounds['errors']}; duration median {rounds['median_duration_s']:.2f} s, max "
            f"{rounds['max_duration_s']:.2f} s; gap between starts {rounds['start_gap_s']}; "
            f"late results {rounds['late_results']}"
        ),
        (
            f"CPU: {cpu['seconds']} s over {cpu['over_s']} s = {cpu['share_of_one_core']:.1%} of one core "
            f"(max over 10 s: {cpu['max_10s_share']:.1%}), scrapes of /metrics included; without them "
            f"{cpu['share_without_scrapes']:.1%} ({cpu['scrapes_s']} CPU-s in "
            f"{res['samples'] - 1} scrapes)"
        ),
        (
            f"/metrics scrape: median {res['scrape']['median_s']} s (service CPU {res['scrape']['median_cpu_s']} s), "
            f"max {res['scrape']['max_s']} s, "
            f"{res['scrape']['size_kb']} kB"
        ),
        (
            f"per round, failed probes vs silenced addresses: {pr['exact']} of {pr['checked']} exact; "
            f"{pr['more_failed_than_silenced']} rounds with more ({pr['extra_failures_total']} extra failures), "
            f"{pr['fewer_failed_than_silenced']} with fewer ({pr['missing_failures_total']} missing)"
        ),
        (
            f"state changes logged: {tr['logged']}; devices that went down {tr['devices_down']} "
            f"(expected at least {tr['expected_down']}); false downs {tr['false_down_count']} "
            f"{tr['false_down'][:10]}; missed downs {tr['missed_down_count']} {tr['missed_down'][:10]}; "
            f"went unknown {tr['devices_unknown']}"
        ),
        (
            f"log: {log['warning_count']} warnings, {log['error_count']} errors; stopped cleanly: "
            f"{log['stopped_cleanly']}"
        ),
    ]
    lines += [f"  {w}" for w in log["warnings"][:5] + log["errors"][:5]]
    if "died" in res:
        lines.append(f"DIED: {res['died']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--duration", type=parse_duration, default=1800.0, help="e.g. 30m (default), 5m, 90s")
    p.add_argument("--interval", type=int, default=30, help="ICMP interval, seconds")
    p.add_argument("--timeout", default="1s", help="ICMP timeout (slamon.yaml duration)")
    p.add_argument("--rate", type=int, help="probes.icmp.rate (default: slamon's, 20,000/s)")
    p.add_argument("--sample-every", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--port", type=int, default=19181, help="listen port inside the namespace")
    p.add_argument("--group", type=int, default=200, help="cameras per outage group (0: none)")
    p.add_argument("--flappers", type=int, default=100, help="cameras failing every other round")
    p.add_argument("--no-site-cuts", action="store_true")
    p.add_argument("--out", type=Path)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if args.interval <= CHANGE_AT:
        p.error(f"--interval must be more than {CHANGE_AT:.0f} s (changes happen at {CHANGE_AT:.0f} s)")
    args.out = args.out or OUT / f"soak-{args.devices}"
    res = soak(args)
    print(report(res, args))
    if args.json:
        save(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
