"""City scale on one node (issue 7, item 6): `slamon run` at 100,000 devices under scrapes.

    python benchmarks/bench_city.py [--devices 100000] [--duration 10m] [--interval 30] \
        [--warmup 150] [--restarts 2] [--port 19184] [--py-spy-record SECONDS]

Writes make_history's fleet (links -> switches -> cameras on 127.x addresses, one contract;
inventory.yaml by default, --inventory csv for inventory.csv) with `probes.icmp.interval` of
--interval, and runs `slamon -c slamon.yaml run` inside a fresh FleetNamespace (only `lo`: every
packet stays in it):

1. **Start-up.** A cold start on a new database, timed from the moment the process is spawned to
   the first round's completion (`rounds` of /healthz reaching 1, polled every 0.1 s) and to that
   round's view being served (`slamon_view_timestamp_seconds` of /metrics past the round's start);
   the log's start-up lines are put on the same clock. That run works on for --warmup s (150:
   the live state folds results older than 120 s into each device's resume carry, which the stop
   writes) and is stopped with SIGTERM; then the service is started again on the same database
   --restarts times (each stopped after its first round, the last one stays up): a **known
   fleet**, whose versions, device keys, timelines and resume points are stored. The fleet cache
   is written by the first restart (the cold start had no database to write it to), so the second
   restart is the one that finds everything. The number of fleet-cache entries in the database
   before each start is recorded.
2. **Load**, for --duration after the last start's first round, each client a thread inside the
   namespace on its own keep-alive connection, each request timed (to the response's headers and
   to its last byte) with its status:
   - GET /metrics with `Accept-Encoding: gzip` every --scrape-every s, as Prometheus asks for it
     (the body is not decompressed: only its last gzip member, slamon's own metrics, is read);
   - GET /api/v1/outages (the default window: the last 24 hours) every --api-every s, starting
     --api-offset s after the first scrape;
   - every --sample-every s: the service's VmRSS and VmHWM, its CPU (utime + stime) and each of
     its threads' CPU, from /proc;
   - soak.py's schedule silences cameras so outages exist for the API to list (--group cameras
     down for 4 rounds at a time, --flappers every other round, a site cut every 20 rounds), the
     changes made 20 s into each interval, between rounds.
3. **End.** slamon's own metrics (rounds, overruns, timeouts, errors, round durations, backlog,
   store write failures) read from the last scrape, then SIGTERM, and how long the process takes
   to exit.

Percentiles are nearest-rank (p99 of 120 requests is the 119th fastest). Goals (issue 7, item 6):
scrape p99 < 1 s, API p99 < 0.5 s, no round overrun, RSS < 400 MB in every sample of the load,
start to first round < 5 s on a known fleet (from the spawn to the round's start: the round itself
takes ~5 s at the default 20,000 probes/s); and the stop within the 5 s monitoring.md promises. --source DIR runs `slamon` from a copy of
the package (`git archive HEAD slamon | tar -x -C DIR`; a COMMIT file in DIR names the commit in
the report), so a run measures one commit while the work tree changes. Everything goes to --out
(default benchmarks/out/city-<devices>/): city.json (all figures), city.txt (the report),
requests.csv, samples.csv, threads.csv, rounds.csv and each run's log (slamon-cold.log,
slamon-known-N.log).

--py-spy-record SECONDS records the service with py-spy (`-r 50 -f raw --threads`, which pauses
the process to sample: it costs the figures a little) from --py-spy-at seconds into the load
(py-spy.txt); --py-spy-start records the last start from the moment its process is Python to its
first round's view (py-spy-start-known-N.txt);
a `py-spy dump` of every thread at the end of the load names the threads of threads.csv
(--no-py-spy-dump: none). Every loop is bounded by the duration; the service (by its PID) and the namespace
are removed on exit, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness.netns

from common import OUT, describe, finish, machine, port_free, save, slamon_from
from make_history import TIMEZONE, Plan, plan_fleet, write_fleet
from soak import CHANGE_AT, Schedule, parse_duration, proc_figures, write_csv

from tests.harness.netns import FleetNamespace

START_LIMIT = 300.0  # seconds a start gets to finish its first round
VIEW_LIMIT = 60.0  # seconds after that for the round's view to be served
STOP_LIMIT = 20.0  # seconds the service gets to exit after SIGTERM
STOP_PROMISE = 5.0  # monitoring.md: SIGTERM stops the service within 5 seconds
REQUEST_TIMEOUT = 30.0  # seconds a client waits for one answer
PY_SPY = os.environ.get("PY_SPY", "/tmp/tools/bin/py-spy")
GOALS = {
    "scrape_p99_s": 1.0,
    "api_p99_s": 0.5,
    "rss_mb": 400.0,
    "known_start_s": 5.0,
}
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) (\S+): (.*)$")
SELF = {
    "slamon_rounds_total": "rounds",
    "slamon_round_overruns_total": "overruns",
    "slamon_round_timeouts_total": "timeouts",
    "slamon_round_errors_total": "errors",
    "slamon_round_duration_seconds": "round_duration_s",
    "slamon_round_last_start_timestamp_seconds": "last_start",
    "slamon_probes_total": "probes",
    "slamon_probes_failed_total": "probes_failed",
    "slamon_late_results_total": "late_results",
    "slamon_backlog_writes": "backlog_writes",
    "slamon_backlog_rows": "backlog_rows",
    "slamon_backlog_oldest_age_seconds": "backlog_oldest_age_s",
    "slamon_store_writes_total": "store_writes",
    "slamon_store_writable": "store_writable",
    "slamon_devices": "devices",
    "slamon_view_timestamp_seconds": "view_at",
}


class Interrupted(Exception):
    """SIGTERM to the benchmark: unwind (stop the service, remove the namespace)."""


# --- files ----------------------------------------------------------------------------------------


def write_files(args: argparse.Namespace, out: Path) -> Plan:
    """make_history's fleet, and slamon.yaml for it (a new database)."""
    month = datetime.now(ZoneInfo(TIMEZONE)).strftime("%Y-%m")
    plan = plan_fleet(args.devices, month)
    write_fleet(plan, out, args.interval)
    probe = f"interval: {args.interval}s, timeout: {args.timeout}" + (
        f", rate: {args.rate}" if args.rate else ""
    )
    (out / "slamon.yaml").write_text(
        "database: sqlite:///slamon.db\n"
        f"inventory: inventory.{args.inventory}\n"
        "contracts: [contracts/*.yaml]\n"
        "exclusions: exclusions.yaml\n"
        f"listen: 127.0.0.1:{args.port}\n"
        f"probes:\n  icmp: {{{probe}}}\n",
        encoding="utf-8",
    )
    for f in out.glob("slamon.db*"):  # the database, its WAL and its journal folder
        if f.is_dir():
            shutil.rmtree(f)
        else:
            f.unlink()
    return plan


