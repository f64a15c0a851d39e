"""Benchmark `slamon statement` for a month of a 10,000-device fleet.

    python benchmarks/bench_statement.py                          # 10,000 devices, 5 runs
    python benchmarks/bench_statement.py --devices 200 --runs 1 --check-import   # smoke + cross-check
    python benchmarks/bench_statement.py --raw-blocks --inventory csv    # with the evidence digest

The fleet is make_history's: links -> switches -> cameras (10,000 = 50 links, 500 switches, 9,450
cameras, one site per switch), 4 exclusions (2 approved, 1 proposed, 1 rejected), 0.2 own outages
per device on average (5 min to 12 h, 1 in 20 lasting days) that also take down everything below
the device, a 3-hour power cut of the first link inside an approved exclusion, and isolated failed
probes at --fail-rate.

The store is built without importing 446 million rows: the fleet is recorded (tx.versions.record,
as every command does), then for each device its one-minute ICMP results over the month are made
in memory (make_history.device_results, the same function that writes the CSV) and turned into its
timeline by the state engine (slamon.engine.timeline.build_timeline, the engine an import runs),
stored with tx.timelines.replace. Raw result blocks are stored only with --raw-blocks (the same
results merged into their hourly blocks, as an import writes them: 744 blocks a device): the
statement then reads them for its evidence digest, and `slamon statement verify` (which, as
issuing does, reads every block's bytes and checks its digest) is timed beside it. --check-import builds a second store from the same results written as CSV and imported
with `slamon import`, and checks that both give the same statement (hash and inputs digest);
use it with a small fleet.

Then `slamon -c slamon.yaml statement --contract YJ-BENCH --month 2025-07 -o statement-yaml.json`
runs --runs times under /usr/bin/time -v (wall, CPU-s, peak RSS of the whole process), and the same
with slamon-csv.yaml, whose inventory is the same fleet as inventory.csv (--inventory yaml|csv|both):
every command loads the inventory, and at 10,000 devices the YAML form costs seconds. Both must
give the same statement. With --postgres the store is built again in a throwaway schema of
127.0.0.1:5432/test (created and dropped here) and the statement timed there too.

Goals (issue): statement < 5 s, peak RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    OUT,
    Measure,
    Postgres,
    describe,
    finish,
    machine,
    median,
    remove_sqlite,
    run_timed,
    save,
    slamon_command,
    spread,
    summary,
)
from make_history import CONTRACT, build_plan, device_results, make, same_parameters, sample_times

GOAL_SECONDS = 5.0
GOAL_RSS_MB = 500
INVENTORIES = {"yaml": ("yaml",), "csv": ("csv",), "both": ("yaml", "csv")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10_000, help="fleet size (default 10,000)")
    p.add_argument("--interval", type=int, default=60, help="seconds between probes (default 60)")
    p.add_argument("--month", default="2025-07")
    p.add_argument("--fail-rate", type=float, default=0.01)
    p.add_argument("--outages", type=float, default=0.2, help="own outages per device (default 0.2)")
    p.add_argument("--runs", type=int, default=5, help="statement runs (default 5)")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument(
        "--inventory",
        choices=tuple(INVENTORIES),
        default="both",
        help="run the statement with inventory.yaml, inventory.csv or both (default both)",
    )
    p.add_argument("--out", type=Path, help="data folder (default benchmarks/out/statement-DEVICES)")
    p.add_argument("--reuse", action="store_true", help="keep the store built by an earlier run")
    p.add_argument(
        "--raw-blocks",
        action="store_true",
        help="also store the month's raw result blocks (the evidence digest reads them; "
        "`statement verify` is timed too)",
    )
    p.add_argument("--check-import", action="store_true", help="cross-check against `slamon import`")
    p.add_argument("--postgres", action="store_true", help="also on PostgreSQL, in a throwaway schema")
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-database", default="test")
    p.add_argument("--profile", action="store_true", help="one more statement under cProfile")
    p.add_argument("--json", type=Path, help="results file (default OUT/bench_statement.json)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")

    out: Path = (args.out or OUT / f"statement-{args.devices}").resolve()  # the commands run in it
    info = machine()
    wanted = {
        "devices": args.devices,
        "interval_s": args.interval,
        "month": args.month,
        "fail_rate": args.fail_rate,
        "outages_per_device": args.outages,
        "seed": 1,
        "raw_blocks": args.raw_blocks,
    }
    db = out / "slamon.db"
    fresh = not (args.reuse and same_parameters(out, wanted) and db.is_file())
    if fresh or args.check_import:
        manifest = make(
            args.devices,
            args.interval,
            args.month,
            args.fail_rate,
            out,
            outages_per_device=args.outages,
            history=args.check_import,
        )
    else:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    results: dict[str, Any] = {"machine": info, "data": manifest, "command": sys.argv}
    if fresh:
        remove_sqlite(db)
        results["build"] = build_store(args, out / "slamon.yaml")
        manifest["raw_blocks"] = args.raw_blocks  # what --reuse compares
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    else:
        log(f"reusing {db}")
    runs: dict[str, Any] = {}
    for inv in INVENTORIES[args.inventory]:
        config = out / ("slamon.yaml" if inv == "yaml" else "slamon-csv.yaml")
        runs[f"sqlite, inventory.{inv}"] = bench(args, config, out / f"statement-{inv}.{args.format}")
    hashes = {r["hash"] for r in runs.values()}
    if len(hashes) != 1:
        raise RuntimeError(f"inventory.yaml and inventory.csv gave different statements: {hashes}")
    results["runs"] = runs
    if args.check_import:
        first = INVENTORIES[args.inventory][0]
        direct = out / f"statement-{first}.{args.format}"
        results["check_import"] = check_import(out, manifest, direct, args.format)
    if args.postgres:
        pg = Postgres(args.pg_host, args.pg_port, args.pg_database)
        info["postgres"] = pg.version()
        results["postgres"] = bench_postgres(args, pg, out)
        runs[f"postgres, inventory.{INVENTORIES[args.inventory][0]}"] = results["postgres"]
        if results["postgres"]["hash"] not in hashes:
            raise RuntimeError(
                f"PostgreSQL gave another statement: {results['postgres']['hash']} vs {hashes}"
            )
    if args.profile:
        results["profile"] = profile(out, args)
    finish(info)
    save(args.json or OUT / "bench_statement.json", results)
    print(report(results))
    return 0


def log(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def build_store(args: argparse.Namespace, config_path: Path) -> dict[str, Any]:
    """Record the fleet and write every device's timeline through the state engine, in-process."""
    import sqlalchemy as sa

    from slamon.engine.timeline import build_timeline
    from slamon.loaders.config import load_config
    from slamon.loaders.fleet import load_fleet
    from slamon.model import DeviceId
    from slamon.store import Store
    from slamon.store.upkeep import engine_params, params_json

    started = time.monotonic()
    config = load_config(config_path)
    fleet = load_fleet(config)
    plan = build_plan(args.devices, args.month, 1, args.outages)
    times = sample_times(plan, args.interval)
    windows = plan.failing_windows()
    none_t = np.zeros(0, dtype=np.int64)
    none_ok = np.zeros(0, dtype=bool)
    now = int(datetime.now(UTC).timestamp() * 1_000_000)
    transitions = outages = 0
    store = Store(config.database)
    try:
        with store.begin() as tx:
            tx.versions.record(fleet, now)
            keys = tx.keys.ensure(fleet.inventory.devices)
            for d in plan.devices:
                ok, rtt = device_results(plan, d.index, times, args.fail_rate, windows[d.index])
                key = keys[DeviceId(d.id)]
                params = engine_params(fleet.inventory, fleet.contracts, DeviceId(d.id))
                tl = build_timeline(times, ok, none_t, none_ok, params)
                tx.timelines.replace(key, tl, params=params_json(params), at=now)
                if args.raw_blocks:  # the month's hourly ICMP blocks, as an import writes them
                    tx.results.merge(raw_columns(key, times, ok, rtt))
                transitions += len(tl.transitions)
                outages += len(tl.outages)
                if d.index % 1000 == 999:
                    log(f"store: {d.index + 1:,} of {len(plan.devices):,} devices")
            blocks = tx.conn.execute(sa.text("SELECT count(*) FROM result_blocks")).scalar()
    finally:
        store.close()
    seconds = time.monotonic() - started
    log(
        f"store built in {seconds:.1f} s: {transitions:,} transitions, {outages:,} outages, {blocks:,} raw blocks"
    )
    return {
        "method": "build_timeline + tx.timelines.replace"
        + (" + tx.results.merge (raw result blocks)" if args.raw_blocks else " (no raw result blocks)"),
        "seconds": round(seconds, 1),
        "results_per_device": len(times),
        "transitions": transitions,
        "outages": outages,
        "raw_blocks": blocks,
    }


