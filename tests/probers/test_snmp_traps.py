"""The SNMP trap listener against net-snmp's snmptrap and snmpinform on loopback (v2c traps, v1
traps, SNMPv3 traps and informs, informs that must be answered, wrong communities, users and keys),
datagrams we build for what the tools cannot send (another source address, garbage, unauthenticated
SNMPv3), and the decoders against random and damaged bytes."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slamon.model import DeviceId
from slamon.probers import snmp_traps
from slamon.probers.snmp import SnmpV3Credentials
from slamon.probers.snmp_traps import (
    AUTH,
    KINDS,
    OUTCOMES,
    PRIV,
    REPORTABLE,
    MalformedTrap,
    Notification,
    Trap,
    TrapListener,
    V3Header,
    decode_notification,
    decode_v3_header,
    receiver_engine_id,
    trap_of,
)
from slamon.probers.snmp_wire import (
    GET_REQUEST,
    INFORM_REQUEST,
    INTEGER,
    OBJECT_IDENTIFIER,
    OCTET_STRING,
    RESPONSE,
    SNMPV2_TRAP,
    TIMETICKS,
    V1,
    V2C,
    Message,
    VarBind,
    decode_message,
    encode_message,
    encode_oid,
    is_v3_message,
    parse_oid,
)

COMMUNITY = "tr4p-s3cret"
SW1 = DeviceId("SW1")
SW2 = DeviceId("SW2")
TARGET_S = 2.0  # the target: a trap is passed on within 2 s of being sent

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"
COLD_START = "1.3.6.1.6.3.1.1.5.1"
WARM_START = "1.3.6.1.6.3.1.1.5.2"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"

# what net-snmp's tools put on the wire (caught on a UDP socket): snmptrap -v1 … 1.3.6.1.4.1.8072
# 127.0.0.1 2 0 '' 1.3.6.1.2.1.2.2.1.1.5 i 5; snmptrap -v2c … (the linkDown below); snmpinform
# -v2c … '' coldStart. The community is COMM.
NET_SNMP_V1 = bytes.fromhex(
    "30380201000404434f4d4da42d06072b06010401bf0840047f00000102010202010043030269ed3011300f060a2b0601"
    "02010202010105020105"
)
NET_SNMP_V2C = bytes.fromhex(
    "30760201010404434f4d4da76b02044d835d1c020100020100305d300f06082b0601020101030043030269ec3017060a"
    "2b06010603010104010006092b0601060301010503300f060a2b060102010202010105020105300f060a2b0601020102"
    "02010705020101300f060a2b060102010202010805020102"
)
NET_SNMP_INFORM = bytes.fromhex(
    "30430201010404434f4d4da63802042665d162020100020100302a300f06082b0601020101030043030269ed3017060a"
    "2b06010603010104010006092b0601060301010501"
)
CAPTURED = [NET_SNMP_V1, NET_SNMP_V2C, NET_SNMP_INFORM]

# SNMPv3: the one user slamon polls with, and the engine ID our test switch sends its traps with
USER = "slamon-traps"
AUTH_KEY = "auth-K3y-s3cret"
PRIV_KEY = "priv-K3y-s3cret"
CREDENTIALS = SnmpV3Credentials(USER, "SHA", AUTH_KEY.encode(), "AES", PRIV_KEY.encode())
SWITCH_ENGINE = "0x8000000001020304"
# snmptrap -v3 -u slamon-traps -l authPriv -a SHA -A auth-K3y-s3cret -x AES -X priv-K3y-s3cret
# -e 0x8000000001020304 … '' linkDown ifIndex.5 i 5; and the discovery request snmpinform -v3
# sends first (no user, no engine ID, reportable)
NET_SNMP_V3 = bytes.fromhex(
    "3081b6020103301102045d7f27b8020300ffe3040103020103043a3038040880000000010203040201010203091aa904"
    "0c736c616d6f6e2d7472617073040cd38019e88415ca84b28d5eba040815ddc9a19ffaf17004628bdfa7667b4fc86af7"
    "771542db73a35bdeed5c394f3a6b40a419cd6ba20e240e69f36806acb0e7bbf5e29e2976a44684ab58fbab232389335c"
    "801caf25d33e1193d16b096bd185d2d9ed1b72e9106896765afba20037316ca690de5d44b6cf58f5a7"
)
NET_SNMP_DISCOVERY = bytes.fromhex(
    "304f020103301102042676fa02020300ffe30401040201030410300e04000201000201000400040004003025041180"
    "001f88808cc6002c476a136b000000000400a00e02040d75de0d0201000201003000"
)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        reason = f"net-snmp's {tool} is not installed (apt-get install snmp)"
        if os.environ.get("SLAMON_REQUIRE_NETNS"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def oid(text: str) -> bytes:
    return encode_oid(parse_oid(text))


def v2c(
    trap_oid: str,
    *binds: VarBind,
    community: str = COMMUNITY,
    pdu_type: int = SNMPV2_TRAP,
    request_id: int = 1,
) -> bytes:
    """A v2c trap (or inform) as a switch sends it: sysUpTime.0, snmpTrapOID.0, then `binds`."""
    head = [
        VarBind(oid(SYS_UPTIME), TIMETICKS, 4242),
        VarBind(oid(SNMP_TRAP_OID), OBJECT_IDENTIFIER, oid(trap_oid)),
    ]
    return encode_message(Message(V2C, community.encode(), pdu_type, request_id, 0, 0, head + list(binds)))


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    size = bytes((n,)) if n < 0x80 else bytes((0x82,)) + n.to_bytes(2, "big")
    return bytes((tag,)) + size + content


def _int(value: int) -> bytes:
    return _tlv(INTEGER, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def v1(
    enterprise: str, generic: int, specific: int, ticks: int, binds: list[VarBind], community: bytes = b"c"
) -> bytes:
    """An RFC 1157 Trap-PDU (encode_message makes only v2c-shaped PDUs), its varbind list cut out of
    a v2c trap that snmp_wire encodes."""
    wire = encode_message(Message(V2C, b"", SNMPV2_TRAP, 0, 0, 0, binds))
    at = _after_header(wire, 0) + 3 + 2  # the version and an empty community
    listed = wire[_after_header(wire, at) + 9 :]  # after the PDU's header and its three integers
    pdu = (
        _tlv(OBJECT_IDENTIFIER, oid(enterprise))
        + _tlv(0x40, bytes((10, 0, 0, 7)))
        + _int(generic)
        + _int(specific)
        + _tlv(TIMETICKS, ticks.to_bytes((ticks.bit_length() + 8) // 8 or 1, "big"))
        + listed
    )
    return _tlv(0x30, _int(V1) + _tlv(OCTET_STRING, community) + _tlv(0xA4, pdu))


def _after_header(wire: bytes, at: int) -> int:
    n = wire[at + 1]
    return at + 2 + (n & 0x7F if n & 0x80 else 0)


# --- the listener on loopback ---------------------------------------------------------------------


@dataclass
class Received:
    listener: TrapListener
    traps: asyncio.Queue[tuple[Trap, int]]

    @property
    def port(self) -> int:
        assert self.listener.address is not None
        return self.listener.address[1]

    async def next(self, sent_ns: int) -> Trap:
        """The next trap passed on (5 s at most), checked to have come within TARGET_S of `sent_ns`."""
        trap, delivered_ns = await asyncio.wait_for(self.traps.get(), 5)
        assert sent_ns <= trap.received_ns <= delivered_ns
        assert (delivered_ns - sent_ns) / 1e9 < TARGET_S
        return trap

    def nothing_else(self) -> None:
        assert self.traps.empty(), self.traps.get_nowait()


@asynccontextmanager
async def listening(v3: SnmpV3Credentials | None = None) -> AsyncIterator[Received]:
    queue: asyncio.Queue[tuple[Trap, int]] = asyncio.Queue()
    listener = TrapListener(
        COMMUNITY.encode(),
        {"127.0.0.1": SW1},
        lambda trap: queue.put_nowait((trap, time.monotonic_ns())),
        v3=v3,
    )
    await listener.start("127.0.0.1", 0)
    try:
        yield Received(listener, queue)
    finally:
        await listener.aclose()


@pytest.fixture
async def received() -> AsyncIterator[Received]:
    async with listening() as got:
        yield got


@pytest.fixture
async def received_v3() -> AsyncIterator[Received]:
    """A listener that takes SNMPv3 traps of CREDENTIALS' user (and v1/v2c ones, as ever)."""
    async with listening(CREDENTIALS) as got:
        yield got


