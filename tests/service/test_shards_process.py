"""Three `slamon run --shard i/3` processes and one `slamon serve` over one PostgreSQL store, in a
network namespace with real ICMP: the fleet is split exactly (no device probed twice or never),
a shard killed and restarted resumes its own devices while the others go on, the store's jobs run
in one process only, and one statement covers the whole fleet."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.shards import Shard, members
from slamon.store import Store
from tests.conftest import POSTGRES_URL, postgres_schema_url
from tests.harness.netns import FleetNamespace

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SOCKET_DIR = "/var/run/postgresql"  # the namespace has its own loopback: PostgreSQL by its socket
PORTS = [19141, 19142, 19143]
SERVE_PORT = 19144
SITES = 12
CONTRACT = (
    "id: C1\nvendor: v\ntimezone: Asia/Shanghai\nterm: {start: 2025-01-01, months: 60}\n"
    "fees: {camera: '10', switch: '0', link: '0'}\n"
)


def inventory() -> str:
    """Per site a link, a switch behind it and two cameras behind that: twelve trees."""
    lines = ["sites:"]
    lines += [f"  - {{id: S{s:02d}, name: n, district: D{s % 3}, area: urban}}" for s in range(SITES)]
    lines.append("devices:")
    for s in range(SITES):
        net = f"127.0.{60 + s}"
        lines += [
            f"  - {{id: L{s:02d}, kind: link, address: {net}.1, site: S{s:02d}, contract: C1}}",
            f"  - {{id: W{s:02d}, kind: switch, address: {net}.2, site: S{s:02d}, contract: C1, parent: L{s:02d}}}",
            f"  - {{id: C{s:02d}a, kind: camera, address: {net}.11, site: S{s:02d}, contract: C1, parent: W{s:02d}}}",
            f"  - {{id: C{s:02d}b, kind: camera, address: {net}.12, site: S{s:02d}, contract: C1, parent: W{s:02d}}}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def socket_url() -> Iterator[str]:
    """A throwaway schema, reached through PostgreSQL's Unix socket."""
    if not Path(SOCKET_DIR, ".s.PGSQL.5432").exists() or "127.0.0.1:5432/test" not in POSTGRES_URL:
        pytest.skip(f"needs the local PostgreSQL's socket in {SOCKET_DIR}")
    for url in postgres_schema_url():
        yield url.replace("//127.0.0.1:5432/test?", f"///test?host={SOCKET_DIR}&")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "c1.yaml").write_text(CONTRACT, encoding="utf-8")
    (tmp_path / "inventory.yaml").write_text(inventory(), encoding="utf-8")
    (tmp_path / "slamon.yaml").write_text(
        "inventory: inventory.yaml\ncontracts: [contracts/*.yaml]\nlisten: 127.0.0.1:19140\n"
        "journal: journal\nprobes: {icmp: {interval: 1s, timeout: 500ms}}\n",
        encoding="utf-8",
    )
    return tmp_path / "slamon.yaml"


class Cluster:
    def __init__(self, ns: FleetNamespace, config: Path, url: str) -> None:
        self.ns, self.config = ns, config
        self.env = {**os.environ, "SLAMON_DATABASE": url}
        self.procs: dict[int, subprocess.Popen[str]] = {}
        self.logs: dict[int, Path] = {}
        self.files: list[IO[str]] = []

    def start(self, index: int, *args: str) -> None:
        port = PORTS[index] if index < len(PORTS) else SERVE_PORT + index - len(PORTS)
        log = self.config.parent / f"process-{index}-{len(self.logs)}.log"
        self.logs[index] = log
        out = log.open("w", encoding="utf-8")
        self.files.append(out)
        argv = [
            sys.executable,
            "-m",
            "slamon.cli",
            "-c",
            str(self.config),
            *args,
            "--listen",
            f"127.0.0.1:{port}",
        ]
        self.procs[index] = self.ns.popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True, env=self.env)

    def get(self, port: int, path: str) -> tuple[int, bytes]:
        with self.ns.inside():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as err:
                return err.code, err.read()

    def devices(self, port: int) -> dict[str, dict[str, object]]:
        status, body = self.get(port, "/api/v1/devices")
        assert status == 200
        return {d["id"]: d for d in json.loads(body)["devices"]}

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for out in self.files:
            out.close()

    def log(self, index: int) -> str:
        return self.logs[index].read_text(encoding="utf-8", errors="replace")


def wait_for(check: Callable[[], bool], what: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError, KeyError, AssertionError):
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_shards_split_the_fleet_survive_a_restart_and_make_one_statement(
    fleet_ns: FleetNamespace, files: Path, socket_url: str
) -> None:
    cluster = Cluster(fleet_ns, files, socket_url)
    try:
        run_cluster(cluster, fleet_ns, files, socket_url)
    finally:
        cluster.close()


def rounds(cluster: Cluster, port: int) -> float:
    text = cluster.get(port, "/metrics")[1].decode()
    return float(re.search(r'^slamon_rounds_total\{probe="icmp"\} (\S+)$', text, re.MULTILINE)[1])  # type: ignore[index]


