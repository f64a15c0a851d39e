"""SNMPv3 (USM authPriv) polls against net-snmp's snmpd on loopback with v3 users, a fake pysnmp
session for what a real agent does not send, and the settings and config that carry the keys."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyasn1.type import univ
from pysnmp.proto import rfc1902
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from slamon.clock import FakeClock
from slamon.loaders.config import SnmpProbeConfig, SnmpV3Config, load_config
from slamon.model import ContractId, Device, DeviceId, DeviceKind, ProbeResult, SiteId, SnmpTarget
from slamon.probers.snmp import (
    SnmpProber,
    SnmpSettings,
    SnmpUnavailable,
    SnmpV3Credentials,
    settings_from,
)
from slamon.probers.snmp_v3 import (
    V3Conversation,
    _discovery_request,
    _varbind,
    answers_discovery,
)
from slamon.probers.snmp_wire import (
    COUNTER64,
    END_OF_MIB_VIEW,
    GET_BULK_REQUEST,
    IP_ADDRESS,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    OBJECT_IDENTIFIER,
    OCTET_STRING,
    TIMETICKS,
    encode_oid,
    is_v3_message,
)
from tests.conftest import TESTDATA
from tests.harness.snmp import (
    POE_OVERRIDES,
    Port,
    TableAgent,
    free_udp_port,
    scripted_agent,
    snmpd,
    switch_snmprec,
    table_of,
)

AT = datetime(2025, 7, 1, tzinfo=UTC)
FAST = timedelta(milliseconds=300)
AUTH_KEY = "auth-k3y-7f3a9c"
PRIV_KEY = "priv-k3y-51d2e8"
WRONG = "wrong-k3y-00000"

# net-snmp's names (createUser USER AUTH "key" PRIV "key") → ours: (user, auth_protocol, priv_protocol)
USERS = [
    ("slamon", "SHA", "AES", "SHA", "AES"),
    ("sha224", "SHA-224", "AES", "SHA224", "AES"),
    ("sha256", "SHA-256", "AES256", "SHA256", "AES256"),
    ("sha384", "SHA-384", "AES", "SHA384", "AES"),
    ("sha512", "SHA-512", "AES", "SHA512", "AES"),
    ("shaaes192", "SHA", "AES192", "SHA", "AES192"),
    ("shaaes192c", "SHA", "AES192C", "SHA", "AES192C"),
    ("shaaes256", "SHA", "AES256", "SHA", "AES256"),
    ("shaaes256c", "SHA", "AES256C", "SHA", "AES256C"),
    ("md5des", "MD5", "DES", "MD5", "DES"),
]
V3_USERS = (
    "".join(
        f'createUser {user} {auth} "{AUTH_KEY}" {priv} "{PRIV_KEY}"\nrouser {user} priv\n'
        for user, auth, priv, _, _ in USERS
    )
    + f'createUser authonly SHA "{AUTH_KEY}"\nrouser authonly auth\n'
)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One snmpd for the module: v2c community `public` and the v3 users above. Its persistent
    state (engine boots, users) goes to a folder of the test's, not /var/lib/snmp."""
    where = tmp_path_factory.mktemp("snmpd-v3")
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("SNMP_PERSISTENT_DIR", str(where / "persistent"))
            started = stack.enter_context(snmpd(where, extra=POE_OVERRIDES + V3_USERS))
        yield started


def v3_switch(port: int, name: str = "SW3", address: str = "127.0.0.1") -> Device:
    return Device(
        DeviceId(name), DeviceKind.SWITCH, address, SiteId("S"), ContractId("C"), snmp=SnmpTarget("3", port)
    )


def v2c_switch(port: int, name: str = "SW2") -> Device:
    return Device(
        DeviceId(name),
        DeviceKind.SWITCH,
        "127.0.0.1",
        SiteId("S"),
        ContractId("C"),
        snmp=SnmpTarget("2c", port),
    )


def credentials(
    user: str = "slamon",
    auth: str = AUTH_KEY,
    priv: str = PRIV_KEY,
    auth_protocol: str = "SHA",
    priv_protocol: str = "AES",
) -> SnmpV3Credentials:
    return SnmpV3Credentials(user, auth_protocol, auth.encode(), priv_protocol, priv.encode())