def fleet_cache_entries(db: Path) -> int | None:
    """Fleet-cache entries in the database (None: no database yet)."""
    if not db.is_file():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM fleet_cache").fetchone()[0])
        except sqlite3.Error:
            return None


def database_mb(db: Path) -> float:
    return sum(f.stat().st_size for f in db.parent.glob(db.name + "*") if f.is_file()) / 2**20


# --- HTTP ----------------------------------------------------------------------------------------


def get_once(ns: FleetNamespace, port: int, path: str, gzipped: bool = False) -> tuple[int, bytes]:
    """One GET from inside the namespace on a new connection; (0, b'') when it failed."""
    with ns.inside():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path, headers={"Accept-Encoding": "gzip"} if gzipped else {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError:
            return 0, b""
        finally:
            conn.close()


def parse_self(text: str) -> dict[str, float]:
    """slamon's own series (ICMP where labelled) from exposition text."""
    out: dict[str, float] = {}
    failures = 0.0
    for line in text.splitlines():
        if not line.startswith("slamon_") or line.startswith("slamon_device"):
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if base == "slamon_store_write_failures_total":
            failures += float(value)
        elif base in SELF and ("{" not in name or 'probe="icmp"' in name):
            out[SELF[base]] = float(value)
    out["store_write_failures"] = failures
    return out


def last_member(body: bytes) -> str:
    """The text of the last gzip member of a /metrics body (slamon's own metrics are gzipped apart
    from the cached fleet series), without decompressing the fleet's tens of megabytes."""
    at = len(body)
    for _ in range(64):
        at = body.rfind(b"\x1f\x8b\x08", 0, at)
        if at < 0:
            break
        d = zlib.decompressobj(31)
        try:
            text = d.decompress(body[at:])
        except zlib.error:
            continue
        if d.eof and not d.unused_data:
            return text.decode("utf-8", "replace")
    return gzip.decompress(body).decode("utf-8", "replace")


@dataclass(slots=True)
class Request:
    client: str  # scrape | api
    t_s: float  # seconds into the load when sent
    status: int  # 0: no answer (error or timeout)
    headers_s: float  # until the status line and headers arrived
    total_s: float  # until the last byte
    bytes: int
    error: str = ""
    count: int = -1  # outages listed (api)
    truncated: bool = False


@dataclass(slots=True)
class Load:
    """What the client threads record while the load runs."""

    requests: list[Request] = field(default_factory=list)
    scraped: list[dict[str, float]] = field(default_factory=list)  # slamon's own metrics, per scrape
    samples: list[dict[str, Any]] = field(default_factory=list)
    threads: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    failures: list[str] = field(default_factory=list)


class Client:
    """GETs of one path on one keep-alive connection, from inside the namespace, at fixed ticks."""

    def __init__(self, ns: FleetNamespace, port: int, name: str, path: str, gzipped: bool) -> None:
        self.ns, self.port, self.name, self.path, self.gzipped = ns, port, name, path, gzipped
        self.conn: http.client.HTTPConnection | None = None

    def get(self, t_s: float) -> tuple[Request, bytes]:
        headers = {"Accept-Encoding": "gzip"} if self.gzipped else {}
        started = time.perf_counter()
        head = math.nan
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            self.conn.request("GET", self.path, headers=headers)
            resp = self.conn.getresponse()
            head = time.perf_counter() - started
            body = resp.read()
            total = time.perf_counter() - started
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return Request(self.name, round(t_s, 3), resp.status, head, total, len(body)), body
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            total = time.perf_counter() - started
            return Request(self.name, round(t_s, 3), 0, head, total, 0, f"{type(exc).__name__}: {exc}"), b""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass(frozen=True, slots=True)
class Pace:
    """When a client sends: one request in each slot [first + k * every, first + (k + 1) * every)
    before end, at its start or, with rng, at a random point in it (so that requests meet every
    phase of the rounds, as scrapers of many targets do); t0 is the load's start (for t_s)."""

    t0: float
    first: float
    every: float
    end: float
    rng: random.Random | None = None


def ticks(pace: Pace, stop: threading.Event) -> Iterator[float]:
    """The wall times to send at; a slot that ended while a request ran is skipped."""
    k = 0
    while not stop.is_set():
        when = pace.first + k * pace.every + (pace.rng.uniform(0, pace.every) if pace.rng else 0.0)
        if when >= pace.end:
            return
        left = when - time.time()
        if left > 0 and stop.wait(left):
            return
        yield when
        # the next slot not yet over (its point may have passed while a request ran: sent late)
        k = max(k + 1, math.floor((time.time() - pace.first) / pace.every))


def scrape_loop(ns: FleetNamespace, port: int, pace: Pace, load: Load, stop: threading.Event) -> None:
    client = Client(ns, port, "scrape", "/metrics", gzipped=True)
    try:
        with ns.inside():
            for when in ticks(pace, stop):
                req, body = client.get(when - pace.t0)
                own: dict[str, float] = {}
                if req.status == 200:
                    try:
                        own = parse_self(last_member(body))
                    except (OSError, EOFError, zlib.error) as exc:
                        req.error = f"unreadable body: {exc}"
                own["t_s"] = req.t_s
                own["at"] = when
                with load.lock:
                    load.requests.append(req)
                    load.scraped.append(own)
    except Exception as exc:  # noqa: BLE001  (recorded; the main thread reports it)
        load.failures.append(f"scrape client: {type(exc).__name__}: {exc}")
    finally:
        client.close()


def api_loop(ns: FleetNamespace, port: int, pace: Pace, load: Load, stop: threading.Event) -> None:
    client = Client(ns, port, "api", "/api/v1/outages", gzipped=False)
    try:
        with ns.inside():
            for when in ticks(pace, stop):
                req, body = client.get(when - pace.t0)
                if req.status == 200:
                    try:
                        doc = json.loads(body)
                        req.count, req.truncated = int(doc["count"]), bool(doc["truncated"])
                    except (ValueError, KeyError) as exc:
                        req.error = f"unreadable body: {exc}"
                with load.lock:
                    load.requests.append(req)
    except Exception as exc:  # noqa: BLE001
        load.failures.append(f"api client: {type(exc).__name__}: {exc}")
    finally:
        client.close()


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """{tid: (comm, utime + stime seconds)} of a live process's threads."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.find("(") + 1 : text.rfind(")")]
        rest = text[text.rfind(")") + 2 :].split()
        out[int(stat.parent.name)] = (comm, (int(rest[11]) + int(rest[12])) / tick)
    return out


def children(pid: int) -> tuple[float, float, float]:
    """(RSS MiB, peak RSS MiB, CPU s) of a process's children (the month-to-date figures are
    computed in one), live ones summed, plus the CPU of those it has reaped (cutime + cstime)."""
    rss = hwm = cpu = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            rest = text[text.rfind(")") + 2 :].split()
            if int(rest[1]) != pid:
                continue
            c_rss, c_hwm, c_cpu = proc_figures(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
        rss, hwm, cpu = rss + c_rss, max(hwm, c_hwm), cpu + c_cpu
    text = Path(f"/proc/{pid}/stat").read_text()
    rest = text[text.rfind(")") + 2 :].split()
    return rss, hwm, cpu + (int(rest[13]) + int(rest[14])) / tick


def sample_loop(pid: int, pace: Pace, load: Load, stop: threading.Event) -> None:
    prev: tuple[float, float] | None = None
    t0 = pace.t0
    try:
        for when in ticks(pace, stop):
            try:
                rss, hwm, cpu = proc_figures(pid)
                per_thread = thread_cpu(pid)
                kids = children(pid)
            except OSError:
                return  # the service is gone: the main thread notices
            now = time.time()
            share = (cpu - prev[0]) / (now - prev[1]) if prev else math.nan
            prev = (cpu, now)
            row = {
                "t_s": round(when - t0, 2),
                "rss_mb": round(rss, 1),
                "hwm_mb": round(hwm, 1),
                "cpu_s": round(cpu, 2),
                "cpu_share": round(share, 4),
                "threads": len(per_thread),
                "children_rss_mb": round(kids[0], 1),
                "children_hwm_mb": round(kids[1], 1),
                "children_cpu_s": round(kids[2], 2),
            }
            with load.lock:
                load.samples.append(row)
                for tid, (comm, tcpu) in sorted(per_thread.items()):
                    load.threads.append({"t_s": row["t_s"], "tid": tid, "comm": comm, "cpu_s": tcpu})
    except Exception as exc:  # noqa: BLE001
        load.failures.append(f"sampler: {type(exc).__name__}: {exc}")


# --- the service ---------------------------------------------------------------------------------


def log_lines(path: Path) -> list[tuple[float, str, str, str]]:
    """(wall time, level, logger, message) of each line of a service log (local time)."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = LOG_LINE.match(line)
        if m:
            at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((at, m.group(2), m.group(3), m.group(4)))
    return out


