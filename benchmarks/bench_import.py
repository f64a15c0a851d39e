"""Benchmark `slamon import` of a month of probe history, against the sqlite3 shell's `.import`.

    python benchmarks/bench_import.py                       # 100 devices x 60 s: 4,464,000 rows, 5 runs
    python benchmarks/bench_import.py --devices 10 --runs 1 # smoke run
    python benchmarks/bench_import.py --postgres            # also PostgreSQL (127.0.0.1:5432/test), vs psql \\copy

Each run is a whole process under `/usr/bin/time -v` (wall, CPU-s = user + sys, peak RSS):

1. `slamon -c slamon.yaml import probes.csv` into a fresh SQLite database (the schema migration
   is part of the run, as on a first import);
2. the same command again on that database (idempotent re-import: nothing new, timelines unchanged);
3. the peer: `sqlite3 peer.db '.mode csv' '.import probes.csv t'` into a fresh database (a plain
   table of TEXT columns, no parsing, no index), on the same disk.

Runs interleave the three so drift on the machine hits them alike. rows/s is rows / wall of the
whole process (start-up included); slamon's own in-process figure is shown too. With --postgres,
the same is done in a throwaway schema (created and dropped here), and the peer is psql's `\\copy`
into a plain table; the server's CPU (all postgres processes, from /proc) is reported separately,
since /usr/bin/time only sees the client.

Goals (issue): import >= 300,000 rows/s, peak RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import (
    OUT,
    ROWS_PER_S,
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
from make_history import make, same_parameters

GOAL_ROWS_PER_S = 300_000
GOAL_RSS_MB = 500
REPORT = re.compile(r": ([0-9,]+) rows \(([0-9,]+) new, ([0-9,]+) already stored\)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100, help="fleet size (default 100)")
    p.add_argument("--interval", type=int, default=60, help="seconds between probes (default 60)")
    p.add_argument("--month", default="2025-07")
    p.add_argument("--fail-rate", type=float, default=0.01)
    p.add_argument("--hours", type=int, help="only the month's first HOURS (default: the whole month)")
    p.add_argument(
        "--order", choices=("time", "device"), default="time", help="row order (default time, as collected)"
    )
    p.add_argument("--runs", type=int, default=5, help="runs of each measurement (default 5)")
    p.add_argument("--out", type=Path, help="data folder (default benchmarks/out/import-DEVICESxINTERVAL)")
    p.add_argument("--regenerate", action="store_true", help="write the data again even if it is there")
    p.add_argument("--no-reimport", action="store_true", help="skip the second import of the same file")
    p.add_argument("--no-peer", action="store_true", help="skip sqlite3 .import (and psql \\copy)")
    p.add_argument("--postgres", action="store_true", help="also PostgreSQL, in a throwaway schema")
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-database", default="test")
    p.add_argument("--profile", action="store_true", help="one more import under cProfile; top functions")
    p.add_argument("--json", type=Path, help="results file (default OUT/bench_import.json)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")

    span = (f"-{args.hours}h" if args.hours else "") + ("-by-device" if args.order == "device" else "")
    out: Path = args.out or OUT / f"import-{args.devices}x{args.interval}{span}"
    info = machine()
    wanted = {
        "devices": args.devices,
        "interval_s": args.interval,
        "month": args.month,
        "fail_rate": args.fail_rate,
        "hours": args.hours,
        "order": args.order,
        "seed": 1,
    }
    manifest: dict[str, Any]
    if args.regenerate or not same_parameters(out, wanted):
        log(f"writing {out} ...")
        manifest = make(
            args.devices, args.interval, args.month, args.fail_rate, out, hours=args.hours, order=args.order
        )
    else:
        manifest = _manifest(out)
    rows = int(manifest["rows"])
    csv_path = out / str(manifest["csv"])
    log(f"{csv_path}: {rows:,} rows, {csv_path.stat().st_size / 1e6:.0f} MB")

    results: dict[str, Any] = {"machine": info, "data": manifest, "command": sys.argv}
    results["sqlite"] = bench_sqlite(args, out, csv_path, rows)
    if args.postgres:
        pg = Postgres(args.pg_host, args.pg_port, args.pg_database)
        results["postgres"] = bench_postgres(args, pg, out, csv_path, rows)
        info["postgres"] = pg.version()
    if args.profile:
        results["profile"] = profile(out, csv_path)
    finish(info)
    save(args.json or OUT / "bench_import.json", results)
    print(report(results, rows))
    return 0


def log(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _manifest(out: Path) -> dict[str, Any]:
    import json

    doc: dict[str, Any] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return doc


def _import_cmd(config: Path, csv_path: Path) -> list[str]:
    return [*slamon_command(), "-c", str(config), "import", str(csv_path)]


def _check_report(m: Measure, rows: int, new: int) -> float:
    """slamon's own line: right counts; returns its in-process rows/s."""
    found = REPORT.search(m.stderr)
    if not found:
        raise RuntimeError(f"no import report in slamon's output:\n{m.stderr}")
    counts = [int(g.replace(",", "")) for g in found.groups()]
    if counts != [rows, new, rows - new]:
        raise RuntimeError(f"expected {rows:,} rows with {new:,} new, slamon says: {found.group(0)}")
    rate = ROWS_PER_S.search(m.stderr)
    return float(rate.group(1).replace(",", "")) if rate else float("nan")


