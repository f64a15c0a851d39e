"""ICMP rounds of N distinct 127.x.y.z targets: slamon's IcmpProber against fping and blackbox_exporter.

    python benchmarks/bench_icmp.py [--sizes 1000,10000,50000,100000] [--runs 5] [--bb-runs 3] \
        [--rate 100000] [--down-sizes 10000] [--sweep-size 100000] [--profile]

Every measured thing is its own process under `/usr/bin/time -v` (wall, user + sys CPU, peak RSS of
the whole process), run inside one fresh FleetNamespace (only `lo`, nothing leaves the machine; no
other process's raw socket sees these packets, nor ours theirs), runs interleaved (slamon, fping,
blackbox, slamon, ...) so a busy moment hits every tool alike:

- slamon: `benchmarks/icmp_round.py` builds one Device per target and runs one
  `IcmpProber.round()` (1 echo, timeout 1 s, --rate echo requests/s at most; raw socket as root);
- fping 5: `fping -q -c1 -r0 -t1000 -i0 -f FILE`; one fping run takes at most 65,535 targets
  ("not enough sequence numbers"), so larger rounds are split into equal files run one after the
  other, and their wall, CPU and RSS summed (RSS: the largest);
- blackbox_exporter: a fresh exporter per run (module icmp: prober icmp, timeout 1s, ip4), driven
  by `benchmarks/blackbox_client.py` (aiohttp, --concurrency requests at a time, one
  /probe?module=icmp&target=ADDRESS per target). Its CPU is the exporter's (utime + stime from
  /proc, start-up included) plus the client's (/usr/bin/time); RSS is the exporter's peak (VmHWM).
  Inside the namespace the exporter gets ICMP datagram sockets (ping_group_range allows them).

Then the same with a share of the targets silenced (--down-share, default 10%: every tenth /28
block of addresses dropped by nftables, so the tools meet real 1 s timeouts), and a sweep of
slamon's --rate at --sweep-size targets (20,000/s is slamon's default). Every run checks how many
targets answered: all of them when all are up; exactly the unsilenced ones otherwise. A shortfall is
a false down and is reported as such.

Goals (issue): slamon's CPU-s per probe ≤ 1.0× fping's; 100,000 devices every 30 s < 25% of one
core (CPU-s of a 100,000-target round ÷ 30 s).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness.netns

from common import OUT, TIME, describe, finish, machine, median, save, spread, timing

from tests.harness.netns import FleetNamespace

HERE = Path(__file__).resolve().parent
FPING_MAX = 65_535  # targets per fping process
BLACKBOX = "prometheus-blackbox-exporter"
BLACKBOX_CONFIG = """\
modules:
  icmp:
    prober: icmp
    timeout: 1s
    icmp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""
FPING_LINE = re.compile(r"^(\S+)\s*: xmt/rcv/%loss = (\d+)/(\d+)/")
RUN_TIMEOUT = 900.0  # seconds for any one measured process


def address(i: int) -> str:
    """Target i (from 1): 127.1.0.1, 127.1.0.2, ... 127.2.134.160 for 100,000 (make_history's)."""
    return f"127.{1 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def silenced_blocks(n: int, share: float) -> tuple[list[str], set[int]]:
    """Every k-th /28 block of the first n targets (k = 1 / share): (CIDRs, silenced target numbers)."""
    if share <= 0:
        return [], set()
    every = max(1, round(1 / share))
    blocks: dict[int, None] = {}
    down: set[int] = set()
    for i in range(1, n + 1):
        block = int(ipaddress.IPv4Address(address(i))) >> 4
        if block % every == 0:
            blocks[block] = None
            down.add(i)
    cidrs = [f"{ipaddress.IPv4Address(b << 4)}/28" for b in blocks]
    return cidrs, down


# --- one timed process ----------------------------------------------------------------------------


