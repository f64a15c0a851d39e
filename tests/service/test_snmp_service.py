"""SNMP through the service, over a real agent (snmpsim serving a 48-port PoE switch): a port that
goes down is named in the evidence of the camera behind it (API and metrics), a trap from the
switch brings that evidence within 2 s, and the API lists a switch's ports with who hangs off each."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from slamon.billing.statement import compute
from slamon.clock import FakeClock
from slamon.issuing import gather
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.model import DeviceId, ProbeKind, to_micros
from slamon.probers.scripted import ScriptedProber
from slamon.probers.snmp import SnmpProber, settings_from
from slamon.service.api import device_json, device_ports, outage_report
from slamon.service.monitor import Monitor
from slamon.service.scheduler import Jobs
from slamon.service.serve import _trap_polls
from slamon.store import Store
from tests.harness.snmp import Port, free_udp_port, rewrite, snmpd, snmpsim, switch_snmprec

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
CONTRACT = """\
id: C
vendor: v
currency: CNY
timezone: Asia/Shanghai
term: {start: 2026-01-01, months: 36}
fees: {camera: "100.00", switch: "0", link: "0"}
"""


def ports(*down: int, poe_fault: tuple[int, ...] = ()) -> list[Port]:
    return [
        Port(f"Gi0/{i}", oper=2 if i in down else 1, poe=4 if i in poe_fault else 3) for i in range(1, 49)
    ]


def write_files(where: Path, agent_port: int, traps: int | None = None, reachability: str = "both") -> Path:
    (where / "contracts").mkdir(parents=True, exist_ok=True)
    (where / "contracts" / "c.yaml").write_text(CONTRACT, encoding="utf-8")
    (where / "inventory.yaml").write_text(
        "sites: [{id: S1, name: 城东路口, district: 右江区, area: urban}]\n"
        "devices:\n"
        "  - {id: L1, kind: link, address: 127.0.60.1, site: S1, contract: C}\n"
        f"  - {{id: SW1, kind: switch, address: 127.0.0.1, site: S1, contract: C, parent: L1, snmp: {{version: 2c, port: {agent_port}}}}}\n"
        "  - {id: C1, kind: camera, address: 127.0.60.11, site: S1, contract: C, parent: SW1, uplink: {switch: SW1, port: Gi0/5}}\n"
        "  - {id: C2, kind: camera, address: 127.0.60.12, site: S1, contract: C, parent: SW1, uplink: {switch: SW1, port: 6}}\n",
        encoding="utf-8",
    )
    trap_line = "" if traps is None else f", traps: 127.0.0.1:{traps}"
    config = where / "slamon.yaml"
    config.write_text(
        "database: sqlite:///slamon.db\ninventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n"
        f"probes: {{snmp: {{community_file: community, timeout: 1s, reachability: {reachability}{trap_line}}}}}\n",
        encoding="utf-8",
    )
    (where / "community").write_text("sw1\n", encoding="utf-8")
    return config


@contextlib.asynccontextmanager
async def running(where: Path, agent_port: int, traps: int | None = None, reachability: str = "both"):  # type: ignore[no-untyped-def]
    config = load_config(write_files(where, agent_port, traps, reachability))
    fleet = load_fleet(config)
    clock = FakeClock(T0)
    icmp = ScriptedProber(clock)
    snmp = SnmpProber(clock, settings_from(config.probes.snmp))
    store = Store(config.database)
    monitor = Monitor(
        fleet,
        store,
        clock,
        {ProbeKind.ICMP: icmp, ProbeKind.SNMP: snmp},
        {ProbeKind.ICMP: timedelta(seconds=30), ProbeKind.SNMP: timedelta(seconds=60)},
        reachability=config.probes.snmp.reachability,
    )
    await monitor.start()
    try:
        yield monitor, icmp, clock, config
    finally:
        await monitor.close()
        store.close()


def view_of(monitor: Monitor, device: str) -> dict[str, object]:
    assert monitor.view is not None
    v = next(v for v in monitor.view.devices if v.device.id == device)
    zone = __import__("zoneinfo").ZoneInfo("Asia/Shanghai")
    ports = monitor.ports.snapshot()
    return {**device_json(v, zone, ports), **device_ports(DeviceId(device), ports, zone)}


@pytest.mark.slow
async def test_a_port_down_is_named_in_the_camera_evidence_and_metrics(tmp_path: Path) -> None:
    with snmpsim(tmp_path / "agent", {"sw1": switch_snmprec(ports())}) as agent:
        async with running(tmp_path, agent.port) as (monitor, icmp, clock, _):
            await monitor.run_round(ProbeKind.SNMP)
            switch = view_of(monitor, "SW1")["snmp"]
            assert isinstance(switch, dict)
            assert switch["ok"] is True
            assert switch["ports"]["Gi0/5"]["devices"] == ["C1"]
            assert switch["ports"]["Gi0/6"]["devices"] == ["C2"]  # named by its ifIndex
            assert switch["ports"]["Gi0/5"]["fault"] is None

            rewrite(agent, "sw1", switch_snmprec(ports(5, poe_fault=(6,))))
            icmp.silence("C1", "C2")
            for i in range(3):
                clock.set(T0 + timedelta(seconds=30 * (i + 1)))
                await monitor.run_round(ProbeKind.ICMP)
            await monitor.run_round(ProbeKind.SNMP)

            c1, c2 = view_of(monitor, "C1"), view_of(monitor, "C2")
            assert (c1["state"], c1["cause"], c1["cause_detail"]) == ("down", "device", "port Gi0/5 down")
            assert c2["cause_detail"] == "port Gi0/6 poe fault"  # up, but no power
            uplink = c1["uplink"]
            assert isinstance(uplink, dict)
            assert (uplink["switch"], uplink["port"], uplink["fault"]) == ("SW1", "Gi0/5", "port Gi0/5 down")
            state = uplink["state"]
            assert (state["index"], state["oper"], state["admin"], state["poe"]) == (
                5,
                "down",
                "up",
                "deliveringPower",
            )
            assert state["in_bps"] == 0.0  # the second poll: a rate between the two
            body = monitor.exposition.body().decode()
            assert 'slamon_switch_port_up{switch="SW1",port="Gi0/5"} 0' in body
            assert 'slamon_switch_port_up{switch="SW1",port="Gi0/4"} 1' in body
            assert 'slamon_switch_port_poe_fault{switch="SW1",port="Gi0/6"} 1' in body
            assert 'slamon_switch_port_receive_bytes_total{switch="SW1",port="Gi0/1"} 1000' in body
            assert 'slamon_switch_poe_budget_watts{switch="SW1"} 370' in body
            assert 'slamon_switch_snmp_up{switch="SW1"} 1' in body
            # the ledger keeps the port's word: the outage reads it back after the fact
            await monitor.flush()
            clock.set(T0 + timedelta(minutes=5))
            report = outage_report(monitor.store, monitor.fleet, {}, to_micros(T0), to_micros(clock.now()))
            outages = {o["device"]: o for o in report["outages"]}
            assert outages["C1"]["evidence"]["port"]["fault"] == "port Gi0/5 down"
            assert outages["C1"]["evidence"]["port"]["switch"] == "SW1"
            assert outages["C2"]["evidence"]["port"]["fault"] == "port Gi0/6 poe fault"
            with monitor.store.read() as tx:
                kinds = [
                    e.kind
                    for e in tx.events.port_history(
                        ["SW1"], since=to_micros(T0), until=to_micros(clock.now())
                    )
                ]
            assert kinds == ["ports", "port"]  # the table once, then the change
            # and the month's statement carries it, beside the outage's first failure
            with monitor.store.read() as tx:
                statement = compute(gather(tx, "C", "2026-12")).body()
            by_device = {o["device"]: o for o in statement["outages"]}
            assert by_device["C1"]["evidence"]["port"] == {
                "at": "2026-12-01T10:01:30+08:00",
                "switch": "SW1",
                "port": "Gi0/5",
                "fault": "port Gi0/5 down",
            }
            assert by_device["C1"]["causes"] == {"device": by_device["C1"]["counted_s"]}  # still counted
            if shutil.which("promtool"):
                checked = await asyncio.to_thread(
                    subprocess.run,
                    ["promtool", "check", "metrics"],
                    input=body,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
async def test_a_trap_brings_the_port_evidence_within_two_seconds(tmp_path: Path) -> None:
    if shutil.which("snmptrap") is None:
        pytest.skip("net-snmp's snmptrap is not installed (apt-get install snmp)")
    trap_port = free_udp_port()
    with snmpsim(tmp_path / "agent", {"sw1": switch_snmprec(ports())}) as agent:
        async with (
            running(tmp_path, agent.port, trap_port) as (monitor, _, _, config),
            contextlib.AsyncExitStack() as stack,
        ):
            polls = await _trap_polls(config, monitor, Jobs(), stack)
            assert polls is not None
            await monitor.run_round(ProbeKind.SNMP)
            assert view_of(monitor, "C1")["uplink"]["fault"] is None  # type: ignore[index]

            rewrite(agent, "sw1", switch_snmprec(ports(5)))
            sent = time.monotonic()
            trap = await asyncio.create_subprocess_exec(
                    "snmptrap", "-v2c", "-c", "sw1", f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.3",
                    "1.3.6.1.2.1.2.2.1.1.5", "i", "5",
                )  # fmt: skip
            assert await asyncio.wait_for(trap.wait(), 10) == 0
            while view_of(monitor, "C1")["uplink"]["fault"] is None:  # type: ignore[index]
                assert time.monotonic() - sent < 2.0, "no port evidence within 2 s of the trap"
                await asyncio.sleep(0.02)
            took = time.monotonic() - sent
            assert view_of(monitor, "C1")["uplink"]["fault"] == "port Gi0/5 down"  # type: ignore[index]
            assert polls.listener is not None
            assert polls.listener.counts["accepted"] == 1
            print(f"trap to evidence: {took:.3f} s")


@pytest.mark.slow
async def test_a_switch_down_makes_its_cameras_upstream_one_fault_one_series(tmp_path: Path) -> None:
    """The agent stops answering and the switch stops answering ping: the switch is down by its own
    fault, its cameras are upstream:SW1 with no counted seconds, and one series says cause=device."""
    with snmpsim(tmp_path / "agent", {"sw1": switch_snmprec(ports())}) as agent:
        async with running(tmp_path, agent.port) as (monitor, icmp, clock, _):
            await monitor.run_round(ProbeKind.SNMP)
            await monitor.run_round(ProbeKind.ICMP)
            agent.stop()
            icmp.silence("SW1", "C1", "C2")
            for i in range(1, 4):
                clock.set(T0 + timedelta(seconds=30 * i))
                await monitor.run_round(ProbeKind.ICMP)
                await monitor.run_round(ProbeKind.SNMP)
            states = {
                d: (view_of(monitor, d)["state"], view_of(monitor, d)["cause"]) for d in ("SW1", "C1", "C2")
            }
            assert states == {
                "SW1": ("down", "device"),
                "C1": ("down", "upstream:SW1"),
                "C2": ("down", "upstream:SW1"),
            }
            assert view_of(monitor, "C1")["cause_detail"] is None  # not the camera's own fault
            switch = view_of(monitor, "SW1")["snmp"]
            assert isinstance(switch, dict)
            assert switch["ok"] is False
            assert "no reply after 2 tries of 1 s" in switch["error"]
            body = monitor.exposition.body().decode()
            paging = [
                line
                for line in body.splitlines()
                if line.startswith("slamon_device_cause{") and 'cause="device"' in line
            ]
            assert len(paging) == 1
            assert 'device="SW1"' in paging[0]
            assert 'slamon_switch_snmp_up{switch="SW1"} 0' in body
            assert 'slamon_snmp_poll_errors_total{reason="timeout"}' in body

            await monitor.flush()
            report = outage_report(monitor.store, monitor.fleet, {}, to_micros(T0), to_micros(clock.now()))
            causes = {o["device"]: set(o["causes"]) for o in report["outages"]}
            assert causes == {"SW1": {"device"}, "C1": {"upstream:SW1"}, "C2": {"upstream:SW1"}}


@pytest.mark.slow
async def test_under_reachability_icmp_a_silent_agent_does_not_make_its_switch_down(tmp_path: Path) -> None:
    """reachability: icmp: the switch answers ping while its agent is gone: it stays up, its
    failed polls are not reachability evidence, and the ports it gave before are in the ledger."""
    with snmpsim(tmp_path / "agent", {"sw1": switch_snmprec(ports(5))}) as agent:
        async with running(tmp_path, agent.port, reachability="icmp") as (monitor, _, clock, _):
            await monitor.run_round(ProbeKind.SNMP)
            agent.stop()
            for i in range(1, 5):
                clock.set(T0 + timedelta(seconds=30 * i))
                await monitor.run_round(ProbeKind.ICMP)
                await monitor.run_round(ProbeKind.SNMP)
            assert view_of(monitor, "SW1")["state"] == "up"
            assert view_of(monitor, "SW1")["snmp"]["ok"] is False  # type: ignore[index]
            await monitor.flush()
            with monitor.store.read() as tx:
                kinds = [
                    e.kind
                    for e in tx.events.port_history(
                        ["SW1"], since=to_micros(T0), until=to_micros(clock.now())
                    )
                ]
                stored = {
                    k: len(r.reach_time) for k, r in tx.results.of_devices([monitor._keys[DeviceId("SW1")]])
                }
            assert kinds == ["ports"]
            assert list(stored.values()) == [4]  # the four pings; no SNMP result


async def test_the_device_endpoint_finds_each_device_and_404s_the_rest(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    from slamon.service.web import create_app

    with snmpd(tmp_path / "agent", community="sw1") as agent:
        async with running(tmp_path, agent.port) as (monitor, _, clock, _):
            await monitor.run_round(ProbeKind.ICMP)
            await monitor.run_round(ProbeKind.SNMP)
            client = await aiohttp_client(create_app(monitor, clock, monitor.intervals))
            for device in ("C1", "C2", "L1", "SW1"):
                got = await client.get(f"/api/v1/devices/{device}")
                assert got.status == 200
                assert (await got.json())["id"] == device
            assert (await (await client.get("/api/v1/devices/SW1")).json())["snmp"]["ok"] is True
            missing = await client.get("/api/v1/devices/C0")
            assert missing.status == 404
            assert (await missing.json(content_type=None))["detail"] == "no device 'C0' in the inventory"