def prober(v3: SnmpV3Credentials | None = None, **kw: Any) -> SnmpProber:
    v3 = credentials() if v3 is None else v3
    return SnmpProber(FakeClock(AT), SnmpSettings(community=b"public", timeout=FAST, v3=v3, **kw))


async def poll(p: SnmpProber, *devices: Device) -> dict[str, ProbeResult]:
    out: dict[str, ProbeResult] = {}
    async for batch in p.round(list(devices)):
        out.update((r.device, r) for r in batch)
    return out


async def poll_one(v3: SnmpV3Credentials, port: int, **kw: Any) -> tuple[ProbeResult, SnmpProber]:
    p = prober(v3, **kw)
    try:
        return (await poll(p, v3_switch(port)))["SW3"], p
    finally:
        await p.aclose()


def ports_of(r: ProbeResult) -> dict[str, tuple[object, ...]]:
    ports = r.detail["ports"]
    assert isinstance(ports, dict)
    return {name: (p["index"], p["oper"], p["admin"], p.get("poe")) for name, p in ports.items()}


# --- net-snmp's snmpd with v3 users --------------------------------------------------------------


async def test_authpriv_sha_aes_reads_what_v2c_reads(agent: Any) -> None:
    p = prober()
    assert p.check([v3_switch(agent.port), v2c_switch(agent.port)]) == (
        "v2c and v3 (user slamon, authPriv SHA/AES)"
    )
    got = await poll(p, v3_switch(agent.port), v2c_switch(agent.port))
    again = (await poll(p, v3_switch(agent.port)))["SW3"]
    await p.aclose()
    v3, v2c = got["SW3"], got["SW2"]
    assert v3.ok, v3.error
    assert v2c.ok, v2c.error
    assert ports_of(v3) == ports_of(v2c)
    assert ports_of(v3)["lo"] == (1, "up", "up", "deliveringPower")
    assert v3.detail["poe"] == v2c.detail["poe"] == {"budget_w": 370, "used_w": 52}
    uptime_v3, uptime_v2c = v3.detail["uptime_s"], v2c.detail["uptime_s"]
    assert isinstance(uptime_v3, int)
    assert isinstance(uptime_v2c, int)
    assert abs(uptime_v3 - uptime_v2c) <= 1
    assert v3.rtt_ms is not None
    assert v3.loss == 0.0
    assert v3.error is None
    assert p.errors == {}
    lo = again.detail["ports"]["lo"]  # type: ignore[index]
    assert again.ok
    assert "in_bps" in lo  # the second poll of the switch has rates, as v2c's does
    assert p.requests > 4  # the GET and the GETBULKs of three polls


@pytest.mark.parametrize(
    ("user", "auth_protocol", "priv_protocol"),
    [(user, auth, priv) for user, _, _, auth, priv in USERS[1:]],
    ids=[f"{auth}-{priv}" for _, _, _, auth, priv in USERS[1:]],
)
async def test_every_protocol_matches_net_snmps_of_the_same_name(
    agent: Any, user: str, auth_protocol: str, priv_protocol: str
) -> None:
    r, _ = await poll_one(
        credentials(user, auth_protocol=auth_protocol, priv_protocol=priv_protocol), agent.port
    )
    assert r.ok, r.error
    assert ports_of(r)["lo"] == (1, "up", "up", "deliveringPower")


async def test_a_wrong_auth_key_is_said_at_once(agent: Any) -> None:
    r, p = await poll_one(credentials(auth=WRONG), agent.port)
    assert not r.ok
    assert (
        r.error
        == "SNMPv3: wrong user or keys (the agent rejects the auth key: a wrong auth key or auth_protocol)"
    )
    assert r.loss == 0.0  # one request: a Report is an answer, not sent again
    assert p.errors == {"v3_keys": 1}


async def test_a_wrong_priv_key_is_told_from_an_agent_that_is_down(agent: Any) -> None:
    r, p = await poll_one(credentials(priv=WRONG), agent.port)
    assert not r.ok
    assert r.error == (
        "SNMPv3: wrong user or keys (the agent answers SNMPv3 discovery but not the requests of user "
        "'slamon': a wrong priv key or priv_protocol?)"
    )
    assert r.loss == 0.5  # the agent drops what it cannot decrypt: sent twice
    assert p.errors == {"v3_keys": 1}


