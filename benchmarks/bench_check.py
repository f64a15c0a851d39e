"""Benchmark `slamon check` on a city-sized inventory, from YAML and from CSV.

    python benchmarks/bench_check.py                      # 100,000 devices, 5 runs of each form
    python benchmarks/bench_check.py --devices 2000 --runs 1   # smoke

The fleet is make_history's (links -> switches -> cameras, one site per switch: 100,000 devices are
500 links, 5,000 switches, 94,500 cameras, one contract, four exclusions), written as
inventory.yaml (one flow mapping per device) and inventory.csv (the same fleet) into a temporary
folder; --streams gives every camera a stream URL and every switch an snmp setting, as a
monitored fleet has. Then `slamon -c slamon.yaml check` and `slamon -c slamon-csv.yaml check` run
--runs times each as whole processes under /usr/bin/time -v (wall, CPU-s = user + sys, peak RSS),
after one untimed run of each (the page cache warm, as on a machine that edits the file and
checks it). `check` parses and checks every file and never reads the fleet cache: this is the cost
of a changed inventory.

--profile adds one in-process load_fleet of each form under cProfile (check-profile-FORM.txt in
the data folder). --keep keeps the data folder (default: a temporary one, removed at the end;
with --out the folder is kept).

Goals (issue 7): 100,000 devices in < 3 s from YAML and < 1.5 s from CSV, wall clock, whole
command.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import describe, finish, machine, run_timed, save, slamon_command, spread, summary
from make_history import CONTRACT, plan_fleet, write_fleet

GOALS_S = {"yaml": 3.0, "csv": 1.5}
CONFIGS = {"yaml": "slamon.yaml", "csv": "slamon-csv.yaml"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write(out: Path, devices: int, streams: bool) -> dict[str, Any]:
    """The fleet's files; with `streams`, cameras get a stream URL and switches an snmp setting."""
    plan = plan_fleet(devices, "2025-07")
    write_fleet(plan, out, 30)
    if streams:
        yaml_path, csv_path = out / "inventory.yaml", out / "inventory.csv"
        lines = yaml_path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if "kind: camera" in line:
                address = re.search(r"address: ([0-9.]+)", line)
                assert address is not None
                lines[i] = line[:-1] + f', stream: "rtsp://{address[1]}:554/main"}}'
            elif "kind: switch" in line:
                lines[i] = line[:-1] + ", snmp: {version: 2c, port: 161}}"
        yaml_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows = csv_path.read_text(encoding="utf-8").splitlines()
        header = rows[0].split(",")
        column = {name: k for k, name in enumerate(header)}
        for i in range(1, len(rows)):
            cells = rows[i].split(",")
            if cells[column["kind"]] == "camera":
                cells[column["stream"]] = f"rtsp://{cells[column['address']]}:554/main"
            elif cells[column["kind"]] == "switch":
                cells[column["snmp"]] = "2c:161"
            rows[i] = ",".join(cells)
        csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    kinds = {kind: sum(d.kind == kind for d in plan.devices) for kind in ("camera", "switch", "link")}
    return {
        "devices": devices,
        "kinds": kinds,
        "sites": len(plan.sites),
        "contract": CONTRACT,
        "streams": streams,
        "bytes": {form: (out / f"inventory.{form}").stat().st_size for form in ("yaml", "csv")},
    }


def profile(out: Path, form: str) -> Path:
    """One load_fleet in this process under cProfile; the top functions by own time, to a file."""
    from slamon.loaders.config import load_config
    from slamon.loaders.fleet import load_fleet

    config = load_config(out / CONFIGS[form])
    profiler = cProfile.Profile()
    profiler.enable()
    load_fleet(config)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
    path = out / f"check-profile-{form}.txt"
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100_000, help="fleet size (default 100,000)")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each form (default 5)")
    p.add_argument("--inventory", choices=("yaml", "csv", "both"), default="both")
    p.add_argument("--streams", action="store_true", help="stream URLs for cameras, snmp for switches")
    p.add_argument("--out", type=Path, help="data folder, kept (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    p.add_argument("--profile", action="store_true", help="one in-process load_fleet per form, profiled")
    p.add_argument("--json", type=Path, help="results file (default: bench_check.json in the data folder)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")

    out: Path = args.out or Path(tempfile.mkdtemp(prefix="slamon-bench-check-"))
    keep = args.keep or args.out is not None
    info = machine()
    try:
        log(f"writing {args.devices:,} devices to {out}")
        data = write(out, args.devices, args.streams)
        forms = ("yaml", "csv") if args.inventory == "both" else (args.inventory,)
        results: dict[str, Any] = {"machine": info, "data": data, "command": sys.argv, "runs": {}}
        for form in forms:
            cmd = [*slamon_command(), "-c", str(out / CONFIGS[form]), "check"]
            warm = run_timed(cmd)
            expected = f"{args.devices:,} devices"
            if expected not in warm.stdout:
                raise SystemExit(f"slamon check did not report {expected}: {warm.stdout!r}")
            measures = []
            for i in range(args.runs):
                measures.append(run_timed(cmd))
                log(f"  {form} run {i + 1}/{args.runs}: {measures[-1].wall_s:.2f} s")
            results["runs"][form] = {
                "command": " ".join(cmd),
                "output": warm.stdout.strip(),
                **summary(measures),
            }
            if args.profile:
                log(f"  profile: {profile(out, form)}")
        finish(info)
        save(args.json or out / "bench_check.json", results)
        report(results)
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)
    return 0


def report(results: dict[str, Any]) -> None:
    data = results["data"]
    print(describe(results["machine"]))
    kinds = data["kinds"]
    print(
        f"fleet: {data['devices']:,} devices ({kinds['camera']:,} cameras, {kinds['switch']:,} switches, "
        f"{kinds['link']:,} links), {data['sites']:,} sites, 1 contract, 4 exclusions"
        + (", streams and snmp settings" if data["streams"] else "")
    )
    print(f"{'form':5s} {'size':>8s} {'wall s, median (min-max)':>26s} {'CPU s':>6s} {'RSS MB':>7s}  goal")
    for form, run in results["runs"].items():
        wall = run["median_wall_s"]
        goal = GOALS_S[form]
        print(
            f"{form:5s} {data['bytes'][form] / 1e6:6.1f}MB {spread(run['wall_s']):>26s} "
            f"{run['median_cpu_s']:6.2f} {run['median_rss_mb']:7.0f}  < {goal:.1f} s: "
            f"{'met' if wall < goal else 'NOT met'}"
        )
        print(f"      {run['command']}")


if __name__ == "__main__":
    sys.exit(main())
