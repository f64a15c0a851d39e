"""`slamon run` as a process, inside a network namespace: it serves, stops on SIGTERM within 5 s,
reloads its inventory on SIGHUP, and what /metrics prints passes `promtool check metrics`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.fixtures import require_tool
from tests.harness.netns import FleetNamespace

PORT = 19131
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
    time.sleep(1.5)
    assert service.poll() is None
    assert "CAM3" in devices(fleet_ns)

    started = time.monotonic()
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=5) == 0
    assert time.monotonic() - started < 5
    log = service.stdout.read() if service.stdout else ""
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


def test_the_quickstart_fleet_and_its_fail_script(fleet_ns: FleetNamespace, tmp_path: Path) -> None:
    """examples/quickstart as a user runs it (on a 1 s interval so the test is quick)."""
    import shutil

    here = tmp_path / "quickstart"
    shutil.copytree(
        Path(__file__).parent.parent / "examples" / "quickstart", here, ignore=shutil.ignore_patterns("out")
    )
    config = here / "slamon.yaml"
    config.write_text(
        config.read_text()
        .replace("interval: 10s, timeout: 1s", "interval: 1s, timeout: 500ms")
        .replace("127.0.0.1:9108", f"127.0.0.1:{PORT}"),
        encoding="utf-8",
    )
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