def timed(cmd: Sequence[str], ok_codes: Sequence[int] = (0,), timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
    """Run under /usr/bin/time -v: wall (clock here), user, sys, peak RSS, stdout, stderr."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as f:
        report = Path(f.name)
    try:
        started = time.perf_counter()
        proc = subprocess.run(
            [TIME, "-v", "-o", str(report), *cmd], capture_output=True, timeout=timeout, check=False
        )
        wall = time.perf_counter() - started
        fields: dict[str, str] = {}
        for line in report.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.strip().rpartition(": ")
            if sep:
                fields[key] = value
    finally:
        report.unlink(missing_ok=True)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode not in ok_codes:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{err[-3000:]}")
    user = float(fields.get("User time (seconds)", "nan"))
    sys_ = float(fields.get("System time (seconds)", "nan"))
    return {
        "wall_s": wall,
        "user_s": user,
        "sys_s": sys_,
        "cpu_s": user + sys_,
        "rss_mb": int(fields.get("Maximum resident set size (kbytes)", "0")) / 1024,
        "returncode": proc.returncode,
        "stdout": out,
        "stderr": err,
    }


def proc_cpu_and_hwm(pid: int) -> tuple[float, float]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rfind(")") + 2 :].split()
    cpu = (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return cpu, hwm


# --- the three tools ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, ns: FleetNamespace, out: Path) -> None:
        self.args = args
        self.ns = ns
        self.out = out
        self.files: dict[int, Path] = {}
        self.chunks: dict[int, list[tuple[Path, int]]] = {}
        (out / "blackbox.yml").write_text(BLACKBOX_CONFIG, encoding="utf-8")

    def targets(self, n: int) -> Path:
        if n not in self.files:
            path = self.out / f"targets-{n}.txt"
            path.write_text("".join(address(i) + "\n" for i in range(1, n + 1)), encoding="ascii")
            self.files[n] = path
            parts = -(-n // FPING_MAX)
            chunks = []
            for p in range(parts):
                lo, hi = p * n // parts + 1, (p + 1) * n // parts
                chunk = self.out / f"targets-{n}-part{p + 1}of{parts}.txt"
                chunk.write_text("".join(address(i) + "\n" for i in range(lo, hi + 1)), encoding="ascii")
                chunks.append((chunk, hi - lo + 1))
            self.chunks[n] = chunks if parts > 1 else [(path, n)]
        return self.files[n]

    def slamon(self, n: int, rate: int, profile: Path | None = None, rounds: int = 1) -> dict[str, Any]:
        cmd = [
            sys.executable,
            str(HERE / "icmp_round.py"),
            "--targets",
            str(self.targets(n)),
            "--rate",
            str(rate),
            "--timeout",
            str(self.args.timeout),
            "--rounds",
            str(rounds),
        ]
        if profile is not None:
            cmd += ["--profile", str(profile)]
        m = timed(self.ns.command(cmd), ok_codes=(0, 1))
        inner = json.loads(m["stdout"].strip().splitlines()[-1])
        m.update({"answered": inner["answered"], "results": inner["results"], "inner": inner})
        return m

    def fping(self, n: int) -> dict[str, Any]:
        self.targets(n)
        total: dict[str, Any] = {"wall_s": 0.0, "user_s": 0.0, "sys_s": 0.0, "cpu_s": 0.0, "rss_mb": 0.0}
        answered = results = 0
        for chunk, _size in self.chunks[n]:
            cmd = ["fping", "-q", "-c1", "-r0", f"-t{int(self.args.timeout * 1000)}", "-i0", "-f", str(chunk)]
            m = timed(self.ns.command(cmd), ok_codes=(0, 1))  # 1: some target did not answer
            for key in ("wall_s", "user_s", "sys_s", "cpu_s"):
                total[key] += m[key]
            total["rss_mb"] = max(total["rss_mb"], m["rss_mb"])
            for line in m["stderr"].splitlines():
                hit = FPING_LINE.match(line)
                if hit:
                    results += 1
                    answered += int(hit.group(3)) > 0
        total.update({"answered": answered, "results": results, "processes": len(self.chunks[n])})
        return total

    def blackbox(self, n: int) -> dict[str, Any]:
        port = self.args.blackbox_port
        url = f"http://127.0.0.1:{port}"
        exporter = self.ns.popen(
            [
                BLACKBOX,
                f"--config.file={self.out / 'blackbox.yml'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 15
            while True:  # bounded: 15 s for the exporter to listen
                if exporter.poll() is not None:
                    raise RuntimeError(f"blackbox_exporter exited: {exporter.stderr.read()[-2000:]!r}")
                try:
                    with self.ns.inside(), urllib.request.urlopen(f"{url}/-/healthy", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("blackbox_exporter did not listen within 15 s")
                time.sleep(0.1)
            client = timed(
                self.ns.command(
                    [
                        sys.executable,
                        str(HERE / "blackbox_client.py"),
                        "--targets",
                        str(self.targets(n)),
                        "--url",
                        url,
                        "--concurrency",
                        str(self.args.concurrency),
                    ]
                ),
                ok_codes=(0, 1),
            )
            exporter_cpu, exporter_hwm = proc_cpu_and_hwm(exporter.pid)
        finally:
            exporter.terminate()
            try:
                exporter.wait(10)
            except subprocess.TimeoutExpired:
                exporter.kill()
                exporter.wait(5)
            if exporter.stderr is not None:
                exporter.stderr.close()
        inner = json.loads(client["stdout"].strip().splitlines()[-1])
        return {
            "wall_s": client["wall_s"],
            "cpu_s": client["cpu_s"] + exporter_cpu,
            "client_cpu_s": client["cpu_s"],
            "exporter_cpu_s": exporter_cpu,
            "rss_mb": exporter_hwm,
            "client_rss_mb": client["rss_mb"],
            "answered": inner["success"],
            "results": inner["success"] + inner["failed"],
            "http_errors": inner["http_errors"],
        }


# --- a series of runs ------------------------------------------------------------------------------


def series(
    bench: Bench, n: int, tools: list[str], runs: dict[str, int], rate: int, expect: int, rounds: int = 1
) -> dict[str, list[dict[str, Any]]]:
    """Interleaved runs of each tool at n targets; each run checked against `expect` answers."""
    got: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
    for r in range(max(runs[t] for t in tools)):
        for tool in tools:
            if r >= runs[tool]:
                continue
            m = bench.slamon(n, rate, rounds=rounds) if tool == "slamon" else getattr(bench, tool)(n)
            m.pop("stdout", None)
            m.pop("stderr", None)
            # every round of the process counts: the later ones reuse what the first one built
            answers = [m["answered"], *(r["answered"] for r in m.get("inner", {}).get("later_rounds", []))]
            m["false_down"] = max(0, expect - min(answers))
            m["false_up"] = max(0, max(answers) - expect)
            got[tool].append(m)
            log(
                f"  {tool:8} n={n:>6} run {r + 1}: wall {m['wall_s']:.2f} s cpu {m['cpu_s']:.2f} s "
                f"rss {m['rss_mb']:.0f} MB answered {m['answered']}/{n} (expected {expect})"
            )
    return got


def summarise(n: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def col(key: str) -> list[float]:
        return [float(m[key]) for m in runs if key in m]

    s = timing(len(runs), col) | {
        "cpu_per_1k": median(col("cpu_s")) / n * 1000,
        "answered": [int(m["answered"]) for m in runs],
        "false_down": [int(m["false_down"]) for m in runs],
        "false_up": [int(m["false_up"]) for m in runs],
    }
    for key in ("client_cpu_s", "exporter_cpu_s", "user_s", "sys_s"):
        if col(key):
            s[f"median_{key}"] = median(col(key))
    inner = [m["inner"] for m in runs if "inner" in m]
    if inner:
        s["round_wall_s"] = [i["round_wall_s"] for i in inner]
        s["round_cpu_s"] = [i["round_cpu_s"] for i in inner]
        s["median_round_cpu_s"] = median(s["round_cpu_s"])
        s["median_round_wall_s"] = median(s["round_wall_s"])
        s["median_startup_cpu_s"] = median([i["import_cpu_s"] + i["setup_cpu_s"] for i in inner])
        s["round_cpu_per_1k"] = s["median_round_cpu_s"] / n * 1000
        s["max_rtt_ms"] = max(i["max_rtt_ms"] for i in inner)
        s["raw_socket_drops"] = [i["raw_socket_drops"] for i in inner]
        later = [r for i in inner for r in i["later_rounds"]]
        if later:
            s["later_cpu_s"] = [r["cpu_s"] for r in later]
            s["later_wall_s"] = [r["wall_s"] for r in later]
            s["later_answered"] = [r["answered"] for r in later]
            s["median_later_cpu_s"] = median(s["later_cpu_s"])
            s["later_cpu_per_1k"] = s["median_later_cpu_s"] / n * 1000
    return s


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    info["fping"] = _first_line(["fping", "-v"])
    info["blackbox_exporter"] = _first_line([BLACKBOX, "--version"])
    res: dict[str, Any] = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
    tools = [t for t in args.tools.split(",") if t]
    with FleetNamespace(prefix="slbench", ipv6_addresses=()) as ns:
        bench = Bench(args, ns, out)
        res["namespace"] = ns.name
        # all up
        res["up"] = {}
        for n in args.sizes:
            chosen = [t for t in tools if t != "blackbox" or n <= args.blackbox_max]
            runs = {"slamon": args.runs, "fping": args.runs, "blackbox": args.bb_runs}
            log(f"all up, {n} targets: {', '.join(chosen)}")
            got = series(bench, n, chosen, runs, args.rate, n)
            res["up"][str(n)] = {t: summarise(n, ms) | {"raw": ms} for t, ms in got.items()}
        # a share silenced
        res["down"] = {}
        for n in args.down_sizes:
            cidrs, down = silenced_blocks(n, args.down_share)
            ns.restore_all()
            ns.silence(*cidrs)
            try:
                chosen = [t for t in tools if t != "blackbox" or n <= args.blackbox_down_max]
                runs = {"slamon": args.runs, "fping": args.runs, "blackbox": args.bb_runs}
                log(f"{len(down)} of {n} silenced ({len(cidrs)} /28 blocks): {', '.join(chosen)}")
                got = series(bench, n, chosen, runs, args.rate, n - len(down))
                res["down"][str(n)] = {
                    t: summarise(n, ms) | {"raw": ms, "silenced": len(down)} for t, ms in got.items()
                }
            finally:
                ns.restore_all()
        # slamon's rate
        res["sweep"] = {}
        if "slamon" in tools and args.sweep_size:
            n = args.sweep_size
            for rate in args.sweep_rates:
                log(f"slamon rate {rate}/s, {n} targets")
                got = series(bench, n, ["slamon"], {"slamon": args.sweep_runs}, rate, n)
                res["sweep"][str(rate)] = summarise(n, got["slamon"]) | {"raw": got["slamon"]}
        # steady rounds: several rounds per process, the later ones as in a running service
        res["steady"] = {}
        if "slamon" in tools:
            for n in args.steady_sizes:
                for rate in args.steady_rates:
                    log(
                        f"slamon steady: {args.steady_rounds} rounds back to back, {n} targets, rate {rate}/s"
                    )
                    got = series(
                        bench, n, ["slamon"], {"slamon": args.sweep_runs}, rate, n, rounds=args.steady_rounds
                    )
                    res["steady"][f"{n}@{rate}"] = summarise(n, got["slamon"]) | {
                        "raw": got["slamon"],
                        "n": n,
                        "rate": rate,
                    }
        if args.profile and "slamon" in tools:
            n = max(args.sizes)
            path = out / f"profile-icmp-{n}.txt"
            m = bench.slamon(n, args.rate, profile=path, rounds=args.steady_rounds)
            res["profile"] = {"file": str(path), "answered": m["answered"], "cpu_s": m["cpu_s"]}
            log(f"profile of one {n}-target round: {path}")
    finish(info)
    return res


def _first_line(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "not installed"
    return ((p.stdout or "") + (p.stderr or "")).strip().splitlines()[0]


# --- the report ----------------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "–"


def report(res: dict[str, Any], args: argparse.Namespace) -> str:
    info = res["machine"]
    lines = [
        "# ICMP rounds: slamon IcmpProber vs fping vs blackbox_exporter",
        describe(info),
        (
            f"{info['fping']}; {info['blackbox_exporter']}; namespace {res['namespace']}; slamon rate "
            f"{args.rate}/s, timeout {args.timeout} s, 1 echo per target; blackbox concurrency {args.concurrency}"
        ),
        "",
        "CPU-s/1k = median CPU-s of the whole process(es) ÷ targets × 1000; ratio = slamon's ÷ the tool's.",
    ]

    def table(title: str, block: dict[str, dict[str, Any]]) -> None:
        lines.extend(
            [
                "",
                f"## {title}",
                "",
                (
                    "| targets | tool | runs | answered (min–max) | false downs | wall s | CPU-s | CPU-s/1k | "
                    "peak RSS MB | slamon ÷ tool |"
                ),
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
        )
        for n, tools in block.items():
            own = tools.get("slamon", {}).get("cpu_per_1k")
            for tool, s in tools.items():
                cpu = spread(s["cpu_s"])
                if tool == "blackbox":
                    cpu += f" (exporter {s['median_exporter_cpu_s']:.2f} + client {s['median_client_cpu_s']:.2f})"
                if tool == "fping" and int(n) > FPING_MAX:
                    cpu += f" ({-(-int(n) // FPING_MAX)} processes)"
                answered = f"{min(s['answered'])}–{max(s['answered'])}"
                lines.append(
                    f"| {int(n):,} | {tool} | {s['runs']} | {answered} | {max(s['false_down'])} | "
                    f"{spread(s['wall_s'])} | {cpu} | {s['cpu_per_1k']:.4f} | {s['median_rss_mb']:.0f} | "
                    f"{'' if tool == 'slamon' or own is None else _ratio(own, s['cpu_per_1k'])} |"
                )
            if "slamon" in tools and "round_cpu_s" in tools["slamon"]:
                s = tools["slamon"]
                lines.append(
                    f"| | slamon in-process | | | | round {spread(s['round_wall_s'])} | round "
                    f"{spread(s['round_cpu_s'])}, start-up {s['median_startup_cpu_s']:.2f} | "
                    f"{s['round_cpu_per_1k']:.4f} | | |"
                )

    table("All targets up", res["up"])
    if res["down"]:
        share = f"{args.down_share:.0%}"
        table(f"{share} of the targets silenced (nftables drop, 1 s timeout)", res["down"])
    if res["sweep"]:
        n = args.sweep_size
        lines.extend(
            [
                "",
                f"## slamon's rate, {n:,} targets all up",
                "",
                (
                    "| rate /s | runs | answered (min–max) | false downs | wall s | CPU-s | round CPU-s | "
                    "CPU-s/1k | max RTT ms | raw socket drops | CPU-s ÷ 30 s |"
                ),
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
        )
        for rate, s in res["sweep"].items():
            lines.append(
                f"| {int(rate):,} | {s['runs']} | {min(s['answered'])}–{max(s['answered'])} | "
                f"{max(s['false_down'])} | {spread(s['wall_s'])} | {spread(s['cpu_s'])} | "
                f"{spread(s['round_cpu_s'])} | {s['cpu_per_1k']:.4f} | {s['max_rtt_ms']:.0f} | "
                f"{max(s['raw_socket_drops'])} | {s['median_cpu_s'] / 30:.1%} |"
            )
    if res.get("steady"):
        lines.extend(
            [
                "",
                f"## Steady rounds: {args.steady_rounds} rounds back to back in one process (warm address cache)",
                "",
                (
                    "| targets | rate /s | runs | answered, later rounds (min) | first round CPU-s | later rounds CPU-s | "
                    "later CPU-s/1k | ÷ fping's CPU-s/1k | later round ÷ 30 s |"
                ),
                "|---|---|---|---|---|---|---|---|---|",
            ]
        )
        for s in res["steady"].values():
            fp = res["up"].get(str(s["n"]), {}).get("fping")
            ratio = _ratio(s["later_cpu_per_1k"], fp["cpu_per_1k"]) if fp else "–"
            lines.append(
                f"| {s['n']:,} | {s['rate']:,} | {s['runs']} | {min(s['later_answered'])} | "
                f"{spread(s['round_cpu_s'])} | {spread(s['later_cpu_s'])} | {s['later_cpu_per_1k']:.4f} | "
                f"{ratio} | {s['median_later_cpu_s'] / 30:.1%} |"
            )
    # goals
    lines += ["", "## Goals", ""]
    up = res["up"]
    biggest = str(max(int(k) for k in up))
    tools = up[biggest]
    steady = [x for x in res.get("steady", {}).values() if x["n"] == int(biggest)]
    if "slamon" in tools and "fping" in tools and steady and tools["fping"]["cpu_per_1k"]:
        # a service pays the steady round every interval; Python's start-up and the first round's
        # set-up (parsing addresses, building message headers) once
        f = tools["fping"]
        ratios = [x["later_cpu_per_1k"] / f["cpu_per_1k"] for x in steady]
        lines.append(
            f"- CPU per probe ≤ 1.0× fping's at {int(biggest):,} targets, as `slamon run` pays it every "
            "round (steady rounds): "
            + ", ".join(f"{r:.2f}× at {x['rate']:,}/s" for r, x in zip(ratios, steady, strict=True))
            + f" (fping {f['cpu_per_1k']:.4f} CPU-s/1k) → **{'pass' if max(ratios) <= 1.0 else 'FAIL'}**"
        )
    if "slamon" in tools and "fping" in tools:
        s, f = tools["slamon"], tools["fping"]
        lines.append(
            f"- one-shot, a process per round as fping runs: {_ratio(s['cpu_per_1k'], f['cpu_per_1k'])}× "
            f"fping's CPU per probe at {int(biggest):,} (whole process, Python's start-up included; the "
            f"first round alone {_ratio(s['round_cpu_per_1k'], f['cpu_per_1k'])}×)"
        )
        for n, t in up.items():
            if "slamon" in t and "fping" in t and n != biggest:
                fp = t["fping"]["cpu_per_1k"]
                lines.append(
                    f"  - at {int(n):,}: {_ratio(t['slamon']['cpu_per_1k'], fp)}× "
                    f"(round alone {_ratio(t['slamon']['round_cpu_per_1k'], fp)}×)"
                    + ("" if fp else "; fping's CPU is below /usr/bin/time's 10 ms resolution")
                )
    if "slamon" in tools and "blackbox" in tools:
        s, b = tools["slamon"], tools["blackbox"]
        lines.append(
            f"- against blackbox_exporter at {int(biggest):,}: {s['cpu_per_1k'] / b['cpu_per_1k']:.3f}× "
            f"(exporter + client; exporter alone "
            f"{s['cpu_per_1k'] / (b['median_exporter_cpu_s'] / int(biggest) * 1000):.3f}×)"
        )
    if "100000" in up and "slamon" in up["100000"]:
        s = up["100000"]["slamon"]
        share = s["median_cpu_s"] / 30
        lines.append(
            f"- 100,000 devices every 30 s < 25% of one core: {s['median_cpu_s']:.2f} CPU-s per round "
            f"(whole process) ÷ 30 s = {share:.1%}; the round alone {s['median_round_cpu_s'] / 30:.1%} → "
            f"**{'pass' if share < 0.25 else 'FAIL'}** (the prober only: no live state, store or scrapes)"
        )
    falses = [
        (where, n, tool, max(s["false_down"]), max(s["false_up"]))
        for where in ("up", "down")
        for n, tools_ in res[where].items()
        for tool, s in tools_.items()
        if max(s["false_down"]) or max(s["false_up"])
    ]
    falses += [
        ("sweep", f"rate {rate}", "slamon", max(s["false_down"]), max(s["false_up"]))
        for rate, s in res["sweep"].items()
        if max(s["false_down"]) or max(s["false_up"])
    ]
    lines.append(
        "- false downs / ups: "
        + (
            "none"
            if not falses
            else "; ".join(
                f"{w} {n} {t}: {d} false downs, {u} false ups (worst run)" for w, n, t, d, u in falses
            )
        )
    )
    if "profile" in res:
        lines.append(f"- profile of one round: {res['profile']['file']}")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=_ints, default=[1000, 10_000, 50_000, 100_000])
    p.add_argument("--runs", type=int, default=5, help="runs of slamon and fping per size")
    p.add_argument("--bb-runs", type=int, default=3, help="runs of blackbox_exporter per size")
    p.add_argument("--tools", default="slamon,fping,blackbox")
    p.add_argument("--rate", type=int, default=100_000, help="slamon's echo requests per second at most")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds, every tool")
    p.add_argument("--concurrency", type=int, default=50, help="blackbox client requests at a time")
    p.add_argument("--blackbox-port", type=int, default=19115, help="inside the namespace")
    p.add_argument("--blackbox-max", type=int, default=100_000, help="largest all-up size for blackbox")
    p.add_argument("--down-sizes", type=_ints, default=[10_000], help="sizes run with --down-share silenced")
    p.add_argument("--down-share", type=float, default=0.10)
    p.add_argument("--blackbox-down-max", type=int, default=10_000)
    p.add_argument("--sweep-size", type=int, default=100_000, help="targets for the rate sweep (0: none)")
    p.add_argument("--sweep-rates", type=_ints, default=[20_000, 50_000, 100_000, 200_000])
    p.add_argument("--sweep-runs", type=int, default=3)
    p.add_argument("--steady-sizes", type=_ints, default=[10_000, 100_000])
    p.add_argument("--steady-rates", type=_ints, default=[20_000, 100_000])
    p.add_argument("--steady-rounds", type=int, default=3, help="rounds per process in the steady series")
    p.add_argument("--profile", action="store_true", help="one more slamon process under cProfile")
    p.add_argument("--out", type=Path, default=OUT / "icmp")
    p.add_argument("--json", type=Path, help="write the figures as JSON")
    p.add_argument("--report", type=Path, help="print the report of figures saved with --json; run nothing")
    args = p.parse_args(argv)
    if args.report is not None:
        print(report(json.loads(args.report.read_text(encoding="utf-8")), args))
        return 0
    if args.runs < 1 or args.bb_runs < 1:
        p.error("--runs and --bb-runs must be at least 1")
    if "blackbox" in args.tools and not Path(f"/usr/bin/{BLACKBOX}").exists():
        p.error(
            f"{BLACKBOX} missing: apt-get install -y --no-install-recommends prometheus-blackbox-exporter"
        )
    res = run(args)
    print(report(res, args))
    save(args.json or args.out / "bench_icmp.json", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