class Service:
    """One `slamon run` in the namespace, its log in out/slamon-<label>.log."""

    def __init__(self, ns: FleetNamespace, out: Path, port: int, label: str, source: Path | None) -> None:
        self.ns, self.out, self.port, self.label, self.source = ns, out, port, label, source
        self.log_path = out / f"slamon-{label}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, spy: bool = False) -> dict[str, Any]:
        """Spawn it; wait (bounded) for its first round to finish and for that round's view to be
        served. Returns the start's figures, in seconds since the spawn. With `spy`, py-spy
        records it from the moment its process is Python (after `ip netns exec`) to that view."""
        db = self.out / "slamon.db"
        res: dict[str, Any] = {
            "label": self.label,
            "database_existed": db.is_file(),
            "fleet_cache_entries_before": fleet_cache_entries(db),
        }
        cmd = [*slamon_from(self.source), "-c", str(self.out / "slamon.yaml"), "run"]
        with self.log_path.open("wb") as log:
            self.spawned = time.time()
            self.proc = self.ns.popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.out)
        print(f"city: {self.label}: pid {self.proc.pid}: {' '.join(cmd)[-200:]}", file=sys.stderr)
        recorder = None
        if spy:
            recorder = self._spy()
            res["py_spy"] = str(self.out / f"py-spy-start-{self.label}.txt") if recorder else None
        try:
            return self._wait_first_round(res)
        finally:
            if recorder is not None:
                stop_py_spy(recorder)

    def _spy(self) -> subprocess.Popen[bytes] | None:
        until = time.time() + 5
        exe = ""
        while time.time() < until and "python" not in exe:
            with contextlib.suppress(OSError):
                exe = os.readlink(f"/proc/{self.pid}/exe")
            time.sleep(0.005)
        res = py_spy(self.pid, self.out / f"py-spy-start-{self.label}.txt", None)
        return res

    def _wait_first_round(self, res: dict[str, Any]) -> dict[str, Any]:
        first_answer = None
        done = None
        deadline = self.spawned + START_LIMIT
        while time.time() < deadline:
            self._alive()
            status, body = get_once(self.ns, self.port, "/healthz")
            now = time.time()
            if status in (200, 503) and body:
                first_answer = first_answer or now
                if json.loads(body)["probes"]["icmp"]["rounds"] >= 1:
                    done = now
                    break
            time.sleep(0.1)
        if done is None:
            raise SystemExit(f"{self.label}: no round within {START_LIMIT:.0f} s; see {self.log_path}")
        res["to_first_answer_s"] = round((first_answer or done) - self.spawned, 2)
        res["to_first_round_s"] = round(done - self.spawned, 2)
        # the round's view: /metrics rendered after it (slamon_view_timestamp_seconds past its start)
        served = None
        own: dict[str, float] = {}
        while time.time() < done + VIEW_LIMIT:
            self._alive()
            status, body = get_once(self.ns, self.port, "/metrics", gzipped=True)
            now = time.time()
            if status == 200:
                own = parse_self(gzip.decompress(body).decode("utf-8", "replace"))
                if own.get("view_at", 0) >= own.get("last_start", math.inf):
                    served = now
                    break
            time.sleep(0.25)
        res["to_view_served_s"] = None if served is None else round(served - self.spawned, 2)
        res["first_round"] = {
            "start_s": round(own.get("last_start", math.nan) - self.spawned, 2),
            "duration_s": round(own.get("round_duration_s", math.nan), 2),
            "probes": own.get("probes"),
            "failed": own.get("probes_failed"),
        }
        res["log"] = self.startup_log()
        return res

    def startup_log(self) -> list[str]:
        """The log's lines up to `serving`, each at its offset from the spawn."""
        out = []
        for at, level, name, msg in log_lines(self.log_path):
            out.append(f"+{at - self.spawned:6.2f} s {level} {name}: {msg}")
            if msg.startswith("serving "):
                break
        return out[:20]

    def _alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise SystemExit(f"{self.label}: slamon run exited {self.proc.returncode}; see {self.log_path}")

    def stop(self) -> dict[str, Any]:
        """SIGTERM, and how long until the process is gone (SIGKILL after STOP_LIMIT)."""
        assert self.proc is not None
        res: dict[str, Any] = {}
        if self.proc.poll() is not None:
            return {"already_exited": self.proc.returncode}
        sent = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_LIMIT)
        except subprocess.TimeoutExpired:
            res["killed"] = True
            self.proc.kill()
            self.proc.wait(10)
        res["stop_s"] = round(time.time() - sent, 2)
        res["exit_code"] = self.proc.returncode
        lines = log_lines(self.log_path)
        stopping = [at for at, _, _, msg in lines if msg == "stopping"]
        stopped = [at for at, _, _, msg in lines if msg == "stopped"]
        if stopping and stopped:
            res["log_stopping_to_stopped_s"] = round(stopped[-1] - stopping[-1], 2)
        res["log_tail"] = [
            f"{datetime.fromtimestamp(at).isoformat(timespec='milliseconds')} {lv} {nm}: {msg}"
            for at, lv, nm, msg in lines
            if at >= sent - 0.5
        ][:12]
        return res


