"""Sharding: how probe capacity grows from 1 to 3 shards of `slamon run --shard I/N` on one machine.

    python benchmarks/bench_shards.py [--devices 60000] [--shards 1,2,3] [--window 60] \
        [--intervals 3,2.5,2.2,2,1.8,1.6,1.45,1.3,1.15,1,0.8,0.65,0.5] [--repeats 1] [--fping-runs 5] \
        [--rate 1000000] [--timeout-ms 200] [--port 19150] [--no-raw] [--quiet-cores 0.3] \
        [--quiet-wait 600] [--source DIR] [--out DIR] [--json FILE]

One fleet, make_history's plan (links -> switches -> cameras on 127.x addresses, ~200 devices
behind each link, one site per switch: a link's tree is one shard group), written as inventory.yaml,
a contract and slamon.yaml with `probes.icmp.rate` at slamon's maximum (1,000,000/s: the rate limit
never binds) and a short `probes.icmp.timeout` (every address answers on loopback). Every process
runs inside one fresh FleetNamespace (only `lo`: every packet stays in it) and reaches the local
PostgreSQL through its Unix socket (/var/run/postgresql; the namespace has its own loopback), each
run in a throwaway schema (SLAMON_DATABASE=postgresql+psycopg:///test?host=...&options=-csearch_path=S),
created before and dropped after.

**What "capacity" is here.** A round's duration (`slamon_round_duration_seconds`) covers the sending,
the replies and the live state's feed: 60,000 devices take ~0.4 s when the machine is idle. After
it the round's job renders the view, and the writer thread stores the round in PostgreSQL (under
one advisory writer lock for the whole store): that work, not the sending, decides how often a
shard can run a round. So devices ÷ round duration (reported as the *in-round speed*) overstates
what a shard sustains several times over. Capacity is measured instead as the probes per second
the shards actually complete: for each N, the shards are started together with an interval T, and
T is stepped down a ladder (--intervals, a fresh schema and a fresh start per step). While a shard
keeps up, it completes devices/T probes per second; past its limit the scheduler skips ticks
(a round's job still runs when the next is due; APScheduler logs "skipped: maximum number of
running instances reached") and its rate stops growing. Per step and shard, the rate is
rounds completed × devices ÷ the time between the first and the last round completion seen in the
--window (completions from /healthz polled every 0.2 s); the step's **sustained probes/s** is the
sum over shards. A step is

- *kept* when no tick was skipped, no round was cut at its deadline (a timeout) or overran, and the
  store kept up (the writes waiting, /healthz, averaged over the window's last quarter exceed their
  average over its first quarter by at most 1: the backlog does not grow);
- *cut* when a round was cut at its deadline (the interval is shorter than the round itself).

**capacity(N)** = the highest sustained probes/s of the N-shard steps that were not cut and whose
store kept up; **kept capacity(N)** = devices ÷ the shortest interval that was kept. The ladder
for N starts at the shortest interval N-1 shards kept (or at the top) and stops at the first cut
step, at a step whose store fell behind, or after two steps below the best so far.

A step starts when the rest of the machine is quiet (other sessions may share it: at most
--quiet-cores busy over 5 s, waiting at most --quiet-wait s); its window starts once every shard has
completed 3 rounds and the first rounds' bigger writes are stored (at most one write waiting). Per
step and shard: devices (from the shard's start-up log line, checked against slamon.shards.sizes),
rounds, skipped ticks, timeouts, overruns, probes failed, round durations (/metrics every 5 s, the
last round's), CPU (/proc: the process and its children, reaped ones included) and RSS, the write
backlog (/healthz: writes, rows, oldest age) and store writes; for the step: PostgreSQL's CPU
(common.postgres_cpu_s: every postgres process), the machine's busy CPU (/proc/stat), this
benchmark's own, and what is left of it, *others* (other sessions' work), the load average, the
time from the spawn to every shard's first round, the ICMP sockets open in the namespace, and the
store's writer lock (one PostgreSQL advisory lock per schema that every write takes): from
pg_locks every 0.2 s, the share of polls at which a writer held it and at which another waited.
A step during which other work took more than --quiet-cores, or the store refused a write, is
measured again (--retries) and only the last attempt counts.

slamon run as root opens a raw ICMP socket, and the kernel hands every echo reply in the namespace
to every raw socket: N shards on one host each receive all N shards' replies. `--no-raw` starts
the shards without CAP_NET_RAW (`setpriv --bounding-set=-net_raw`, still root), so slamon falls back
to datagram ("ping") sockets, which get only their own replies (the namespace allows them to every
group).

**The peer**, in the same run: after every step, fping over the same addresses, split the same way
(slamon's own split: the N shards' address lists), N processes started together
(`fping -u -r0 -t<timeout> -i0 -f LIST`, inside the namespace), topped up to --fping-runs runs per N.
fping's capacity = addresses ÷ the wall time until the last process exits; its CPU from the
children's rusage; any unreachable address is reported. fping only probes (no state, no store, no
view); the ratio slamon ÷ fping says what the service costs on top of the probing, and how each
scales with N on this machine.

Everything is bounded (start-up, settle, window, stop), the shards are stopped by their PID
(SIGTERM, SIGKILL after 20 s), the namespace is removed and the schemas dropped on exit, also on
failure or Ctrl-C. Output in --out (default benchmarks/out/shards-<devices>/): shards.json (all
figures), shards.txt (the report), steps.csv, samples.csv (every /proc and /healthz sample) and
each shard's log (logs/).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness.netns

from bench_city import children, get_once, last_member, log_lines, parse_self, rank
from common import OUT, Postgres, describe, finish, machine, port_free, postgres_cpu_s, save, slamon_from
from make_history import TIMEZONE, plan_fleet, write_fleet
from soak import proc_figures, write_csv

from tests.harness.netns import FleetNamespace

SOCKET_DIR = "/var/run/postgresql"  # the namespace has its own loopback: PostgreSQL by its socket
FPING = "/usr/bin/fping"
SETPRIV = "/usr/bin/setpriv"
POLL_S = 0.2  # /healthz of every shard
PROC_EVERY_S = 1.0  # /proc of every shard, PostgreSQL and the machine
SCRAPE_EVERY_S = 5.0  # /metrics of every shard (the last round's duration)
START_LIMIT = 180.0  # seconds for every shard's first round after the spawn
SETTLE_ROUNDS = 3  # rounds every shard completes before the window (the first is cold)
SETTLE_LIMIT = 60.0  # seconds, at most, for the backlog of the first rounds to drain before the window
STOP_LIMIT = 20.0  # seconds a shard gets after SIGTERM
FPING_LIMIT = 120.0  # seconds for one fping run
PG_RETRY_S = 300.0  # seconds a schema's creation or removal is tried while PostgreSQL refuses
FPING_QUIET_WAIT = 60.0  # seconds an fping run waits, at most, for a quiet machine
BACKLOG_GROWTH = 1.0  # writes waiting: last quarter's mean less the first's, at most (the store keeps up)
BELOW_BEST = 2  # steps in a row below the best so far end the ladder
SKIPPED = "skipped: maximum number of running instances reached"
ROUND_JOB = "Jobs.tracked.<locals>.job"
EXPECTED = ("fleet cache not used",)  # a new store has no fleet cache yet: said once at every start


class Interrupted(Exception):
    """SIGTERM to the benchmark: unwind (stop the shards, drop the schema, remove the namespace)."""


# --- files ----------------------------------------------------------------------------------------


def write_files(args: argparse.Namespace, out: Path) -> dict[str, int]:
    """make_history's fleet (slamon.yaml is written per step, with the step's interval)."""
    month = datetime.now(ZoneInfo(TIMEZONE)).strftime("%Y-%m")
    plan = plan_fleet(args.devices, month)
    write_fleet(plan, out, 30)
    return {k: sum(d.kind == k for d in plan.devices) for k in ("link", "switch", "camera")}


def duration_text(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def write_config(args: argparse.Namespace, out: Path, interval: float) -> Path:
    path = out / "slamon.yaml"
    path.write_text(
        "# database: SLAMON_DATABASE (a throwaway PostgreSQL schema per step)\n"
        "inventory: inventory.yaml\n"
        "contracts: [contracts/*.yaml]\n"
        "exclusions: exclusions.yaml\n"
        "journal: journal\n"
        f"listen: 127.0.0.1:{args.port}\n"
        "probes:\n"
        f"  icmp: {{interval: {duration_text(interval)}, timeout: {args.timeout_ms}ms, rate: {args.rate}}}\n",
        encoding="utf-8",
    )
    return path


def split_addresses(config: Path, counts: list[int]) -> dict[int, list[list[str]]]:
    """For each N, the addresses of each shard's devices: slamon's own split (slamon.shards)."""
    from slamon.loaders.config import load_config
    from slamon.loaders.fleet import load_fleet
    from slamon.shards import assign

    saved = os.environ.pop("SLAMON_DATABASE", None)
    try:
        inventory = load_fleet(load_config(config)).inventory
    finally:
        if saved is not None:
            os.environ["SLAMON_DATABASE"] = saved
    out: dict[int, list[list[str]]] = {}
    for n in counts:
        lists: list[list[str]] = [[] for _ in range(n)]
        for device, shard in assign(inventory, n).items():
            lists[shard].append(inventory.devices[device].address)
        out[n] = [sorted(x, key=lambda a: tuple(int(p) for p in a.split("."))) for x in lists]
    return out


def socket_url(schema: str) -> str:
    return f"postgresql+psycopg:///test?host={SOCKET_DIR}&options=-csearch_path%3D{schema}"


def icmp_sockets(pid: int) -> dict[str, int]:
    """ICMP sockets open in the namespace of a process: raw (every echo reply reaches every raw
    socket) and datagram ("ping" sockets: the kernel hands each its own replies)."""
    out = {}
    for kind, name in (("raw", "raw"), ("datagram", "icmp")):
        try:
            out[kind] = max(0, len(Path(f"/proc/{pid}/net/{name}").read_text().splitlines()) - 1)
        except OSError:
            out[kind] = -1
    return out


# --- the shards and what is sampled from them ---------------------------------------------------


@dataclass(slots=True)
class Shard:
    index: int
    count: int
    port: int
    devices: int  # slamon.shards' split
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    spawned: float = 0.0
    conn: http.client.HTTPConnection | None = None
    rounds: int = 0  # completed, as last seen
    completions: list[tuple[float, int]] = field(default_factory=list)  # (seen at, rounds)
    health: list[dict[str, Any]] = field(default_factory=list)
    procs: list[dict[str, Any]] = field(default_factory=list)
    scrapes: list[dict[str, float]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def get(self, path: str, gzipped: bool = False) -> tuple[int, bytes]:
        """One GET on the shard's keep-alive connection (the caller is inside the namespace)."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.conn.request("GET", path, headers={"Accept-Encoding": "gzip"} if gzipped else {})
            resp = self.conn.getresponse()
            body = resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return resp.status, body
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, b""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def cpu_stat() -> tuple[float, float]:
    """(busy, softirq) CPU seconds of the whole machine so far (/proc/stat; iowait counts as idle).
    softirq is apart: the kernel answers and delivers loopback echoes there, charged to no process."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    idle = fields[3] + fields[4]
    return (total - idle) / tick, fields[6] / tick


def own_cpu_s() -> float:
    """This benchmark's own CPU so far (its sampler thread included; not its children)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def quiet(args: argparse.Namespace, wait: float | None = None) -> dict[str, Any]:
    """Before a step: wait (at most --quiet-wait s) until the rest of the machine uses at most
    --quiet-cores over 5 s (other sessions' work; PostgreSQL counts, nothing of ours runs now)."""
    started = time.time()
    wait = args.quiet_wait if wait is None else wait
    while True:
        b0, own0, t0 = cpu_stat()[0], own_cpu_s(), time.time()
        time.sleep(5.0)
        b1, own1, t1 = cpu_stat()[0], own_cpu_s(), time.time()
        others = ((b1 - b0) - (own1 - own0)) / (t1 - t0)
        waited = t1 - started
        if others <= args.quiet_cores or waited >= wait:
            return {
                "others_cores": round(others, 2),
                "waited_s": round(waited, 1),
                "quiet": others <= args.quiet_cores,
            }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass(slots=True)
