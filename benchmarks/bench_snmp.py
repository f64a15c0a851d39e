"""SNMP v2c rounds of 200 switches × 48 ports: slamon's SnmpProber against net-snmp's tools and
Prometheus's snmp_exporter, on the same net-snmp `snmpd` (issue 8).

    python benchmarks/bench_snmp.py [--runs 5] [--switches 200] [--ports 48] [--rounds 2] \
        [--parallel 8] [--exporter-concurrency 10] [--tools slamon,netsnmp,exporter]

As root, in one fresh FleetNamespace (only `lo`; nothing leaves the machine):

1. The agents: --ports interfaces named Gi0-1 … Gi0-48 (type `dummy`, or `ifb` where the kernel
   has no dummy driver: both are traffic-less virtual ports), every --down-every-th one left down,
   and one net-snmp `snmpd` (`-f -Lf /dev/null -C -I -smux -c CONF`, `rocommunity public`)
   listening on --switches addresses 127.10.0.1, 127.10.0.2, … port 161, given as command-line
   arguments. The PoE rows come from `override` lines (pethPsePortDetectionStatus.1.<ifIndex> = 3,
   deliveringPower, per port; pethMainPsePower.1 = 370 W, pethMainPseConsumptionPower.1 = 120 W).
   A switch therefore has 49 rows (lo and the 48 ports) in each IF-MIB column and 48 PoE rows:
   3 + 6 × 49 + 48 = 345 useful varbinds per poll. snmpbulkwalk checks ifName and the PoE rows
   on the first and last address before anything is measured.
2. Per run, the tools one after the other (slamon, net-snmp columns, net-snmp tables, net-snmp
   start-up floor, net-snmp long walk, snmp_exporter), --runs times:
   - slamon: this script with --child-slamon, inside the namespace under `/usr/bin/time -v`:
     `SnmpProber(SystemClock(), SnmpSettings(community=b"public", timeout=2 s, retries=1,
     concurrency=100, max_repetitions=25))`, --rounds rounds back to back over the switches
     (the first, then steady ones that compare with the previous poll). In-round CPU is
     `time.process_time()` around each round; whole-process CPU (interpreter start, imports and
     every round) is /usr/bin/time's user + sys. Varbinds received are `prober.varbinds` (GETBULK
     answers run past each column's end); useful ones are the values that reached the results
     (a port's name, oper, admin, PoE, counters; uptime and the PoE budget).
   - net-snmp (columns): per switch one `snmpget` of the 3 scalars and one
     `snmpbulkwalk -v2c -c public -Cr25 -t 2 -r 1 -On ADDR COLUMN` per column (7): 1,600
     processes, --parallel at a time. CPU from this process's RUSAGE_CHILDREN before and after;
     varbinds are their output lines.
   - net-snmp (tables): a superset with fewer processes: the snmpget, and a snmpbulkwalk of the
     whole ifTable, of the whole ifXTable and of the PoE column (4 processes per switch).
   - net-snmp start-up floor: one `snmpget` of sysUpTime.0 per switch. Its CPU per process,
     taken off the other batches' (each run's own), gives net-snmp's cost per varbind once a
     process is running.
   - net-snmp long walk: --long-walks `snmpbulkwalk -Cr25` processes, each of a second snmpd's
     table of --long-rows rows × 7 columns in slamon's types (`override` lines under
     netSnmpPlaypen, on 127.11.0.1; Counter32 in place of Counter64, which override lacks): the
     most robust figure of net-snmp's cost per varbind once started.
   - snmp_exporter: one exporter inside the namespace for the whole benchmark (module walking
     the same columns, GETs of the 3 scalars, ifName as the lookup label, as its generator makes
     them), scraped `/snmp?target=ADDR&module=slamon_switch` for every switch, at most
     --exporter-concurrency at a time. Its CPU is /proc/PID/stat's utime + stime before and after
     (10 ms ticks); its varbinds are the scrapes' `snmp_scrape_pdus_returned`.
   The agent's own CPU (snmpd, /proc) is recorded around each. Once, before the runs: slamon's
   decoder alone on a real 7-column GETBULK reply (`decode_message`, 2,000 times in this process).
3. Goals (issue 8): slamon's CPU per varbind ≤ 2× net-snmp's (shown against each net-snmp figure:
   whole processes, and once started); 2,000 switches every 60 s on < 15% of one core (2,000 ÷
   --switches × a steady round's CPU-s ÷ 60 s; `--switches 2000 --tools slamon` measures it).

Results: OUT/bench_snmp.json (every run) and OUT/bench_snmp.md (the report); OUT defaults to
benchmarks/out/snmp/ (git-ignored). Every wait and loop is bounded; the namespace, snmpd and the
exporter are removed or stopped (by PID) at the end.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()
_C0 = time.process_time()

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SNMPD = "/usr/sbin/snmpd"
EXPORTER = "prometheus-snmp-exporter"
COMMUNITY = "public"
GOAL_RATIO = 2.0  # slamon's CPU per varbind ÷ net-snmp's
GOAL_SHARE = 0.15  # of one core, 2,000 switches every 60 s
ISSUE_NETSNMP_US = 7.0  # the issue's own figure for snmpbulkwalk, CPU-µs per varbind
SCALE, INTERVAL_S = 2_000, 60.0

SCALARS = ("1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.105.1.3.1.1.2.1", "1.3.6.1.2.1.105.1.3.1.1.4.1")
COLUMNS = {  # slamon.probers.snmp_mib.COLUMNS, by OID
    "ifName": "1.3.6.1.2.1.31.1.1.1.1",
    "ifAdminStatus": "1.3.6.1.2.1.2.2.1.7",
    "ifOperStatus": "1.3.6.1.2.1.2.2.1.8",
    "ifInErrors": "1.3.6.1.2.1.2.2.1.14",
    "ifHCInOctets": "1.3.6.1.2.1.31.1.1.1.6",
    "ifHCOutOctets": "1.3.6.1.2.1.31.1.1.1.10",
    "pethPsePortDetectionStatus": "1.3.6.1.2.1.105.1.1.1.6",
}
NETSNMP = ("netsnmp_columns", "netsnmp_tables", "netsnmp_floor", "netsnmp_long")  # batches, in run order
TABLES = ("1.3.6.1.2.1.2.2", "1.3.6.1.2.1.31.1.1", "1.3.6.1.2.1.105.1.1.1.6")  # ifTable, ifXTable, PoE
REFERENCE = "127.11.0.1"  # the reference agent: one long table, for net-snmp's cost per varbind once started
PLAYPEN = "1.3.6.1.4.1.8072.9999.9999.1"  # NET-SNMP-MIB::netSnmpPlaypen, meant for experiments
# a row of the reference table: the types of slamon's 7 columns, values as the switches give them
# (override has no Counter64: Counter32 stands in for ifHCInOctets and ifHCOutOctets)
REFERENCE_ROW = (
    ("octet_str", '"Gi0-{row}"'),
    ("integer", "1"),
    ("integer", "1"),
    ("counter", "0"),
    ("counter", "0"),
    ("counter", "0"),
    ("integer", "3"),
)

EXPORTER_CONFIG = """\
# snmp_exporter {version}: the columns slamon walks, as its generator would write them
slamon_switch:
  version: 2
  auth:
    community: {community}
  max_repetitions: 25
  retries: 1
  timeout: 2s
  get:
  - 1.3.6.1.2.1.1.3.0
  - 1.3.6.1.2.1.105.1.3.1.1.2.1
  - 1.3.6.1.2.1.105.1.3.1.1.4.1
  walk:
{walk}
  metrics:
  - name: sysUpTime
    oid: 1.3.6.1.2.1.1.3
    type: gauge
  - name: pethMainPsePower
    oid: 1.3.6.1.2.1.105.1.3.1.1.2
    type: gauge
    indexes:
    - labelname: pethMainPseGroupIndex
      type: gauge
  - name: pethMainPseConsumptionPower
    oid: 1.3.6.1.2.1.105.1.3.1.1.4
    type: gauge
    indexes:
    - labelname: pethMainPseGroupIndex
      type: gauge
{if_metrics}
  - name: pethPsePortDetectionStatus
    oid: 1.3.6.1.2.1.105.1.1.1.6
    type: gauge
    indexes:
    - labelname: pethPsePortGroupIndex
      type: gauge
    - labelname: pethPsePortIndex
      type: gauge