async def tool(*argv: str) -> tuple[int, int]:
    """Run a net-snmp tool (without blocking the loop, which answers informs); (exit code, the
    monotonic ns just before it was started). It must say nothing on stderr."""
    code, sent_ns, err = await tool_saying(*argv)
    assert not err, err
    return code, sent_ns


async def tool_saying(*argv: str) -> tuple[int, int, str]:
    """`tool`, and what it said on stderr."""
    sent_ns = time.monotonic_ns()
    process = await asyncio.create_subprocess_exec(
        need(argv[0]), *argv[1:], stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 10)
    return process.returncode or 0, sent_ns, err.decode()


def v3_args(
    user: str = USER,
    auth_key: str = AUTH_KEY,
    priv_key: str = PRIV_KEY,
    level: str = "authPriv",
    auth: str = "SHA",
    priv: str = "AES",
) -> list[str]:
    """net-snmp's options for an SNMPv3 user (its -a/-x names: SHA-256, not SHA256)."""
    args = ["-v3", "-u", user, "-l", level]
    if level != "noAuthNoPriv":
        args += ["-a", auth, "-A", auth_key]
    if level == "authPriv":
        args += ["-x", priv, "-X", priv_key]
    return args


async def snmptrap_v3(port: int, *args: str, engine: str = SWITCH_ENGINE, **user: str) -> int:
    """An SNMPv3 trap, as a switch of engine ID `engine` sends it; the monotonic ns it was sent."""
    code, sent_ns = await tool("snmptrap", *v3_args(**user), "-e", engine, f"127.0.0.1:{port}", *args)
    assert code == 0
    return sent_ns


async def snmptrap(port: int, *args: str, version: str = "-v2c", community: str = COMMUNITY) -> int:
    code, sent_ns = await tool("snmptrap", version, "-c", community, f"127.0.0.1:{port}", *args)
    assert code == 0
    return sent_ns


def send_from(source: str, port: int, payload: bytes) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((source, 0))
        except OSError as exc:
            pytest.skip(f"cannot bind a UDP socket to {source}: {exc}")
        sent_ns = time.monotonic_ns()
        s.sendto(payload, ("127.0.0.1", port))
    return sent_ns


