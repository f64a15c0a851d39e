"""scripts/stack, as a newcomer runs it: `scripts/stack --fast` brings up slamon on the quickstart
fleet, Prometheus and Alertmanager on loopback; `fail` on a camera makes SlamonDeviceDown fire in
Prometheus and exactly one notification line appear in the stack's output; Ctrl-C (SIGINT) stops
every process it started.

The stack runs on a copy of examples/quickstart (its `fail` edits the inventory beside it, and the
tracked one must stay as it is), on free ports, in the host's own loopback: slamon pings the fleet's
127.0.40.x addresses, which needs root, CAP_NET_RAW or net.ipv4.ping_group_range, as the quickstart
does. Without it the test skips (fails under SLAMON_REQUIRE_NETNS=1).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.fixtures import require_tool, unavailable
from tests.ops.stack import ROOT, free_port, http_json, query, wait_for

logger = logging.getLogger(__name__)
pytestmark = pytest.mark.slow  # four real processes in real time (about 25 s)

QUICKSTART = ROOT / "examples" / "quickstart"
CAMERA = "QS-C0003"
NOTIFICATION = re.compile(r"^\d\d:\d\d:\d\d notification to (\S+): (\S+) (\S+): (.*)$")
QUIET_S = 3.0  # after the page: more than two evaluations and a group_wait of nothing more


def require_ping() -> None:
    """What slamon needs to ping the fleet, checked from this interpreter (the stack runs slamon
    with it): a raw ICMP socket or a datagram one."""
    for kind in (socket.SOCK_RAW, socket.SOCK_DGRAM):
        try:
            socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
            return
        except PermissionError:
            continue
    unavailable("pinging the quickstart fleet needs root, CAP_NET_RAW or net.ipv4.ping_group_range")


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, ppid in parent.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Output:
    """The stack's stdout and stderr, line by line, read by a thread as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._stream = proc.stdout
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line.rstrip("\n"))

    def notifications(self) -> list[tuple[str, ...]]:
        return [m.groups() for line in list(self.lines) if (m := NOTIFICATION.match(line))]

    def text(self) -> str:
        return "--- the stack's output:\n" + "\n".join(self.lines)

    def close(self) -> None:
        """Once the process is gone: the rest of its output read, the pipe closed."""
        self._thread.join(5)
        self._stream.close()


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    """A copy of examples/quickstart: its fail script, inventory, slamon.yaml and contract."""
    here = tmp_path / "quickstart"
    here.mkdir()
    for name in ("fail", "inventory.yaml", "slamon.yaml"):
        shutil.copy2(QUICKSTART / name, here)
    shutil.copytree(QUICKSTART / "contracts", here / "contracts")
    assert "127.255.255.255" not in (here / "inventory.yaml").read_text(encoding="utf-8"), (
        "a device is failed"
    )
    return here


@pytest.fixture
def launch() -> Iterator[Callable[[list[str]], tuple[subprocess.Popen[str], Output]]]:
    """Start the stack (its output read as it comes); whatever the test did, it and every process
    below it are gone afterwards."""
    launched: list[tuple[subprocess.Popen[str], Output]] = []

    def start(argv: list[str]) -> tuple[subprocess.Popen[str], Output]:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        launched.append((proc, Output(proc)))
        return launched[-1]

    yield start
    for proc, out in launched:
        if proc.poll() is None:
            below = descendants(proc.pid)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            for pid in below:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        out.close()


def test_the_stack_pages_once_for_a_failed_camera_and_stops_everything_on_ctrl_c(
    quickstart: Path, launch: Callable[[list[str]], tuple[subprocess.Popen[str], Output]]
) -> None:
    require_ping()
    require_tool("prometheus", "prometheus")
    require_tool("prometheus-alertmanager", "prometheus-alertmanager")
    ports: dict[str, int] = {}
    while len(set(ports.values())) < 4:
        ports = {what: free_port() for what in ("slamon", "prometheus", "alertmanager", "webhook")}
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"

    begun = time.monotonic()
    argv = [sys.executable, str(ROOT / "scripts" / "stack"), "--fast", "--example", str(quickstart)]
    argv += [arg for what, port in ports.items() for arg in (f"--{what}-port", str(port))]
    proc, out = launch(argv)

    def scraped() -> bool:
        assert proc.poll() is None, out.text()
        return [r["value"][1] for r in query(prometheus, 'up{job="slamon"}')] == ["1"]

    wait_for(scraped, "Prometheus to scrape slamon up", 30, detail=out.text)
    wait_for(lambda: any(line.startswith("Ctrl-C stops everything") for line in out.lines), "the banner", 10)
    assert any(f"127.0.0.1:{ports['prometheus']}/" in line for line in out.lines), out.text()
    assert any(f"fail {CAMERA}" in line for line in out.lines), out.text()
    ours = descendants(proc.pid)
    assert len(ours) >= 3, ours  # slamon, Alertmanager, Prometheus (and what slamon runs)
    ready = time.monotonic()

    failed = subprocess.run(
        [str(quickstart / "fail"), CAMERA], capture_output=True, text=True, check=False, timeout=10
    )
    assert failed.returncode == 0, failed.stderr
    assert "reloads its inventory" in failed.stdout, failed.stdout

    def firing() -> list[dict[str, Any]]:
        alerts = http_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["state"] == "firing"]

    [alert] = wait_for(firing, f"SlamonDeviceDown to fire for {CAMERA}", 30, detail=out.text)
    assert (alert["labels"]["alertname"], alert["labels"]["device"]) == ("SlamonDeviceDown", CAMERA)
    wait_for(out.notifications, "a notification line", 20, detail=out.text)
    paged = time.monotonic()
    ours |= descendants(proc.pid)
    quiet_until = time.monotonic() + QUIET_S
    while time.monotonic() < quiet_until:
        assert len(out.notifications()) == 1, out.text()
        time.sleep(0.1)
    [(receiver, status, alertname, summary)] = out.notifications()
    assert (receiver, status, alertname) == ("qs-2026-pager", "FIRING", "SlamonDeviceDown"), out.text()
    assert CAMERA in summary

    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0, out.text()
    wait_for(lambda: not [pid for pid in ours if alive(pid)], "every process the stack started to be gone", 5)
    assert any(line.startswith("stopped slamon (pid") for line in out.lines), out.text()
    assert not (quickstart / "out" / "slamon.pid").exists()
    logger.info(
        "stack ready in %.1f s; fail to page %.1f s; all in %.1f s",
        ready - begun,
        paged - ready,
        time.monotonic() - begun,
    )