# --- the run -------------------------------------------------------------------------------------


def silence_for(ns: FleetNamespace, schedule: Schedule, t_first: float, interval: float, end: float) -> None:
    """soak.py's schedule: at CHANGE_AT s into interval k, the set of round k + 1 (bounded by end)."""
    current: set[str] = set()
    k = max(0, math.floor((time.time() - t_first) / interval))
    while True:
        when = t_first + k * interval + CHANGE_AT
        if when >= end:
            return
        left = when - time.time()
        if left > 0:
            time.sleep(left)
        wanted = schedule.silenced(k + 1)
        if wanted != current:
            ns.restore_all()
            if wanted:
                ns.silence(*sorted(wanted))
            current = wanted
        k += 1


def py_spy(pid: int, into: Path, seconds: float | None) -> subprocess.Popen[bytes] | None:
    """`py-spy record` of a process (raw stacks per thread, 50 samples a second) into a file, for
    `seconds` or until it gets SIGINT; None when py-spy is missing."""
    if not Path(PY_SPY).is_file():
        print(f"city: no py-spy at {PY_SPY}: not recording", file=sys.stderr)
        return None
    cmd = [PY_SPY, "record", "--pid", str(pid), "-r", "50", "-f", "raw", "--threads", "-o", str(into)]
    if seconds is not None:
        cmd += ["-d", str(int(seconds))]
    with into.with_suffix(".log").open("wb") as log:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)


def stop_py_spy(spy: subprocess.Popen[bytes]) -> None:
    """SIGINT (py-spy writes what it has), then wait; terminate if it hangs."""
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.terminate()
        spy.wait(10)