def run_cluster(cluster: Cluster, fleet_ns: FleetNamespace, files: Path, socket_url: str) -> None:
    fleet = load_fleet(load_config(files))
    split = [members(fleet.inventory, Shard(i, 3)) for i in range(3)]
    assert all(split), f"every shard has devices: {[len(s) for s in split]}"
    for i in range(3):
        cluster.start(i, "run", "--shard", f"{i}/3")
    cluster.start(3, "serve")
    every = [*PORTS, SERVE_PORT]
    wait_for(lambda: all(cluster.get(p, "/healthz")[0] == 200 for p in every), "four processes to be healthy")

    # the split: each shard shows exactly its own devices, and they are all up
    for i, port in enumerate(PORTS):
        wait_for(
            lambda port=port: {d["state"] for d in cluster.devices(port).values()} == {"up"}, "devices up"
        )  # type: ignore[misc]
        assert set(cluster.devices(port)) == split[i]
    assert cluster.devices(SERVE_PORT) == {}

    # a second process of a running shard is refused (it waits CLAIM_WITHIN for the holder to
    # stop, meanwhile the test goes on); the shard that owns W03 is never stopped here
    owner = next(i for i, s in enumerate(split) if "W03" in s)
    cluster.start(4, "run", "--shard", f"{owner}/3")

    # a switch fails: its cameras are upstream in the shard that owns the tree
    fleet_ns.silence("127.0.63.2", "127.0.63.11", "127.0.63.12")
    wait_for(lambda: cluster.devices(PORTS[owner])["C03a"]["state"] == "down", "C03a down")
    assert cluster.devices(PORTS[owner])["C03a"]["cause"] == "upstream:W03"

    # one shard crashes and comes back: it resumes its devices; the others go on meanwhile
    victim = (owner + 1) % 3
    others = [PORTS[i] for i in range(3) if i != victim]
    before = [rounds(cluster, p) for p in others]
    cluster.procs[victim].kill()
    cluster.procs[victim].wait()
    wait_for(
        lambda: all(rounds(cluster, p) >= b + 2 for p, b in zip(others, before, strict=True)),
        "the other shards to go on with their rounds",
    )
    cluster.start(victim, "run", "--shard", f"{victim}/3")
    wait_for(lambda: cluster.get(PORTS[victim], "/healthz")[0] == 200, "the restarted shard", 30)
    assert "resumed from the store" in cluster.log(victim)
    wait_for(lambda: set(cluster.devices(PORTS[victim])) == split[victim], "the restarted shard's devices")
    fleet_ns.restore_all()
    wait_for(lambda: cluster.devices(PORTS[owner])["C03a"]["state"] == "up", "C03a back up")

    # the whole fleet's outages from the API process, the switch's among them
    status, body = cluster.get(SERVE_PORT, "/api/v1/outages?device=W03")
    assert status == 200
    assert [o["device"] for o in json.loads(body)["outages"]] == ["W03"]

    # the store's jobs (month-to-date figures) run in exactly one of the four processes
    def leaders() -> list[int]:
        return [p for p in every if b"slamon_mtd_rate{" in cluster.get(p, "/metrics")[1]]

    wait_for(lambda: len(leaders()) == 1, "one process to publish the month-to-date figures", 40)

    assert cluster.procs[4].wait(timeout=30) == 1
    assert cluster.log(4).endswith(
        f"slamon: error: shard {owner}/3 is already running on this store (another process holds it); "
        "waited 15 s\n"
    )
    # and a process of another layout, while these run (started alone: two refused starters can
    # see each other's passing claim)
    cluster.start(5, "run", "--shard", "0/2")
    assert cluster.procs[5].wait(timeout=30) == 1
    assert cluster.log(5).endswith(
        "slamon: error: processes of another layout (3 shards) are still monitoring this store: "
        "stop them before starting 2 shards; waited 15 s\n"
    )
    del cluster.procs[4], cluster.procs[5]
    for proc in cluster.procs.values():
        proc.send_signal(signal.SIGTERM)
    assert all(proc.wait(timeout=10) == 0 for proc in cluster.procs.values())

    # in the store: every device has results, and no device was probed twice in a round
    store = Store(socket_url)
    try:
        with store.read() as tx:
            keys = tx.keys.find(list(fleet.inventory.devices))
            for device, key in keys.items():
                times = np.sort(np.asarray(tx.results.of_device(key).columns()[0]))  # result times (µs)
                assert len(times) >= 5, f"{device} has {len(times)} results"
                # one shard's rounds, a second apart at most once a second (late ones are coalesced):
                # a device probed by two shards would have about twice as many
                span_s = (times[-1] - times[0]) / 1e6
                assert len(times) <= span_s + 2, f"{device}: {len(times)} results in {span_s:.1f} s"
    finally:
        store.close()

    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    out = subprocess.run(
        [sys.executable, "-m", "slamon.cli", "-c", str(files), "statement", "--contract", "C1", "--month", month,
         "--format", "json"],
        capture_output=True, text=True, env=cluster.env, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    statement = json.loads(out.stdout)
    assert {d["id"] for d in statement["devices"]} == set(fleet.inventory.devices)
    assert {o["device"] for o in statement["outages"]} == {"W03", "C03a", "C03b"}
    assert next(d for d in statement["devices"] if d["id"] == "W03")["down_s"] > 0