def _sqlite_counts(db: Path) -> tuple[int, ...]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return tuple(
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("result_blocks", "transitions", "outages", "timelines")
        )


def bench_sqlite(args: argparse.Namespace, out: Path, csv_path: Path, rows: int) -> dict[str, Any]:
    config = out / "slamon.yaml"
    db = out / "slamon.db"
    peer_db = out / "peer.db"
    first: list[Measure] = []
    again: list[Measure] = []
    peer: list[Measure] = []
    inproc_first: list[float] = []
    inproc_again: list[float] = []
    counts: tuple[int, ...] = ()
    for i in range(args.runs):
        remove_sqlite(db)
        m = run_timed(_import_cmd(config, csv_path), cwd=out)
        inproc_first.append(_check_report(m, rows, rows))
        first.append(m)
        counts = _sqlite_counts(db)
        log(f"run {i + 1}/{args.runs}: import {m.wall_s:.2f} s, {m.cpu_s:.2f} CPU-s, {m.rss_mb:.0f} MB")
        if not args.no_reimport:
            m = run_timed(_import_cmd(config, csv_path), cwd=out)
            inproc_again.append(_check_report(m, rows, 0))
            again.append(m)
            if _sqlite_counts(db) != counts:
                raise RuntimeError(f"re-import changed the store: {counts} -> {_sqlite_counts(db)}")
            log(
                f"run {i + 1}/{args.runs}: re-import {m.wall_s:.2f} s, {m.cpu_s:.2f} CPU-s, {m.rss_mb:.0f} MB"
            )
        if not args.no_peer:
            remove_sqlite(peer_db)
            m = run_timed(["sqlite3", str(peer_db), ".mode csv", f".import {csv_path} t"], cwd=out)
            peer.append(m)
            with contextlib.closing(sqlite3.connect(peer_db)) as conn:
                n = conn.execute("SELECT count(*) FROM t").fetchone()[0]
            if n != rows:
                raise RuntimeError(f"sqlite3 .import loaded {n:,} rows, expected {rows:,}")
            log(f"run {i + 1}/{args.runs}: sqlite3 .import {m.wall_s:.2f} s, {m.rss_mb:.0f} MB")
    remove_sqlite(peer_db)
    result: dict[str, Any] = {
        "import": {**summary(first), "inproc_rows_per_s": inproc_first},
        "store_rows": dict(
            zip(("result_blocks", "transitions", "outages", "timelines"), counts, strict=True)
        ),
        "db_mb": round(db.stat().st_size / 2**20, 1),
    }
    if again:
        result["reimport"] = {**summary(again), "inproc_rows_per_s": inproc_again}
    if peer:
        result["peer"] = {"command": "sqlite3 peer.db '.mode csv' '.import FILE t'", **summary(peer)}
    return result


