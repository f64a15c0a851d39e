"""Every panel's query, run against a real Prometheus (Debian's, 1 s scrape) scraping a real
`slamon run`: the quickstart fleet, with its `fail` script and silenced addresses making devices
down by their own fault and behind a down switch, and one switch polled over SNMP (snmpsim) with a
port down, a port shut, a PoE fault and a reboot. Each query, with the dashboard's variables set to
values Prometheus really has, must return series, and every metric it names must exist; and a few
panels must show exactly the faults made.

All of it runs once for the module (about 10 s, most of it waiting for Prometheus's first scrapes
and slamon's month-to-date figures), inside a network namespace (tests/harness/netns.py): root, `ip`
and `nft` are needed; without them the tests skip, unless SLAMON_REQUIRE_NETNS=1 (CI), where they
fail."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from slamon.video.calibration import make_all
from tests.dashboards import (
    LABEL_VALUES,
    METRIC,
    Target,
    committed,
    regex_value,
    substitute,
    targets,
    used,
    variables,
)
from tests.harness.fixtures import require_namespaces, require_tool
from tests.harness.netns import FleetNamespace
from tests.harness.rtsp import SERVER, SYSTEM_PYTHON, require_rtsp_server
from tests.harness.snmp import Port, need_snmpsim, switch_snmprec

pytestmark = pytest.mark.slow  # `slamon run`, snmpsim and Prometheus as processes, in real time

SLAMON_PORT = 19131  # inside the test's own network namespace: nothing else can hold these
PROMETHEUS_PORT = 19190
SNMP_ADDRESS, SNMP_PORT = "127.0.40.12", 1161  # QS-SW2 answers SNMP on its own address
RTSP_PORT = 18554  # QS-C0006's stream: a black picture (gst-rtsp-server, tests/harness/rtsp.py)
QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart"
PORTS = [
    Port("Gi0/1"),
    Port("Gi0/2"),
    Port("Gi0/3"),
    Port("Gi0/4"),
    Port("Gi0/5", oper=2),  # down: QS-C0005's uplink
    Port("Gi0/6", poe=4),  # PoE fault: QS-C0006's uplink
    Port("Gi0/7", oper=2, admin=2),  # shut
    Port("Gi0/8", poe=None),
]
UPTIME = 8_640_000  # ticks: 1 day; the switch "reboots" to REBOOTED during the test
REBOOTED = 3_000
STEP = 1  # query_range step, seconds


def fleet(tmp_path: Path) -> Path:
    """examples/quickstart on a 1 s interval, listening on SLAMON_PORT, with QS-SW2 polled over SNMP
    and the cameras behind it wired to its ports."""
    here = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, here, ignore=shutil.ignore_patterns("out"))
    config = here / "slamon.yaml"
    text = config.read_text(encoding="utf-8")
    assert "icmp: {interval: 10s, timeout: 1s}" in text
    config.write_text(
        text.replace(
            "icmp: {interval: 10s, timeout: 1s}",
            "icmp: {interval: 1s, timeout: 500ms}\n"
            "  snmp: {interval: 2s, timeout: 1s, retries: 0, community_file: community}\n"
            "  video: {interval: 5s, sample: 1s, timeout: 2s, frames: 4}",
        ).replace("127.0.0.1:9108", f"127.0.0.1:{SLAMON_PORT}"),
        encoding="utf-8",
    )
    (here / "community").write_text("qs-sw2\n", encoding="utf-8")
    inventory = here / "inventory.yaml"
    lines = []
    for line in inventory.read_text(encoding="utf-8").splitlines():
        if "id: QS-SW2," in line:
            line = line.replace("}", f", snmp: {{version: 2c, port: {SNMP_PORT}}}}}")
        for n in (4, 5, 6):
            if f"id: QS-C000{n}," in line:
                line = line.replace("}", f", uplink: {{switch: QS-SW2, port: Gi0/{n}}}}}")
        if "id: QS-C0006," in line:
            line = line[: line.rindex("}")] + f", stream: 'rtsp://127.0.0.1:{RTSP_PORT}/cam'}}"
        lines.append(line)
    inventory.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def snmp_data(where: Path, uptime: int) -> Path:
    data = where / "snmp" / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / "qs-sw2.snmprec"  # community qs-sw2
    path.write_text(switch_snmprec(PORTS, uptime_ticks=uptime), encoding="utf-8")
    later = time.time() + 2  # snmpsim re-reads a file whose whole-second mtime changed
    os.utime(path, (later, later))
    return data


def prometheus_config(where: Path) -> Path:
    config = where / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: slamon\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{SLAMON_PORT}']}}]\n",
        encoding="utf-8",
    )
    return config


class Prometheus:
    """Prometheus's HTTP API, called from inside the namespace."""

    def __init__(self, ns: FleetNamespace) -> None:
        self.ns = ns

    def get(self, path: str, params: Mapping[str, str] | list[tuple[str, str]]) -> Any:
        url = f"http://127.0.0.1:{PROMETHEUS_PORT}{path}?{urllib.parse.urlencode(params)}"
        with self.ns.inside(), urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", {"query": expr})["result"])

    def query_range(self, expr: str, seconds: int = 30) -> list[dict[str, Any]]:
        now = time.time()
        params = {"query": expr, "start": f"{now - seconds:.3f}", "end": f"{now:.3f}", "step": str(STEP)}
        return list(self.get("/api/v1/query_range", params)["result"])

    def label_values(self, selector: str, label: str) -> list[str]:
        now = time.time()
        params = [("match[]", selector), ("start", f"{now - 60:.3f}"), ("end", f"{now:.3f}")]
        return sorted(self.get(f"/api/v1/label/{label}/values", params))

    def names(self) -> set[str]:
        return set(self.get("/api/v1/label/__name__/values", {}))