IF = "1.3.6.1.2.1.2.2.1"  # ifEntry: .1 ifIndex, .2 ifDescr, .7 ifAdminStatus, .8 ifOperStatus
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
LINK_UP_WITH_NAMES = [
    "", LINK_UP, f"{IF}.1.3", "i", "3", f"{IF}.2.3", "s", "GigabitEthernet0/3",
    f"{IF}.7.3", "i", "1", f"{IF}.8.3", "i", "1", f"{IF_NAME}.3", "s", "Gi0/3",
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["", LINK_DOWN, f"{IF}.1.5", "i", "5", f"{IF}.7.5", "i", "1", f"{IF}.8.5", "i", "2"],
            {"kind": "linkDown", "if_index": 5, "admin": "up", "oper": "down", "if_name": None},
            id="linkDown",
        ),
        pytest.param(
            LINK_UP_WITH_NAMES,
            {
                "kind": "linkUp",
                "if_index": 3,
                "oper": "up",
                "if_name": "Gi0/3",
                "if_descr": "GigabitEthernet0/3",
            },
            id="linkUp",
        ),
        pytest.param(["", COLD_START], {"kind": "coldStart", "if_index": None, "oper": None}, id="coldStart"),
        pytest.param(["", WARM_START], {"kind": "warmStart", "if_index": None}, id="warmStart"),
        pytest.param(
            ["", "1.3.6.1.4.1.8072.2.3.0.1", "1.3.6.1.4.1.8072.2.3.2.1", "i", "7"],
            {"kind": "other", "if_index": None, "trap_oid": "1.3.6.1.4.1.8072.2.3.0.1"},
            id="other",
        ),
    ],
)
async def test_a_v2c_trap_from_snmptrap_is_passed_on_within_2_s(
    received: Received, args: list[str], expected: dict[str, object]
) -> None:
    sent_ns = await snmptrap(received.port, *args)
    trap = await received.next(sent_ns)
    assert trap.switch == SW1
    assert trap.source == "127.0.0.1"
    assert isinstance(trap.uptime_ticks, int)  # snmptrap's '' uptime: its own
    assert trap.trap_oid == expected.get("trap_oid", args[1])
    for name, value in expected.items():
        assert getattr(trap, name) == value, name
    assert received.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "accepted": 1}
    kinds: dict[str, int] = dict.fromkeys(KINDS, 0)
    kinds[str(expected["kind"])] = 1
    assert received.listener.kinds == kinds
    received.nothing_else()


@pytest.mark.parametrize(
    ("args", "kind", "trap_oid", "if_index"),
    [
        (["1.3.6.1.4.1.8072", "127.0.0.1", "2", "0", "", f"{IF}.1.5", "i", "5"], "linkDown", LINK_DOWN, 5),
        (["1.3.6.1.4.1.8072", "127.0.0.1", "3", "0", "", f"{IF}.1.9", "i", "9"], "linkUp", LINK_UP, 9),
        (["1.3.6.1.4.1.8072", "127.0.0.1", "0", "0", ""], "coldStart", COLD_START, None),
        (["1.3.6.1.4.1.8072", "127.0.0.1", "6", "17", ""], "other", "1.3.6.1.4.1.8072.0.17", None),
    ],
    ids=["linkDown", "linkUp", "coldStart", "enterprise-specific"],
)
async def test_a_v1_trap_from_snmptrap_is_passed_on_within_2_s(
    received: Received, args: list[str], kind: str, trap_oid: str, if_index: int | None
) -> None:
    sent_ns = await snmptrap(received.port, *args, version="-v1")
    trap = await received.next(sent_ns)
    assert (trap.switch, trap.kind, trap.trap_oid, trap.if_index) == (SW1, kind, trap_oid, if_index)
    assert isinstance(trap.uptime_ticks, int)  # the v1 time-stamp
    assert received.listener.counts["accepted"] == 1


async def test_an_inform_is_answered_so_snmpinform_exits_at_once(received: Received) -> None:
    code, sent_ns = await tool(
        "snmpinform", "-v2c", "-c", COMMUNITY, "-t", "1", "-r", "0", f"127.0.0.1:{received.port}", "",
        LINK_UP, f"{IF}.1.4", "i", "4", f"{IF}.8.4", "i", "1",
    )  # fmt: skip
    assert code == 0  # got its Response (a timeout exits 1 after 1 s)
    assert (time.monotonic_ns() - sent_ns) / 1e9 < TARGET_S
    trap = await received.next(sent_ns)
    assert (trap.kind, trap.if_index, trap.oper) == ("linkUp", 4, "up")


async def test_the_response_echoes_the_inform_and_a_wrong_community_gets_none(received: Received) -> None:
    """Datagrams from one socket are read in order: if the wrong-community inform were answered,
    its Response would come before the good one's."""
    binds = [VarBind(oid(f"{IF}.1.6"), INTEGER, 6), VarBind(oid(f"{IF_NAME}.6"), OCTET_STRING, b"Gi0/6")]
    bad = v2c(LINK_DOWN, *binds, community="wrong", pdu_type=INFORM_REQUEST, request_id=111)
    good = v2c(LINK_DOWN, *binds, pdu_type=INFORM_REQUEST, request_id=222)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))
        sent_ns = time.monotonic_ns()
        s.sendto(bad, ("127.0.0.1", received.port))
        s.sendto(good, ("127.0.0.1", received.port))
        answer = decode_message(await asyncio.wait_for(loop.sock_recv(s, 65535), 5))
    assert (answer.pdu_type, answer.request_id, answer.error_status, answer.error_index) == (
        RESPONSE,
        222,
        0,
        0,
    )
    assert answer.community == COMMUNITY.encode()
    assert answer.varbinds == decode_message(good).varbinds
    trap = await received.next(sent_ns)
    assert (trap.kind, trap.if_index, trap.if_name) == ("linkDown", 6, "Gi0/6")
    assert received.listener.counts["bad_community"] == 1
    received.nothing_else()