"""
IF_METRIC = """\
  - name: {name}
    oid: {oid}
    type: {type}
    indexes:
    - labelname: ifIndex
      type: gauge
    lookups:
    - labels: [ifIndex]
      labelname: ifName
      oid: 1.3.6.1.2.1.31.1.1.1.1
      type: DisplayString"""
IF_TYPES = {
    "ifAdminStatus": "gauge",
    "ifOperStatus": "gauge",
    "ifInErrors": "counter",
    "ifHCInOctets": "counter",
    "ifHCOutOctets": "counter",
}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def address(i: int) -> str:
    """The i-th switch (1-based): 127.10.0.1 … 127.10.0.250, then 127.10.1.1, …"""
    return f"127.10.{(i - 1) // 250}.{(i - 1) % 250 + 1}"


def useful_per_switch(ports: int) -> int:
    """Values one poll brings: 3 scalars, 6 IF-MIB columns of lo and the ports, the PoE column."""
    return len(SCALARS) + 6 * (ports + 1) + ports


# --- the slamon child: one process, inside the namespace ---------------------------------------


def child_slamon(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from slamon.clock import SystemClock
    from slamon.model import ContractId, Device, DeviceId, DeviceKind, SiteId, SnmpTarget
    from slamon.probers.snmp import SnmpProber, SnmpSettings

    imported_cpu = time.process_time() - _C0
    devices = [
        Device(
            DeviceId(f"SW{i:04d}"),
            DeviceKind.SWITCH,
            address(i),
            SiteId("S1"),
            ContractId("C1"),
            snmp=SnmpTarget("2c", 161),
        )
        for i in range(1, args.switches + 1)
    ]
    settings = SnmpSettings(
        community=COMMUNITY.encode(),
        timeout=timedelta(seconds=args.timeout),
        retries=args.retries,
        concurrency=args.concurrency,
        max_repetitions=args.max_repetitions,
    )

    async def rounds() -> dict[str, Any]:
        prober = SnmpProber(SystemClock(), settings)
        done: list[dict[str, Any]] = []
        try:
            for _ in range(args.rounds):
                v0, q0 = prober.varbinds, prober.requests
                w0, c0 = time.perf_counter(), time.process_time()
                results = []
                async for batch in prober.round(devices):
                    results.extend(batch)
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                r = read_results(results)
                r.update(
                    wall_s=wall,
                    cpu_s=cpu,
                    varbinds=prober.varbinds - v0,
                    requests=prober.requests - q0,
                )
                done.append(r)
            stray = sum(getattr(t, "stray", 0) for t in getattr(prober, "_transports", {}).values())
            return {"rounds": done, "stray_datagrams": stray, "errors_by_reason": dict(prober.errors)}
        finally:
            await prober.aclose()

    out = asyncio.run(rounds())
    out["import_cpu_s"] = imported_cpu
    out["process_cpu_s"] = time.process_time() - _C0  # since this module's first line
    out["process_wall_s"] = time.perf_counter() - _T0
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
    return 0


def read_results(results: Sequence[Any]) -> dict[str, Any]:
    """What a round's results say: answers, errors, ports per switch, useful values."""
    ok = [r for r in results if r.ok]
    useful = 0
    ports, down, poe = Counter[int](), Counter[int](), Counter[int]()
    for r in ok:
        detail = r.detail or {}
        useful += "uptime_s" in detail
        budget = detail.get("poe") or {}
        useful += (budget.get("budget_w") is not None) + (budget.get("used_w") is not None)
        switch_ports = detail.get("ports", {})
        ports[len(switch_ports)] += 1
        down[sum(p.get("oper") == "down" for p in switch_ports.values())] += 1
        poe[sum(p.get("poe") == "deliveringPower" for p in switch_ports.values())] += 1
        for label, port in switch_ports.items():
            useful += label != str(port["index"])  # ifName came (else the label is the ifIndex)
            useful += sum(k in port for k in ("oper", "admin", "poe", "in_octets", "out_octets", "in_errors"))
    errors = Counter(r.error for r in results if not r.ok)
    return {
        "results": len(results),
        "ok": len(ok),
        "useful_varbinds": useful,
        "ports_per_switch": {str(k): v for k, v in sorted(ports.items())},
        "down_ports_per_switch": {str(k): v for k, v in sorted(down.items())},
        "poe_ports_per_switch": {str(k): v for k, v in sorted(poe.items())},
        "errors": dict(errors.most_common(5)),
        "resent_switches": sum(1 for r in results if r.loss),
        "max_loss": max((r.loss or 0.0 for r in results), default=0.0),
        "max_rtt_ms": max((r.rtt_ms or 0.0 for r in ok), default=0.0),
    }