def raw_columns(key: int, times: Any, ok: Any, rtt: Any) -> Any:
    """One device's ICMP results as the store's columns (rtt in µs; none where failed)."""
    from slamon.model import ProbeKind
    from slamon.store.blocks import KIND_CODES, NO_RTT, ResultColumns

    n = len(times)
    return ResultColumns(
        np.full(n, key, dtype=np.int32),
        np.full(n, KIND_CODES[ProbeKind.ICMP], dtype=np.uint8),
        times,
        ok.astype(np.uint8),
        np.zeros(n, dtype=np.uint32),
        np.where(ok, rtt.astype(np.uint32) * 10, NO_RTT).astype(np.uint32),
    )


def _statement_cmd(config: Path, month: str, output: Path) -> list[str]:
    return [
        *slamon_command(),
        "-c",
        str(config),
        "statement",
        "--contract",
        CONTRACT,
        "--month",
        month,
        "-o",
        str(output),
    ]


def _read(output: Path, fmt: str) -> dict[str, Any]:
    if fmt == "json":
        doc: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
        return doc
    text = output.read_text(encoding="utf-8")
    found = re.search(r"sha256:[0-9a-f]{64}", text)
    return {"hash": found.group(0) if found else None}


def bench(args: argparse.Namespace, config: Path, output: Path, postgres: bool = False) -> dict[str, Any]:
    runs: list[Measure] = []
    hashes: set[str | None] = set()
    doc: dict[str, Any] = {}
    for i in range(args.runs):
        output.unlink(missing_ok=True)
        m = run_timed(_statement_cmd(config, args.month, output), cwd=config.parent, postgres=postgres)
        runs.append(m)
        doc = _read(output, args.format)
        hashes.add(doc.get("hash"))
        log(f"run {i + 1}/{args.runs}: statement {m.wall_s:.2f} s, {m.cpu_s:.2f} CPU-s, {m.rss_mb:.0f} MB")
    if len(hashes) != 1:
        raise RuntimeError(f"the runs gave different statements: {hashes}")
    result: dict[str, Any] = {
        "statement": summary(runs),
        "hash": hashes.pop(),
        "bytes": output.stat().st_size,
    }
    if args.raw_blocks and args.format == "json":
        # verify (as issuing) reads every raw block of the month and checks it against its digest
        checks: list[Measure] = []
        for i in range(args.runs):
            m = run_timed(
                [*slamon_command(), "-c", str(config), "statement", "verify", str(output)],
                cwd=config.parent,
                postgres=postgres,
            )
            checks.append(m)
            log(f"run {i + 1}/{args.runs}: verify {m.wall_s:.2f} s, {m.cpu_s:.2f} CPU-s, {m.rss_mb:.0f} MB")
        result["verify"] = summary(checks)
    if args.format == "json":
        result["contents"] = {
            "devices": len(doc["devices"]),
            "outages": len(doc["outages"]),
            "deductions": len(doc["deductions"]),
            "exclusions": doc["exclusions"],
            "fee_total": doc["fee_total"],
            "deduction_total": doc["deduction_total"],
            "payable": doc["payable"],
            "rates": doc["rates"],
        }
    return result