async def test_the_other_aes256_key_extension_is_a_wrong_priv_protocol(agent: Any) -> None:
    r, _ = await poll_one(credentials("shaaes256", priv_protocol="AES256C"), agent.port)
    assert "a wrong priv key or priv_protocol" in (r.error or ""), r.error


async def test_an_unknown_user_is_named(agent: Any) -> None:
    r, _ = await poll_one(credentials("nobody"), agent.port)
    assert r.error == "SNMPv3: wrong user or keys (the agent has no user 'nobody')"


async def test_a_user_without_privacy_on_the_agent(agent: Any) -> None:
    r, _ = await poll_one(credentials("authonly"), agent.port)
    assert r.error == "SNMPv3: wrong user or keys (the agent does not allow authPriv for user 'authonly')"


async def test_an_agent_that_is_down_is_no_reply() -> None:
    r, p = await poll_one(credentials(), free_udp_port())  # nobody listens: ICMP port unreachable
    assert r.error == "no reply after 2 tries of 0.3 s (agent down, filtered, or not speaking SNMPv3)"
    assert r.loss == 0.5
    assert p.errors == {"timeout": 1}


async def test_a_filtered_agent_is_no_reply() -> None:
    silent, port = await scripted_agent(lambda data: None)
    try:
        r, _ = await poll_one(credentials(), port, retries=0)
    finally:
        assert silent.transport is not None
        silent.transport.close()
    assert r.error == "no reply after 1 try of 0.3 s (agent down, filtered, or not speaking SNMPv3)"
    assert len(silent.requests) == 2  # the one try (pysnmp's discovery of the engine), then our probe