async def test_a_wrong_community_is_counted_and_not_passed_on(
    received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="slamon.probers.snmp_traps")
    await snmptrap(received.port, "", LINK_DOWN, f"{IF}.1.1", "i", "1", community="not-" + COMMUNITY)
    sent_ns = await snmptrap(received.port, "", LINK_DOWN, f"{IF}.1.2", "i", "2")  # sent after it
    trap = await received.next(sent_ns)
    assert trap.if_index == 2  # the first one was dropped
    received.nothing_else()
    assert received.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "accepted": 1, "bad_community": 1}
    assert "wrong community" in caplog.text
    assert COMMUNITY not in caplog.text


async def test_an_unknown_source_is_counted_and_dropped_until_a_reload_knows_it(
    received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="slamon.probers.snmp_traps")
    trap_bytes = v2c(LINK_DOWN, VarBind(oid(f"{IF}.1.8"), INTEGER, 8))
    send_from("127.0.0.2", received.port, trap_bytes)
    sent_ns = send_from("127.0.0.1", received.port, v2c(COLD_START))
    assert (await received.next(sent_ns)).kind == "coldStart"
    received.nothing_else()
    assert received.listener.counts["unknown_source"] == 1
    assert "127.0.0.2: not a known switch" in caplog.text

    received.listener.set_switches({"127.0.0.1": SW1, "127.0.0.2": SW2})
    sent_ns = send_from("127.0.0.2", received.port, trap_bytes)
    trap = await received.next(sent_ns)
    assert (trap.switch, trap.source, trap.kind, trap.if_index, trap.uptime_ticks) == (
        SW2, "127.0.0.2", "linkDown", 8, 4242,
    )  # fmt: skip
    assert received.listener.counts["unknown_source"] == 1


async def test_malformed_datagrams_are_counted_and_the_listener_goes_on(
    received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="slamon.probers.snmp_traps")
    garbage = [
        b"",
        b"\x00\xff garbage",
        NET_SNMP_V2C[:-5],  # truncated
        encode_message(Message(V2C, COMMUNITY.encode(), GET_REQUEST, 9, 0, 0, [])),  # not a trap
    ]
    for payload in garbage:
        send_from("127.0.0.1", received.port, payload)
    sent_ns = await snmptrap(received.port, "", LINK_DOWN, f"{IF}.1.5", "i", "5")
    trap = await received.next(sent_ns)
    assert (trap.kind, trap.if_index) == ("linkDown", 5)
    received.nothing_else()
    assert received.listener.counts == {
        **dict.fromkeys(OUTCOMES, 0),
        "accepted": 1,
        "malformed": len(garbage),
    }
    malformed = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(malformed) == len(garbage)
    assert all(r.levelno == logging.DEBUG for r in malformed)
    assert "not a trap or an inform" in caplog.text
    assert COMMUNITY not in caplog.text


async def test_a_failing_callback_is_logged_and_the_listener_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[Trap] = []
    arrived = asyncio.Event()

    def on_trap(trap: Trap) -> None:
        got.append(trap)
        arrived.set()
        if len(got) == 1:
            raise RuntimeError("a bug in the service")

    listener = TrapListener(COMMUNITY.encode(), {"127.0.0.1": SW1}, on_trap)
    await listener.start("127.0.0.1", 0)
    try:
        with pytest.raises(RuntimeError, match="already started"):
            await listener.start("127.0.0.1", 0)
        assert listener.address is not None
        for kind in (COLD_START, WARM_START):
            arrived.clear()
            send_from("127.0.0.1", listener.address[1], v2c(kind))
            await asyncio.wait_for(arrived.wait(), 5)
    finally:
        await listener.aclose()
    assert [t.kind for t in got] == ["coldStart", "warmStart"]
    assert "on_trap failed" in caplog.text
    assert listener.address is None
    await listener.aclose()  # twice is fine


# --- SNMPv3 on loopback ---------------------------------------------------------------------------


def _fields(trap: Trap) -> dict[str, object]:
    """What a trap says, without when it came."""
    return {
        name: getattr(trap, name) for name in Trap.__slots__ if name not in ("received_ns", "uptime_ticks")
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["", LINK_DOWN, f"{IF}.1.5", "i", "5", f"{IF}.7.5", "i", "1", f"{IF}.8.5", "i", "2"],
            {"kind": "linkDown", "if_index": 5, "admin": "up", "oper": "down"},
            id="linkDown",
        ),
        pytest.param(
            LINK_UP_WITH_NAMES,
            {
                "kind": "linkUp",
                "if_index": 3,
                "oper": "up",
                "if_name": "Gi0/3",
                "if_descr": "GigabitEthernet0/3",
            },
            id="linkUp",
        ),
        pytest.param(["", COLD_START], {"kind": "coldStart", "if_index": None}, id="coldStart"),
        pytest.param(["", WARM_START], {"kind": "warmStart", "if_index": None}, id="warmStart"),
        pytest.param(
            ["", "1.3.6.1.4.1.8072.2.3.0.1"],
            {"kind": "other", "trap_oid": "1.3.6.1.4.1.8072.2.3.0.1"},
            id="other",
        ),
    ],
)
async def test_a_v3_trap_from_snmptrap_is_passed_on_within_2_s_as_its_v2c_twin(
    received_v3: Received, args: list[str], expected: dict[str, object]
) -> None:
    sent_ns = await snmptrap_v3(received_v3.port, *args)
    trap = await received_v3.next(sent_ns)
    for name, value in expected.items():
        assert getattr(trap, name) == value, name
    assert (trap.switch, trap.source, trap.trap_oid) == (SW1, "127.0.0.1", expected.get("trap_oid", args[1]))
    assert isinstance(trap.uptime_ticks, int)
    # the same trap in v2c reads the same
    twin = await received_v3.next(await snmptrap(received_v3.port, *args))
    assert _fields(trap) == _fields(twin)
    assert received_v3.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "accepted": 2}
    assert received_v3.listener.kinds[str(expected["kind"])] == 2
    received_v3.nothing_else()


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (("MD5", "DES"), ("MD5", "DES")),
        (("SHA224", "AES192"), ("SHA-224", "AES-192")),
        (("SHA256", "AES"), ("SHA-256", "AES")),
        (("SHA512", "AES256"), ("SHA-512", "AES-256")),
    ],
    ids=lambda names: "/".join(names),
)
async def test_a_v3_trap_of_each_protocol_pair(ours: tuple[str, str], theirs: tuple[str, str]) -> None:
    credentials = SnmpV3Credentials(USER, ours[0], AUTH_KEY.encode(), ours[1], PRIV_KEY.encode())
    async with listening(credentials) as got:
        sent_ns = await snmptrap_v3(
            got.port, "", LINK_DOWN, f"{IF}.1.9", "i", "9", auth=theirs[0], priv=theirs[1]
        )
        trap = await got.next(sent_ns)
        assert (trap.kind, trap.if_index) == ("linkDown", 9)
        assert got.listener.counts["accepted"] == 1


