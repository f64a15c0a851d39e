"""Real SNMP agents on loopback for tests: net-snmp's snmpd, snmpsim with data files we write, and a
scripted UDP agent for replies no real agent sends (malformed, truncated, inconsistent).

Every agent listens on 127.0.0.1 and a free UDP port; each is stopped by its own PID."""

from __future__ import annotations

import asyncio
import bisect
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from slamon.probers.snmp_wire import (
    GET_REQUEST,
    V2C,
    decode_message,
    encode_message,
    encode_oid,
    encode_request,
    parse_oid,
)

SNMPD = shutil.which("snmpd") or ("/usr/sbin/snmpd" if os.path.exists("/usr/sbin/snmpd") else None)
SNMPSIM = Path(sys.executable).parent / "snmpsim-command-responder"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(
    port: int, community: str, within: float = 10.0, process: subprocess.Popen[bytes] | None = None
) -> bool:
    """Whether an agent on 127.0.0.1:port answers a GET of sysUpTime.0 within `within` seconds (no
    longer than `process`, the agent, runs)."""
    payload = encode_request(V2C, community.encode(), GET_REQUEST, 1, [encode_oid(parse_oid(SYS_UPTIME))])
    deadline = time.monotonic() + within
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                return False
            s.sendto(payload, ("127.0.0.1", port))
            try:
                data = s.recv(65535)
            except TimeoutError:
                continue
            return decode_message(data).request_id == 1
    return False


@dataclass
class Agent:
    port: int
    community: str
    process: subprocess.Popen[bytes]
    data: Path  # snmpd's config file, or snmpsim's data folder

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def need_snmpd() -> str:
    if SNMPD is None:
        if os.environ.get("SLAMON_REQUIRE_NETNS"):
            pytest.fail("net-snmp's snmpd is not installed (apt-get install snmpd)")
        pytest.skip("net-snmp's snmpd is not installed (apt-get install snmpd)")
    return SNMPD


POE_OVERRIDES = """\
override 1.3.6.1.2.1.105.1.1.1.6.1.1 integer 3
override 1.3.6.1.2.1.105.1.1.1.6.1.2 integer 4
override 1.3.6.1.2.1.105.1.3.1.1.2.1 unsigned 370
override 1.3.6.1.2.1.105.1.3.1.1.4.1 unsigned 52
"""


@contextmanager
def snmpd(where: Path, community: str = "public", extra: str = POE_OVERRIDES) -> Iterator[Agent]:
    """net-snmp's snmpd on 127.0.0.1 and a free port, answering `community` with the host's own
    interfaces (and the PoE rows of `extra`, net-snmp `override` lines)."""
    binary = need_snmpd()
    where.mkdir(parents=True, exist_ok=True)
    conf = where / "snmpd.conf"
    conf.write_text(f"rocommunity {community} 127.0.0.1\n{extra}", encoding="utf-8")
    port = free_udp_port()
    process = subprocess.Popen(
        [
            binary,
            "-f",
            "-Lf",
            "/dev/null",
            "-C",
            "-I",
            "-smux",
            "-c",
            str(conf),
            "-p",
            str(where / "snmpd.pid"),
            f"udp:127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    agent = Agent(port, community, process, conf)
    try:
        if not answers(port, community, process=process):
            raise RuntimeError(f"snmpd on 127.0.0.1:{port} did not answer")
        yield agent
    finally:
        agent.stop()


# --- snmpsim and its data files ------------------------------------------------------------------

# snmprec tags (snmpsim): the BER tag number of each type
_TAGS = {"int": 2, "str": 4, "oid": 6, "counter": 65, "gauge": 66, "ticks": 67, "counter64": 70}


@dataclass
class Port:
    name: str
    oper: int = 1  # up
    admin: int = 1
    poe: int | None = 3  # deliveringPower; None: no PoE row
    in_octets: int = 1000
    out_octets: int = 2000


def switch_snmprec(ports: list[Port], uptime_ticks: int = 8_640_000, poe_budget: int | None = 370) -> str:
    """A PoE access switch as an snmpsim data file: sysUpTime, ifTable/ifXTable rows for `ports`
    (ifIndex 1, 2, …) and POWER-ETHERNET-MIB rows, in OID order."""
    rows: list[tuple[tuple[int, ...], str, object]] = [
        (parse_oid("1.3.6.1.2.1.1.1.0"), "str", "slamon test PoE switch"),
        (parse_oid(SYS_UPTIME), "ticks", uptime_ticks),
    ]
    for i, p in enumerate(ports, start=1):
        rows += [
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 1, i), "int", i),
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 7, i), "int", p.admin),
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, i), "int", p.oper),
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 14, i), "counter", 0),
            ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1, i), "str", p.name),
            ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, i), "counter64", p.in_octets),
            ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10, i), "counter64", p.out_octets),
        ]
        if p.poe is not None:
            rows.append(((1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 6, 1, i), "int", p.poe))
    if poe_budget is not None:
        used = 6 * sum(1 for p in ports if p.poe == 3)
        rows += [
            ((1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1, 2, 1), "gauge", poe_budget),
            ((1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1, 4, 1), "gauge", used),
        ]
    rows.sort(key=lambda r: r[0])
    return "".join(f"{'.'.join(map(str, oid))}|{_TAGS[t]}|{v}\n" for oid, t, v in rows)