# --- the agents -----------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a live process (every thread), from /proc (10 ms ticks)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rfind(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Lab:
    """The namespace, its ports, snmpd and (once started) snmp_exporter."""

    def __init__(self, args: argparse.Namespace, ns: Any, where: Path) -> None:
        self.args = args
        self.ns = ns
        self.where = where
        self.ip = shutil.which("ip") or "/usr/sbin/ip"
        self.env = {**os.environ, "SNMP_PERSISTENT_DIR": str(where / "persist")}  # not /var/lib/snmp
        self.port_kind = ""
        self.if_index: dict[str, int] = {}
        self.snmpd: subprocess.Popen[bytes] | None = None
        self.reference: subprocess.Popen[bytes] | None = None
        self.exporter: subprocess.Popen[bytes] | None = None
        self.exporter_url = ""

    def ip_batch(self, lines: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.ip, "-n", self.ns.name, "-batch", "-"],
            input="".join(line + "\n" for line in lines),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def make_ports(self) -> None:
        names = [f"Gi0-{p}" for p in range(1, self.args.ports + 1)]
        for kind in ("dummy", "ifb"):
            got = self.ip_batch([f"link add {names[0]} type {kind}"])
            if got.returncode == 0:
                self.port_kind = kind
                break
        else:
            raise RuntimeError(f"neither a dummy nor an ifb interface can be made here: {got.stderr.strip()}")
        made = self.ip_batch([f"link add {n} type {self.port_kind}" for n in names[1:]])
        if made.returncode != 0:
            raise RuntimeError(f"ip link add: {made.stderr.strip()}")
        up = [f"link set {n} up" for p, n in enumerate(names, 1) if p % self.args.down_every]
        done = self.ip_batch(up)
        if done.returncode != 0:
            raise RuntimeError(f"ip link set up: {done.stderr.strip()}")
        listed = subprocess.run(
            [self.ip, "-n", self.ns.name, "-o", "link", "show"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        for line in listed.splitlines():
            index, name = line.split(":", 2)[:2]
            self.if_index[name.strip().split("@")[0]] = int(index)
        missing = [n for n in names if n not in self.if_index]
        if missing:
            raise RuntimeError(f"ports missing after ip link add: {missing[:5]}")

    def start_snmpd(self) -> None:
        conf = self.where / "snmpd.conf"
        lines = [f"rocommunity {COMMUNITY}"]
        for p in range(1, self.args.ports + 1):
            lines.append(f"override 1.3.6.1.2.1.105.1.1.1.6.1.{self.if_index[f'Gi0-{p}']} integer 3")
        lines += [
            "override 1.3.6.1.2.1.105.1.3.1.1.2.1 unsigned 370",  # "gauge" is refused, "unsigned" works
            "override 1.3.6.1.2.1.105.1.3.1.1.4.1 unsigned 120",
        ]
        conf.write_text("\n".join(lines) + "\n", encoding="ascii")
        (self.where / "persist").mkdir(exist_ok=True)
        listen = [f"udp:{address(i)}:161" for i in range(1, self.args.switches + 1)]
        self.snmpd = self.ns.popen(
            [SNMPD, "-f", "-Lf", "/dev/null", "-C", "-I", "-smux", "-c", str(conf), *listen],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )
        last = address(self.args.switches)
        deadline = time.monotonic() + 20
        while True:  # bounded: 20 s for snmpd to answer on its last address
            if self.snmpd.poll() is not None:
                raise RuntimeError(f"snmpd exited {self.snmpd.returncode} at start")
            got = self.tool(["snmpget", "-v2c", "-c", COMMUNITY, "-t", "0.5", "-r", "0", last, SCALARS[0]])
            if got.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"snmpd did not answer on {last} within 20 s")
            time.sleep(0.2)

    def tool(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        done: subprocess.CompletedProcess[str] = self.ns.run(argv, env=self.env, timeout=timeout)
        return done

    def check_agents(self) -> dict[str, Any]:
        """snmpbulkwalk of ifName and the PoE column, and a GET of the scalars, on the first and
        last address: the ports and their PoE rows must be there."""
        seen: dict[str, Any] = {}
        ports = self.args.ports
        for addr in (address(1), address(self.args.switches)):
            walk = self.walk_lines(addr, COLUMNS["ifName"])
            names = [line.split("STRING: ", 1)[-1].strip('"') for line in walk]
            poe = self.walk_lines(addr, COLUMNS["pethPsePortDetectionStatus"])
            scalars = self.tool(["snmpget", "-v2c", "-c", COMMUNITY, "-On", addr, *SCALARS]).stdout
            gi = [n for n in names if n.startswith("Gi0-")]
            delivering = [line for line in poe if line.endswith("INTEGER: 3")]
            if len(gi) != ports or len(delivering) != ports or "Gauge32: 370" not in scalars:
                raise RuntimeError(
                    f"{addr}: ifName shows {len(gi)} Gi0- ports, the PoE column {len(delivering)} rows "
                    f"delivering power (expected {ports} each); scalars: {scalars!r}"
                )
            seen[addr] = {
                "ifName_rows": len(names),
                "ifName_first": names[:3],
                "poe_rows": len(poe),
                "scalars": scalars.strip().splitlines(),
            }
        return seen

    def walk_lines(self, addr: str, oid: str) -> list[str]:
        got = self.tool(["snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-Cr25", "-On", addr, oid])
        if got.returncode != 0:
            raise RuntimeError(f"snmpbulkwalk {addr} {oid}: {got.stderr.strip()}")
        return [line for line in got.stdout.splitlines() if line.startswith(".")]

    def snmpd_cpu(self) -> float:
        assert self.snmpd is not None
        return proc_cpu_s(self.snmpd.pid)

    def start_reference(self) -> int:
        """A second snmpd on REFERENCE whose PLAYPEN subtree is one table of --long-rows rows in
        slamon's column types (`override` lines); returns the varbinds of a walk of it (checked)."""
        conf = self.where / "reference.conf"
        lines = [f"rocommunity {COMMUNITY}"]
        for column, (kind, value) in enumerate(REFERENCE_ROW, 1):
            lines += [
                f"override {PLAYPEN}.{column}.{row} {kind} {value.format(row=row)}"
                for row in range(1, self.args.long_rows + 1)
            ]
        conf.write_text("\n".join(lines) + "\n", encoding="ascii")
        self.reference = self.ns.popen(
            [SNMPD, "-f", "-Lf", "/dev/null", "-C", "-I", "-smux", "-c", str(conf), f"udp:{REFERENCE}:161"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )
        deadline = time.monotonic() + 60
        while True:  # bounded: 60 s for snmpd to read its overrides and answer
            if self.reference.poll() is not None:
                raise RuntimeError(f"the reference snmpd exited {self.reference.returncode} at start")
            got = self.tool(
                ["snmpget", "-v2c", "-c", COMMUNITY, "-t", "0.5", "-r", "0", REFERENCE, SCALARS[0]]
            )
            if got.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the reference snmpd did not answer on {REFERENCE} within 60 s")
            time.sleep(0.2)
        walked = len(self.walk_lines(REFERENCE, PLAYPEN))
        expected = len(REFERENCE_ROW) * self.args.long_rows
        if walked != expected:
            raise RuntimeError(f"the reference table walks {walked} varbinds, not {expected}")
        return walked

    # --- snmp_exporter

    def start_exporter(self, version: str) -> None:
        walk = "\n".join(f"  - {oid}" for oid in COLUMNS.values())
        metrics = "\n".join(IF_METRIC.format(name=n, oid=COLUMNS[n], type=t) for n, t in IF_TYPES.items())
        config = self.where / "snmp.yml"
        config.write_text(
            EXPORTER_CONFIG.format(version=version, community=COMMUNITY, walk=walk, if_metrics=metrics),
            encoding="utf-8",
        )
        port = self.args.exporter_port
        self.exporter_url = f"http://127.0.0.1:{port}"
        self.exporter = self.ns.popen(
            [
                EXPORTER,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while True:  # bounded: 15 s to listen
            if self.exporter.poll() is not None:
                err = self.exporter.stderr.read() if self.exporter.stderr else b""
                raise RuntimeError(f"snmp_exporter exited: {err[-2000:]!r}")
            try:
                with self.ns.inside(), urllib.request.urlopen(self.exporter_url + "/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("snmp_exporter did not listen within 15 s")
            time.sleep(0.1)

    def stop_exporter(self) -> None:
        if self.exporter is None:
            return
        if self.exporter.poll() is None:
            self.exporter.terminate()
            try:
                self.exporter.wait(10)
            except subprocess.TimeoutExpired:
                self.exporter.kill()
                self.exporter.wait(5)
        if self.exporter.stderr is not None:
            self.exporter.stderr.close()


# --- bounded parallel work inside the namespace --------------------------------------------------


def in_threads(ns: Any, jobs: Sequence[Any], parallel: int, work: Callable[[Any], Any]) -> list[Any]:
    """work(job) for every job, `parallel` threads at a time, each thread inside the namespace
    (processes it starts and sockets it opens are in there too); results in the jobs' order."""
    results: list[Any] = [None] * len(jobs)
    failures: list[BaseException] = []
    lock = threading.Lock()
    queue = iter(range(len(jobs)))

    def worker() -> None:
        try:
            with ns.inside():
                while True:
                    with lock:
                        n = next(queue, None)
                    if n is None:
                        return
                    results[n] = work(jobs[n])
        except Exception as exc:  # noqa: BLE001  (handed to the caller, raised there)
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(max(1, min(parallel, len(jobs))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)  # every job has its own timeout well below this
    if any(t.is_alive() for t in threads):
        raise RuntimeError("a worker thread did not finish in 900 s")
    if failures:
        raise failures[0]
    return results


def netsnmp_jobs(switches: int, kind: str) -> list[tuple[int, list[str]]]:
    common = ["-v2c", "-c", COMMUNITY, "-t", "2", "-r", "1", "-On"]
    jobs: list[tuple[int, list[str]]] = []
    for i in range(1, switches + 1):
        addr = address(i)
        if kind == "floor":
            jobs.append((i, ["snmpget", *common, addr, SCALARS[0]]))
            continue
        if kind == "long":
            jobs.append((i, ["snmpbulkwalk", *common, "-Cr25", REFERENCE, PLAYPEN]))
            continue
        jobs.append((i, ["snmpget", *common, addr, *SCALARS]))
        walks = COLUMNS.values() if kind == "columns" else TABLES
        jobs += [(i, ["snmpbulkwalk", *common, "-Cr25", addr, oid]) for oid in walks]
    return jobs


def run_netsnmp(lab: Lab, kind: str) -> dict[str, Any]:
    """One batch of net-snmp processes; CPU is every reaped child's (RUSAGE_CHILDREN)."""
    jobs = netsnmp_jobs(lab.args.long_walks if kind == "long" else lab.args.switches, kind)
    agent_pid = (lab.reference if kind == "long" else lab.snmpd).pid  # type: ignore[union-attr]

    def one(job: tuple[int, list[str]]) -> tuple[int, int, int, str]:
        switch, argv = job
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=lab.env, check=False)
        lines = done.stdout.splitlines()
        bad = sum(1 for line in lines if "No Such" in line or "No more variables" in line)
        return switch, sum(1 for line in lines if line.startswith(".")) - bad, done.returncode, done.stderr

    agent0 = proc_cpu_s(agent_pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    got = in_threads(lab.ns, jobs, lab.args.parallel, one)
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    agent = proc_cpu_s(agent_pid) - agent0
    per_switch = Counter[int]()
    failed = []
    for (switch, count, rc, err), (_, argv) in zip(got, jobs, strict=True):
        per_switch[switch] += count
        if rc != 0 or err.strip():
            failed.append(f"{' '.join(argv[-2:])}: rc {rc} {err.strip()[:200]}")
    user, sys_ = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {
        "wall_s": wall,
        "user_s": user,
        "sys_s": sys_,
        "cpu_s": user + sys_,
        "processes": len(jobs),
        "varbinds": sum(per_switch.values()),
        "varbinds_per_switch": {str(k): v for k, v in sorted(Counter(per_switch.values()).items())},
        "failed": len(failed),
        "failures": failed[:5],
        "agent_cpu_s": agent,
    }


PDUS = re.compile(r"^snmp_scrape_pdus_returned (\S+)$", re.MULTILINE)
SENT = re.compile(r"^snmp_scrape_packets_sent (\S+)$", re.MULTILINE)
RETRIED = re.compile(r"^snmp_scrape_packets_retried (\S+)$", re.MULTILINE)


def run_exporter(lab: Lab) -> dict[str, Any]:
    import http.client

    assert lab.exporter is not None
    port = lab.args.exporter_port
    local = threading.local()

    def one(target: str) -> tuple[int, int, int, int, int]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/snmp?target={target}&module=slamon_switch")
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        if resp.status != 200:
            return resp.status, 0, 0, 0, 0
        series = sum(
            1 for line in body.splitlines() if line and line[0] != "#" and not line.startswith("snmp_")
        )
        pdus, sent, retried = (
            int(float(m.group(1))) if m else -1 for m in (rx.search(body) for rx in (PDUS, SENT, RETRIED))
        )
        return 200, pdus, sent, retried, series

    targets = [address(i) for i in range(1, lab.args.switches + 1)]
    agent0 = lab.snmpd_cpu()
    cpu0 = proc_cpu_s(lab.exporter.pid)
    w0 = time.perf_counter()
    got = in_threads(lab.ns, targets, lab.args.exporter_concurrency, one)
    wall = time.perf_counter() - w0
    cpu = proc_cpu_s(lab.exporter.pid) - cpu0
    agent = lab.snmpd_cpu() - agent0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "scrapes": len(got),
        "http_errors": sum(1 for g in got if g[0] != 200),
        "varbinds": sum(g[1] for g in got),
        "varbinds_per_switch": {str(k): v for k, v in sorted(Counter(g[1] for g in got).items())},
        "requests": sum(g[2] for g in got),
        "retried": sum(g[3] for g in got),
        "series_per_switch": {str(k): v for k, v in sorted(Counter(g[4] for g in got).items())},
        "agent_cpu_s": agent,
        "exporter_rss_mb": proc_hwm_mb(lab.exporter.pid),
    }


def codec_alone(lab: Lab, repeat: int = 2000) -> dict[str, Any]:
    """slamon's decoder alone: one real GETBULK reply of the 7 columns from snmpd (as many rows as
    it gives), decoded `repeat` times in this process."""
    import socket

    from slamon.probers.snmp_wire import (
        GET_BULK_REQUEST,
        V2C,
        decode_message,
        encode_oid,
        encode_request,
        parse_oid,
    )

    oids = [encode_oid(parse_oid(oid)) for oid in COLUMNS.values()]
    request = encode_request(V2C, COMMUNITY.encode(), GET_BULK_REQUEST, 1, oids, 0, 17)
    with lab.ns.inside(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.sendto(request, (address(1), 161))
        data = sock.recv(65535)
    varbinds = len(decode_message(data).varbinds)
    c0 = time.process_time()
    for _ in range(repeat):
        decode_message(data)
    cpu = time.process_time() - c0
    return {
        "reply_bytes": len(data),
        "varbinds": varbinds,
        "repeat": repeat,
        "us_per_varbind": cpu / repeat / varbinds * 1e6,
    }


def run_slamon(lab: Lab) -> dict[str, Any]:
    from common import run_timed

    a = lab.args
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-slamon",
        "--switches",
        str(a.switches),
        "--rounds",
        str(a.rounds),
        "--concurrency",
        str(a.concurrency),
        "--max-repetitions",
        str(a.max_repetitions),
        "--timeout",
        str(a.timeout),
        "--retries",
        str(a.retries),
    ]
    agent0 = lab.snmpd_cpu()
    m = run_timed(lab.ns.command(cmd), timeout=600)
    agent = lab.snmpd_cpu() - agent0
    inner = json.loads(m.stdout.strip().splitlines()[-1])
    return {
        "wall_s": m.wall_s,
        "user_s": m.user_s,
        "sys_s": m.sys_s,
        "cpu_s": m.cpu_s,
        "rss_mb": m.rss_mb,
        "agent_cpu_s": agent,
        "inner": inner,
    }


# --- the run --------------------------------------------------------------------------------------


def first_line(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        return f"{cmd[0]}: {exc}"
    return ((done.stdout or done.stderr).strip().splitlines() or ["?"])[0]


def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(HERE.parent))  # for tests.harness.netns
    from common import finish, machine

    from tests.harness.netns import FleetNamespace

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    info["snmpd"] = first_line([SNMPD, "-v"]) if Path(SNMPD).exists() else None
    info["snmpbulkwalk"] = first_line(["snmpbulkwalk", "--version"])
    version = first_line([EXPORTER, "--version"])
    info["snmp_exporter"] = version
    probers = subprocess.run(
        [
            "git",
            "--no-optional-locks",
            "-C",
            str(HERE.parent),
            "status",
            "--porcelain",
            "--",
            "slamon/probers",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.strip()
    info["slamon_probers_clean"] = probers == ""
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    res: dict[str, Any] = {
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "tools": tools,
        "expected_useful_per_switch": useful_per_switch(args.ports),
        "runs": {
            "slamon": [],
            "netsnmp_columns": [],
            "netsnmp_tables": [],
            "netsnmp_floor": [],
            "netsnmp_long": [],
            "exporter": [],
        },
    }
    with (
        tempfile.TemporaryDirectory(prefix="snmp-", dir=out) as tmp,
        FleetNamespace(prefix="slsnmp", ipv6_addresses=()) as ns,
    ):
        lab = Lab(args, ns, Path(tmp))
        res["namespace"] = ns.name
        lab.make_ports()
        res["port_kind"] = lab.port_kind
        lab.start_snmpd()
        res["agent_check"] = lab.check_agents()
        if "netsnmp" in tools:
            res["reference_varbinds"] = lab.start_reference()
        res["codec"] = codec_alone(lab)
        log(f"  agents: {args.switches} addresses on one snmpd, {args.ports} {lab.port_kind} ports; checked")
        try:
            if "exporter" in tools:
                lab.start_exporter(version)
                run_exporter(lab)  # warm-up: the exporter's first scrapes (connections, buffers)
            steps: list[tuple[str, Callable[[], dict[str, Any]]]] = []
            if "slamon" in tools:
                steps.append(("slamon", lambda: run_slamon(lab)))
            if "netsnmp" in tools:
                steps += [
                    ("netsnmp_columns", lambda: run_netsnmp(lab, "columns")),
                    ("netsnmp_tables", lambda: run_netsnmp(lab, "tables")),
                    ("netsnmp_floor", lambda: run_netsnmp(lab, "floor")),
                    ("netsnmp_long", lambda: run_netsnmp(lab, "long")),
                ]
            if "exporter" in tools:
                steps.append(("exporter", lambda: run_exporter(lab)))
            for r in range(args.runs):
                for name, step in steps:
                    m = step()
                    res["runs"][name].append(m)
                    log(f"  run {r + 1} {name:16} " + brief(name, m))
        finally:
            lab.stop_exporter()
    finish(info)
    return res


def brief(name: str, m: dict[str, Any]) -> str:
    if name == "slamon":
        rounds = m["inner"]["rounds"]
        last = rounds[-1]
        return (
            f"process cpu {m['cpu_s']:.2f} s wall {m['wall_s']:.2f} s; rounds cpu "
            + " ".join(f"{x['cpu_s']:.3f}" for x in rounds)
            + f" wall {last['wall_s']:.2f} s; ok {last['ok']}/{last['results']} varbinds {last['varbinds']} "
            f"useful {last['useful_varbinds']} requests {last['requests']} errors {last['errors']}"
        )
    extra = f" failed {m['failed']}" if "failed" in m else f" http errors {m['http_errors']}"
    return (
        f"cpu {m['cpu_s']:.2f} s wall {m['wall_s']:.2f} s varbinds {m['varbinds']}{extra} "
        f"snmpd cpu {m['agent_cpu_s']:.2f} s"
    )


# --- the report -----------------------------------------------------------------------------------


def figures(res: dict[str, Any]) -> dict[str, Any]:
    """Medians (and the runs behind them) of what the report shows."""
    from common import median

    runs = res["runs"]
    f: dict[str, Any] = {}

    def col(rows: list[dict[str, Any]], key: str | Callable[[dict[str, Any]], float]) -> list[float]:
        return [float(key(x) if callable(key) else x[key]) for x in rows]

    def row(name: str, rows: list[dict[str, Any]], cpu: Any, wall: Any, vb: Any, agent: Any = None) -> None:
        if not rows:
            return
        cpus, walls, vbs = col(rows, cpu), col(rows, wall), col(rows, vb)
        per = [c / v * 1e6 if v else float("nan") for c, v in zip(cpus, vbs, strict=True)]
        rate = [v / w if w else float("nan") for v, w in zip(vbs, walls, strict=True)]
        f[name] = {
            "cpu_s": cpus,
            "wall_s": walls,
            "varbinds": vbs,
            "us_per_varbind": per,
            "varbinds_per_s": rate,
            "median_cpu_s": median(cpus),
            "median_wall_s": median(walls),
            "median_varbinds": median(vbs),
            "median_us_per_varbind": median(per),
            "median_varbinds_per_s": median(rate),
        }
        if agent is not None:
            f[name]["agent_cpu_s"] = col(rows, agent)
            f[name]["median_agent_cpu_s"] = median(f[name]["agent_cpu_s"])

    sl = runs["slamon"]
    if sl:
        last = len(sl[0]["inner"]["rounds"]) - 1

        def rnd(i: int, key: str) -> Callable[[dict[str, Any]], float]:
            return lambda x: x["inner"]["rounds"][i][key]

        for label, i in (("slamon_steady", last), ("slamon_first", 0)):
            row(label, sl, rnd(i, "cpu_s"), rnd(i, "wall_s"), rnd(i, "varbinds"))
            row(label + "_useful", sl, rnd(i, "cpu_s"), rnd(i, "wall_s"), rnd(i, "useful_varbinds"))
        rounds_n = last + 1
        row(  # a process per round, as net-snmp's tools are run: its later rounds taken off
            "slamon_process",
            sl,
            lambda x: x["cpu_s"] - sum(r["cpu_s"] for r in x["inner"]["rounds"][1:]),
            lambda x: x["wall_s"] - sum(r["wall_s"] for r in x["inner"]["rounds"][1:]),
            rnd(0, "useful_varbinds"),
        )
        f["slamon_process"]["rounds"] = rounds_n
        f["slamon_process_cpu_s"] = col(sl, "cpu_s")
        f["slamon_startup_cpu_s"] = median(
            col(sl, lambda x: x["cpu_s"] - sum(r["cpu_s"] for r in x["inner"]["rounds"]))
        )
        f["slamon_import_cpu_s"] = median(col(sl, lambda x: x["inner"]["import_cpu_s"]))
        f["slamon_requests"] = median(col(sl, lambda x: x["inner"]["rounds"][-1]["requests"]))
        f["slamon_rss_mb"] = median(col(sl, "rss_mb"))
        f["slamon_agent_cpu_per_round_s"] = median(col(sl, lambda x: x["agent_cpu_s"] / rounds_n))
    for key in NETSNMP:
        row(key, runs.get(key, []), "cpu_s", "wall_s", "varbinds", "agent_cpu_s")
        if runs.get(key):
            f[key]["processes"] = runs[key][0]["processes"]
    if runs["netsnmp_floor"]:
        # each run's batches less that run's start-ups (the floor run's CPU per process)
        floors = [x["cpu_s"] / x["processes"] for x in runs["netsnmp_floor"]]
        f["netsnmp_floor_per_process_s"] = median(floors)
        for key in ("netsnmp_columns", "netsnmp_tables", "netsnmp_long"):
            if not runs.get(key):
                continue
            net = [
                (x["cpu_s"] - x["processes"] * fl) / x["varbinds"] * 1e6 if x["varbinds"] else float("nan")
                for x, fl in zip(runs[key], floors, strict=False)
            ]
            f[key]["us_per_varbind_net"] = net
            f[key]["median_us_per_varbind_net"] = median(net)
    row("exporter", runs["exporter"], "cpu_s", "wall_s", "varbinds", "agent_cpu_s")
    if runs["exporter"]:
        f["exporter"]["median_requests"] = median(col(runs["exporter"], "requests"))
        f["exporter"]["rss_mb"] = max(col(runs["exporter"], "exporter_rss_mb"))
    return f


def report(res: dict[str, Any]) -> str:
    from common import describe, spread

    info, args = res["machine"], res["args"]
    f = res.get("figures") or figures(res)
    n = int(args["switches"])
    us = "{:.1f}"
    lines = [
        f"# SNMP: {n} switches × {args['ports']} ports per round (issue 8)",
        describe(info)
        + (
            "; slamon/probers/ itself as committed"
            if info.get("slamon_probers_clean") and not info.get("slamon_tree_clean")
            else ""
        ),
        (
            f"{info.get('snmpd')}; {info.get('snmpbulkwalk')}; {info.get('snmp_exporter')}; namespace "
            f"{res.get('namespace')}; one snmpd on {n} loopback addresses, {args['ports']} "
            f"{res.get('port_kind')} ports (every {args['down_every']}th down) + lo, PoE rows by `override`; "
            f"{res['expected_useful_per_switch']} useful varbinds per switch"
        ),
        "",
        "| tool | runs | wall s | CPU-s (client) | varbinds | varbinds/s | CPU-µs per varbind | snmpd CPU-s |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def line(label: str, key: str, note: str = "") -> None:
        if key not in f:
            return
        x = f[key]
        agent = spread(x["agent_cpu_s"]) if "agent_cpu_s" in x else "–"
        lines.append(
            f"| {label}{note} | {len(x['cpu_s'])} | {spread(x['wall_s'])} | {spread(x['cpu_s'], '{:.3f}')} | "
            f"{x['median_varbinds']:,.0f} | {x['median_varbinds_per_s']:,.0f} | "
            f"{spread(x['us_per_varbind'], us)} | {agent} |"
        )

    line("slamon SnmpProber, steady round, received varbinds", "slamon_steady")
    line("slamon SnmpProber, steady round, useful varbinds", "slamon_steady_useful")
    line("slamon SnmpProber, first round, received", "slamon_first")
    if "slamon_process" in f:
        line("slamon one-shot: a process for one round (start-up included), useful", "slamon_process")
    if "netsnmp_columns" in f:
        line(
            f"net-snmp: snmpget + 7 snmpbulkwalk per switch ({f['netsnmp_columns']['processes']:,} processes)",
            "netsnmp_columns",
        )
    if "netsnmp_tables" in f:
        line(
            f"net-snmp: snmpget + ifTable, ifXTable, PoE walks ({f['netsnmp_tables']['processes']:,} processes, a superset)",
            "netsnmp_tables",
        )
    if "netsnmp_floor" in f:
        line(
            f"net-snmp start-up floor: snmpget sysUpTime.0 ({f['netsnmp_floor']['processes']:,} processes)",
            "netsnmp_floor",
        )
    if "netsnmp_long" in f:
        line(
            f"net-snmp long walk: snmpbulkwalk of a {res.get('reference_varbinds', 0):,}-varbind table "
            f"({f['netsnmp_long']['processes']:,} processes; reference agent)",
            "netsnmp_long",
        )
    line("snmp_exporter (its process; HTTP client not counted)", "exporter")
    lines.append("")
    if "slamon_steady" in f:
        s = f["slamon_steady"]
        lines.append(
            f"- slamon per switch: {f['slamon_requests'] / n:.1f} requests, "
            f"{s['median_varbinds'] / n:.0f} varbinds received, "
            f"{f['slamon_steady_useful']['median_varbinds'] / n:.0f} useful; process start-up and imports "
            f"{f['slamon_startup_cpu_s']:.2f} CPU-s ({f['slamon_import_cpu_s']:.2f} s of it importing slamon's "
            f"prober after the interpreter started); the whole process of {f['slamon_process']['rounds']} "
            f"rounds {spread(f['slamon_process_cpu_s'])} CPU-s, peak RSS {f['slamon_rss_mb']:.0f} MB; snmpd "
            f"{f['slamon_agent_cpu_per_round_s']:.3f} CPU-s per round"
        )
    if "netsnmp_floor_per_process_s" in f:
        nets = [
            f"{spread(f[key]['us_per_varbind_net'], us)} µs ({label})"
            for key, label in (
                ("netsnmp_long", "the long walk"),
                ("netsnmp_tables", "ifTable/ifXTable walks"),
                ("netsnmp_columns", "the 7 columns; a small difference of large numbers"),
            )
            if "us_per_varbind_net" in f.get(key, {})
        ]
        lines.append(
            f"- net-snmp's start-up: {f['netsnmp_floor_per_process_s'] * 1e3:.2f} CPU-ms per process (the floor "
            "run ÷ its processes). Each run's batches less their processes' start-ups, net-snmp's CPU per "
            "varbind once started: " + "; ".join(nets)
        )
    if "codec" in res:
        c = res["codec"]
        lines.append(
            f"- slamon's decoder alone: {c['us_per_varbind']:.2f} CPU-µs per varbind (a real {c['varbinds']}-varbind "
            f"GETBULK reply of {c['reply_bytes']:,} bytes, decoded {c['repeat']:,} times)"
        )
    if "exporter" in f:
        e = f["exporter"]
        lines.append(
            f"- snmp_exporter: {e['median_requests'] / n:.1f} SNMP requests per switch, peak RSS "
            f"{e['rss_mb']:.0f} MB, {args['exporter_concurrency']} scrapes at a time; its varbinds are "
            "`snmp_scrape_pdus_returned` (what it keeps of each walk: the useful ones)"
        )
    lines += ["", "Goals (issue 8):"]
    if "slamon_steady_useful" in f and "netsnmp_columns" in f:
        sl_u = f["slamon_steady_useful"]["median_us_per_varbind"]
        sl_p = f["slamon_process"]["median_us_per_varbind"]
        bases = [
            (
                "as the tools fetch these data (1 process per walk), both start-ups included",
                sl_p,
                f["netsnmp_columns"]["median_us_per_varbind"],
                "one-shot",
            )
        ]
        for key, label in (
            ("netsnmp_long", "net-snmp started once: its long walk"),
            ("netsnmp_tables", "net-snmp started once: ifTable/ifXTable walks"),
            ("netsnmp_columns", "net-snmp started once: the 7 columns (noisy)"),
        ):
            if "median_us_per_varbind_net" in f.get(key, {}):
                bases.append((label, sl_u, f[key]["median_us_per_varbind_net"], "steady round"))
        bases.append(("the issue's figure for snmpbulkwalk, ≈ 7 µs", sl_u, ISSUE_NETSNMP_US, "steady round"))
        lines.append(f"- CPU per useful varbind, slamon ÷ net-snmp (goal ≤ {GOAL_RATIO:g}×):")
        for label, mine, theirs, which in bases:
            ratio = mine / theirs if theirs else float("nan")
            lines.append(
                f"  - {label}: slamon {which} {mine:.1f} µs ÷ {theirs:.1f} µs = **{ratio:.2f}×** "
                f"→ **{'pass' if ratio <= GOAL_RATIO else 'not met'}**"
            )
        if "exporter" in f:
            lines.append(
                f"- against snmp_exporter: slamon's steady round {sl_u / f['exporter']['median_us_per_varbind']:.2f}× "
                "its CPU per varbind"
            )
    if "slamon_steady" in f:
        cpu = f["slamon_steady"]["median_cpu_s"]
        share = SCALE / n * cpu / INTERVAL_S
        whole = SCALE / n * f["slamon_process"]["median_cpu_s"] / INTERVAL_S
        lines.append(
            f"- {SCALE:,} switches every {INTERVAL_S:.0f} s: {SCALE // n} × {cpu:.3f} CPU-s (a steady round of {n}) "
            f"÷ {INTERVAL_S:.0f} s = **{share:.1%}** of one core (goal < {GOAL_SHARE:.0%}) → "
            f"**{'pass' if share < GOAL_SHARE else 'FAIL'}**; a one-shot process per round instead: {whole:.1%}"
        )
        bad = [
            (i + 1, j + 1, r)
            for i, x in enumerate(res["runs"]["slamon"])
            for j, r in enumerate(x["inner"]["rounds"])
            if r["ok"] != r["results"] or r["resent_switches"] or r["errors"]
        ]
        first = res["runs"]["slamon"][0]["inner"]["rounds"][0]

        def hist(key: str) -> str:
            return ", ".join(f"{k} ({v} switches)" for k, v in first[key].items())

        lines.append(
            "- slamon's rounds: "
            + (
                "every switch answered in every round, no request resent; per switch, ports "
                f"{hist('ports_per_switch')}, down {hist('down_ports_per_switch')}, delivering PoE "
                f"{hist('poe_ports_per_switch')}"
                if not bad
                else f"{len(bad)} rounds with failures or resends, first: run {bad[0][0]} round {bad[0][1]}: {bad[0][2]}"
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="runs of every tool, one after the other")
    p.add_argument("--switches", type=int, default=200)
    p.add_argument("--ports", type=int, default=48)
    p.add_argument("--down-every", type=int, default=6, help="every Nth port is left down")
    p.add_argument("--rounds", type=int, default=2, help="slamon rounds per process (the last is steady)")
    p.add_argument("--concurrency", type=int, default=100, help="slamon: switches polled at a time")
    p.add_argument("--max-repetitions", type=int, default=25)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds per request (slamon, net-snmp -t)")
    p.add_argument("--retries", type=int, default=1)
    p.add_argument("--parallel", type=int, default=8, help="net-snmp processes at a time")
    p.add_argument("--long-rows", type=int, default=1430, help="rows of the reference table (× 7 columns)")
    p.add_argument("--long-walks", type=int, default=20, help="snmpbulkwalk processes of it per run")
    p.add_argument("--exporter-concurrency", type=int, default=10, help="snmp_exporter scrapes at a time")
    p.add_argument("--exporter-port", type=int, default=19116, help="inside the namespace")
    p.add_argument("--tools", default="slamon,netsnmp,exporter")
    p.add_argument("--out", type=Path, default=HERE / "out" / "snmp")
    p.add_argument("--json", type=Path, help="write the figures as JSON (default: OUT/bench_snmp.json)")
    p.add_argument("--report", type=Path, help="print the report of figures saved with --json; run nothing")
    p.add_argument("--child-slamon", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_slamon:
        return child_slamon(args)
    if args.report is not None:
        print(report(json.loads(args.report.read_text(encoding="utf-8"))))
        return 0
    if args.runs < 1 or not 1 <= args.switches <= 2000 or not 1 <= args.ports <= 500 or args.down_every < 2:
        p.error("--runs ≥ 1, 1 ≤ --switches ≤ 2,000, 1 ≤ --ports ≤ 500, --down-every ≥ 2")
    if os.geteuid() != 0:
        p.error("needs root: a network namespace, interfaces and snmpd on port 161")
    for tool, package in ((SNMPD, "snmpd"), ("snmpbulkwalk", "snmp"), ("/usr/bin/time", "time")):
        if shutil.which(tool) is None:
            p.error(f"{tool} missing: apt-get install -y --no-install-recommends {package}")
    if "exporter" in args.tools and shutil.which(EXPORTER) is None:
        p.error(f"{EXPORTER} missing: apt-get install -y --no-install-recommends prometheus-snmp-exporter")
    from common import save

    res = run(args)
    res["figures"] = figures(res)
    text = report(res)
    print(text)
    save(args.json or args.out / "bench_snmp.json", res)
    (args.json or args.out / "bench_snmp.json").with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