def check_import(out: Path, manifest: dict[str, Any], direct: Path, fmt: str) -> dict[str, Any]:
    """Import the same results as CSV into another database; the statements must be the same."""
    config = out / "slamon-import.yaml"
    text = (out / "slamon.yaml").read_text(encoding="utf-8")
    config.write_text(re.sub(r"(?m)^database: .*$", "database: sqlite:///imported.db", text, count=1))
    remove_sqlite(out / "imported.db")
    csv_path = out / str(manifest["csv"])
    subprocess.run([*slamon_command(), "-c", str(config), "import", str(csv_path)], check=True, cwd=out)
    via_import = out / f"statement-imported.{fmt}"
    subprocess.run(_statement_cmd(config, str(manifest["month"]), via_import), check=True, cwd=out)
    a, b = _read(direct, fmt), _read(via_import, fmt)
    same = a.get("hash") == b.get("hash") and a.get("inputs_sha256") == b.get("inputs_sha256")
    log(f"check against import: {'same statement' if same else 'DIFFERENT statements'} ({a.get('hash')})")
    if not same:
        raise RuntimeError(f"direct store and imported store disagree: {direct} vs {via_import}")
    return {"same": same, "hash": a.get("hash"), "rows": manifest["rows"]}


def bench_postgres(args: argparse.Namespace, pg: Postgres, out: Path) -> dict[str, Any]:
    schema = f"slamon_bench_{os.getpid()}"
    config = out / "slamon-pg.yaml"
    source = "slamon.yaml" if INVENTORIES[args.inventory][0] == "yaml" else "slamon-csv.yaml"
    text = (out / source).read_text(encoding="utf-8")
    config.write_text(re.sub(r"(?m)^database: .*$", f'database: "{pg.url(schema)}"', text, count=1))
    try:
        pg.fresh_schema(schema)
        build = build_store(args, config)
        result = bench(args, config, out / f"statement-pg.{args.format}", postgres=True)
    finally:
        pg.drop_schema(schema)
        config.unlink(missing_ok=True)
    return {"url": pg.url("<schema>"), "build": build, **result}