class Machine:
    schema: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # t, busy CPU-s, postgres CPU-s
    locks: list[dict[str, Any]] = field(default_factory=list)  # t, writers holding / waiting for the lock


# the store's writer lock (store/database.py: pg_advisory_xact_lock(hashtext('slamon writer ' || schema)),
# a bigint key: pg_locks shows its low 32 bits as objid) held and waited for, in this schema only
WRITER_LOCK = (
    "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted) FROM pg_locks "
    "WHERE locktype = 'advisory' AND objsubid = 1 "
    "AND objid::bigint = (hashtext('slamon writer ' || %s)::bigint & 4294967295)"
)


class LockWatch:
    """The writer lock of one schema, polled on a connection of its own (the Unix socket: it works
    from inside the namespace); a failed poll (PostgreSQL restarting) reconnects at the next one."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.conn: Any = None

    def poll(self) -> tuple[int, int] | None:
        import psycopg

        try:
            if self.conn is None:
                self.conn = psycopg.connect(
                    f"host={SOCKET_DIR} dbname=test", autocommit=True, connect_timeout=5
                )
            row = self.conn.execute(WRITER_LOCK, (self.schema,)).fetchone()
            return int(row[0]), int(row[1])
        except psycopg.Error:
            self.close()
            return None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def sampler(ns: FleetNamespace, shards: list[Shard], whole: Machine, stop: threading.Event) -> None:
    """Until stop: /healthz of every shard every POLL_S (round completions, timeouts, backlog),
    /proc every PROC_EVERY_S, /metrics every SCRAPE_EVERY_S (staggered)."""
    next_proc = 0.0
    next_scrape = {s.index: time.time() + 1.0 + s.index * SCRAPE_EVERY_S / len(shards) for s in shards}
    lock = LockWatch(whole.schema)
    with ns.inside():
        while not stop.is_set():
            now = time.time()
            held = lock.poll()
            if held is not None:
                whole.locks.append({"t": now, "holding": held[0], "waiting": held[1]})
            for s in shards:
                status, body = s.get("/healthz")
                if status in (200, 503) and body:
                    doc = json.loads(body)
                    icmp = doc["probes"].get("icmp", {})
                    backlog = doc["store"]["backlog"]
                    rounds = int(icmp.get("rounds", 0))
                    s.health.append(
                        {
                            "t": now,
                            "rounds": rounds,
                            "timeouts": int(icmp.get("timeouts", 0)),
                            "errors": int(icmp.get("errors", 0)),
                            "writes": backlog["writes"],
                            "rows": backlog["rows"],
                            "age_s": backlog["oldest_age_s"],
                        }
                    )
                    if rounds > s.rounds:
                        s.completions.append((now, rounds))
                        s.rounds = rounds
                if now >= next_scrape[s.index]:
                    next_scrape[s.index] = now + SCRAPE_EVERY_S
                    status, body = s.get("/metrics", gzipped=True)
                    if status == 200:
                        own = parse_self(last_member(body))
                        own["t"] = now
                        s.scrapes.append(own)
            if now >= next_proc:
                next_proc = now + PROC_EVERY_S
                for s in shards:
                    with contextlib.suppress(OSError, ValueError):
                        rss, hwm, cpu = proc_figures(s.pid)
                        kid_rss, _, kid_cpu = children(s.pid)
                        s.procs.append(
                            {
                                "t": now,
                                "rss_mb": rss,
                                "hwm_mb": hwm,
                                "cpu_s": cpu + kid_cpu,
                                "kids_mb": kid_rss,
                            }
                        )
                busy, softirq = cpu_stat()
                whole.rows.append(
                    {
                        "t": now,
                        "busy_s": busy,
                        "softirq_s": softirq,
                        "postgres_s": postgres_cpu_s(),
                        "bench_s": own_cpu_s(),
                    }
                )
            stop.wait(POLL_S)
    lock.close()
    for s in shards:
        s.close()


# --- one step: N shards at interval T ------------------------------------------------------------


@dataclass(slots=True)
class Context:
    args: argparse.Namespace
    ns: FleetNamespace
    pg: Postgres
    out: Path
    splits: dict[int, list[list[str]]]
    schemas: set[str] = field(default_factory=set)  # created and not dropped yet
    samples: list[dict[str, Any]] = field(default_factory=list)  # every /proc and /healthz sample


def start_shards(ctx: Context, shards: list[Shard], url: str) -> None:
    args = ctx.args
    env = {**os.environ, "SLAMON_DATABASE": url}
    if args.source is not None:  # for the children slamon starts (the month-to-date figures' process)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.source.resolve()), env.get("PYTHONPATH")]))
    # without CAP_NET_RAW (root otherwise), slamon falls back to ICMP datagram sockets
    unprivileged = [SETPRIV, "--bounding-set=-net_raw", "--"] if args.no_raw else []
    for s in shards:
        cmd = [
            *unprivileged,
            *slamon_from(args.source),
            "-c",
            str(ctx.out / "slamon.yaml"),
            "run",
            "--shard",
            f"{s.index}/{s.count}",
            "--listen",
            f"127.0.0.1:{s.port}",
        ]
        with s.log.open("wb") as log:
            s.spawned = time.time()
            s.proc = ctx.ns.popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ctx.out, env=env)


def stop_shards(shards: list[Shard]) -> list[dict[str, Any]]:
    """SIGTERM to every shard by its PID, then wait for each (SIGKILL after STOP_LIMIT)."""
    sent = time.time()
    for s in shards:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
    res = []
    for s in shards:
        if s.proc is None:
            continue
        r: dict[str, Any] = {}
        try:
            s.proc.wait(max(0.1, sent + STOP_LIMIT - time.time()))
        except subprocess.TimeoutExpired:
            r["killed"] = True
            s.proc.kill()
            s.proc.wait(10)
        r["stop_s"] = round(time.time() - sent, 2)
        r["exit_code"] = s.proc.returncode
        res.append(r)
    return res


def wait_rounds(shards: list[Shard], at_least: int, limit: float) -> bool:
    """Until every shard has completed `at_least` rounds (bounded by `limit` s); a shard that exits
    ends the step."""
    deadline = time.time() + limit
    while time.time() < deadline:
        for s in shards:
            assert s.proc is not None
            if s.proc.poll() is not None:
                raise RuntimeError(f"shard {s.index}/{s.count} exited {s.proc.returncode}; see {s.log}")
        if all(s.rounds >= at_least for s in shards):
            return True
        time.sleep(0.1)
    return False


def persist(fn: Callable[[], object], what: str) -> None:
    """fn, tried again for up to PG_RETRY_S while PostgreSQL refuses (another session's test may
    restart it)."""
    deadline = time.time() + PG_RETRY_S
    while True:
        try:
            fn()
            return
        except RuntimeError as exc:
            if time.time() >= deadline:
                raise
            print(f"shards: {what}: {str(exc)[:200]}; again in 5 s", file=sys.stderr)
            time.sleep(5.0)


def wait_backlog(shards: list[Shard], limit: float) -> bool:
    """Until no shard has more than one write waiting (the first rounds' bigger writes are stored),
    bounded by `limit` s."""
    deadline = time.time() + limit
    while time.time() < deadline:
        if all(s.health and s.health[-1]["writes"] <= 1 for s in shards):
            return True
        time.sleep(0.2)
    return False


def run_step(ctx: Context, n: int, interval: float, rep: int, attempt: int = 0) -> dict[str, Any]:
    args, ns, pg = ctx.args, ctx.ns, ctx.pg
    tag = f"r{rep}-n{n}-{duration_text(interval)}" + (f"-again{attempt}" if attempt else "")
    gate = quiet(args)
    print(
        f"shards: {tag}: {n} shard(s), interval {interval:g} s (load {loadavg()}; other work "
        f"{gate['others_cores']} cores after waiting {gate['waited_s']} s)",
        file=sys.stderr,
    )
    schema = f"slamon_bench_shards_{uuid.uuid4().hex[:10]}"
    persist(lambda: pg.fresh_schema(schema), f"create schema {schema}")
    ctx.schemas.add(schema)
    write_config(args, ctx.out, interval)
    shutil.rmtree(ctx.out / "journal", ignore_errors=True)  # a new store: nothing to replay
    (ctx.out / "logs").mkdir(exist_ok=True)
    sizes = [len(x) for x in ctx.splits[n]]
    shards = [
        Shard(i, n, args.port + i, sizes[i], ctx.out / "logs" / f"{tag}-shard{i}.log") for i in range(n)
    ]
    with ns.inside():
        taken = [s.port for s in shards if not port_free(s.port)]
    if taken:
        raise SystemExit(f"ports {taken} are taken inside the namespace")
    whole = Machine(schema)
    stop = threading.Event()
    thread = threading.Thread(target=sampler, args=(ns, shards, whole, stop), daemon=True)
    step: dict[str, Any] = {"rep": rep, "shards": n, "interval_s": interval, "schema": schema, "gate": gate}
    try:
        start_shards(ctx, shards, socket_url(schema))
        thread.start()
        if not wait_rounds(shards, 1, START_LIMIT):
            raise RuntimeError(f"{tag}: not every shard finished a round within {START_LIMIT:.0f} s")
        step["to_first_round_s"] = [round(s.completions[0][0] - s.spawned, 2) for s in shards]
        step["icmp_sockets"] = icmp_sockets(shards[0].pid)
        if not wait_rounds(shards, SETTLE_ROUNDS, 30 + 4 * SETTLE_ROUNDS * interval):
            print(f"shards: {tag}: not every shard settled; measuring anyway", file=sys.stderr)
        step["settled"] = wait_backlog(shards, SETTLE_LIMIT)
        w0 = time.time()
        step["loadavg_start"] = loadavg()
        first = [scrape(ns, s) for s in shards]
        end = w0 + args.window
        while time.time() < end:
            for s in shards:
                assert s.proc is not None
                if s.proc.poll() is not None:
                    raise RuntimeError(f"shard {s.index}/{n} exited {s.proc.returncode}; see {s.log}")
            time.sleep(min(0.5, max(0.0, end - time.time())))
        w1 = time.time()
        last = [scrape(ns, s) for s in shards]
        step["loadavg_end"] = loadavg()
    finally:
        stop.set()
        thread.join(30)
        step["stop"] = stop_shards(shards)
        if not args.keep_schema:
            persist(lambda: pg.drop_schema(schema), f"drop schema {schema}")
            ctx.schemas.discard(schema)
    step.update(analyse_step(shards, whole, first, last, w0, w1, interval))
    keep_samples(ctx, tag, shards, whole, w0)
    return step


def keep_samples(ctx: Context, tag: str, shards: list[Shard], whole: Machine, w0: float) -> None:
    """Every sample of the step for samples.csv, its time in seconds from the window's start."""
    rows: list[dict[str, Any]] = []
    for s in shards:
        rows += [{"step": tag, "source": f"shard{s.index}", "kind": "proc", **x} for x in s.procs]
        rows += [{"step": tag, "source": f"shard{s.index}", "kind": "healthz", **x} for x in s.health]
    rows += [{"step": tag, "source": "machine", "kind": "proc", **x} for x in whole.rows]
    rows += [{"step": tag, "source": "postgres", "kind": "writer_lock", **x} for x in whole.locks]
    for r in sorted(rows, key=lambda r: r["t"]):
        r["t"] = round(r["t"] - w0, 2)
        ctx.samples.append(r)


def scrape(ns: FleetNamespace, s: Shard) -> dict[str, float]:
    status, body = get_once(ns, s.port, "/metrics", gzipped=True)
    own = parse_self(last_member(body)) if status == 200 else {}
    own["t"] = time.time()
    return own


# --- figures of a step ----------------------------------------------------------------------------


def analyse_step(
    shards: list[Shard],
    whole: Machine,
    first: list[dict[str, float]],
    last: list[dict[str, float]],
    w0: float,
    w1: float,
    interval: float,
) -> dict[str, Any]:
    per: list[dict[str, Any]] = []
    for s, a, b in zip(shards, first, last, strict=True):
        done = [(t, r) for t, r in s.completions if w0 <= t <= w1]
        rate = math.nan
        if len(done) >= 2 and done[-1][1] > done[0][1]:
            rate = (done[-1][1] - done[0][1]) * s.devices / (done[-1][0] - done[0][0])
        health = [h for h in s.health if w0 <= h["t"] <= w1]
        quarter = (w1 - w0) / 4
        early = [h["writes"] for h in health if h["t"] < w0 + quarter]
        late = [h["writes"] for h in health if h["t"] >= w1 - quarter]
        growth = (sum(late) / len(late) if late else 0.0) - (sum(early) / len(early) if early else 0.0)
        lines = log_lines(s.log) if s.log.is_file() else []
        skipped = sum(SKIPPED in m and ROUND_JOB in m for at, _, _, m in lines if w0 <= at <= w1)
        logged = [m for _, _, _, m in lines if m.startswith(f"shard {s.index}/{s.count}: ")]
        devices_logged = int(logged[0].split(": ", 1)[1].split()[0]) if logged else None
        warnings = [
            f"{lv} {nm}: {m}"[:300]
            for _, lv, nm, m in lines
            if lv in ("WARNING", "ERROR", "CRITICAL") and SKIPPED not in m and not m.startswith(EXPECTED)
        ]
        durations: dict[float, float] = {}
        for x in s.scrapes:
            if w0 <= x["t"] <= w1 and "rounds" in x:
                durations[x["rounds"]] = x.get("round_duration_s", math.nan)
        dur = [d for d in durations.values() if not math.isnan(d)]
        procs = [p for p in s.procs if w0 <= p["t"] <= w1]
        cpu = (
            (procs[-1]["cpu_s"] - procs[0]["cpu_s"]) / (procs[-1]["t"] - procs[0]["t"])
            if len(procs) >= 2
            else math.nan
        )

        def delta(key: str, a: dict[str, float] = a, b: dict[str, float] = b) -> int:
            return int(b.get(key, 0) - a.get(key, 0))

        per.append(
            {
                "shard": s.index,
                "devices": s.devices,
                "devices_logged": devices_logged,
                "rounds": len(done),
                "rounds_delta": delta("rounds"),
                "ticks": round((w1 - w0) / interval, 1),
                "skipped": skipped,
                "timeouts": delta("timeouts"),
                "overruns": delta("overruns"),
                "errors": delta("errors"),
                "probes_per_s": rate,
                "probes_delta": delta("probes"),
                "failed_delta": delta("probes_failed"),
                "round_median_s": rank(dur, 0.5),
                "round_max_s": max(dur, default=math.nan),
                "round_samples": len(dur),
                "cpu_cores": cpu,
                "rss_median_mb": rank([p["rss_mb"] for p in procs], 0.5),
                "rss_max_mb": max((p["rss_mb"] for p in procs), default=math.nan),
                "hwm_mb": procs[-1]["hwm_mb"] if procs else math.nan,
                "backlog_writes_max": max((h["writes"] for h in health), default=0),
                "backlog_growth": round(growth, 2),
                "backlog_writes_end": health[-1]["writes"] if health else None,
                "backlog_rows_max": max((h["rows"] for h in health), default=0),
                "backlog_age_max_s": max((h["age_s"] or 0.0 for h in health), default=0.0),
                "store_writes": delta("store_writes"),
                "store_write_failures": delta("store_write_failures"),
                "warnings": warnings[:8],
                "warning_count": len(warnings),
            }
        )
    rows = [r for r in whole.rows if w0 <= r["t"] <= w1]
    span = rows[-1]["t"] - rows[0]["t"] if len(rows) >= 2 else math.nan

    def cores(key: str) -> float:
        return (rows[-1][key] - rows[0][key]) / span if len(rows) >= 2 else math.nan

    machine_cores, pg_cores, bench_cores = cores("busy_s"), cores("postgres_s"), cores("bench_s")
    locks = [x for x in whole.locks if w0 <= x["t"] <= w1]
    softirq_cores = cores("softirq_s")
    others = machine_cores - softirq_cores - pg_cores - bench_cores - sum(p["cpu_cores"] for p in per)
    sustained = sum(p["probes_per_s"] for p in per)
    in_round = sum(p["devices"] / p["round_median_s"] for p in per)
    cut = any(p["timeouts"] > 0 for p in per)
    store_ok = all(p["backlog_growth"] <= BACKLOG_GROWTH for p in per)
    kept = store_ok and not cut and all(p["skipped"] == 0 and p["overruns"] == 0 for p in per)
    return {
        "window_s": round(w1 - w0, 1),
        "per_shard": per,
        "sustained_probes_per_s": sustained,
        "offered_probes_per_s": sum(p["devices"] for p in per) / interval,
        "in_round_probes_per_s": in_round,
        "kept": kept,
        "cut": cut,
        "store_ok": store_ok,
        "skipped": sum(p["skipped"] for p in per),
        "shards_cpu_cores": sum(p["cpu_cores"] for p in per),
        "postgres_cpu_cores": pg_cores,
        "machine_busy_cores": machine_cores,
        "bench_cpu_cores": bench_cores,
        "softirq_cores": softirq_cores,
        # the writer lock: share of the polls (every 0.2 s) at which a shard's writer held it, and
        # at which another one waited for it
        "writer_lock_held_share": sum(x["holding"] > 0 for x in locks) / len(locks) if locks else math.nan,
        "writer_lock_waited_share": sum(x["waiting"] > 0 for x in locks) / len(locks) if locks else math.nan,
        "writer_lock_polls": len(locks),
        "store_write_failures": sum(p["store_write_failures"] for p in per),
        # the rest of the machine's busy CPU: other sessions' work (PostgreSQL's for them counts as ours)
        "others_cpu_cores": others,
        "rss_max_mb": max(p["rss_max_mb"] for p in per),
        "split_matches": all(p["devices_logged"] == p["devices"] for p in per),
    }


# --- the peer ------------------------------------------------------------------------------------


def fping_run(ctx: Context, n: int) -> dict[str, Any]:
    """N fping processes together, one per shard's address list; wall until the last one exits."""
    files = [ctx.out / "fping" / f"n{n}-{i}.txt" for i in range(n)]
    gate = quiet(ctx.args, wait=FPING_QUIET_WAIT)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [FPING, "-u", "-r0", f"-t{ctx.args.timeout_ms}", "-i0", "-f"]
    started = time.perf_counter()
    procs = [
        ctx.ns.popen([*cmd, str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files
    ]
    unreachable = 0
    codes = []
    try:
        for p in procs:
            stdout, _ = p.communicate(timeout=max(1.0, started + FPING_LIMIT - time.perf_counter()))
            unreachable += len(stdout.split())
            codes.append(p.returncode)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    addresses = sum(len(x) for x in ctx.splits[n])
    return {
        "processes": n,
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "addresses": addresses,
        "unreachable": unreachable,
        "exit_codes": codes,
        "probes_per_s": addresses / wall,
        "loadavg": loadavg(),
        "others_before_cores": gate["others_cores"],
    }


# --- the whole run -------------------------------------------------------------------------------


def ladder_for(args: argparse.Namespace, n: int, kept_before: float | None) -> list[float]:
    """The intervals to try for N shards: from the shortest one N-1 shards kept (or the top) down."""
    if kept_before is None:
        return list(args.intervals)
    return [t for t in args.intervals if t <= kept_before + 1e-9] or list(args.intervals[-1:])


def bench(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    pg = Postgres()
    if not Path(SOCKET_DIR, ".s.PGSQL.5432").exists():
        raise SystemExit(f"needs the local PostgreSQL's socket in {SOCKET_DIR}")
    if not Path(FPING).is_file():
        raise SystemExit(f"{FPING} is missing: apt-get install -y --no-install-recommends fping")
    if args.no_raw and not Path(SETPRIV).is_file():
        raise SystemExit(f"{SETPRIV} is missing (util-linux)")
    fleet = write_files(args, out)
    splits = split_addresses(write_config(args, out, args.intervals[0]), args.shards)
    (out / "fping").mkdir(exist_ok=True)
    for n, lists in splits.items():
        for i, addresses in enumerate(lists):
            (out / "fping" / f"n{n}-{i}.txt").write_text("\n".join(addresses) + "\n", encoding="utf-8")
    res: dict[str, Any] = {
        "machine": info,
        "postgres": pg.version(),
        "fping": subprocess.run([FPING, "-v"], capture_output=True, text=True, check=False).stdout.strip(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "fleet": fleet,
        "split": {n: [len(x) for x in lists] for n, lists in splits.items()},
        "steps": [],
        "fping_runs": [],
    }
    if args.source is not None:
        stamp = args.source / "COMMIT"
        res["source_commit"] = stamp.read_text().strip() if stamp.is_file() else "unknown (no COMMIT file)"
    samples: list[dict[str, Any]] = []
    try:
        with FleetNamespace(prefix="slshards") as ns:
            ctx = Context(args, ns, pg, out, splits, samples=samples)
            try:
                for rep in range(args.repeats):
                    kept_before: float | None = None
                    for n in args.shards:
                        steps = walk(ctx, res, n, rep, ladder_for(args, n, kept_before))
                        kept = [s["interval_s"] for s in steps if s["kept"]]
                        kept_before = min(kept) if kept else kept_before
                        done = sum(r["processes"] == n for r in res["fping_runs"])
                        for _ in range(max(0, args.fping_runs * (rep + 1) - done)):
                            res["fping_runs"].append({"rep": rep, **fping_run(ctx, n)})
            finally:
                for schema in list(ctx.schemas):
                    with contextlib.suppress(Exception):
                        pg.drop_schema(schema)
    except (Interrupted, KeyboardInterrupt) as exc:  # what was measured is still reported
        res["interrupted"] = f"{type(exc).__name__}: {exc}"
    finish(info)
    res["summary"] = summarise(res, args)
    write_samples(out / "samples.csv", samples)
    write_csv(out / "steps.csv", [step_row(s) for s in res["steps"]])
    return res


def walk(ctx: Context, res: dict[str, Any], n: int, rep: int, ladder: list[float]) -> list[dict[str, Any]]:
    """Down the ladder for N shards; one fping run of N processes after every step."""
    steps: list[dict[str, Any]] = []
    best = 0.0
    below = 0
    for interval in ladder:
        for attempt in range(1 + ctx.args.retries):
            step = run_step(ctx, n, interval, rep, attempt)
            res["steps"].append(step)
            # other sessions' work, or PostgreSQL refusing writes (another session restarting it)
            step["disturbed"] = (
                step["others_cpu_cores"] > ctx.args.quiet_cores or step["store_write_failures"] > 0
            )
            if not step["disturbed"]:
                break
            if attempt < ctx.args.retries:
                step["retried"] = True  # measured again; this one is left out of the figures
                print(f"shards: other work took {step['others_cpu_cores']:.2f} cores: again", file=sys.stderr)
        steps.append(step)
        res["fping_runs"].append({"rep": rep, **fping_run(ctx, n)})
        save(ctx.out / "shards.json", res)  # so far (--report prints it)
        print(
            f"shards: {n} x {interval:g} s: {step['sustained_probes_per_s']:,.0f} probes/s sustained "
            f"(offered {step['offered_probes_per_s']:,.0f}), kept {step['kept']}, skipped {step['skipped']}, "
            f"cut {step['cut']}, store ok {step['store_ok']}; CPU shards {step['shards_cpu_cores']:.2f} "
            f"postgres {step['postgres_cpu_cores']:.2f} machine {step['machine_busy_cores']:.2f} cores",
            file=sys.stderr,
        )
        if step["cut"] or not step["store_ok"]:
            break
        if step["sustained_probes_per_s"] > best:
            best, below = step["sustained_probes_per_s"], 0
        else:
            below += 1
            if below >= BELOW_BEST:
                break
    return steps


def write_samples(path: Path, rows: list[dict[str, Any]]) -> None:
    """One CSV for rows of several shapes: the union of their columns."""
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        w.writerows(rows)


def cpu_per_probe(s: dict[str, Any]) -> tuple[float, float]:
    """µs of CPU per probe completed in a step: the shards', and theirs with PostgreSQL's and the
    kernel's softirq."""
    rate = s["sustained_probes_per_s"]
    ours = s["shards_cpu_cores"] / rate * 1e6
    return ours, ours + (s["postgres_cpu_cores"] + s["softirq_cores"]) / rate * 1e6


def step_row(s: dict[str, Any]) -> dict[str, Any]:
    per = s["per_shard"]
    return {
        "rep": s["rep"],
        "shards": s["shards"],
        "interval_s": s["interval_s"],
        "sustained_probes_per_s": round(s["sustained_probes_per_s"]),
        "offered_probes_per_s": round(s["offered_probes_per_s"]),
        "in_round_probes_per_s": round(s["in_round_probes_per_s"]),
        "kept": s["kept"],
        "cut": s["cut"],
        "store_ok": s["store_ok"],
        "skipped": s["skipped"],
        "ticks": sum(p["ticks"] for p in per),
        "timeouts": sum(p["timeouts"] for p in per),
        "failed": sum(p["failed_delta"] for p in per),
        "round_median_s": "/".join(f"{p['round_median_s']:.2f}" for p in per),
        "backlog_writes_max": max(p["backlog_writes_max"] for p in per),
        "shards_cpu_cores": round(s["shards_cpu_cores"], 2),
        "postgres_cpu_cores": round(s["postgres_cpu_cores"], 2),
        "machine_busy_cores": round(s["machine_busy_cores"], 2),
        "softirq_cores": round(s["softirq_cores"], 2),
        "others_cpu_cores": round(s["others_cpu_cores"], 2),
        "shards_cpu_us_per_probe": round(cpu_per_probe(s)[0], 1),
        "writer_lock_held": round(s.get("writer_lock_held_share", math.nan), 2),
        "writer_lock_waited": round(s.get("writer_lock_waited_share", math.nan), 2),
        "cpu_us_per_probe": round(cpu_per_probe(s)[1], 1),
        "disturbed": s.get("disturbed", False),
        "retried": s.get("retried", False),
        "others_before_cores": s["gate"]["others_cores"],
        "backlog_growth": max(p["backlog_growth"] for p in per),
        "rss_max_mb": round(s["rss_max_mb"], 1),
        "to_first_round_s": "/".join(map(str, s["to_first_round_s"])),
        "loadavg": f"{s['loadavg_start']} -> {s['loadavg_end']}",
    }


def summarise(res: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in args.shards:
        reps = []
        for rep in range(args.repeats):
            steps = [s for s in res["steps"] if s["shards"] == n and s["rep"] == rep and not s.get("retried")]
            fair = [s for s in steps if not s["cut"] and s["store_ok"]]
            kept = [s for s in steps if s["kept"]]
            if not fair:
                continue
            top = max(fair, key=lambda s: s["sustained_probes_per_s"])
            shortest = min(kept, key=lambda s: s["interval_s"]) if kept else None
            reps.append(
                {
                    "capacity": top["sustained_probes_per_s"],
                    "capacity_interval_s": top["interval_s"],
                    "capacity_kept": top["kept"],
                    "kept_capacity": shortest["offered_probes_per_s"] if shortest else math.nan,
                    "kept_interval_s": shortest["interval_s"] if shortest else math.nan,
                    "in_round": top["in_round_probes_per_s"],
                    "shards_cpu_cores": top["shards_cpu_cores"],
                    "postgres_cpu_cores": top["postgres_cpu_cores"],
                    "machine_busy_cores": top["machine_busy_cores"],
                    "others_cpu_cores": top["others_cpu_cores"],
                    "cpu_us_per_probe": cpu_per_probe(top)[1],
                    "writer_lock_held_share": top.get("writer_lock_held_share"),
                    "writer_lock_waited_share": top.get("writer_lock_waited_share"),
                    "shards_cpu_us_per_probe": cpu_per_probe(top)[0],
                    "rss_max_mb": top["rss_max_mb"],
                    "backlog_writes_max": max(p["backlog_writes_max"] for p in top["per_shard"]),
                    "round_median_s": [p["round_median_s"] for p in top["per_shard"]],
                    "to_first_round_s": top["to_first_round_s"],
                }
            )
        fp = [r for r in res["fping_runs"] if r["processes"] == n]
        out[str(n)] = {
            "devices_per_shard": res["split"][n],
            "repeats": reps,
            "capacity": [r["capacity"] for r in reps],
            "kept_capacity": [r["kept_capacity"] for r in reps],
            "fping": [r["probes_per_s"] for r in fp],
            "fping_cpu_s": [r["cpu_s"] for r in fp],
            "fping_unreachable": sum(r["unreachable"] for r in fp),
        }
    base = out.get(str(args.shards[0]), {})

    def med(xs: list[float]) -> float:
        xs = [x for x in xs if not math.isnan(x)]
        return rank(xs, 0.5) if xs else math.nan

    for v in out.values():
        v["capacity_median"] = med(v["capacity"])
        v["kept_capacity_median"] = med(v["kept_capacity"])
        v["fping_median"] = med(v["fping"])
        v["growth"] = v["capacity_median"] / med(base.get("capacity", [math.nan]))
        v["fping_growth"] = v["fping_median"] / med(base.get("fping", [math.nan]))
        v["slamon_over_fping"] = v["capacity_median"] / v["fping_median"]
    return out


# --- the report ----------------------------------------------------------------------------------


def spread_of(xs: list[float], fmt: str = "{:,.0f}") -> str:
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt.format(xs[0])
    return f"{fmt.format(rank(xs, 0.5))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def report(res: dict[str, Any], args: argparse.Namespace) -> str:
    fleet = res["fleet"]
    lines = [
        (
            f"# bench_shards: slamon run --shard I/N, {args.devices:,} devices "
            f"({fleet['link']} links, {fleet['switch']} switches, {fleet['camera']} cameras), "
            f"PostgreSQL {res['postgres']} by its socket, rate {args.rate:,}/s, timeout {args.timeout_ms} ms, "
            f"window {args.window:g} s per step, {args.repeats} repeat(s)"
        ),
        describe(res["machine"]),
        f"peer: {res['fping']}; split (devices per shard): "
        + "; ".join(f"N={n}: {sizes}" for n, sizes in res["split"].items()),
        *([f"slamon run from {args.source} (commit {res['source_commit']})"] if args.source else []),
        *([f"INTERRUPTED ({res['interrupted']}): the figures so far"] if res.get("interrupted") else []),
        "",
        (
            "| shards | capacity, probes/s sustained (interval) | kept capacity (shortest interval kept) | "
            "growth | in-round speed | CPU: shards / PostgreSQL / machine / others (cores) | µs CPU per probe "
            "(shards) | fping N processes, probes/s | fping growth | slamon ÷ fping |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = res["summary"]
    for n in args.shards:
        v = summary[str(n)]
        reps = v["repeats"]
        if not reps:
            lines.append(f"| {n} | no step that was not cut | | | | | | | | |")
            continue
        at = "/".join(f"{r['capacity_interval_s']:g} s" for r in reps)
        kept_at = "/".join(f"{r['kept_interval_s']:g} s" for r in reps)
        lines.append(
            f"| {n} | {spread_of(v['capacity'])} ({at}) "
            f"| {spread_of(v['kept_capacity'])} ({kept_at}) "
            f"| {v['growth']:.2f}× "
            f"| {spread_of([r['in_round'] for r in reps])} "
            f"| {spread_of([r['shards_cpu_cores'] for r in reps], '{:.2f}')} / "
            f"{spread_of([r['postgres_cpu_cores'] for r in reps], '{:.2f}')} / "
            f"{spread_of([r['machine_busy_cores'] for r in reps], '{:.2f}')} / "
            f"{spread_of([r['others_cpu_cores'] for r in reps], '{:.2f}')} "
            f"| {spread_of([r['cpu_us_per_probe'] for r in reps], '{:.1f}')} "
            f"({spread_of([r['shards_cpu_us_per_probe'] for r in reps], '{:.1f}')}) "
            f"| {spread_of(v['fping'])} | {v['fping_growth']:.2f}× | {v['slamon_over_fping']:.3f} |"
        )
    lines += [
        "",
        (
            "capacity: the most probes/s the N shards completed in a step whose rounds were not cut and whose "
            "store kept up; kept: no skipped tick, no cut, no overrun. growth: ÷ the first row. "
            "in-round speed: Σ devices ÷ median round duration at the capacity step (sending, replies, live "
            "state; not the view nor the store)."
        ),
        "",
        "steps:",
        (
            "| rep | N | interval | sustained | offered | kept | skipped/ticks | cut | failed | round median s | "
            "backlog max (growth) | writer lock held / waited | CPU shards / pg / softirq / machine / others | "
            "µs CPU per probe (shards) | RSS max MB | first round s | load |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in res["steps"]:
        r = step_row(s)
        lines.append(
            f"| {r['rep']} | {r['shards']} | {r['interval_s']:g} s | {r['sustained_probes_per_s']:,} | "
            f"{r['offered_probes_per_s']:,} | {'yes' if r['kept'] else 'no'} | {r['skipped']}/{r['ticks']:g} | "
            f"{r['timeouts'] or '–'} | {r['failed']} | {r['round_median_s']} | "
            f"{r['backlog_writes_max']} ({r['backlog_growth']:+g}) | {r['writer_lock_held']:.0%} / "
            f"{r['writer_lock_waited']:.0%} | {r['shards_cpu_cores']} / "
            f"{r['postgres_cpu_cores']} / {r['softirq_cores']} / {r['machine_busy_cores']} / {r['others_cpu_cores']}"
            f"{' (measured again)' if r['retried'] else ' (disturbed)' if r['disturbed'] else ''} | "
            f"{r['cpu_us_per_probe']} ({r['shards_cpu_us_per_probe']}) | {r['rss_max_mb']} | "
            f"{r['to_first_round_s']} | {r['loadavg']} |"
        )
    lines.append("")
    for n in args.shards:
        v = summary[str(n)]
        lines.append(
            f"fping, {n} process(es): {spread_of(v['fping'])} probes/s over {len(v['fping'])} runs, "
            f"CPU {spread_of(v['fping_cpu_s'], '{:.2f}')} s a run, unreachable {v['fping_unreachable']}"
        )
    notes = []
    for s in res["steps"]:
        if not s["split_matches"]:
            notes.append(
                f"{s['shards']} x {s['interval_s']:g} s: a shard's logged devices differ from the split"
            )
        for p in s["per_shard"]:
            if p["warning_count"] or p["errors"] or p["store_write_failures"]:
                notes.append(
                    f"{s['shards']} x {s['interval_s']:g} s shard {p['shard']}: {p['warning_count']} warnings, "
                    f"errors {p['errors']}, store write failures {p['store_write_failures']}: "
                    + " | ".join(p["warnings"][:3])
                )
        for k, st in enumerate(s["stop"]):
            if st.get("exit_code") != 0 or st.get("killed"):
                notes.append(f"{s['shards']} x {s['interval_s']:g} s shard {k}: stop {st}")
    if notes:
        lines += ["", "notes:", *notes[:40]]
    return "\n".join(lines)


def restore_args(saved: dict[str, str]) -> argparse.Namespace:
    """The arguments of a saved run (shards.json keeps them as text)."""
    args = argparse.Namespace(**saved)
    for key in ("devices", "rate", "timeout_ms", "repeats", "fping_runs", "retries"):
        if key in saved:
            setattr(args, key, int(saved[key]))
    for key in ("window", "quiet_cores", "quiet_wait"):
        if key in saved:
            setattr(args, key, float(saved[key]))
    args.shards = json.loads(saved["shards"])
    args.intervals = json.loads(saved["intervals"])
    args.source = None if saved.get("source") in (None, "None") else Path(saved["source"])
    args.no_raw = saved.get("no_raw") == "True"
    return args


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=60_000)
    p.add_argument("--shards", default="1,2,3", help="shard counts to run, e.g. 1,2,3")
    p.add_argument(
        "--intervals",
        default="3,2.5,2.2,2,1.8,1.6,1.45,1.3,1.15,1,0.8,0.65,0.5",
        help="the ladder of ICMP intervals, seconds, longest first",
    )
    p.add_argument("--window", type=float, default=60.0, help="seconds measured per step, after the settle")
    p.add_argument("--repeats", type=int, default=1, help="times the whole ladder runs (medians over them)")
    p.add_argument(
        "--fping-runs", type=int, default=5, help="fping runs per shard count and repeat, at least"
    )
    p.add_argument("--rate", type=int, default=1_000_000, help="probes.icmp.rate (slamon's maximum)")
    p.add_argument("--timeout-ms", type=int, default=200, help="probes.icmp.timeout and fping -t")
    p.add_argument("--port", type=int, default=19150, help="shard I listens on PORT + I inside the namespace")
    p.add_argument("--keep-schema", action="store_true", help="do not drop each step's schema")
    p.add_argument(
        "--no-raw",
        action="store_true",
        help="run the shards without CAP_NET_RAW (setpriv): slamon then uses ICMP datagram sockets",
    )
    p.add_argument(
        "--quiet-cores",
        type=float,
        default=0.3,
        help="before each step, wait until other work uses at most this many cores (over 5 s)",
    )
    p.add_argument("--quiet-wait", type=float, default=600.0, help="seconds to wait for that, at most")
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help="times a step is measured again when other work took more than --quiet-cores during it",
    )
    p.add_argument(
        "--source",
        type=Path,
        help="run slamon from a copy of the package (git archive HEAD slamon | tar -x -C DIR), not the work tree",
    )
    p.add_argument("--out", type=Path)
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--report", type=Path, metavar="JSON", help="print a saved run's report again")
    args = p.parse_args(argv)
    if args.report:
        res = json.loads(args.report.read_text(encoding="utf-8"))
        saved = restore_args(res["args"])
        res["split"] = {int(n): sizes for n, sizes in res["split"].items()}
        res["summary"] = summarise(res, saved)
        print(report(res, saved))
        return 0
    args.shards = [int(x) for x in args.shards.split(",")]
    args.intervals = sorted((float(x) for x in args.intervals.split(",")), reverse=True)
    if min(args.intervals) * 1000 <= args.timeout_ms:
        p.error("every interval must be longer than --timeout-ms")
    if args.window < 5 * max(args.intervals):
        p.error("--window must hold at least five rounds of the longest interval")
    args.out = (args.out or OUT / f"shards-{args.devices}").resolve()

    def interrupted(signum: int, frame: object) -> None:
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    res = bench(args)
    text = report(res, args)
    print(text)
    save(args.out / "shards.json", res)
    (args.out / "shards.txt").write_text(text + "\n", encoding="utf-8")
    if args.json:
        save(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