def run_load(
    args: argparse.Namespace, ns: FleetNamespace, svc: Service, schedule: Schedule, t_first: float
) -> tuple[Load, dict[str, Any]]:
    """The scrapes, API calls and samples for --duration, with the silencing schedule."""
    out: Path = args.out
    load = Load()
    stop = threading.Event()
    t0 = time.time() + 0.5
    end = t0 + args.duration
    jitter = args.phase == "random"
    scrape = Pace(t0, t0, args.scrape_every, end, random.Random(args.seed) if jitter else None)
    api = Pace(
        t0, t0 + args.api_offset, args.api_every, end, random.Random(args.seed + 1) if jitter else None
    )
    threads = [
        threading.Thread(target=scrape_loop, args=(ns, args.port, scrape, load, stop), daemon=True),
        threading.Thread(target=api_loop, args=(ns, args.port, api, load, stop), daemon=True),
        threading.Thread(
            target=sample_loop,
            args=(svc.pid, Pace(t0, t0, args.sample_every, end + args.sample_every / 2), load, stop),
            daemon=True,
        ),
    ]
    info: dict[str, Any] = {"t0": t0, "end": end}
    spy: subprocess.Popen[bytes] | None = None
    try:
        for t in threads:
            t.start()
        if args.py_spy_record:
            time.sleep(max(0.0, t0 + args.py_spy_at - time.time()))
            spy = py_spy(svc.pid, out / "py-spy.txt", args.py_spy_record)
        silence_for(ns, schedule, t_first, args.interval, end)
        while time.time() < end + REQUEST_TIMEOUT + args.sample_every and any(t.is_alive() for t in threads):
            if svc.proc is not None and svc.proc.poll() is not None:
                info["died"] = f"slamon run exited {svc.proc.returncode} at +{time.time() - t0:.0f} s"
                break
            time.sleep(0.5)
        if args.py_spy_dump and Path(PY_SPY).is_file() and svc.proc is not None and svc.proc.poll() is None:
            done = subprocess.run(
                [PY_SPY, "dump", "--pid", str(svc.pid)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            (out / "py-spy-dump.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
            info["py_spy_dump"] = str(out / "py-spy-dump.txt")
    finally:
        stop.set()
        for t in threads:
            t.join(REQUEST_TIMEOUT + 5)
        if spy is not None:
            try:
                spy.wait(max(5.0, args.py_spy_record + 30))
            except subprocess.TimeoutExpired:
                spy.terminate()
                spy.wait(10)
            info["py_spy_record"] = str(out / "py-spy.txt")
        with contextlib.suppress(Exception):
            ns.restore_all()
    info["ended"] = time.time()
    dump = out / "py-spy-dump.txt"
    if "py_spy_dump" in info and dump.is_file():
        names = re.findall(
            r'^Thread (\d+) \([^)]*\): "([^"]*)"', dump.read_text(encoding="utf-8"), re.MULTILINE
        )
        info["thread_names"] = {int(tid): name for tid, name in names}
    return load, info


def bench(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    plan = write_files(args, out)
    schedule = Schedule(plan, args.group, args.flappers, not args.no_site_cuts)
    res: dict[str, Any] = {
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "fleet": {k: sum(d.kind == k for d in plan.devices) for k in ("link", "switch", "camera")},
        "goals": GOALS,
    }
    if args.source is not None:
        stamp = args.source / "COMMIT"
        res["source_commit"] = stamp.read_text().strip() if stamp.is_file() else "unknown (no COMMIT file)"
    with FleetNamespace(prefix="slcity") as ns:
        with ns.inside():
            free = port_free(args.port)
        if not free:
            raise SystemExit(f"port {args.port} is taken inside the namespace")
        starts: list[dict[str, Any]] = []
        svc = Service(ns, out, args.port, "cold", args.source)
        starts.append(svc.start())
        for n in range(1, args.restarts + 1):
            # the cold run works for --warmup s (long enough for resume points: the live state
            # folds results older than 120 s into a carry, written at the stop); the others stop
            # right after their first round
            time.sleep(args.warmup if n == 1 else 1.0)
            starts[-1]["ran_s"] = round(time.time() - svc.spawned, 1)
            starts[-1]["stop"] = svc.stop()
            svc = Service(ns, out, args.port, f"known-{n}", args.source)
            starts.append(svc.start(spy=args.py_spy_start and n == args.restarts))
        res["starts"] = starts
        print(
            "city: starts to the first round: "
            + ", ".join(f"{s['label']} {s['to_first_round_s']} s" for s in starts)
            + f"; loading for {args.duration:.0f} s",
            file=sys.stderr,
        )
        t_first = svc.spawned + starts[-1]["first_round"]["start_s"]
        load, run = run_load(args, ns, svc, schedule, t_first)
        if "died" in run:
            res["died"] = run["died"]
        res["py_spy"] = {k: run[k] for k in ("py_spy_record", "py_spy_dump") if k in run}
        health = get_once(ns, args.port, "/healthz")
        res["healthz_end"] = {"status": health[0], "body": health[1].decode("utf-8", "replace")[:2000]}
        res["stop"] = svc.stop()
        res["database_mb"] = round(database_mb(out / "slamon.db"), 1)
    finish(info)
    res["client_cpu_s"] = round(sum(os.times()[:2]), 2)
    res["client_failures"] = load.failures
    write_csv(out / "requests.csv", [asdict(r) for r in load.requests])
    write_csv(out / "samples.csv", load.samples)
    write_csv(out / "threads.csv", load.threads)
    res.update(analyse(load, run, args, svc.log_path))
    write_csv(out / "rounds.csv", res.pop("round_rows"))
    return res


# --- figures -------------------------------------------------------------------------------------


def rank(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[max(0, math.ceil(p * len(s)) - 1)]


def latency(reqs: list[Request]) -> dict[str, Any]:
    total = [r.total_s for r in reqs]
    head = [r.headers_s for r in reqs if not math.isnan(r.headers_s)]
    return {
        "requests": len(reqs),
        "non_200": sum(r.status != 200 for r in reqs),
        "errors": sorted({r.error for r in reqs if r.error})[:5],
        "median_s": rank(total, 0.5),
        "p95_s": rank(total, 0.95),
        "p99_s": rank(total, 0.99),
        "max_s": max(total, default=math.nan),
        "headers_median_s": rank(head, 0.5),
        "headers_p99_s": rank(head, 0.99),
        "headers_max_s": max(head, default=math.nan),
        "over_1s": sum(t >= 1.0 for t in total),
        "over_0_5s": sum(t >= 0.5 for t in total),
        "median_bytes": rank([float(r.bytes) for r in reqs], 0.5),
        "slowest": [
            {
                "t_s": r.t_s,
                "total_s": round(r.total_s, 3),
                "headers_s": round(r.headers_s, 3),
                "status": r.status,
            }
            for r in sorted(reqs, key=lambda r: -r.total_s)[:8]
        ],
    }


PHASES = ("during a round", "0-3 s after a round", "3 s or more after a round")


def by_phase(reqs: list[Request], t0: float, rounds: dict[float, float], interval: float) -> dict[str, Any]:
    """Latency by where in the round cycle a request was sent: while a round ran (probing), in the
    3 s after it ended (its results fed, its view taken, /metrics rendered, its write stored), or
    later (quiet)."""
    starts = sorted(rounds)
    groups: dict[str, dict[str, list[float]]] = {}
    for q in reqs:
        sent = t0 + q.t_s
        latest = [x for x in starts if x <= sent]
        if not latest:
            continue
        x = latest[-1]
        into = sent - x
        if into > interval * 1.5:
            continue  # not between two rounds seen
        phase = PHASES[0] if into < rounds[x] else PHASES[1] if into < rounds[x] + 3 else PHASES[2]
        groups.setdefault(q.client, {}).setdefault(phase, []).append(q.total_s)
    return {
        client: {
            phase: {"requests": len(v), "median_s": rank(v, 0.5), "p99_s": rank(v, 0.99), "max_s": max(v)}
            for phase, v in sorted(g.items(), key=lambda kv: PHASES.index(kv[0]))
        }
        for client, g in groups.items()
    }


def analyse(load: Load, run: dict[str, Any], args: argparse.Namespace, log_path: Path) -> dict[str, Any]:
    r: dict[str, Any] = {}
    t0 = run["t0"]
    scrapes = [q for q in load.requests if q.client == "scrape"]
    apis = [q for q in load.requests if q.client == "api"]
    r["scrape"] = latency(scrapes)
    r["api"] = latency(apis)
    counts = [q.count for q in apis if q.count >= 0]
    r["api"]["outages_listed"] = {
        "first": counts[0] if counts else None,
        "median": rank([float(c) for c in counts], 0.5),
        "max": max(counts, default=None),
        "truncated": sum(q.truncated for q in apis),
    }
    own = [s for s in load.scraped if "rounds" in s]
    if not own:
        r["round_rows"] = []
        r["error"] = "no scrape of /metrics answered"
        return r
    first, last = own[0], own[-1]

    def delta(key: str) -> int:
        return int(last.get(key, 0) - first.get(key, 0))

    # rounds that started within the load: one per distinct last_start seen after the first scrape;
    # a round's duration is read from the last scrape that saw it as the latest, once it was done
    # (the round counter moved past the previous round's)
    rounds: dict[float, dict[str, float]] = {}
    for s in own:
        rounds[s["last_start"]] = s
    starts = sorted(rounds)
    done: dict[float, float] = {}  # start -> duration, of the rounds seen finished
    before = -1.0
    for x in starts:
        if rounds[x]["rounds"] > before or before < 0:
            done[x] = rounds[x]["round_duration_s"]
        before = rounds[x]["rounds"]
    in_load = [x for x in starts if x > first["last_start"]]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    span_end = last["at"]
    expected = math.floor((span_end - first["last_start"]) / args.interval + 1e-9)
    durations = [done[x] for x in in_load if x in done]
    r["rounds"] = {
        "started": len(in_load),  # the last one may still run at the last scrape
        "expected": expected,
        "completed": delta("rounds"),
        "overruns": delta("overruns"),
        "timeouts": delta("timeouts"),
        "errors": delta("errors"),
        "overruns_since_start": int(last.get("overruns", 0)),
        "timeouts_since_start": int(last.get("timeouts", 0)),
        "errors_since_start": int(last.get("errors", 0)),
        "late_results": int(last.get("late_results", 0)),
        "start_gap_s": {"min": round(min(gaps), 2), "max": round(max(gaps), 2)} if gaps else None,
        "duration_median_s": rank(durations, 0.5),
        "duration_max_s": max(durations, default=math.nan),
        "backlog_writes_max": max((s.get("backlog_writes", 0) for s in own), default=0),
        "backlog_rows_max": max((s.get("backlog_rows", 0) for s in own), default=0),
        "backlog_oldest_age_max_s": max((s.get("backlog_oldest_age_s", 0) for s in own), default=0),
        "store_writes": delta("store_writes"),
        "store_write_failures": delta("store_write_failures"),
    }
    rows = []
    prev = None
    for x in starts:
        s = rounds[x]
        rows.append(
            {
                "start_t_s": round(x - t0, 2),
                "duration_s": round(done[x], 3) if x in done else None,
                "gap_s": None if prev is None else round(x - prev, 2),
                "rounds_total": int(s["rounds"]),
                "probes_total": int(s.get("probes", 0)),
                "failed_total": int(s.get("probes_failed", 0)),
                "backlog_writes_at_last_scrape": s.get("backlog_writes"),
            }
        )
        prev = x
    r["round_rows"] = rows
    r["by_phase"] = by_phase(load.requests, t0, done, args.interval)
    samples = load.samples
    if samples:
        steady = [s for s in samples if s["t_s"] >= min(120.0, args.duration / 4)] or samples
        r["rss_mb"] = {
            "first_sample": samples[0]["rss_mb"],
            "steady_median": rank([s["rss_mb"] for s in steady], 0.5),
            "max": max(s["rss_mb"] for s in samples),
            "end": samples[-1]["rss_mb"],
            "hwm_end": samples[-1]["hwm_mb"],
        }
        elapsed = samples[-1]["t_s"] - samples[0]["t_s"]
        cpu = samples[-1]["cpu_s"] - samples[0]["cpu_s"]
        shares = [s["cpu_share"] for s in samples if not math.isnan(s["cpu_share"])]
        r["children"] = {
            "cpu_s": round(samples[-1]["children_cpu_s"] - samples[0]["children_cpu_s"], 2),
            "rss_max_mb": max(s["children_rss_mb"] for s in samples),
            "hwm_max_mb": max(s["children_hwm_mb"] for s in samples),
            "samples_with_a_child": sum(s["children_rss_mb"] > 0 for s in samples),
            "samples": len(samples),
            "service_plus_children_rss_max_mb": max(s["rss_mb"] + s["children_rss_mb"] for s in samples),
        }
        r["cpu"] = {
            "seconds": round(cpu, 2),
            "over_s": round(elapsed, 1),
            "share_of_one_core": round(cpu / elapsed, 4) if elapsed else math.nan,
            "max_sample_share": max(shares, default=math.nan),
            "per_round_s": round(cpu / max(1, delta("rounds")), 2),
        }
        by_tid: dict[int, list[dict[str, Any]]] = {}
        for row in load.threads:
            by_tid.setdefault(row["tid"], []).append(row)
        r["cpu"]["threads"] = sorted(
            (
                {
                    "tid": tid,
                    "name": run.get("thread_names", {}).get(tid, rows_[-1]["comm"]),
                    "cpu_s": round(rows_[-1]["cpu_s"] - rows_[0]["cpu_s"], 2),
                    "share": round((rows_[-1]["cpu_s"] - rows_[0]["cpu_s"]) / elapsed, 4)
                    if elapsed
                    else math.nan,
                }
                for tid, rows_ in by_tid.items()
            ),
            key=lambda x: -x["cpu_s"],
        )
    lines = log_lines(log_path) if log_path.is_file() else []
    r["log"] = {
        "warnings": [f"{lv} {nm}: {msg}" for at, lv, nm, msg in lines if lv == "WARNING" and at >= t0][:20],
        "warning_count": sum(lv == "WARNING" and at >= t0 for at, lv, _, _ in lines),
        "errors": [f"{lv} {nm}: {msg}" for at, lv, nm, msg in lines if lv in ("ERROR", "CRITICAL")][:20],
        "state_changes": sum(" since " in msg and nm.endswith("monitor") for _, _, nm, msg in lines),
    }
    return r


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(res: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        (
            f"# bench_city: slamon run, {args.devices:,} devices, ICMP every {args.interval} s, "
            f"/metrics every {args.scrape_every:g} s and /api/v1/outages every {args.api_every:g} s "
            f"for {args.duration:.0f} s"
        ),
        describe(res["machine"]),
        *([f"slamon run from {args.source} (commit {res['source_commit']})"] if args.source else []),
        (
            f"fleet: {res['fleet']}, inventory.{args.inventory}; silenced on soak.py's schedule "
            f"(group {args.group}, flappers {args.flappers}, site cuts {not args.no_site_cuts})"
        ),
        "",
    ]
    if "scrape" not in res or "rounds" not in res:
        return "\n".join([*lines, json.dumps(res, indent=2, default=str)])
    sc, api, ro = res["scrape"], res["api"], res["rounds"]
    rss, cpu, ch = res.get("rss_mb", {}), res.get("cpu", {}), res.get("children", {})
    starts = res["starts"]
    known = starts[-1]
    cached = [s for s in starts[1:] if s["fleet_cache_entries_before"]]

    def lat(x: dict[str, Any]) -> str:
        return (
            f"median {x['median_s']:.3f} s, p95 {x['p95_s']:.3f}, p99 {x['p99_s']:.3f}, max {x['max_s']:.3f} "
            f"({x['requests']} requests, {x['non_200']} not 200; to headers: median {x['headers_median_s']:.3f}, "
            f"p99 {x['headers_p99_s']:.3f}, max {x['headers_max_s']:.3f})"
        )

    no_overrun = (
        ro["overruns"] == 0
        and ro["timeouts"] == 0
        and ro["errors"] == 0
        and ro["started"] >= ro["expected"]
        and "died" not in res
    )
    stop = res["stop"]
    lines += [
        "| goal | result | |",
        "|---|---|---|",
        (
            f"| /metrics scrape p99 < 1 s | {lat(sc)}; body {sc['median_bytes'] / 1e6:.1f} MB gzipped | "
            f"**{verdict(sc['p99_s'] < GOALS['scrape_p99_s'] and sc['non_200'] == 0)}** |"
        ),
        (
            f"| /api/v1/outages p99 < 0.5 s | {lat(api)}; outages listed: median {api['outages_listed']['median']:.0f}, "
            f"max {api['outages_listed']['max']}, truncated {api['outages_listed']['truncated']} times | "
            f"**{verdict(api['p99_s'] < GOALS['api_p99_s'] and api['non_200'] == 0)}** |"
        ),
        (
            f"| no round overrun | rounds {ro['started']} started / {ro['expected']} expected ({ro['completed']} "
            f"completed by the last scrape); overruns {ro['overruns']}, "
            f"timeouts {ro['timeouts']}, errors {ro['errors']} (since start: {ro['overruns_since_start']}, "
            f"{ro['timeouts_since_start']}, {ro['errors_since_start']}); duration median "
            f"{ro['duration_median_s']:.2f} s, max {ro['duration_max_s']:.2f} s; starts {ro['start_gap_s']} apart | "
            f"**{verdict(no_overrun)}** |"
        ),
        (
            f"| RSS < 400 MB while it works (every sample of the load) | VmRSS steady (median after 2 min) {rss.get('steady_median')} MB, max sampled "
            f"{rss.get('max')} MB, first {rss.get('first_sample')}, end {rss.get('end')}; VmHWM (peak of the process's "
            f"life, start-up included) {rss.get('hwm_end')} MB | **{verdict(rss.get('max', math.inf) < GOALS['rss_mb'])}** |"
        ),
        (
            f"| start to first round < 5 s, known fleet (spawn to the round's first probe) | {known['label']}: "
            f"began at {known['first_round']['start_s']} s (fleet-cache entries before it: "
            f"{known['fleet_cache_entries_before']}); the round done at {known['to_first_round_s']} s, its view "
            f"served at {known['to_view_served_s']} s | "
            f"**{verdict(known['first_round']['start_s'] < GOALS['known_start_s'])}** |"
        ),
    ]
    for s in starts[:-1]:
        lines.append(
            f"| (for the record) start, {s['label']} | the first round began at {s['first_round']['start_s']} s, done "
            f"at {s['to_first_round_s']} s, view served at {s['to_view_served_s']} s (database existed: "
            f"{s['database_existed']}, fleet-cache entries {s['fleet_cache_entries_before']}) | |"
        )
    lines += [
        (
            f"| stop within 5 s (monitoring.md) | SIGTERM to exit {stop.get('stop_s')} s (exit {stop.get('exit_code')}; "
            f"log stopping→stopped {stop.get('log_stopping_to_stopped_s')} s) | "
            f"**{verdict(stop.get('stop_s', math.inf) < STOP_PROMISE and stop.get('exit_code') == 0)}** |"
        ),
        (
            f"| CPU (no goal) | {cpu.get('seconds')} CPU-s over {cpu.get('over_s')} s = "
            f"{cpu.get('share_of_one_core', math.nan):.1%} of one core ({cpu.get('per_round_s')} CPU-s per round, "
            f"scrapes and API included; max over {args.sample_every:g} s {cpu.get('max_sample_share', math.nan):.0%}) | |"
        ),
        "",
    ]
    if cached and cached[-1] is not known:
        lines.append(
            f"(a start with the fleet cache present: {cached[-1]['label']} {cached[-1]['to_first_round_s']} s)"
        )
    for s in starts:
        fr = s["first_round"]
        lines.append(
            f"start {s['label']}: first answer +{s['to_first_answer_s']} s, first round began +{fr['start_s']} s and "
            f"took {fr['duration_s']} s ({fr['probes']:.0f} probes), done +{s['to_first_round_s']} s, view served "
            f"+{s['to_view_served_s']} s"
            + (f"; stopped in {s['stop'].get('stop_s')} s" if "stop" in s else "")
        )
        lines += [f"    {ln}" for ln in s["log"]]
    lines += [
        "",
        (
            f"children of the service (the month-to-date figures' process): {ch.get('cpu_s')} CPU-s over the load, "
            f"RSS at most {ch.get('rss_max_mb')} MB when sampled (VmHWM {ch.get('hwm_max_mb')} MB), alive in "
            f"{ch.get('samples_with_a_child')} of {ch.get('samples')} samples; service + "
            f"children at most {ch.get('service_plus_children_rss_max_mb')} MB"
        ),
        (
            f"backlog: max {ro['backlog_writes_max']:.0f} writes / {ro['backlog_rows_max']:.0f} rows waiting, oldest "
            f"{ro['backlog_oldest_age_max_s']:.1f} s (at the scrapes); store writes {ro['store_writes']}, failures "
            f"{ro['store_write_failures']}; late results {ro['late_results']}"
        ),
        "threads (CPU-s over the load): "
        + ", ".join(
            f"{t['name']} ({t['tid']}) {t['cpu_s']} ({t['share']:.1%})" for t in cpu.get("threads", [])[:8]
        ),
        *[
            f"{client} by phase: "
            + "; ".join(
                f"{phase} {v['requests']} requests, median {v['median_s']:.3f} s, p99 {v['p99_s']:.3f}, "
                f"max {v['max_s']:.3f}"
                for phase, v in phases.items()
            )
            for client, phases in res.get("by_phase", {}).items()
        ],
        "slowest scrapes: " + ", ".join(f"+{x['t_s']:.0f}s {x['total_s']}s" for x in sc["slowest"][:6]),
        "slowest API calls: " + ", ".join(f"+{x['t_s']:.0f}s {x['total_s']}s" for x in api["slowest"][:6]),
        (
            f"log during the load: {res['log']['warning_count']} warnings, {len(res['log']['errors'])} errors; "
            f"state changes logged {res['log']['state_changes']}"
        ),
        *[f"    {w}" for w in res["log"]["warnings"][:5] + res["log"]["errors"][:5]],
        (
            f"/healthz at the end: {res['healthz_end']['status']}; database {res['database_mb']} MB; the benchmark's own "
            f"CPU {res['client_cpu_s']} s"
        ),
    ]
    if res.get("client_failures"):
        lines.append(f"CLIENT FAILURES: {res['client_failures']}")
    if "died" in res:
        lines.append(f"DIED: {res['died']}")
    if res.get("py_spy"):
        lines.append(f"py-spy: {res['py_spy']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100_000)
    p.add_argument("--duration", type=parse_duration, default=600.0, help="the load: e.g. 10m (default), 90s")
    p.add_argument("--interval", type=int, default=30, help="ICMP interval, seconds")
    p.add_argument("--timeout", default="1s", help="ICMP timeout (slamon.yaml duration)")
    p.add_argument("--rate", type=int, help="probes.icmp.rate (default: slamon's, 20,000/s)")
    p.add_argument("--inventory", choices=("yaml", "csv"), default="yaml")
    p.add_argument(
        "--restarts",
        type=int,
        default=2,
        help="known-fleet starts after the cold one (>= 1; the first writes the fleet cache, the last is loaded)",
    )
    p.add_argument(
        "--warmup", type=float, default=150.0, help="seconds the cold run keeps running after its first round"
    )
    p.add_argument("--scrape-every", type=float, default=5.0)
    p.add_argument("--api-every", type=float, default=5.0)
    p.add_argument(
        "--phase",
        choices=("random", "fixed"),
        default="random",
        help="random: each request at a random point of its slot (every phase of the rounds is met); "
        "fixed: at the slot's start",
    )
    p.add_argument(
        "--api-offset",
        type=float,
        default=2.5,
        help="seconds from the scrapes' slots to the API calls' slots",
    )
    p.add_argument("--seed", type=int, default=7, help="of the random phases")
    p.add_argument("--sample-every", type=float, default=2.0, help="seconds between /proc samples")
    p.add_argument("--port", type=int, default=19184, help="listen port inside the namespace")
    p.add_argument("--group", type=int, default=200, help="cameras per outage group (0: none)")
    p.add_argument("--flappers", type=int, default=100, help="cameras failing every other round")
    p.add_argument("--no-site-cuts", action="store_true")
    p.add_argument("--py-spy-record", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--py-spy-at", type=float, default=60.0, help="seconds into the load the recording starts")
    p.add_argument(
        "--py-spy-start",
        action="store_true",
        help="py-spy record of the last start, to its first round's view",
    )
    p.add_argument(
        "--no-py-spy-dump",
        dest="py_spy_dump",
        action="store_false",
        help="no py-spy dump at the end of the load",
    )
    p.add_argument(
        "--source",
        type=Path,
        help="run slamon from a copy of the package (git archive HEAD slamon | tar -x -C DIR), not the work tree",
    )
    p.add_argument("--out", type=Path)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if args.restarts < 1:
        p.error("--restarts must be at least 1 (the goal is a start on a known fleet)")
    if args.interval <= CHANGE_AT:
        p.error(f"--interval must be more than {CHANGE_AT:.0f} s (the schedule changes at {CHANGE_AT:.0f} s)")
    args.out = (args.out or OUT / f"city-{args.devices}").resolve()

    def interrupted(signum: int, frame: object) -> None:
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    res = bench(args)
    text = report(res, args)
    print(text)
    save(args.out / "city.json", res)
    (args.out / "city.txt").write_text(text + "\n", encoding="utf-8")
    if args.json:
        save(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