async def test_traps_of_several_engine_ids_each_have_the_keys_localized_to_theirs(
    received_v3: Received, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keys are localized to each sender's engine ID; past MAX_ENGINE_IDS the oldest is
    forgotten, and localized again when it sends again."""
    monkeypatch.setattr(snmp_traps, "MAX_ENGINE_IDS", 2)
    engines = ["0x8000000001020304", "0x80000000010a0b0c0d", "0x800000000403040506", "0x8000000001020304"]
    for n, engine in enumerate(engines, 1):
        sent_ns = await snmptrap_v3(received_v3.port, "", LINK_UP, f"{IF}.1.{n}", "i", str(n), engine=engine)
        assert (await received_v3.next(sent_ns)).if_index == n
    assert received_v3.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "accepted": 4}


async def test_a_v3_inform_is_answered_so_snmpinform_exits_at_once(received_v3: Received) -> None:
    """snmpinform first discovers our engine ID (a Report, not counted), then informs."""
    code, sent_ns = await tool(
        "snmpinform", *v3_args(), "-t", "1", "-r", "0", f"127.0.0.1:{received_v3.port}", "",
        LINK_DOWN, f"{IF}.1.4", "i", "4", f"{IF}.8.4", "i", "2",
    )  # fmt: skip
    assert code == 0  # got its Response (a timeout exits 1 after 1 s)
    assert (time.monotonic_ns() - sent_ns) / 1e9 < TARGET_S
    trap = await received_v3.next(sent_ns)
    assert (trap.kind, trap.if_index, trap.oper) == ("linkDown", 4, "down")
    assert received_v3.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "accepted": 1}
    assert received_v3.listener.engine_id == receiver_engine_id()
    received_v3.nothing_else()


WRONG = [
    pytest.param(
        {"auth_key": "not-" + AUTH_KEY}, "wrong digest", "Authentication failure", id="wrong-auth-key"
    ),
    pytest.param({"priv_key": "not-" + PRIV_KEY}, "cannot decrypt", "Decryption error", id="wrong-priv-key"),
    pytest.param(
        {"user": "intruder"}, "user b'intruder' is not ours", "Unknown user name", id="unknown-user"
    ),
    pytest.param({"auth": "MD5"}, "wrong digest", "Authentication failure", id="wrong-auth-protocol"),
]
LOWER = [
    pytest.param({"level": "authNoPriv"}, "authNoPriv from user", "", id="authNoPriv"),
    pytest.param({"level": "noAuthNoPriv"}, "noAuthNoPriv from user", "", id="noAuthNoPriv"),
]


@pytest.mark.parametrize(("user", "why", "_"), WRONG + LOWER)
async def test_a_v3_trap_with_wrong_credentials_is_counted_and_not_passed_on(
    received_v3: Received, caplog: pytest.LogCaptureFixture, user: dict[str, str], why: str, _: str
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, pysnmp's too
    await snmptrap_v3(received_v3.port, "", LINK_DOWN, f"{IF}.1.1", "i", "1", **user)
    sent_ns = await snmptrap_v3(received_v3.port, "", LINK_DOWN, f"{IF}.1.2", "i", "2")  # sent after it
    assert (await received_v3.next(sent_ns)).if_index == 2  # the first one was dropped
    received_v3.nothing_else()
    assert received_v3.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "accepted": 1, "bad_credentials": 1}
    assert f"SNMPv3 refused, dropped: {why}" in caplog.text
    for key in (AUTH_KEY, PRIV_KEY, *user.values()):
        if "K3y" in key:
            assert key not in caplog.text


@pytest.mark.parametrize(("user", "why", "said"), WRONG)
async def test_a_v3_inform_with_wrong_credentials_gets_a_report_and_is_not_passed_on(
    received_v3: Received, caplog: pytest.LogCaptureFixture, user: dict[str, str], why: str, said: str
) -> None:
    """pysnmp answers it with a Report (RFC 3414 3.2), so snmpinform says what is wrong at once."""
    caplog.set_level(logging.DEBUG)
    code, sent_ns, err = await tool_saying(
        "snmpinform", *v3_args(**user), "-t", "1", "-r", "0", f"127.0.0.1:{received_v3.port}", "", COLD_START
    )
    assert code == 1
    assert err.startswith(f"snmpinform: {said}"), err
    assert (time.monotonic_ns() - sent_ns) / 1e9 < 1  # no timeout: it got the Report
    assert received_v3.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "bad_credentials": 1}
    assert why in caplog.text
    assert AUTH_KEY not in caplog.text
    assert PRIV_KEY not in caplog.text
    received_v3.nothing_else()


async def test_a_v3_trap_without_a_v3_user_configured_is_refused(
    received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="slamon.probers.snmp_traps")
    await snmptrap_v3(received.port, "", COLD_START)
    sent_ns = await snmptrap(received.port, "", WARM_START)  # v2c after it
    assert (await received.next(sent_ns)).kind == "warmStart"
    received.nothing_else()
    assert received.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "accepted": 1, "bad_credentials": 1}
    assert "no SNMPv3 user is configured (probes.snmp.v3)" in caplog.text


async def test_a_v3_user_pysnmp_cannot_serve_is_logged_and_its_traps_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unknown = SnmpV3Credentials(USER, "SHA", AUTH_KEY.encode(), "BLOWFISH", PRIV_KEY.encode())
    async with listening(unknown) as got:
        assert "SNMPv3 traps cannot be checked: unknown priv protocol 'BLOWFISH'" in caplog.text
        await snmptrap_v3(got.port, "", COLD_START)
        sent_ns = await snmptrap(got.port, "", WARM_START)
        assert (await got.next(sent_ns)).kind == "warmStart"
        assert got.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "accepted": 1, "bad_credentials": 1}


async def test_v2c_and_v1_traps_and_informs_still_work_with_v3_on(received_v3: Received) -> None:
    sent_ns = await snmptrap(received_v3.port, "", LINK_DOWN, f"{IF}.1.5", "i", "5")
    assert (await received_v3.next(sent_ns)).if_index == 5
    sent_ns = await snmptrap(received_v3.port, "1.3.6.1.4.1.8072", "127.0.0.1", "3", "0", "", version="-v1")
    assert (await received_v3.next(sent_ns)).kind == "linkUp"
    code, sent_ns = await tool(
        "snmpinform",
        "-v2c",
        "-c",
        COMMUNITY,
        "-t",
        "1",
        "-r",
        "0",
        f"127.0.0.1:{received_v3.port}",
        "",
        COLD_START,
    )
    assert code == 0
    assert (await received_v3.next(sent_ns)).kind == "coldStart"
    assert received_v3.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "accepted": 3}


async def test_v3_from_an_unknown_source_is_dropped_unread_and_unanswered(received_v3: Received) -> None:
    """A discovery request is answered (a Report) from a known switch only."""
    loop = asyncio.get_running_loop()
    answers: list[bytes] = []
    for source in ("127.0.0.2", "127.0.0.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            try:
                s.bind((source, 0))
            except OSError as exc:
                pytest.skip(f"cannot bind a UDP socket to {source}: {exc}")
            s.sendto(NET_SNMP_V3, ("127.0.0.1", received_v3.port))
            s.sendto(NET_SNMP_DISCOVERY, ("127.0.0.1", received_v3.port))
            try:
                answers.append(await asyncio.wait_for(loop.sock_recv(s, 65535), 0.5))
            except TimeoutError:
                answers.append(b"")
    assert answers[0] == b""  # 127.0.0.2: nothing
    report = decode_v3_header(answers[1])
    assert report.engine_id == received_v3.listener.engine_id  # what discovery is for
    assert (report.user, report.flags & (AUTH | PRIV)) == (b"", 0)
    trap = (await asyncio.wait_for(received_v3.traps.get(), 5))[0]  # NET_SNMP_V3 from 127.0.0.1
    assert (trap.switch, trap.kind, trap.if_index) == (SW1, "linkDown", 5)
    assert received_v3.listener.counts == {**dict.fromkeys(OUTCOMES, 0), "accepted": 1, "unknown_source": 2}
    received_v3.nothing_else()


def v3_plaintext(engine_id: bytes, user: bytes, flags: int, pdu_of: bytes) -> bytes:
    """An SNMPv3 message with its ScopedPDU in clear (no digest, no encryption), the PDU that of the
    v2c message `pdu_of`: what net-snmp sends at noAuthNoPriv, with any user and engine ID."""
    pdu = pdu_of[_after_header(pdu_of, 0) + 3 + 2 + pdu_of[_after_header(pdu_of, 0) + 4] :]
    usm = _tlv(0x30, _tlv(4, engine_id) + _int(1) + _int(100) + _tlv(4, user) + _tlv(4, b"") + _tlv(4, b""))
    header = _tlv(0x30, _int(77) + _int(65507) + _tlv(4, bytes((flags,))) + _int(3))
    scoped = _tlv(0x30, _tlv(4, engine_id) + _tlv(4, b"") + pdu)
    return _tlv(0x30, _int(3) + header + _tlv(4, usm) + scoped)


async def test_unauthenticated_v3_is_refused_whatever_its_user_and_engine_id(
    received_v3: Received, caplog: pytest.LogCaptureFixture
) -> None:
    """pysnmp itself would pass on a noAuthNoPriv trap or inform with no user name (all but discovery)
    or with our user name: the listener refuses them before pysnmp sees them."""
    caplog.set_level(logging.DEBUG, logger="slamon.probers.snmp_traps")
    ours = received_v3.listener.engine_id
    switch = bytes.fromhex(SWITCH_ENGINE[2:])
    trap = v2c(LINK_DOWN, VarBind(oid(f"{IF}.1.3"), INTEGER, 3))
    inform = v2c(LINK_DOWN, VarBind(oid(f"{IF}.1.3"), INTEGER, 3), pdu_type=INFORM_REQUEST)
    forged = [
        v3_plaintext(engine, user, flags, pdu)
        for engine in (ours, switch)
        for user in (b"", USER.encode())
        for flags in (0, REPORTABLE)
        for pdu in (trap, inform)
    ]
    assert all(decode_v3_header(f).engine_id in (ours, switch) for f in forged)
    for payload in forged:
        send_from("127.0.0.1", received_v3.port, payload)
    sent_ns = await snmptrap_v3(received_v3.port, "", COLD_START)
    assert (await received_v3.next(sent_ns)).kind == "coldStart"
    received_v3.nothing_else()
    assert received_v3.listener.counts == {
        **dict.fromkeys(OUTCOMES, 0),
        "accepted": 1,
        "bad_credentials": len(forged),
    }
    assert "no user name, noAuthNoPriv (not a discovery request)" in caplog.text
    assert f"noAuthNoPriv from user {USER.encode()!r}: authPriv wanted" in caplog.text


async def test_every_damaged_byte_of_a_v3_trap_is_counted_once_and_never_passed_on(
    received_v3: Received,
) -> None:
    """Each byte of a real SNMPv3 trap flipped (two ways): the digest covers the whole message, so
    none gets through, and each is counted once (malformed or bad_credentials), none crashes."""
    counts = received_v3.listener.counts
    sent_ns = send_from("127.0.0.1", received_v3.port, NET_SNMP_V3)
    assert (await received_v3.next(sent_ns)).if_index == 5  # the real one is ours
    damaged = []
    for at in range(len(NET_SNMP_V3)):
        for mask in (0x01, 0xFF):
            wire = bytearray(NET_SNMP_V3)
            wire[at] ^= mask
            damaged.append(bytes(wire))
    for payload in damaged:
        send_from("127.0.0.1", received_v3.port, payload)
    sent_ns = send_from("127.0.0.1", received_v3.port, NET_SNMP_V3)  # read after them (a replay: taken)
    assert (await received_v3.next(sent_ns)).if_index == 5
    assert sum(counts.values()) == 2 + len(damaged)
    assert counts["accepted"] == 2
    assert counts["malformed"] + counts["bad_credentials"] == len(damaged)
    received_v3.nothing_else()


async def test_memory_stays_flat_over_many_v3_traps(received_v3: Received) -> None:
    """pysnmp queues each authenticated message's engine ID until its timer expires it: without
    ticks (no transport dispatcher of its own) that was ~480 bytes kept a trap."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:

        async def burst(n: int) -> None:
            for _ in range(n):
                s.sendto(NET_SNMP_V3, ("127.0.0.1", received_v3.port))
            for _ in range(n):
                await asyncio.wait_for(received_v3.traps.get(), 5)

        await burst(100)
        tracemalloc.start()
        try:
            gc.collect()  # pyasn1's values hold cycles: garbage until a collection
            before = tracemalloc.get_traced_memory()[0]
            await burst(400)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert received_v3.listener.counts["accepted"] == 500
    assert grown < 100_000, f"{grown} bytes more after 400 traps"


# --- decoding -------------------------------------------------------------------------------------


def test_net_snmps_v1_trap_decodes() -> None:
    note = decode_notification(NET_SNMP_V1)
    assert (note.version, note.community, note.request_id, note.uptime_ticks) == (V1, b"COMM", 0, 158189)
    trap = trap_of(note, SW1, "127.0.0.1", 0)
    assert (trap.kind, trap.trap_oid, trap.if_index) == ("linkDown", LINK_DOWN, 5)
    assert "COMM" not in repr(note)


def test_net_snmps_v2c_trap_and_inform_decode() -> None:
    trap = trap_of(decode_notification(NET_SNMP_V2C), SW1, "127.0.0.1", 0)
    assert (trap.kind, trap.if_index, trap.admin, trap.oper, trap.uptime_ticks) == (
        "linkDown",
        5,
        "up",
        "down",
        158188,
    )
    inform = decode_notification(NET_SNMP_INFORM)
    assert (inform.pdu_type, inform.request_id) == (INFORM_REQUEST, 0x2665D162)
    assert trap_of(inform, SW1, "127.0.0.1", 0).kind == "coldStart"


def test_what_is_not_a_trap_is_malformed_and_says_why() -> None:
    v2_in_v1 = encode_message(Message(V1, b"c", SNMPV2_TRAP, 1, 0, 0, []))
    with pytest.raises(MalformedTrap, match="in a v1 message"):
        decode_notification(v2_in_v1)
    with pytest.raises(MalformedTrap, match="0xa0, not a trap"):
        decode_notification(encode_message(Message(V2C, b"c", GET_REQUEST, 1, 0, 0, [])))
    v1_in_v2 = bytearray(NET_SNMP_V1)
    v1_in_v2[4] = V2C
    with pytest.raises(MalformedTrap, match="Trap-PDU in a v2c message"):
        decode_notification(bytes(v1_in_v2))
    with pytest.raises(MalformedTrap, match="generic-trap of 7"):
        decode_notification(v1("1.3.6.1.4.1.9", 7, 0, 1, []))
    bad_value = bytearray(NET_SNMP_V1)
    bad_value[-3] = 0x99  # the varbind's value tag: the error names its byte in the datagram
    with pytest.raises(MalformedTrap, match=f"byte {len(bad_value) - 3}: unknown value tag 0x99"):
        decode_notification(bytes(bad_value))


def test_a_link_trap_without_an_ifindex_varbind_takes_the_row_of_its_columns() -> None:
    note = decode_notification(
        v2c(LINK_DOWN, VarBind(oid(f"{IF}.8.12"), INTEGER, 2), VarBind(oid(f"{IF}.7.12"), INTEGER, 1))
    )
    trap = trap_of(note, SW1, "127.0.0.1", 0)
    assert (trap.if_index, trap.oper, trap.admin) == (12, "down", "up")


oids = st.tuples(st.integers(0, 2), st.integers(0, 39)).flatmap(
    lambda head: st.lists(st.integers(0, 2**32 - 1), max_size=12).map(lambda rest: head + tuple(rest))
)
varbinds = st.lists(
    st.builds(
        lambda arcs, value: VarBind(encode_oid(arcs), *value),
        oids,
        st.one_of(
            st.tuples(st.just(INTEGER), st.integers(-(2**31), 2**31 - 1)),
            st.tuples(st.just(OCTET_STRING), st.binary(max_size=40)),
            st.tuples(st.just(TIMETICKS), st.integers(0, 2**32 - 1)),
        ),
    ),
    max_size=8,
)


@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_malformed_trap(data: bytes) -> None:
    try:
        assert isinstance(decode_notification(data), Notification)
    except MalformedTrap:
        pass


@given(st.sampled_from(CAPTURED), st.data())
def test_every_truncation_of_a_real_trap_is_malformed(wire: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(MalformedTrap):
        decode_notification(wire[:cut])


@given(st.sampled_from(CAPTURED), st.data())
def test_a_flipped_byte_is_malformed_or_still_a_notification(wire: bytes, data: st.DataObject) -> None:
    damaged = bytearray(wire)
    at = data.draw(st.integers(0, len(wire) - 1))
    damaged[at] ^= data.draw(st.integers(1, 255))
    try:
        note = decode_notification(bytes(damaged))
    except MalformedTrap:
        return
    trap_of(note, SW1, "127.0.0.1", 0)  # whatever decodes also reads


@given(
    oids,
    st.integers(0, 6),
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**32 - 1),
    varbinds,
    st.binary(max_size=20),
)
def test_a_v1_trap_decodes_as_rfc_3584_translates_it(
    enterprise: tuple[int, ...],
    generic: int,
    specific: int,
    ticks: int,
    binds: list[VarBind],
    community: bytes,
) -> None:
    dotted = ".".join(map(str, enterprise))
    note = decode_notification(v1(dotted, generic, specific, ticks, binds, community))
    assert (note.version, note.community, note.uptime_ticks, note.varbinds) == (V1, community, ticks, binds)
    expected = f"{dotted}.0.{specific}" if generic == 6 else f"1.3.6.1.6.3.1.1.5.{generic + 1}"
    trap = trap_of(note, SW1, "127.0.0.1", 0)
    assert trap.trap_oid == expected
    assert trap.kind == {0: "coldStart", 1: "warmStart", 2: "linkDown", 3: "linkUp"}.get(generic, "other")


@given(st.sampled_from(range(0xA0, 0xA9)), st.sampled_from([V1, V2C]), varbinds)
def test_any_pdu_in_any_version_decodes_or_is_malformed(
    pdu_type: int, version: int, binds: list[VarBind]
) -> None:
    try:
        note = decode_notification(encode_message(Message(version, b"c", pdu_type, 5, 0, 0, binds)))
    except MalformedTrap:
        assert pdu_type not in (SNMPV2_TRAP, INFORM_REQUEST) or version != V2C
        return
    assert (note.version, note.pdu_type, note.varbinds) == (V2C, pdu_type, binds)


# --- the SNMPv3 header ----------------------------------------------------------------------------


def test_net_snmps_v3_trap_and_discovery_headers_decode() -> None:
    head = decode_v3_header(NET_SNMP_V3)
    assert head == V3Header(
        msg_id=0x5D7F27B8,
        flags=AUTH | PRIV,
        engine_id=bytes.fromhex(SWITCH_ENGINE[2:]),
        boots=1,
        time=0x091AA9,
        user=USER.encode(),
        encrypted=True,
    )
    assert head.level == "authPriv"
    probe = decode_v3_header(NET_SNMP_DISCOVERY)
    assert (probe.flags, probe.engine_id, probe.user, probe.encrypted, probe.level) == (
        REPORTABLE,
        b"",
        b"",
        False,
        "noAuthNoPriv",
    )
    assert is_v3_message(NET_SNMP_V3)
    assert is_v3_message(NET_SNMP_DISCOVERY)
    assert not any(is_v3_message(wire) for wire in CAPTURED)


def test_what_is_not_an_snmpv3_usm_message_is_malformed_and_says_why() -> None:
    with pytest.raises(MalformedTrap, match="version 1 is not SNMPv3"):
        decode_v3_header(NET_SNMP_V2C)
    usm_model = bytes.fromhex("020103043a")  # msgSecurityModel 3, then the security parameters
    with pytest.raises(MalformedTrap, match="security model 2, not USM"):
        decode_v3_header(NET_SNMP_V3.replace(usm_model, bytes.fromhex("020102043a"), 1))
    with pytest.raises(MalformedTrap, match="privacy without authentication"):
        decode_v3_header(NET_SNMP_V3.replace(bytes.fromhex("04010302"), bytes.fromhex("04010202"), 1))


@pytest.mark.parametrize("host", ["", "sw", "a-very-long-host-name.example.org", "ünïcode-höst" * 3])
def test_our_engine_id_is_rfc_3411s_text_format_of_5_to_32_bytes(host: str) -> None:
    engine_id = receiver_engine_id(host)
    assert 5 < len(engine_id) <= 32
    assert engine_id.startswith(b"\x80\x00\x4f\xb8\x04slamon@")
    assert receiver_engine_id(host) == engine_id  # the same at each start


@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_malformed_trap_from_the_v3_header(data: bytes) -> None:
    try:
        assert isinstance(decode_v3_header(data), V3Header)
    except MalformedTrap:
        pass


@given(st.data())
def test_every_truncation_of_a_real_v3_message_is_malformed(data: st.DataObject) -> None:
    wire = data.draw(st.sampled_from([NET_SNMP_V3, NET_SNMP_DISCOVERY]))
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(MalformedTrap):
        decode_v3_header(wire[:cut])