async def test_the_keys_are_in_no_error_log_or_repr(agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors = []
    for v3 in (credentials(), credentials(auth=WRONG), credentials(priv=WRONG), credentials("nobody")):
        r, p = await poll_one(v3, agent.port)
        errors.append(r.error or "")
        for text in (repr(p._settings), str(p._settings), repr(v3), str(v3)):
            assert AUTH_KEY not in text
            assert PRIV_KEY not in text
            assert WRONG not in text
            assert "public" not in text  # nor the community
    assert errors[0] == ""
    assert all(errors[1:])
    for secret in (AUTH_KEY, PRIV_KEY, WRONG):
        assert secret not in caplog.text
        assert not any(secret in e for e in errors)


async def test_discovery_is_answered_by_an_agent_and_not_by_a_closed_port(agent: Any) -> None:
    assert await answers_discovery(("127.0.0.1", agent.port), 1.0)
    assert not await answers_discovery(("127.0.0.1", free_udp_port()), 0.3)


# --- a fake pysnmp session: what real agents do not send -----------------------------------------

_PYSNMP = {
    2: rfc1902.Integer32,
    4: rfc1902.OctetString,
    65: rfc1902.Counter32,
    66: rfc1902.Gauge32,
    67: rfc1902.TimeTicks,
    70: rfc1902.Counter64,
}
TABLE = table_of(switch_snmprec([Port(f"Gi0/{i}") for i in range(1, 9)]))


class FakeSession:
    """Session.send answered from TABLE as an agent would (GET and GETBULK), with pysnmp's types;
    `status` (errorStatus, errorIndex) and `bulk` (a GETBULK answer) change what it says."""

    def __init__(self) -> None:
        self.credentials = credentials()
        self.status = (0, 0)
        self.bulks = 0
        self.again = False  # every GETBULK answered as the first one was

    def conversation(self, settings: SnmpSettings, target: tuple[str, int]) -> V3Conversation:
        return V3Conversation(self, settings, target)  # type: ignore[arg-type]

    def target(self, address: tuple[str, int]) -> str:
        return "fake"

    async def send(
        self, target: str, pdu_type: int, oids: list[tuple[int, ...]], repetitions: int
    ) -> tuple[Any, int, int, list[tuple[Any, Any]]]:
        ordered = sorted(TABLE)
        binds: list[tuple[Any, Any]] = []
        if pdu_type == GET_BULK_REQUEST:
            self.bulks += 1
            cursors = list(oids)
            if self.again and self.bulks > 1:
                cursors = [o[:10] for o in oids]  # back to the columns' starts
            for _ in range(repetitions):
                for i, cursor in enumerate(cursors):
                    later = [o for o in ordered if o > cursor]
                    if not later:
                        binds.append((rfc1902.ObjectName(cursor), EndOfMibView()))
                        continue
                    cursors[i] = later[0]
                    tag, value = TABLE[later[0]]
                    binds.append((rfc1902.ObjectName(later[0]), _PYSNMP[tag](value)))
        else:
            for oid in oids:
                if oid in TABLE:
                    tag, value = TABLE[oid]
                    binds.append((rfc1902.ObjectName(oid), _PYSNMP[tag](value)))
                else:
                    binds.append((rfc1902.ObjectName(oid), NoSuchObject()))
        return None, self.status[0], self.status[1], binds


async def walk_fake(session: FakeSession, **kw: Any) -> ProbeResult:
    settings = SnmpSettings(timeout=FAST, v3=session.credentials, **kw)
    p = SnmpProber(FakeClock(AT), settings)
    p._v3 = session  # type: ignore[assignment]
    try:
        return await p.poll(v3_switch(161))
    finally:
        p._v3 = None
        await p.aclose()


async def test_the_v3_walk_reads_what_the_v2c_walk_reads_from_the_same_table() -> None:
    v3 = await walk_fake(FakeSession(), max_repetitions=3)
    agent, port = await scripted_agent(TableAgent(b"c", TABLE))
    try:
        p = SnmpProber(FakeClock(AT), SnmpSettings(community=b"c", timeout=FAST, max_repetitions=3))
        v2c = (await poll(p, v2c_switch(port)))["SW2"]
        await p.aclose()
    finally:
        assert agent.transport is not None
        agent.transport.close()
    assert v3.ok, v3.error
    assert v3.detail == v2c.detail
    assert list(ports_of(v3)) == [f"Gi0/{i}" for i in range(1, 9)]


async def test_an_error_status_is_named_with_its_oid() -> None:
    session = FakeSession()
    session.status = (5, 1)
    r = await walk_fake(session)
    assert r.error == "the agent answered genErr at 1.3.6.1.2.1.1.3.0"


async def test_a_v3_walk_that_goes_back_is_a_broken_agent() -> None:
    session = FakeSession()
    session.again = True
    r = await walk_fake(session, max_repetitions=2)
    assert "went back" in (r.error or ""), r.error


def test_pysnmp_values_become_the_codecs() -> None:
    oid = rfc1902.ObjectName((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1))
    cases = [
        (rfc1902.Counter64(2**64 - 1), COUNTER64, 2**64 - 1),
        (rfc1902.TimeTicks(123), TIMETICKS, 123),
        (rfc1902.OctetString(b"Gi0/1"), OCTET_STRING, b"Gi0/1"),
        (rfc1902.IpAddress("10.0.0.1"), IP_ADDRESS, b"\x0a\x00\x00\x01"),
        (rfc1902.ObjectIdentifier((1, 3, 6, 1)), OBJECT_IDENTIFIER, encode_oid((1, 3, 6, 1))),
        (NoSuchObject(), NO_SUCH_OBJECT, None),
        (NoSuchInstance(), NO_SUCH_INSTANCE, None),
        (EndOfMibView(), END_OF_MIB_VIEW, None),
        (rfc1902.Integer32(-5), 2, -5),
        (univ.Null(), 5, None),
    ]
    for value, tag, want in cases:
        got = _varbind(oid, value)
        assert (got.oid, got.tag, got.value) == (encode_oid(tuple(oid)), tag, want), value


def test_the_discovery_request_is_snmpv3_with_no_user() -> None:
    message = _discovery_request(0x1234)
    assert is_v3_message(message)
    assert message.startswith(b"\x30")
    assert b"\x04\x01\x04" in message  # msgFlags: reportable, noAuthNoPriv
    assert not is_v3_message(b"\x30\x03\x02\x01\x01")  # v2c


# --- settings, check and config --------------------------------------------------------------------


def v3_config(**kw: Any) -> SnmpProbeConfig:
    return SnmpProbeConfig(v3=SnmpV3Config(user="slamon", **kw))


def test_the_keys_come_from_the_environment_or_files(tmp_path: Path) -> None:
    env = {"SLAMON_SNMP_AUTH_KEY": AUTH_KEY, "SLAMON_SNMP_PRIV_KEY": PRIV_KEY}
    settings = settings_from(v3_config(), env)
    assert settings.v3 == credentials()
    assert settings.community == b""  # v3 only: no community needed
    (tmp_path / "auth").write_text(f"{AUTH_KEY}\n", encoding="utf-8")
    (tmp_path / "priv").write_text(f"  {PRIV_KEY}\n", encoding="utf-8")
    from_files = settings_from(
        v3_config(auth_key_file=tmp_path / "auth", priv_key_file=tmp_path / "priv", priv_protocol="DES"), {}
    )
    assert from_files.v3 == credentials(priv_protocol="DES")
    other_names = settings_from(v3_config(auth_key_env="A", priv_key_env="P"), {"A": AUTH_KEY, "P": PRIV_KEY})
    assert other_names.v3 == credentials()
    for text in (repr(settings), repr(from_files), str(settings.v3)):
        assert AUTH_KEY not in text
        assert PRIV_KEY not in text


def test_missing_or_short_keys_say_how_to_set_them(tmp_path: Path) -> None:
    with pytest.raises(SnmpUnavailable) as no_auth:
        settings_from(v3_config(), {"SLAMON_SNMP_PRIV_KEY": PRIV_KEY})
    assert str(no_auth.value) == (
        "probes.snmp.v3: the SNMPv3 auth key is not set: export SLAMON_SNMP_AUTH_KEY=... "
        "(probes.snmp.v3.auth_key_env) or name a file in probes.snmp.v3.auth_key_file"
    )
    with pytest.raises(SnmpUnavailable) as no_priv:
        settings_from(v3_config(priv_key_env="P"), {"SLAMON_SNMP_AUTH_KEY": AUTH_KEY})
    assert "export P=... (probes.snmp.v3.priv_key_env)" in str(no_priv.value)
    with pytest.raises(SnmpUnavailable) as short:
        settings_from(v3_config(), {"SLAMON_SNMP_AUTH_KEY": "short", "SLAMON_SNMP_PRIV_KEY": PRIV_KEY})
    assert str(short.value) == (
        "probes.snmp.v3: the auth key from SLAMON_SNMP_AUTH_KEY is shorter than 8 characters "
        "(an SNMPv3 passphrase has 8 or more)"
    )
    assert "short" not in str(short.value).replace("shorter", "")
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(SnmpUnavailable, match=r"^probes\.snmp\.v3\.priv_key_file: .*empty is empty$"):
        settings_from(v3_config(priv_key_file=tmp_path / "empty"), {"SLAMON_SNMP_AUTH_KEY": AUTH_KEY})


def test_traps_need_the_community() -> None:
    with pytest.raises(SnmpUnavailable, match=r"^probes\.snmp\.traps: .*export SLAMON_SNMP_COMMUNITY=\.\.\."):
        settings_from(SnmpProbeConfig(traps=("127.0.0.1", 1162)), {})
    assert (
        settings_from(SnmpProbeConfig(traps=("127.0.0.1", 1162)), {"SLAMON_SNMP_COMMUNITY": "c"}).community
        == b"c"
    )


def test_check_wants_what_the_switches_speak() -> None:
    v3_only = SnmpProber(FakeClock(AT), SnmpSettings(v3=credentials()))
    assert v3_only.check([v3_switch(161)]) == "v3 (user slamon, authPriv SHA/AES)"
    with pytest.raises(SnmpUnavailable, match=r"the SNMP community is not set \(1 switches: SW2\)"):
        v3_only.check([v3_switch(161), v2c_switch(161)])
    v2c_only = SnmpProber(FakeClock(AT), SnmpSettings(community=b"public"))
    assert v2c_only.check([v2c_switch(161)]) == "v2c"
    with pytest.raises(SnmpUnavailable) as no_user:
        v2c_only.check([v2c_switch(161), *(v3_switch(161, f"SW3-{i}") for i in range(4))])
    assert str(no_user.value) == (
        "switches have `snmp: {version: 3}` in the inventory (4 switches: SW3-0, SW3-1, SW3-2, …) but no "
        "SNMPv3 user is configured: add probes.snmp.v3 {user: NAME} to slamon.yaml, with its keys in "
        "SLAMON_SNMP_AUTH_KEY and SLAMON_SNMP_PRIV_KEY (or the variables or files it names)"
    )


async def test_a_v3_switch_without_a_user_fails_its_poll_not_the_round() -> None:
    p = SnmpProber(FakeClock(AT), SnmpSettings(community=b"public", timeout=FAST))
    r = (await poll(p, v3_switch(161)))["SW3"]
    await p.aclose()
    assert r.error == "SNMPv3 switch, but no SNMPv3 user is configured (probes.snmp.v3)"


GOOD = TESTDATA / "config" / "good"


def write_config(where: Path, snmp: str, inventory: Path = GOOD / "inventory.yaml") -> Path:
    path = where / "slamon.yaml"
    path.write_text(
        f"inventory: {inventory}\ncontracts: ['{GOOD}/contracts/*.yaml']\nprobes:\n  snmp: {snmp}\n",
        encoding="utf-8",
    )
    return path


def test_the_v3_block_in_slamon_yaml(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "priv").write_text(PRIV_KEY, encoding="utf-8")
    config = load_config(
        write_config(
            tmp_path,
            "{v3: {user: slamon, auth_protocol: SHA256, auth_key_env: YJ_AUTH, priv_protocol: AES256, "
            "priv_key_file: secrets/priv}}",
        )
    )
    assert config.probes.snmp.v3 == SnmpV3Config(
        user="slamon",
        auth_protocol="SHA256",
        auth_key_env="YJ_AUTH",
        priv_protocol="AES256",
        priv_key_file=tmp_path / "secrets" / "priv",
    )
    assert load_config(write_config(tmp_path, "{v3: {user: slamon}}")).probes.snmp.v3 == SnmpV3Config(
        user="slamon"
    )
    assert load_config(write_config(tmp_path, "{interval: 60s}")).probes.snmp.v3 is None


def test_settings_from_the_config_as_build_probers_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build_probers calls settings_from(config.probes.snmp), then check(switches): the keys come
    from the process's environment, the community only when a v2c switch is listed."""
    config = load_config(write_config(tmp_path, "{v3: {user: slamon}}")).probes.snmp
    monkeypatch.delenv("SLAMON_SNMP_COMMUNITY", raising=False)
    monkeypatch.delenv("SLAMON_SNMP_AUTH_KEY", raising=False)
    monkeypatch.setenv("SLAMON_SNMP_PRIV_KEY", PRIV_KEY)
    with pytest.raises(SnmpUnavailable, match="the SNMPv3 auth key is not set"):
        settings_from(config)
    monkeypatch.setenv("SLAMON_SNMP_AUTH_KEY", AUTH_KEY)
    p = SnmpProber(FakeClock(AT), settings_from(config))
    assert p.check([v3_switch(161)]) == "v3 (user slamon, authPriv SHA/AES)"
    with pytest.raises(SnmpUnavailable, match=r"export SLAMON_SNMP_COMMUNITY=\.\.\."):
        p.check([v3_switch(161), v2c_switch(161)])


def test_probe_once_polls_a_v3_switch_with_keys_from_a_variable_and_a_file(
    tmp_path: Path, agent: Any
) -> None:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "c.yaml").write_text(
        "id: C\nvendor: v\ncurrency: CNY\ntimezone: Asia/Shanghai\nterm: {start: 2025-06-01, months: 36}\n"
        'fees: {camera: "1", switch: "0", link: "0"}\n',
        encoding="utf-8",
    )
    (tmp_path / "inventory.yaml").write_text(
        "sites: [{id: S, name: s, district: d, area: urban}]\n"
        f"devices: [{{id: SW1, kind: switch, address: 127.0.0.1, site: S, contract: C, snmp: {{version: 3, port: {agent.port}}}}}]\n",
        encoding="utf-8",
    )
    (tmp_path / "priv.key").write_text(f"{PRIV_KEY}\n", encoding="utf-8")
    (tmp_path / "slamon.yaml").write_text(
        "database: sqlite:///slamon.db\ninventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n"
        "probes: {snmp: {v3: {user: slamon, auth_key_env: TEST_AUTH, priv_key_file: priv.key}}}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "slamon.cli",
            "-c",
            str(tmp_path / "slamon.yaml"),
            "probe",
            "--once",
            "--json",
            "--device",
            "SW1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"TEST_AUTH": AUTH_KEY, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    snmp = next(x for x in map(json.loads, done.stdout.splitlines()) if x["probe"] == "snmp")
    assert snmp["ok"] is True, snmp
    assert snmp["detail"]["ports"]["lo"]["oper"] == "up"
    assert AUTH_KEY not in done.stdout + done.stderr
    assert PRIV_KEY not in done.stdout + done.stderr