def bench_postgres(
    args: argparse.Namespace, pg: Postgres, out: Path, csv_path: Path, rows: int
) -> dict[str, Any]:
    schema = f"slamon_bench_{os.getpid()}"
    config = out / "slamon-pg.yaml"
    text = (out / "slamon.yaml").read_text(encoding="utf-8")
    config.write_text(
        re.sub(r"(?m)^database: .*$", f'database: "{pg.url(schema)}"', text, count=1), encoding="utf-8"
    )
    first: list[Measure] = []
    again: list[Measure] = []
    peer: list[Measure] = []
    psql, env = pg.psql(schema)
    copy = f"\\copy peer FROM '{csv_path}' WITH (FORMAT csv, HEADER)"
    try:
        for i in range(args.runs):
            pg.fresh_schema(schema)
            m = run_timed(_import_cmd(config, csv_path), cwd=out, postgres=True)
            _check_report(m, rows, rows)
            first.append(m)
            log(f"pg run {i + 1}/{args.runs}: import {m.wall_s:.2f} s, server {m.server_cpu_s:.2f} CPU-s")
            if not args.no_reimport:
                m = run_timed(_import_cmd(config, csv_path), cwd=out, postgres=True)
                _check_report(m, rows, 0)
                again.append(m)
                log(f"pg run {i + 1}/{args.runs}: re-import {m.wall_s:.2f} s")
            if not args.no_peer:
                pg.run(
                    "DROP TABLE IF EXISTS peer; CREATE TABLE peer (device text, time text, probe text, "
                    "ok text, rtt_ms text, defects text)",
                    schema,
                )
                m = run_timed([*psql, "-c", copy], env=env, postgres=True)
                n = int(pg.run("SELECT count(*) FROM peer", schema))
                if n != rows:
                    raise RuntimeError(f"psql \\copy loaded {n:,} rows, expected {rows:,}")
                peer.append(m)
                log(f"pg run {i + 1}/{args.runs}: psql \\copy {m.wall_s:.2f} s")
    finally:
        pg.drop_schema(schema)
        config.unlink(missing_ok=True)
    result: dict[str, Any] = {"url": pg.url("<schema>"), "import": summary(first)}
    if again:
        result["reimport"] = summary(again)
    if peer:
        result["peer"] = {
            "command": "psql -c \"\\copy peer FROM 'FILE' WITH (FORMAT csv, HEADER)\"",
            **summary(peer),
        }
    return result


def profile(out: Path, csv_path: Path) -> str:
    """One import into a fresh database under cProfile: the top functions by own time."""
    import pstats

    db = out / "slamon.db"
    remove_sqlite(db)
    prof = out / "import.prof"
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
            "import",
            str(csv_path),
        ],
        cwd=out,
        check=True,
        capture_output=True,
    )
    text = out / "import-profile.txt"
    with text.open("w", encoding="utf-8") as f:
        stats = pstats.Stats(str(prof), stream=f)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(25)
    log(f"profile: {prof}, {text}")
    return str(text)


def report(results: dict[str, Any], rows: int) -> str:
    lines = [f"Machine: {describe(results['machine'])}", ""]
    d = results["data"]
    span = f"the first {d['hours']} h of {d['month']}" if d.get("hours") else d["month"]
    lines.append(
        f"Data: {d['devices']} devices x {d['interval_s']} s over {span} = {rows:,} rows "
        f"({int(d['bytes']) / 1e6:.0f} MB), rows {d.get('order', 'time')}-major"
    )
    lines.append("")
    lines.append("| backend | what | runs | wall s | rows/s | CPU-s | peak RSS MB | server CPU-s |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for backend in ("sqlite", "postgres"):
        if backend not in results:
            continue
        r = results[backend]
        for key, what in (
            ("import", "slamon import (fresh db)"),
            ("reimport", "slamon re-import (same file)"),
            ("peer", "sqlite3 .import" if backend == "sqlite" else "psql \\copy"),
        ):
            if key not in r:
                continue
            s = r[key]
            rates = [rows / w for w in s["wall_s"]]
            server = spread(s["server_cpu_s"]) if "server_cpu_s" in s else "–"
            lines.append(
                f"| {backend} | {what} | {s['runs']} | {spread(s['wall_s'])} | {spread(rates, '{:,.0f}')} | "
                f"{spread(s['cpu_s'])} | {spread(s['rss_mb'], '{:.0f}')} | {server} |"
            )
    lines.append("")
    for backend in ("sqlite", "postgres"):
        r = results.get(backend, {})
        if "peer" in r:
            ratio = median(r["peer"]["wall_s"]) / median(r["import"]["wall_s"])
            lines.append(f"{backend}: slamon rows/s / peer rows/s = {ratio:.2f} (medians of wall)")
    s = results["sqlite"]
    if "inproc_rows_per_s" in s["import"]:
        lines.append(
            f"slamon's own in-process rows/s (import): {spread(s['import']['inproc_rows_per_s'], '{:,.0f}')}"
        )
    rate = rows / median(s["import"]["wall_s"])
    rss = max(s["import"]["rss_mb"] + s.get("reimport", {}).get("rss_mb", []))
    lines.append("")
    lines.append(
        f"Goal import >= {GOAL_ROWS_PER_S:,} rows/s (SQLite, median): {rate:,.0f} -> "
        f"{'PASS' if rate >= GOAL_ROWS_PER_S else 'FAIL'}"
    )
    lines.append(
        f"Goal peak RSS < {GOAL_RSS_MB} MB (worst run): {rss:.0f} MB -> "
        f"{'PASS' if rss < GOAL_RSS_MB else 'FAIL'}"
    )
    lines.append(f"Store after import: {s['store_rows']}, {s['db_mb']} MiB")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
