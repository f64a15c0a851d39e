"""`slamon run` as a process, inside a network namespace: it serves, stops on SIGTERM within 5 s,
reloads its inventory on SIGHUP, and what /metrics prints passes `promtool check metrics`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from slamon.loaders.config import load_config
from slamon.model import DeviceId
from slamon.store import Store
from tests.harness import no_ipv6
from tests.harness.fixtures import require_tool, unavailable
from tests.harness.netns import FleetNamespace

pytestmark = pytest.mark.slow  # `slamon run` as a process, in real time

PORT = 19131  # inside each test's own network namespace: nothing else can hold it
CONTRACT = "id: C1\nvendor: v\nterm: {start: 2025-01-01, months: 60}\nfees: {camera: '10', switch: '0'}\n"
INVENTORY = """\
sites:
  - {id: S1, name: n, district: 右江区, area: urban}
devices:
  - {id: SW1, kind: switch, address: 127.0.30.1, site: S1, contract: C1}
  - {id: CAM1, kind: camera, address: 127.0.30.11, site: S1, contract: C1, parent: SW1}
  - {id: CAM2, kind: camera, address: 127.0.30.12, site: S1, contract: C1, parent: SW1}
"""


@pytest.fixture
def service_files(tmp_path: Path) -> Path:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "c1.yaml").write_text(CONTRACT, encoding="utf-8")
    (tmp_path / "inventory.yaml").write_text(INVENTORY, encoding="utf-8")
    (tmp_path / "slamon.yaml").write_text(
        "database: sqlite:///slamon.db\ninventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n"
        f"listen: 127.0.0.1:{PORT}\nprobes: {{icmp: {{interval: 1s, timeout: 500ms}}}}\n",
        encoding="utf-8",
    )
    return tmp_path / "slamon.yaml"


def get(fleet_ns: FleetNamespace, path: str) -> tuple[int, bytes]:
    with fleet_ns.inside():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=2) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()


def wait_for(fleet_ns: FleetNamespace, check: object, what: str, limit: float = 15) -> None:
    """Poll the running service (a real process keeps real time) until `check` holds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def service(fleet_ns: FleetNamespace, service_files: Path) -> Iterator[subprocess.Popen[str]]:
    proc = fleet_ns.popen(
        [sys.executable, "-m", "slamon.cli", "-c", str(service_files), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(fleet_ns, lambda: get(fleet_ns, "/healthz")[0] == 200, "the service to answer /healthz")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def devices(fleet_ns: FleetNamespace) -> dict[str, dict[str, object]]:
    status, body = get(fleet_ns, "/api/v1/devices")
    assert status == 200
    return {d["id"]: d for d in json.loads(body)["devices"]}


def test_it_serves_stops_on_sigterm_and_reloads_on_sighup(
    fleet_ns: FleetNamespace, service_files: Path, service: subprocess.Popen[str]
) -> None:
    out = Output(service)
    wait_for(fleet_ns, lambda: {d["state"] for d in devices(fleet_ns).values()} == {"up"}, "every device up")

    fleet_ns.silence("127.0.30.12")
    wait_for(fleet_ns, lambda: devices(fleet_ns)["CAM2"]["state"] == "down", "CAM2 to go down (3 rounds)")
    assert devices(fleet_ns)["CAM2"]["cause"] == "device"

    inventory = service_files.parent / "inventory.yaml"
    inventory.write_text(
        INVENTORY + "  - {id: CAM3, kind: camera, address: 127.0.30.13, site: S1, contract: C1}\n",
        encoding="utf-8",
    )
    service.send_signal(signal.SIGHUP)
    wait_for(fleet_ns, lambda: devices(fleet_ns).get("CAM3", {}).get("state") == "up", "CAM3 after SIGHUP")
    assert devices(fleet_ns)["CAM2"]["state"] == "down", "a reload keeps the live state"

    inventory.write_text(
        "devices: [oops\n", encoding="utf-8"
    )  # a broken file is refused, the service goes on
    service.send_signal(signal.SIGHUP)
    wait_for(fleet_ns, lambda: "reload refused" in out.text(), "the broken file to be refused")
    assert service.poll() is None
    assert "CAM3" in devices(fleet_ns)

    started = time.monotonic()
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=5) == 0
    assert time.monotonic() - started < 5
    log = out.all()
    assert "reload refused" in log
    assert "device CAM2 down" in log
    assert "stopped" in log


def test_metrics_pass_promtool(
    fleet_ns: FleetNamespace, service: subprocess.Popen[str], tmp_path: Path
) -> None:
    promtool = require_tool("promtool", "prometheus")
    fleet_ns.silence("127.0.30.1/32", "127.0.30.11")
    wait_for(fleet_ns, lambda: b'cause="upstream:SW1"' in get(fleet_ns, "/metrics")[1], "an upstream cause")
    status, body = get(fleet_ns, "/metrics")
    assert status == 200
    done = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    text = body.decode()
    assert (
        'slamon_device_cause{device="SW1",kind="switch",site="S1",district="右江区",contract="C1",cause="device"} 1'
        in text
    )
    assert 'slamon_rounds_total{probe="icmp"}' in text


def quickstart(tmp_path: Path, icmp: str) -> Path:
    """examples/quickstart as a user runs it, with these ICMP settings, on this test's port."""
    here = tmp_path / "quickstart"
    shutil.copytree(
        Path(__file__).parents[2] / "examples" / "quickstart", here, ignore=shutil.ignore_patterns("out")
    )
    config = here / "slamon.yaml"
    text = config.read_text(encoding="utf-8")
    assert "icmp: {interval: 10s, timeout: 1s}" in text
    assert "127.0.0.1:9108" in text
    config.write_text(
        text.replace("icmp: {interval: 10s, timeout: 1s}", f"icmp: {icmp}").replace(
            "127.0.0.1:9108", f"127.0.0.1:{PORT}"
        ),
        encoding="utf-8",
    )
    return config


def test_the_quickstart_fleet_and_its_fail_script(fleet_ns: FleetNamespace, tmp_path: Path) -> None:
    """examples/quickstart as a user runs it (on a 1 s interval so the test is quick)."""
    config = quickstart(tmp_path, "{interval: 1s, timeout: 500ms}")
    here = config.parent
    proc = fleet_ns.popen(
        [
            sys.executable,
            "-m",
            "slamon.cli",
            "-c",
            str(config),
            "run",
            "--pid-file",
            str(here / "out" / "slamon.pid"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            fleet_ns, lambda: len(devices(fleet_ns)) == 9 and (here / "out" / "slamon.pid").exists(), "start"
        )
        wait_for(fleet_ns, lambda: {d["state"] for d in devices(fleet_ns).values()} == {"up"}, "all up")
        fail = subprocess.run([str(here / "fail"), "QS-C0003"], capture_output=True, text=True, check=True)
        assert "QS-C0003 stops answering (was 127.0.40.103)" in fail.stdout
        again = subprocess.run([str(here / "fail"), "QS-C0005"], capture_output=True, text=True, check=False)
        assert again.returncode == 1
        assert "one device at a time (addresses are unique): restore QS-C0003 first" in again.stderr
        wait_for(fleet_ns, lambda: devices(fleet_ns)["QS-C0003"]["state"] == "down", "QS-C0003 down")
        subprocess.run(
            [str(here / "fail"), "--restore", "QS-C0003"], capture_output=True, text=True, check=True
        )
        wait_for(fleet_ns, lambda: devices(fleet_ns)["QS-C0003"]["state"] == "up", "QS-C0003 up again")
        status, body = get(fleet_ns, "/api/v1/outages?device=QS-C0003")
        [outage] = json.loads(body)["outages"]
        assert (status, outage["open"], list(outage["causes"])) == (200, False, ["device"])
        assert outage["evidence"]["recovered"] == outage["end"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    assert not (here / "out" / "slamon.pid").exists(), "the pid file goes with the process"


# --- stopping: during a round, during start-up ------------------------------------------------


def run_argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "slamon.cli", "-c", str(config), "run", *args]


class Output:
    """A process's stdout, read by a thread as it comes, so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._chunks: list[str] = []
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._chunks.append(line)

    def text(self) -> str:
        return "".join(self._chunks)

    def all(self) -> str:
        """Everything, once the process has ended."""
        self._thread.join(timeout=5)
        return self.text()


def round_in_flight(fleet_ns: FleetNamespace) -> bool:
    """The first ICMP round has begun and not ended (/healthz: a last round, none counted)."""
    status, body = get(fleet_ns, "/healthz")
    icmp = json.loads(body)["probes"]["icmp"]
    return status == 200 and icmp["last_round"] is not None and icmp["rounds"] == 0


def stored_results(config: Path, *devices: str) -> dict[str, list[bool]]:
    """Each device's stored ICMP results (ok or not), oldest first."""
    store = Store(load_config(config).database)
    try:
        with store.begin() as tx:
            keys = tx.keys.find([DeviceId(d) for d in devices])
            found = dict(tx.results.of_devices(keys.values()))
    finally:
        store.close()
    return {
        d: found[keys[DeviceId(d)]].reach_ok.tolist() if keys.get(DeviceId(d)) in found else []
        for d in devices
    }


def test_sigterm_during_a_long_round_waits_then_cancels_it_quietly(
    fleet_ns: FleetNamespace, tmp_path: Path
) -> None:
    """Nine devices pinged two a second: a round takes over 4 s (its interval, 10 s, is its
    deadline). SIGTERM in the middle of the first one: slamon waits STOP_WITHIN (2 s) for it,
    cancels it with one WARNING line and no traceback, flushes, and exits 0 within 5 s."""
    config = quickstart(tmp_path, "{interval: 10s, rate: 2}")
    proc = fleet_ns.popen(run_argv(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Output(proc)
    wait_for(fleet_ns, lambda: round_in_flight(fleet_ns), "the first round to begin")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    took = time.monotonic() - started
    log = out.all()
    assert 2 < took < 5, f"stopped {took:.1f} s after SIGTERM:\n{log}"
    assert not [w for w in ("Traceback", "CancelledError", " ERROR ") if w in log], log
    cancelled = [line for line in log.splitlines() if "cancelled" in line]
    assert len(cancelled) == 1, log
    assert (
        " WARNING slamon.service.scheduler: stopping: cancelled the icmp round, still running after 2 s"
        in cancelled[0]
    )
    assert log.rstrip().endswith("INFO slamon.service.serve: stopped"), log
    # what the cut round got is stored: the first device answered at once
    assert stored_results(config, "QS-C0001")["QS-C0001"] == [True], log


def test_sigterm_during_a_round_lets_it_finish_and_store_its_results(
    fleet_ns: FleetNamespace, service_files: Path
) -> None:
    """A round that ends within the grace (a silent device makes it last its 1.5 s timeout,
    well inside the 2 s grace even on a loaded machine) is finished, and its results stored,
    before slamon exits 0."""
    service_files.write_text(
        service_files.read_text(encoding="utf-8").replace(
            "{interval: 1s, timeout: 500ms}", "{interval: 10s, timeout: 1500ms}"
        ),
        encoding="utf-8",
    )
    fleet_ns.silence("127.0.30.12")
    proc = fleet_ns.popen(
        run_argv(service_files), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out = Output(proc)
    wait_for(fleet_ns, lambda: round_in_flight(fleet_ns), "the first round to begin")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    took = time.monotonic() - started
    log = out.all()
    assert took < 5, log
    assert not [w for w in ("cancelled", "Traceback") if w in log], log
    assert stored_results(service_files, "SW1", "CAM1", "CAM2") == {
        "SW1": [True],
        "CAM1": [True],
        "CAM2": [False],
    }


@contextlib.contextmanager
def database_held(config: Path) -> Iterator[None]:
    """The service's database, created, then locked by this test: a `slamon run` started meanwhile
    waits (up to SQLite's 5 s busy timeout) to open it, so it is surely still starting."""
    url = load_config(config).database
    Store(url).close()
    conn = sqlite3.connect(str(make_url(url).database), isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        conn.close()  # lets the service go on


def test_sigterm_during_start_up_stops_cleanly_and_removes_the_pid_file(
    fleet_ns: FleetNamespace, service_files: Path
) -> None:
    pid_file = service_files.parent / "run" / "slamon.pid"
    with database_held(service_files):
        proc = fleet_ns.popen(
            run_argv(service_files, "--pid-file", str(pid_file)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out = Output(proc)
        wait_for(fleet_ns, pid_file.exists, "the pid file")
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    log = out.all()
    assert not pid_file.exists(), "the pid file goes with the process"
    assert not [w for w in ("serving /metrics", "Traceback") if w in log], log
    assert "stopped" in log.splitlines()[-1], log


def test_sigterm_while_the_files_are_read_stops_cleanly(fleet_ns: FleetNamespace, tmp_path: Path) -> None:
    """The earliest start-up: slamon.yaml is a pipe nobody has written yet, so `slamon run` is
    surely still reading its files when SIGTERM comes."""
    config = tmp_path / "slamon.yaml"
    os.mkfifo(config)
    proc = fleet_ns.popen(run_argv(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Output(proc)
    writer: list[int] = []

    def reading() -> bool:  # opening the pipe's writing end succeeds once slamon opened it to read
        try:
            writer.append(os.open(config, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return False
        return True

    wait_for(fleet_ns, reading, "slamon to read slamon.yaml")
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        os.close(writer[0])
    log = out.all()
    assert len(log.splitlines()) == 1, log
    assert log.rstrip().endswith("INFO slamon: stopped while starting"), log


def test_sighup_during_start_up_reloads_once_it_is_up(fleet_ns: FleetNamespace, service_files: Path) -> None:
    pid_file = service_files.parent / "slamon.pid"
    with database_held(service_files):
        proc = fleet_ns.popen(
            run_argv(service_files, "--pid-file", str(pid_file)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out = Output(proc)
        wait_for(fleet_ns, pid_file.exists, "the pid file")  # written once the files are read
        (service_files.parent / "inventory.yaml").write_text(
            INVENTORY + "  - {id: CAM3, kind: camera, address: 127.0.30.13, site: S1, contract: C1}\n",
            encoding="utf-8",
        )
        proc.send_signal(signal.SIGHUP)
    wait_for(fleet_ns, lambda: "CAM3" in devices(fleet_ns), "CAM3, from the reload once up")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    log = out.all()
    assert "inventory reloaded: 4 devices" in log, log
    assert not pid_file.exists()


def test_ipv6_devices_on_a_host_without_ipv6(fleet_ns: FleetNamespace, service_files: Path) -> None:
    """With IPv6 sockets refused (as with ipv6.disable=1): an inventory with an IPv6 device stops
    `slamon run` at start, before the database is opened; a reload that adds one is refused."""
    if (reason := no_ipv6.unavailable()) is not None:
        unavailable(reason)
    inventory = service_files.parent / "inventory.yaml"
    with_v6 = INVENTORY + "  - {id: CAM6, kind: camera, address: 'fd00:5a::1', site: S1, contract: C1}\n"
    inventory.write_text(with_v6, encoding="utf-8")
    done = fleet_ns.run(no_ipv6.command(run_argv(service_files)), timeout=15)
    assert done.returncode == 1, done.stderr
    assert done.stderr.endswith(
        "slamon: error: cannot open an ICMPv6 socket for 1 IPv6 device (CAM6 fd00:5a::1): "
        "Address family not supported by protocol (is IPv6 disabled on this host?)\n"
    ), done.stderr
    assert not (service_files.parent / "slamon.db").exists()

    inventory.write_text(INVENTORY, encoding="utf-8")
    proc = fleet_ns.popen(
        no_ipv6.command(run_argv(service_files)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out = Output(proc)
    wait_for(fleet_ns, lambda: {d["state"] for d in devices(fleet_ns).values()} == {"up"}, "every device up")
    inventory.write_text(with_v6, encoding="utf-8")
    proc.send_signal(signal.SIGHUP)
    wait_for(fleet_ns, lambda: "reload refused" in out.text(), "the reload to be refused")
    assert set(devices(fleet_ns)) == {"SW1", "CAM1", "CAM2"}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    log = out.all()
    assert (
        "ERROR slamon.service.serve: reload refused, still monitoring the previous inventory: cannot open an "
        "ICMPv6 socket for 1 IPv6 device (CAM6 fd00:5a::1)"
    ) in log
    assert "round failed" not in log, log