def need_snmpsim() -> Path:
    if not SNMPSIM.exists():
        pytest.skip("snmpsim is not installed (pip install -e '.[test]')")
    return SNMPSIM


@contextmanager
def snmpsim(where: Path, files: dict[str, str]) -> Iterator[Agent]:
    """snmpsim on 127.0.0.1 and a free port, serving each of `files` (community → snmprec text);
    rewrite one with `rewrite` and the agent serves the new values at the next request."""
    binary = need_snmpsim()
    data = where / "data"
    data.mkdir(parents=True, exist_ok=True)
    for community, text in files.items():
        (data / f"{community}.snmprec").write_text(text, encoding="utf-8")
    port = free_udp_port()
    env = dict(os.environ, SNMPSIM_ALLOW_ROOT="true")
    log = (where / "snmpsim.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            f"--data-dir={data}",
            f"--cache-dir={where / 'cache'}",
            f"--agent-udpv4-endpoint=127.0.0.1:{port}",
            "--log-level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )
    log.close()  # the child has its own copy
    agent = Agent(port, next(iter(files)), process, data)
    try:
        if not answers(port, agent.community, within=30, process=process):
            said = (where / "snmpsim.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"snmpsim on 127.0.0.1:{port} did not answer: {' / '.join(said)}")
        yield agent
    finally:
        agent.stop()


def rewrite(agent: Agent, community: str, text: str) -> None:
    """New values for one snmpsim device: snmpsim re-reads a file whose whole-second mtime changed."""
    path = agent.data / f"{community}.snmprec"
    path.write_text(text, encoding="utf-8")
    later = time.time() + 2
    os.utime(path, (later, later))


# --- a scripted agent ----------------------------------------------------------------------------

Reply = Callable[[bytes], bytes | None]


class ScriptedAgent(asyncio.DatagramProtocol):
    """A UDP agent whose every reply is what `reply(request bytes)` returns (None: silence)."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.transport: asyncio.DatagramTransport | None = None
        self.requests: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests.append(data)
        answer = self.reply(data)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)


async def scripted_agent(reply: Reply) -> tuple[ScriptedAgent, int]:
    loop = asyncio.get_running_loop()
    _, agent = await loop.create_datagram_endpoint(lambda: ScriptedAgent(reply), local_addr=("127.0.0.1", 0))
    assert agent.transport is not None
    return agent, int(agent.transport.get_extra_info("sockname")[1])


class TableAgent:
    """GET and GETBULK over a dict of OID → (tag, value), as an agent answers them: the reply
    function of a ScriptedAgent, which tests wrap to corrupt what it says."""

    def __init__(self, community: bytes, values: dict[tuple[int, ...], tuple[int, object]]) -> None:
        self.community = community
        self.values = values

    def __call__(self, data: bytes) -> bytes | None:
        from slamon.probers.snmp_wire import (
            END_OF_MIB_VIEW,
            GET_BULK_REQUEST,
            NO_SUCH_OBJECT,
            RESPONSE,
            Message,
            VarBind,
            decode_oid,
        )

        request = decode_message(data)
        if request.community != self.community:
            return None
        ordered = sorted(self.values)
        binds: list[VarBind] = []
        if request.pdu_type == GET_BULK_REQUEST:
            cursors = [decode_oid(vb.oid) for vb in request.varbinds]
            for _ in range(request.error_index):  # max-repetitions
                for i, cursor in enumerate(cursors):
                    at = bisect.bisect_right(ordered, cursor)
                    if at == len(ordered):
                        binds.append(VarBind(encode_oid(cursor), END_OF_MIB_VIEW, None))
                        continue
                    cursors[i] = ordered[at]
                    tag, value = self.values[ordered[at]]
                    binds.append(VarBind(encode_oid(ordered[at]), tag, value))  # type: ignore[arg-type]
        else:
            for vb in request.varbinds:
                oid = decode_oid(vb.oid)
                tag, value = self.values.get(oid, (NO_SUCH_OBJECT, None))
                binds.append(VarBind(vb.oid, tag, value))  # type: ignore[arg-type]
        return encode_message(
            Message(request.version, request.community, RESPONSE, request.request_id, 0, 0, binds)
        )


def table_of(snmprec: str) -> dict[tuple[int, ...], tuple[int, object]]:
    """The values of an snmprec text (as switch_snmprec writes it)."""
    out: dict[tuple[int, ...], tuple[int, object]] = {}
    for line in snmprec.splitlines():
        oid, tag, value = line.split("|", 2)
        t = int(tag)
        out[parse_oid(oid)] = (t, value.encode() if t == 4 else int(value))
    return out
