"""`slamon probe --once --json` over a 50,000-device inventory.yaml against fping, whole processes.

    python benchmarks/bench_probe_once.py [--devices 50000] [--runs 5] [--cold-runs 1] [--profile]

The issue's goal: the whole command (Python's start-up, imports, reading the fleet, the round,
printing 50,000 JSON lines) costs at most 1.5× the CPU of `fping -u -r0 -t500 -i0 -f FILE` on the
same targets, measured side by side in the same run. As root, in one fresh FleetNamespace (only
`lo`: every address of 127.0.0.0/8 answers, nothing leaves the machine):

1. make_history's fleet of --devices (links, switches, cameras on 127.1.x.y) is written to a temp
   dir as inventory.yaml, contracts/, exclusions.yaml and a slamon.yaml with
   `probes: {icmp: {timeout: 500ms}}` (fping's -t500; rate is slamon's default, 20,000/s); fping's
   targets file holds the same addresses. The SQLite database is created empty (schema only), so
   that `probe --once` has a fleet cache to fill: it never creates a database itself.
2. Cold cache: --cold-runs runs of `slamon probe --once --json`, each after a comment line appended
   to inventory.yaml (new bytes, a new cache key): the full YAML parse and check, then the cache
   entry written. The first one's output is checked: one line per device, all answering.
3. Warm cache: fping and slamon alternately (fping, slamon, fping, ...), --runs each, slamon's
   standard output to /dev/null, each under `/usr/bin/time -v` (CPU-s = user + sys of the whole
   process; `ip netns exec` execs the tool, so the tool is what is measured).
4. One more warm run under `python -X importtime` lists the heavy libraries the command loaded
   (an IPv4 fleet pinged alone goes through the one-shot engine, slamon/icmp/once.py: none of
   numpy, asyncio, the model, SQLAlchemy or aiohttp should be there; PyYAML reads slamon.yaml),
   and with --profile one under cProfile (stats beside the data).

The report gives the medians (and spreads), the ratio of the medians and the cold-cache cost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness.netns

from common import (
    OUT,
    TIME,
    describe,
    finish,
    machine,
    median,
    python_with,
    run_timed,
    save,
    slamon_from,
    spread,
)
from make_history import plan_fleet, write_fleet

from tests.harness.netns import FleetNamespace

GOAL = 1.5  # slamon's CPU ÷ fping's, whole processes
HEAVY = ("numpy", "asyncio", "slamon.model", "sqlalchemy", "aiohttp", "alembic", "psycopg", "yaml")
CONFIG = """\
database: sqlite:///slamon.db
inventory: inventory.yaml
contracts: [contracts/*.yaml]
exclusions: exclusions.yaml
probes:
  icmp: {{timeout: 500ms{rate}}}
"""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def write_case(where: Path, devices: int, source: Path | None, rate: int | None) -> tuple[Path, Path]:
    """(slamon.yaml, fping's targets file) of a fleet of `devices`, with an empty database (the
    schema, as `slamon run` or any billing command leaves it, made by the slamon measured)."""
    plan = plan_fleet(devices, "2025-07")
    write_fleet(plan, where, 30)
    config = where / "slamon.yaml"
    config.write_text(CONFIG.format(rate="" if rate is None else f", rate: {rate}"), encoding="utf-8")
    targets = where / "targets.txt"
    targets.write_text("".join(d.address + "\n" for d in plan.devices), encoding="ascii")
    url = f"sqlite:///{where / 'slamon.db'}"
    subprocess.run(
        python_with(source, f"from slamon.store import Store; Store({url!r}).close()"),
        check=True,
        timeout=300,
    )
    return config, targets


def measure(cmd: list[str], stdout_to: Path) -> dict[str, Any]:
    m = run_timed(cmd, stdout_to=stdout_to, timeout=600)
    return {"wall_s": m.wall_s, "user_s": m.user_s, "sys_s": m.sys_s, "cpu_s": m.cpu_s, "rss_mb": m.rss_mb}


def check_output(path: Path, devices: int) -> int:
    """How many devices answered in a `probe --once --json` output; raises unless every device has
    exactly one line."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if len(lines) != devices or len({x["device"] for x in lines}) != devices:
        raise RuntimeError(f"{path}: {len(lines)} lines for {devices} devices")
    return sum(x["ok"] for x in lines)


def loaded_libraries(ns: FleetNamespace, probe: list[str], where: Path) -> dict[str, bool]:
    """Which of HEAVY a warm `probe --once --json` imported (python -X importtime's lines)."""
    done = subprocess.run(
        ns.command(
            [sys.executable, "-X", "importtime", *(probe[1:] if probe[0] == sys.executable else probe)]
        ),
        cwd=where,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
        check=True,
    )
    names = {
        line.rpartition("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return {lib: lib in names for lib in HEAVY}


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    info["fping"] = subprocess.run(
        ["fping", "-v"], capture_output=True, text=True, check=False
    ).stdout.strip()
    res: dict[str, Any] = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
    with (
        tempfile.TemporaryDirectory(prefix="probe-once-", dir=out) as tmp,
        FleetNamespace(prefix="slbench", ipv6_addresses=()) as ns,
    ):
        where = Path(tmp)
        config, targets = write_case(where, args.devices, args.source, args.rate)
        probe = [*slamon_from(args.source), "-c", str(config), "probe", "--once", "--json"]
        fping = ["fping", "-u", "-r0", "-t500", "-i0", "-f", str(targets)]
        res["commands"] = {
            "slamon": "slamon -c slamon.yaml probe --once --json",
            "fping": " ".join([*fping[:-1], "FILE"]),
        }
        res["namespace"] = ns.name
        inventory = where / "inventory.yaml"
        res["inventory_bytes"] = inventory.stat().st_size

        res["cold"] = []
        for i in range(args.cold_runs):
            with inventory.open("a", encoding="utf-8") as f:
                f.write(f"# cold run {i + 1}\n")  # new bytes: a new cache key
            first = where / "cold-output.jsonl"
            m = measure(ns.command(probe), first if i == 0 else Path("/dev/null"))
            if i == 0:
                m["answered"] = check_output(first, args.devices)
            res["cold"].append(m)
            log(
                f"  slamon cold run {i + 1}: cpu {m['cpu_s']:.2f} s wall {m['wall_s']:.2f} s rss {m['rss_mb']:.0f} MB"
            )

        res["fping"], res["slamon"] = [], []
        for i in range(args.runs):
            for tool, cmd in (("fping", fping), ("slamon", probe)):
                if tool == "fping":
                    m = run_timed_ok(ns.command(cmd), where / "fping-unreachable.txt")
                else:
                    m = measure(ns.command(cmd), Path("/dev/null"))
                res[tool].append(m)
                log(
                    f"  {tool:6} run {i + 1}: cpu {m['cpu_s']:.2f} s ({m['user_s']:.2f} user + {m['sys_s']:.2f} sys) "
                    f"wall {m['wall_s']:.2f} s rss {m['rss_mb']:.0f} MB"
                )
        warm = where / "warm-output.jsonl"
        subprocess.run(ns.command(probe), stdout=warm.open("wb"), timeout=600, check=True)
        res["warm_answered"] = check_output(warm, args.devices)
        res["libraries"] = loaded_libraries(ns, probe, where)
        if args.profile:
            path = out / "probe-once-profile.txt"
            script = (
                "import cProfile, pstats, sys; from slamon.cli import main; p = cProfile.Profile(); "
                f"p.runcall(main, {probe[-5:]!r}); "
                f"f = open({str(path)!r}, 'w'); pstats.Stats(p, stream=f).sort_stats('tottime').print_stats(40)"
            )
            subprocess.run(
                ns.command(python_with(args.source, script)),
                stdout=subprocess.DEVNULL,
                timeout=600,
                check=True,
            )
            res["profile"] = str(path)
    finish(info)
    return res


def run_timed_ok(cmd: list[str], stdout_to: Path) -> dict[str, Any]:
    """fping exits 1 when a target did not answer: measured all the same, and the silent ones
    (its -u output) counted."""
    try:
        m = measure(cmd, stdout_to)
        unreachable = stdout_to.read_text(encoding="ascii").split()
    except RuntimeError as exc:
        raise RuntimeError(f"fping failed (every target should answer in the namespace): {exc}") from None
    m["unreachable"] = len(unreachable)
    return m


def report(res: dict[str, Any]) -> str:
    info = res["machine"]
    fp, sl, cold = res["fping"], res["slamon"], res["cold"]

    def col(runs: list[dict[str, Any]], key: str) -> list[float]:
        return [float(m[key]) for m in runs]

    f_cpu, s_cpu = median(col(fp, "cpu_s")), median(col(sl, "cpu_s"))
    given = res["args"].get("rate", "None")
    rate = "20,000/s, the default" if given == "None" else f"{int(given):,}/s"
    ratio = s_cpu / f_cpu if f_cpu else float("nan")  # nan: fping below /usr/bin/time's 10 ms
    lines = [
        f"# slamon probe --once vs fping, {int(res['args']['devices']):,} devices",
        describe(info),
        f"{info['fping']}; namespace {res['namespace']}; inventory.yaml {res['inventory_bytes'] / 1e6:.1f} MB; "
        + (
            f"slamon from {res['args']['source']}"
            if res["args"].get("source", "None") != "None"
            else "slamon as installed (the work tree)"
        ),
        "",
        f"- slamon: `{res['commands']['slamon']} > /dev/null` (warm cache, SQLite; timeout 500ms, rate {rate})",
        f"- fping: `{res['commands']['fping']}`",
        "",
        "| command | runs | CPU-s (user + sys) | user s | sys s | wall s | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in (
        ("fping", fp),
        ("slamon probe --once, warm cache", sl),
        ("slamon probe --once, cold cache", cold),
    ):
        if runs:
            lines.append(
                f"| {name} | {len(runs)} | {spread(col(runs, 'cpu_s'))} | {spread(col(runs, 'user_s'))} | "
                f"{spread(col(runs, 'sys_s'))} | {spread(col(runs, 'wall_s'))} | {median(col(runs, 'rss_mb')):.0f} |"
            )
    lines += [
        "",
        (
            f"- ratio of the medians, slamon warm ÷ fping: **{ratio:.2f}×** (goal ≤ {GOAL}×) → "
            f"**{'pass' if ratio <= GOAL else 'FAIL'}**"
        ),
    ]
    if cold:
        c_cpu = median(col(cold, "cpu_s"))
        lines.append(
            f"- cold cache (first probe after a file changed: full YAML parse and check, entry written): "
            f"{c_cpu:.2f} CPU-s, {c_cpu - s_cpu:+.2f} s over warm ({c_cpu / s_cpu:.1f}×); "
            f"answered {cold[0].get('answered', '?')}"
        )
    unreachable = max((m.get("unreachable", 0) for m in fp), default=0)
    lines.append(
        f"- answered: slamon (warm) {res['warm_answered']:,}; fping unreachable (worst run) {unreachable}"
    )
    libs = res["libraries"]
    lines.append(
        "- imported by a warm probe: "
        + ", ".join(f"{lib} {'yes' if loaded else 'no'}" for lib, loaded in libs.items())
    )
    if "profile" in res:
        lines.append(f"- profile of one warm run: {res['profile']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=50_000)
    p.add_argument("--runs", type=int, default=5, help="warm runs of each tool, alternating")
    p.add_argument("--cold-runs", type=int, default=1, help="cold-cache runs, each after a change of bytes")
    p.add_argument("--profile", action="store_true", help="one more warm run under cProfile")
    p.add_argument(
        "--rate",
        type=int,
        help="probes.icmp.rate in slamon.yaml (default: slamon's own, 20,000/s; fping -i0 does not pace)",
    )
    p.add_argument(
        "--source",
        type=Path,
        help="run slamon from this copy of the package (git archive HEAD slamon | tar -x -C DIR), not the installed one",
    )
    p.add_argument("--out", type=Path, default=OUT / "probe-once")
    p.add_argument("--json", type=Path, help="write the figures as JSON")
    p.add_argument("--report", type=Path, help="print the report of figures saved with --json; run nothing")
    args = p.parse_args(argv)
    if args.report is not None:
        print(report(json.loads(args.report.read_text(encoding="utf-8"))))
        return 0
    if args.runs < 1 or args.devices < 3 or args.devices > 65_535:
        p.error("--runs ≥ 1, and 3 ≤ --devices ≤ 65,535 (one fping process takes at most 65,535 targets)")
    if not Path(TIME).is_file():
        p.error(f"{TIME} missing: apt-get install -y --no-install-recommends time")
    res = run(args)
    print(report(res))
    save(args.json or args.out / "bench_probe_once.json", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