def wait_for(
    check: Callable[[], bool],
    what: str,
    limit: float,
    log: Callable[[], str],
    alive: Callable[[], None] = lambda: None,
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        alive()
        try:
            if check():
                return
        except OSError:  # Prometheus not listening yet
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}\n{log()}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus scraping `slamon run` on the simulated fleet, once it has seen every kind of series
    the dashboards show, and scraped a few times (one run for the module: it takes ~10 s)."""
    require_namespaces()
    tmp_path = tmp_path_factory.mktemp("dashboards")
    prometheus = require_tool("prometheus", "prometheus")
    with FleetNamespace() as fleet_ns:
        snmpsim = need_snmpsim()
        config = fleet(tmp_path)
        here = config.parent
        data = snmp_data(tmp_path, UPTIME)
        logs: dict[str, Path] = {
            name: tmp_path / f"{name}.log" for name in ("slamon", "snmpsim", "prometheus", "rtsp")
        }

        def log() -> str:
            return "\n".join(
                f"--- {name}:\n{path.read_text(errors='replace')[-3000:]}" for name, path in logs.items()
            )

        def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
            with logs[name].open("wb") as out:
                return fleet_ns.popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

        def running() -> None:
            """Stop waiting at once if a process died (its log says why)."""
            for name, proc in processes.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited with {proc.returncode}\n{log()}")

        # a switch down with two of its cameras (upstream:QS-SW1), before anything starts
        fleet_ns.silence("127.0.40.11", "127.0.40.101", "127.0.40.102")
        processes: dict[str, subprocess.Popen[bytes]] = {}
        processes["snmpsim"] = start(
            "snmpsim",
            [
                str(snmpsim),
                f"--data-dir={data}",
                f"--cache-dir={tmp_path / 'snmp' / 'cache'}",
                f"--agent-udpv4-endpoint={SNMP_ADDRESS}:{SNMP_PORT}",
                "--log-level=error",
            ],
            env=dict(os.environ, SNMPSIM_ALLOW_ROOT="true"),
        )
        require_rtsp_server()
        black = make_all(["black"])["black"]
        argv = [SYSTEM_PYTHON, str(SERVER), "--host=127.0.0.1", f"--port={RTSP_PORT}", f"--mount=cam={black}"]
        with logs["rtsp"].open("wb") as out:  # it serves until its stdin closes (when it is stopped)
            processes["rtsp"] = fleet_ns.popen(
                argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT
            )
        processes["prometheus"] = start(
            "prometheus",
            [
                prometheus,
                f"--config.file={prometheus_config(tmp_path)}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
                "--log.level=warn",
            ],
        )
        pid_file = here / "out" / "slamon.pid"
        processes["slamon"] = start(
            "slamon",
            [sys.executable, "-m", "slamon.cli", "-c", str(config), "run", "--pid-file", str(pid_file)],
        )
        wait_for(pid_file.exists, "slamon to start", 15, log, running)
        # a camera down by its own fault, as a user makes one (the script sends slamon a SIGHUP)
        subprocess.run([str(here / "fail"), "QS-C0004"], capture_output=True, text=True, check=True)

        prom = Prometheus(fleet_ns)

        def has(expr: str) -> Callable[[], bool]:
            return lambda: bool(prom.query(expr))

        wait_for(
            has('slamon_switch_snmp_up{switch="QS-SW2"} == 1'), "a good SNMP poll of QS-SW2", 30, log, running
        )
        snmp_data(tmp_path, REBOOTED)  # sysUpTime goes back: a reboot
        for expr, what in (
            ('slamon_device_cause{device="QS-C0004",cause="device"}', "QS-C0004 down by its own fault"),
            ('slamon_device_cause{device="QS-C0001",cause="upstream:QS-SW1"}', "QS-C0001 behind QS-SW1"),
            ('slamon_switch_reboots_total{switch="QS-SW2"} >= 1', "the reboot of QS-SW2"),
            ("slamon_mtd_district_rate", "the month-to-date figures"),
            ('slamon_video_defect{device="QS-C0006",defect="black"}', "QS-C0006's black picture"),
            ("slamon_repair_deadline_seconds", "the open outages' repair deadlines"),
            ("count_over_time(slamon_devices[1m]) >= 5", "five scrapes"),
        ):
            wait_for(has(expr), what, 30, log, running)
        yield prom


def choices(prom: Prometheus, doc: dict[str, Any]) -> dict[str, list[str]]:
    """Each variable's values as Grafana would offer them (label_values, in order, each depending on
    the ones before it at their default: All for a multi-value variable, else its first value).
    A multi-value variable offers All (its allValue) first."""
    chosen: dict[str, str] = {}
    offered: dict[str, list[str]] = {}
    for v in variables(doc):
        if v["type"] != "query":
            continue
        match = LABEL_VALUES.match(v["query"])
        assert match, f"{v['name']}: not a label_values() query: {v['query']!r}"
        selector, label = substitute(match.group(1), chosen), match.group(2)
        values = prom.label_values(selector, label)
        assert values, f"variable {v['name']}: label_values({selector}, {label}) is empty"
        if v.get("multi") or v.get("includeAll"):
            offered[v["name"]] = [v["allValue"], *map(regex_value, values)]
        else:
            offered[v["name"]] = values
        chosen[v["name"]] = offered[v["name"]][0]
    return offered


def series(prom: Prometheus, target: Target, values: Mapping[str, str]) -> list[dict[str, Any]]:
    expr = substitute(target.expr, values)
    return prom.query(expr) if target.instant else prom.query_range(expr)


def test_every_panel_query_returns_series(live: Prometheus) -> None:
    started = time.monotonic()
    dashboards = committed()
    names = live.names()
    problems: list[str] = []
    checked = 0
    for name, doc in dashboards.items():
        offered = choices(live, doc)
        for target in targets({name: doc}):
            missing = sorted(set(METRIC.findall(target.expr)) - names)
            if missing:
                problems.append(f"{target}: no such metric in Prometheus: {', '.join(missing)}")
            wanted = sorted(used(target.expr) & offered.keys())
            combos = [
                dict(zip(wanted, c, strict=True)) for c in itertools.product(*(offered[v] for v in wanted))
            ]
            # The default view (All for every multi-value variable) must show something for some value
            # of the single-value ones (a switch for the port panels), and so must a real value of
            # each multi-value variable.
            found = [c for c in combos if series(live, target, c)]
            defaults = [c for c in found if all(c[v] == offered[v][0] for v in wanted if _multi(doc, v))]
            concrete = [c for c in found if all(c[v] != offered[v][0] for v in wanted if _multi(doc, v))]
            if not defaults or not concrete:
                problems.append(
                    f"{target}: no series from {target.expr!r} ({len(combos)} settings of {wanted})"
                )
            checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 30, checked
    assert time.monotonic() - started < 30


def _multi(doc: dict[str, Any], name: str) -> bool:
    return any(v["name"] == name and (v.get("multi") or v.get("includeAll")) for v in variables(doc))


def test_the_panels_show_the_simulated_faults(live: Prometheus) -> None:
    """Not only series: the ones the faults made. Two devices down by their own fault (QS-SW1, and
    QS-C0004 by the fail script), two behind QS-SW1; QS-SW2's ports as snmpsim serves them."""
    dashboards = committed()

    def values(dashboard: str, title: str, **chosen: str) -> list[tuple[dict[str, str], float]]:
        [target] = [t for t in targets({dashboard: dashboards[dashboard]}) if t.panel == title]
        found = series(live, target, {"contract": ".*", "district": ".*", **chosen})
        return [(s["metric"], float((s.get("value") or s["values"][-1])[1])) for s in found]

    assert values("fleet-overview", "Devices down now") == [({}, 4.0)]
    assert values("fleet-overview", "Down by their own fault") == [({}, 2.0)]
    assert sorted((m["cause"], v) for m, v in values("fleet-overview", "Down now, by cause")) == [
        ("device", 2.0),
        ("upstream", 2.0),
    ]
    assert sorted(
        (m["device"], m["cause"]) for m, _ in values("fleet-overview", "Down devices and their cause")
    ) == [
        ("QS-C0001", "upstream:QS-SW1"),
        ("QS-C0002", "upstream:QS-SW1"),
        ("QS-C0004", "device"),
        ("QS-SW1", "device"),
    ]
    down, up = 2.0, 0.0  # the State panel's codes
    assert [v for _, v in values("device", "State", device="QS-C0004")] == [down]
    assert [v for _, v in values("device", "State", device="QS-C0005")] == [up]  # its port is down, not it
    assert sorted(
        (m["port"], m["fault"]) for m, _ in values("device", "Ports with a fault now", device="QS-SW2")
    ) == [
        ("Gi0/5", "down"),
        ("Gi0/6", "PoE fault"),
        ("Gi0/7", "down"),
        ("Gi0/7", "shut"),
    ]
    assert values("device", "Reboots seen", device="QS-SW2")[0][1] >= 1
    [(_, online)] = values("contract-month", "Online rate", contract="QS-2026")
    assert 0 < online <= 1
