"""The SNMP prober against real agents on loopback (net-snmp's snmpd; snmpsim serving a 48-port
PoE switch we write) and a scripted agent for what real agents do not send."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slamon.clock import FakeClock
from slamon.loaders.config import SnmpProbeConfig
from slamon.model import ContractId, Device, DeviceId, DeviceKind, ProbeResult, SiteId, SnmpTarget
from slamon.probers.snmp import SnmpProber, SnmpSettings, SnmpUnavailable, settings_from
from slamon.probers.snmp_wire import GET_BULK_REQUEST, decode_message, encode_message
from tests.harness.snmp import (
    Port,
    TableAgent,
    rewrite,
    scripted_agent,
    snmpd,
    snmpsim,
    switch_snmprec,
    table_of,
)

AT = datetime(2025, 7, 1, tzinfo=UTC)
FAST = timedelta(milliseconds=300)


def switch(port: int, name: str = "SW1", address: str = "127.0.0.1") -> Device:
    return Device(
        DeviceId(name), DeviceKind.SWITCH, address, SiteId("S"), ContractId("C"), snmp=SnmpTarget("2c", port)
    )


def prober(community: str = "public", **kw: object) -> SnmpProber:
    return SnmpProber(FakeClock(AT), SnmpSettings(community=community.encode(), timeout=FAST, **kw))  # type: ignore[arg-type]


async def poll(p: SnmpProber, *devices: Device) -> dict[str, ProbeResult]:
    out: dict[str, ProbeResult] = {}
    async for batch in p.round(list(devices)):
        out.update((r.device, r) for r in batch)
    return out


FORTY_EIGHT = [Port(f"Gi0/{i}") for i in range(1, 49)]


# --- net-snmp's snmpd -----------------------------------------------------------------------------


async def test_snmpd_uptime_ports_and_poe(tmp_path: Path) -> None:
    with snmpd(tmp_path) as agent:
        p = prober()
        r = (await poll(p, switch(agent.port)))["SW1"]
        await p.aclose()
    assert r.ok, r.error
    assert r.error is None
    assert r.rtt_ms is not None
    assert r.loss == 0.0
    assert r.time == AT
    assert isinstance(r.detail["uptime_s"], int)
    ports = r.detail["ports"]
    assert isinstance(ports, dict)
    assert ports["lo"]["oper"] == "up"
    assert ports["lo"]["admin"] == "up"
    assert ports["lo"]["index"] == 1
    assert ports["lo"]["poe"] == "deliveringPower"  # override rows: port 1 delivers, port 2 faults
    assert isinstance(ports["lo"]["in_octets"], int)
    second = next(name for name, port in ports.items() if port["index"] == 2)
    assert ports[second]["poe"] == "fault"
    assert r.detail["poe"] == {"budget_w": 370, "used_w": 52}


async def test_a_wrong_community_is_no_reply_and_says_so(tmp_path: Path) -> None:
    with snmpd(tmp_path) as agent:
        p = prober("wrong", retries=1)
        r = (await poll(p, switch(agent.port)))["SW1"]
        await p.aclose()
    assert not r.ok
    assert r.error == "no reply after 2 tries of 0.3 s (agent down, filtered, or a wrong community)"
    assert r.loss == 0.5
    assert p.errors == {"timeout": 1}


async def test_one_silent_switch_does_not_fail_the_others(tmp_path: Path) -> None:
    with snmpd(tmp_path) as agent:
        p = prober(retries=0)
        got = await poll(
            p,
            switch(agent.port, "SW1"),
            switch(1, "SW-SILENT", "127.0.0.9"),
            switch(agent.port, "SW2", "127.0.0.1"),
        )
        await p.aclose()
    assert got["SW1"].ok
    assert not got["SW-SILENT"].ok
    assert "no reply" in (got["SW-SILENT"].error or "")


# --- snmpsim: a 48-port PoE switch whose ports change while it runs --------------------------------


@pytest.mark.slow
async def test_snmpsim_port_down_poe_fault_and_reboot(tmp_path: Path) -> None:
    with snmpsim(tmp_path, {"yj-sw001": switch_snmprec(FORTY_EIGHT, uptime_ticks=8_640_000)}) as agent:
        p = SnmpProber(FakeClock(AT), SnmpSettings(community=b"yj-sw001", timeout=timedelta(seconds=2)))
        first = (await poll(p, switch(agent.port)))["SW1"]
        assert first.ok, first.error
        ports = first.detail["ports"]
        assert isinstance(ports, dict)
        assert list(ports) == [f"Gi0/{i}" for i in range(1, 49)]
        assert all(port["oper"] == "up" and port["poe"] == "deliveringPower" for port in ports.values())
        assert first.detail["poe"] == {"budget_w": 370, "used_w": 288}

        changed = [Port(f"Gi0/{i}") for i in range(1, 49)]
        changed[4] = Port("Gi0/5", oper=2)
        changed[6] = Port("Gi0/7", poe=4)
        rewrite(agent, "yj-sw001", switch_snmprec(changed, uptime_ticks=500))
        second = (await poll(p, switch(agent.port)))["SW1"]
        await p.aclose()
    assert second.ok, second.error
    ports = second.detail["ports"]
    assert isinstance(ports, dict)
    assert ports["Gi0/5"] == {
        "index": 5, "oper": "down", "admin": "up", "poe": "deliveringPower",
        "in_octets": 1000, "out_octets": 2000, "in_errors": 0,
    }  # fmt: skip
    assert ports["Gi0/7"]["poe"] == "fault"
    assert ports["Gi0/7"]["oper"] == "up"
    assert second.detail["reboot"] == {"uptime_before_s": 86_400, "uptime_s": 5}


@pytest.mark.slow
async def test_snmpsim_a_counter_that_goes_back_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    """Port 3's ifHCInOctets goes back while sysUpTime goes on: no rate for it that poll, a warning
    that names it, and the poll is still ok (the switch answered)."""
    counted = [Port(f"Gi0/{i}", in_octets=10_000, out_octets=20_000) for i in range(1, 5)]
    with snmpsim(tmp_path, {"sw": switch_snmprec(counted, uptime_ticks=100_000)}) as agent:
        p = SnmpProber(FakeClock(AT), SnmpSettings(community=b"sw", timeout=timedelta(seconds=2)))
        assert (await poll(p, switch(agent.port)))["SW1"].ok
        counted[2] = Port("Gi0/3", in_octets=5, out_octets=30_000)
        rewrite(agent, "sw", switch_snmprec(counted, uptime_ticks=106_000))
        r = (await poll(p, switch(agent.port)))["SW1"]
        await p.aclose()
    assert r.ok, r.error
    assert "reboot" not in r.detail
    assert r.detail["warnings"] == [
        "Gi0/3: ifHCInOctets went back from 10000 to 5 without a reboot (counter reset): no rate this poll"
    ]
    ports = r.detail["ports"]
    assert isinstance(ports, dict)
    assert "in_bps" not in ports["Gi0/3"]
    assert ports["Gi0/3"]["out_bps"] > 0
    assert ports["Gi0/1"]["in_bps"] == 0.0


# --- a scripted agent: replies no real agent sends ------------------------------------------------

GOOD = table_of(switch_snmprec(FORTY_EIGHT[:4]))


async def scripted(reply: Callable[[bytes], bytes | None], **kw: object) -> ProbeResult:
    agent, port = await scripted_agent(reply)
    try:
        p = prober("c", **kw)
        r = (await poll(p, switch(port)))["SW1"]
        await p.aclose()
        return r
    finally:
        assert agent.transport is not None
        agent.transport.close()


async def test_the_scripted_agent_is_a_good_switch() -> None:
    r = await scripted(TableAgent(b"c", GOOD))
    assert r.ok, r.error
    assert list(r.detail["ports"]) == ["Gi0/1", "Gi0/2", "Gi0/3", "Gi0/4"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("corrupt", "error"),
    [
        (lambda good: good[:-3], "malformed reply: byte "),  # truncated
        (lambda good: good + b"\x00", "malformed reply: byte "),  # trailing garbage
        (lambda good: b"\x30\x03\x02\x01\x03", "malformed reply: version 3 is not SNMPv1 or v2c"),
    ],
)
async def test_a_malformed_reply_fails_the_switch_with_the_reason(
    corrupt: Callable[[bytes], bytes], error: str
) -> None:
    good = TableAgent(b"c", GOOD)
    r = await scripted(lambda data: corrupt(good(data) or b""))
    assert not r.ok
    assert (r.error or "").startswith(error), r.error


async def test_an_error_status_is_named_with_its_oid() -> None:
    good = TableAgent(b"c", GOOD)

    def gen_err(data: bytes) -> bytes | None:
        answer = decode_message(good(data) or b"")
        return encode_message(
            type(answer)(
                answer.version, answer.community, answer.pdu_type, answer.request_id, 5, 1, answer.varbinds
            )
        )

    r = await scripted(gen_err)
    assert r.error == "the agent answered genErr at 1.3.6.1.2.1.1.3.0"


async def test_a_walk_that_goes_back_is_a_broken_agent_not_a_loop() -> None:
    good = TableAgent(b"c", GOOD)
    bulks = 0

    def loop(data: bytes) -> bytes | None:
        nonlocal bulks
        if decode_message(data).pdu_type == GET_BULK_REQUEST:
            bulks += 1
            if bulks > 1:  # answer every later GETBULK as if it were the first
                first = decode_message(data)
                return good(
                    encode_message(
                        type(first)(
                            first.version,
                            first.community,
                            first.pdu_type,
                            first.request_id,
                            0,
                            first.error_index,
                            [type(v)(v.oid[:8], v.tag, v.value) for v in first.varbinds],
                        )
                    )
                )
        return good(data)

    r = await scripted(loop, max_repetitions=2)
    assert not r.ok
    assert "went back" in (r.error or ""), r.error


async def test_a_late_reply_to_an_earlier_request_is_ignored() -> None:
    good = TableAgent(b"c", GOOD)

    def wrong_id(data: bytes) -> bytes | None:
        answer = decode_message(good(data) or b"")
        return encode_message(
            type(answer)(
                answer.version,
                answer.community,
                answer.pdu_type,
                answer.request_id + 1,
                0,
                0,
                answer.varbinds,
            )
        )

    r = await scripted(wrong_id, retries=0)
    assert not r.ok
    assert "no reply" in (r.error or "")


async def test_a_missing_sysuptime_is_not_a_switch() -> None:
    r = await scripted(TableAgent(b"c", {k: v for k, v in GOOD.items() if k != (1, 3, 6, 1, 2, 1, 1, 3, 0)}))
    assert r.error == "no sysUpTime.0 in the reply (not an SNMP agent of a switch?)"


# --- secrets ---------------------------------------------------------------------------------------


def test_the_community_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert settings_from(SnmpProbeConfig(), {"SLAMON_SNMP_COMMUNITY": "s3cret"}).community == b"s3cret"
    secret = tmp_path / "community"
    secret.write_text("from-file\n", encoding="utf-8")
    assert settings_from(SnmpProbeConfig(community_file=secret), {}).community == b"from-file"
    unset = settings_from(SnmpProbeConfig(), {})  # not an error until a v2c switch is listed
    assert unset.community == b""
    assert SnmpProber(FakeClock(AT), unset).check([]) == "v2c"
    with pytest.raises(SnmpUnavailable, match=r"export SLAMON_SNMP_COMMUNITY=\.\.\."):
        SnmpProber(FakeClock(AT), unset).check([switch(161)])
    secret.write_text("\n", encoding="utf-8")
    with pytest.raises(SnmpUnavailable, match="is empty"):
        settings_from(SnmpProbeConfig(community_file=secret), {})


def test_probe_once_json_prints_uptime_and_ports(tmp_path: Path) -> None:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "c.yaml").write_text(
        "id: C\nvendor: v\ncurrency: CNY\ntimezone: Asia/Shanghai\nterm: {start: 2025-06-01, months: 36}\n"
        'fees: {camera: "1", switch: "0", link: "0"}\n',
        encoding="utf-8",
    )
    with snmpd(tmp_path / "agent") as agent:
        (tmp_path / "inventory.yaml").write_text(
            "sites: [{id: S, name: s, district: d, area: urban}]\n"
            f"devices: [{{id: SW1, kind: switch, address: 127.0.0.1, site: S, contract: C, snmp: {{version: 2c, port: {agent.port}}}}}]\n",
            encoding="utf-8",
        )
        (tmp_path / "slamon.yaml").write_text(
            "database: sqlite:///slamon.db\ninventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n"
            "probes: {snmp: {community_env: TEST_COMMUNITY}}\n",
            encoding="utf-8",
        )
        config = str(tmp_path / "slamon.yaml")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "slamon.cli",
                "-c",
                config,
                "probe",
                "--once",
                "--json",
                "--device",
                "SW1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={"TEST_COMMUNITY": "public", "PATH": "/usr/bin:/bin"},
            check=False,
        )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    snmp = next(x for x in lines if x["probe"] == "snmp")
    assert snmp["ok"] is True
    assert isinstance(snmp["detail"]["uptime_s"], int)
    assert snmp["detail"]["ports"]["lo"]["oper"] == "up"
    assert "public" not in done.stdout + done.stderr


async def test_two_polls_of_one_switch_at_once_take_turns_and_both_succeed(tmp_path: Path) -> None:
    """A trap's poll and the round's poll of the same switch: the second waits for the first (one
    conversation per agent at a time) instead of failing."""
    with snmpd(tmp_path) as agent:
        p = prober()
        d = switch(agent.port)
        first, second = await asyncio.gather(p.poll(d), p.poll(d))
        await p.aclose()
    assert (first.ok, second.ok) == (True, True), (first.error, second.error)
    assert p.busy == frozenset()