def profile(out: Path, args: argparse.Namespace) -> str:
    import pstats

    prof = out / "statement.prof"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(prof),
            "-m",
            "slamon.cli",
            "-c",
            str(out / "slamon.yaml"),
            "statement",
            "--contract",
            CONTRACT,
            "--month",
            args.month,
            "-o",
            str(out / "statement-prof.json"),
        ],
        cwd=out,
        check=True,
    )
    text = out / "statement-profile.txt"
    with text.open("w", encoding="utf-8") as f:
        stats = pstats.Stats(str(prof), stream=f)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
    log(f"profile: {prof}, {text}")
    return str(text)


def report(results: dict[str, Any]) -> str:
    d = results["data"]
    lines = [f"Machine: {describe(results['machine'])}", ""]
    lines.append(
        f"Fleet: {d['devices']:,} devices ({d['links']} links, {d['switches']} switches, {d['cameras']:,} "
        f"cameras), {d['planned_outages']:,} planned outages, month {d['month']}"
    )
    if "build" in results:
        b = results["build"]
        lines.append(
            f"Store: {b['method']}; {b['results_per_device']:,} results per device; "
            f"{b['transitions']:,} transitions, {b['outages']:,} outages, {b.get('raw_blocks', 0):,} raw "
            f"blocks; built in {b['seconds']} s"
        )
    lines += [
        "",
        "| backend, inventory | runs | wall s | CPU-s | peak RSS MB | server CPU-s |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in results["runs"].items():
        for what in ("statement", "verify"):
            if what not in r:
                continue
            s = r[what]
            server = spread(s["server_cpu_s"]) if "server_cpu_s" in s else "–"
            lines.append(
                f"| {label}{', verify' if what == 'verify' else ''} | {s['runs']} | {spread(s['wall_s'])} | "
                f"{spread(s['cpu_s'])} | {spread(s['rss_mb'], '{:.0f}')} | {server} |"
            )
    r = next(iter(results["runs"].values()))
    if "contents" in r:
        c = r["contents"]
        honoured = sum(1 for e in c["exclusions"] if e.get("honoured"))
        lines.append("")
        lines.append(
            f"Statement: {c['devices']:,} devices, {c['outages']:,} outages, {c['deductions']:,} deductions, "
            f"{len(c['exclusions'])} exclusions ({honoured} honoured); fee {c['fee_total']}, "
            f"deductions {c['deduction_total']}, payable {c['payable']}; rates {c['rates']}; "
            f"{r['bytes'] / 1e6:.1f} MB; {r['hash']}"
        )
    if "check_import" in results:
        ci = results["check_import"]
        lines.append(
            f"Cross-check: import of {int(ci['rows']):,} rows gives the same statement: {ci['same']}"
        )
    lines.append("")
    for label, r in results["runs"].items():
        wall = median(r["statement"]["wall_s"])
        rss = max(r["statement"]["rss_mb"])
        lines.append(
            f"{label}: goal statement < {GOAL_SECONDS:.0f} s (median wall): {wall:.2f} s -> "
            f"{'PASS' if wall < GOAL_SECONDS else 'FAIL'}; goal peak RSS < {GOAL_RSS_MB} MB (worst run): "
            f"{rss:.0f} MB -> {'PASS' if rss < GOAL_RSS_MB else 'FAIL'}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
