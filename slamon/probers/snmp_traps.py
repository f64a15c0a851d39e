"""SNMP traps from our switches: a UDP listener that turns a port or restart event into an immediate
poll of the switch that sent it.

Why: a round polls a switch once an interval, so a port that goes down just after a poll is seen
a whole interval later. A switch tells us at once with a trap; `on_trap` (the service schedules a
poll of that switch) puts the port's state into the evidence within seconds. The trap itself is
not evidence: it only says when to look, and the poll reads what is.

Which traps: SNMPv2-Trap and InformRequest (v2c, RFC 3416) and the SNMPv1 Trap-PDU (RFC 1157,
still sent by older switches), each mapped to RFC 3584's snmpTrapOID: coldStart, warmStart,
linkDown and linkUp (RFC 3418 / RFC 2863; for link traps the ifIndex, and ifName, ifDescr,
ifOperStatus and ifAdminStatus where the switch sends them) are named, anything else is "other"
and still passed on, since any trap from a known switch is a reason to poll it. An Inform is
answered with a Response echoing its request-id and varbinds (RFC 3416 §4.2.7), so the switch stops
resending it.

How a datagram is checked, in this order, each failure counted in `counts` and dropped, never
passed on and never raised:

- its UDP source address must be a known switch's (`set_switches`, replaced at each reload), else
  "unknown_source" (not even decoded; a switch that sends traps from another interface than its
  polled address needs its trap source set to that one). A v1 trap's agent-addr is not trusted;
- it must decode as a v1 Trap or a v2c Trap or Inform, else "malformed" (logged at debug level with
  the reason);
- its community must be ours (compared in constant time), else "bad_community". The community is
  never logged, nor put in a repr.

The listener is off unless the service starts it on a port (162 is the standard one).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from slamon.model import DeviceId
from slamon.probers.snmp_mib import ADMIN_STATUS, IF_ADMIN, IF_NAME, IF_OPER, OPER_STATUS, SYS_UPTIME
from slamon.probers.snmp_wire import (
    INFORM_REQUEST,
    IP_ADDRESS,
    OBJECT_IDENTIFIER,
    OCTET_STRING,
    RESPONSE,
    SEQUENCE,
    SNMPV2_TRAP,
    TIMETICKS,
    V1,
    V1_TRAP,
    V2C,
    MalformedReply,
    Message,
    VarBind,
    decode_arcs,
    decode_message,
    decode_oid,
    decode_varbinds,
    encode_arcs,
    encode_message,
    encode_oid,
    format_oid,
    parse_oid,
    read_expected,
    read_header,
    read_integer,
)

logger = logging.getLogger(__name__)

TrapKind = Literal["linkDown", "linkUp", "coldStart", "warmStart", "other"]
KINDS: tuple[TrapKind, ...] = ("linkDown", "linkUp", "coldStart", "warmStart", "other")
OUTCOMES = ("accepted", "unknown_source", "malformed", "bad_community")

SNMP_TRAP_OID = encode_oid(parse_oid("1.3.6.1.6.3.1.1.4.1.0"))  # snmpTrapOID.0
_SNMP_TRAPS = parse_oid("1.3.6.1.6.3.1.1.5")  # snmpTraps: coldStart(1) … linkUp(4)
_STANDARD: dict[bytes, TrapKind] = {
    encode_oid((*_SNMP_TRAPS, 1)): "coldStart",
    encode_oid((*_SNMP_TRAPS, 2)): "warmStart",
    encode_oid((*_SNMP_TRAPS, 3)): "linkDown",
    encode_oid((*_SNMP_TRAPS, 4)): "linkUp",
}
IF_INDEX = encode_oid(parse_oid("1.3.6.1.2.1.2.2.1.1"))
IF_DESCR = encode_oid(parse_oid("1.3.6.1.2.1.2.2.1.2"))
_INTERFACE_COLUMNS = (IF_INDEX, IF_DESCR, IF_NAME.prefix, IF_OPER.prefix, IF_ADMIN.prefix)


class MalformedTrap(MalformedReply):
    """A datagram on the trap port that is not a well-formed v1 Trap or v2c Trap or Inform."""


@dataclass(frozen=True, slots=True)
class Trap:
    """A checked trap from a known switch: what `on_trap` gets."""

    switch: DeviceId
    source: str  # the UDP source address
    kind: TrapKind
    if_index: int | None  # link traps: the port's ifIndex
    received_ns: int  # time.monotonic_ns() when the datagram was read
    uptime_ticks: int | None  # the trap's sysUpTime.0 (v1: its time-stamp)
    trap_oid: str | None = None  # snmpTrapOID.0 (v1: as RFC 3584 translates it); None: the trap had none
    if_name: str | None = None
    if_descr: str | None = None
    oper: str | None = None  # ifOperStatus as a word ("up", "down", …), as results name it
    admin: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """A decoded trap or inform, before any check of who sent it."""

    version: int  # V1 or V2C
    community: bytes = field(repr=False)
    pdu_type: int  # V1_TRAP, SNMPV2_TRAP or INFORM_REQUEST
    request_id: int  # an Inform's is echoed in its Response; 0 for a v1 trap
    trap_oid: bytes | None  # encoded contents, as VarBind.oid
    uptime_ticks: int | None
    varbinds: list[VarBind]


# --- decoding -------------------------------------------------------------------------------------


def decode_notification(data: bytes) -> Notification:
    """A v1 Trap, v2c Trap or v2c Inform; MalformedTrap (naming the byte and the fault) for
    anything else, whatever the bytes."""
    try:
        version, community, pdu_type, pdu_start, pdu_stop = _envelope(data)
        if pdu_type == V1_TRAP:
            if version != V1:
                raise MalformedTrap("an SNMPv1 Trap-PDU in a v2c message")
            return _v1_trap(data, community, pdu_start, pdu_stop)
        if pdu_type not in (SNMPV2_TRAP, INFORM_REQUEST):
            raise MalformedTrap(f"a PDU of tag 0x{pdu_type:02x}, not a trap or an inform")
        if version != V2C:
            raise MalformedTrap("an SNMPv2 trap or inform in a v1 message")
        message = decode_message(data)
    except MalformedTrap:
        raise
    except MalformedReply as exc:
        raise MalformedTrap(str(exc)) from None
    trap_oid: bytes | None = None
    uptime: int | None = None
    for vb in message.varbinds:
        if vb.oid == SNMP_TRAP_OID and vb.tag == OBJECT_IDENTIFIER and isinstance(vb.value, bytes):
            trap_oid = vb.value if trap_oid is None else trap_oid
        elif vb.oid == SYS_UPTIME and vb.tag == TIMETICKS and isinstance(vb.value, int):
            uptime = vb.value if uptime is None else uptime
    return Notification(V2C, community, pdu_type, message.request_id, trap_oid, uptime, message.varbinds)


def _envelope(data: bytes) -> tuple[int, bytes, int, int, int]:
    """(version, community, PDU tag, PDU contents start and end) of a message of any PDU."""
    start, stop = read_expected(data, 0, len(data), SEQUENCE, "a message SEQUENCE")
    if stop != len(data):
        raise MalformedTrap(f"byte {stop}: {len(data) - stop} bytes after the message")
    version, at = read_integer(data, start, stop, "the version")
    if version not in (V1, V2C):
        raise MalformedTrap(f"version {version} is not SNMPv1 or v2c")
    c_start, at = read_expected(data, at, stop, OCTET_STRING, "the community")
    pdu_type, p_start, p_stop = read_header(data, at, stop)
    if p_stop != stop:
        raise MalformedTrap(f"byte {p_stop}: bytes after the PDU")
    return version, data[c_start:at], pdu_type, p_start, p_stop


def _v1_trap(data: bytes, community: bytes, at: int, end: int) -> Notification:
    """RFC 1157's Trap-PDU: enterprise, agent-addr, generic-trap, specific-trap, time-stamp,
    varbinds; its trap OID is RFC 3584's translation (snmpTraps.(generic + 1), or for an
    enterprise-specific trap enterprise.0.specific)."""
    e_start, at = read_expected(data, at, end, OBJECT_IDENTIFIER, "the enterprise OID")
    enterprise = data[e_start:at]
    decode_oid(enterprise)  # MalformedReply if it is not one
    a_start, at = read_expected(data, at, end, IP_ADDRESS, "the agent-addr")
    if at - a_start != 4:
        raise MalformedTrap(f"byte {a_start}: an agent-addr of {at - a_start} bytes")
    generic, at = read_integer(data, at, end, "the generic-trap")
    specific, at = read_integer(data, at, end, "the specific-trap")
    t_start, at = read_expected(data, at, end, TIMETICKS, "the time-stamp")
    ticks = int.from_bytes(data[t_start:at], "big")
    if at == t_start or ticks >> 32:
        raise MalformedTrap(f"byte {t_start}: a time-stamp of {at - t_start} bytes (TimeTicks: 32 bits)")
    list_start, list_stop = read_expected(data, at, end, SEQUENCE, "the varbind list")
    if list_stop != end:
        raise MalformedTrap(f"byte {list_stop}: bytes after the varbind list")
    if generic == 6:
        if specific < 0:
            raise MalformedTrap(f"a specific-trap of {specific}")
        trap_oid = enterprise + encode_arcs((0, specific))
    elif 0 <= generic < 6:
        trap_oid = encode_oid((*_SNMP_TRAPS, generic + 1))
    else:
        raise MalformedTrap(f"a generic-trap of {generic} (0 to 6)")
    return Notification(
        V1, community, V1_TRAP, 0, trap_oid, ticks, decode_varbinds(data, list_start, list_stop)
    )


# --- what a trap says -----------------------------------------------------------------------------


def trap_of(note: Notification, switch: DeviceId, source: str, received_ns: int) -> Trap:
    """The Trap `on_trap` gets for a checked notification: its kind, and for a link trap the port
    (the ifIndex varbind's value, or else the row of the interface columns it carries)."""
    kind: TrapKind = _STANDARD.get(note.trap_oid, "other") if note.trap_oid is not None else "other"
    rows: dict[bytes, tuple[int, VarBind]] = {}  # column → (row, varbind), the first of each
    for vb in note.varbinds:
        for column in _INTERFACE_COLUMNS:
            if vb.oid.startswith(column) and column not in rows:
                try:
                    row = decode_arcs(vb.oid[len(column) :])
                except MalformedReply:
                    continue
                if len(row) == 1:
                    rows[column] = (row[0], vb)
    stated = rows[IF_INDEX][1].value if IF_INDEX in rows else None
    if isinstance(stated, int):
        if_index: int | None = stated
    else:
        if_index = next(iter(rows.values()))[0] if rows else None

    def value(column: bytes) -> int | bytes | None:
        row, vb = rows.get(column, (None, None))
        return vb.value if vb is not None and row == if_index else None

    return Trap(
        switch=switch,
        source=source,
        kind=kind,
        if_index=if_index,
        received_ns=received_ns,
        uptime_ticks=note.uptime_ticks,
        trap_oid=format_oid(note.trap_oid) if note.trap_oid is not None else None,
        if_name=_text(value(IF_NAME.prefix)),
        if_descr=_text(value(IF_DESCR)),
        oper=_word(value(IF_OPER.prefix), OPER_STATUS),
        admin=_word(value(IF_ADMIN.prefix), ADMIN_STATUS),
    )


def _text(value: int | bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else None


def _word(value: int | bytes | None, words: Mapping[int, str]) -> str | None:
    return words.get(value, str(value)) if isinstance(value, int) else None


# --- the listener ---------------------------------------------------------------------------------


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, received: Callable[[bytes, tuple[str | int, ...]], None]) -> None:
        self.received = received
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("snmp trap socket: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class TrapListener:
    """Traps from known switches on one UDP socket; see the module docstring for which and how."""

    def __init__(
        self, community: bytes, switches: Mapping[str, DeviceId], on_trap: Callable[[Trap], None]
    ) -> None:
        self._community = community
        self._switches: dict[str, DeviceId] = {}
        self.set_switches(switches)
        self._on_trap = on_trap  # called in the event loop: it must not block
        self._endpoint: _Endpoint | None = None
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)  # datagrams by outcome (a metric)
        self.kinds: dict[str, int] = dict.fromkeys(KINDS, 0)  # accepted traps by kind (a metric)

    def set_switches(self, switches: Mapping[str, DeviceId]) -> None:
        """The known switches, by address (at start and at each reload)."""
        self._switches = {_source(address): switch for address, switch in switches.items()}

    @property
    def address(self) -> tuple[str, int] | None:
        """The address the socket is bound to (the port chosen when started on port 0)."""
        if self._endpoint is None or self._endpoint.transport is None:
            return None
        name = self._endpoint.transport.get_extra_info("sockname")
        return str(name[0]), int(name[1])

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (OSError if it cannot be bound: in use, or 162 without privilege)."""
        if self._endpoint is not None:
            raise RuntimeError("the trap listener is already started")
        loop = asyncio.get_running_loop()
        _, endpoint = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._received), local_addr=(host, port)
        )
        self._endpoint = endpoint
        sock = endpoint.transport.get_extra_info("socket") if endpoint.transport is not None else None
        if sock is not None:  # a restart of a whole site sends hundreds of traps at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    async def aclose(self) -> None:
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None and endpoint.transport is not None:
            endpoint.transport.close()
            await endpoint.closed

    def _received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        received_ns = time.monotonic_ns()
        source = _source(str(addr[0]))
        switch = self._switches.get(source)
        if switch is None:
            self.counts["unknown_source"] += 1
            logger.debug("snmp trap from %s: not a known switch, dropped", source)
            return
        try:
            note = decode_notification(data)
        except MalformedTrap as exc:
            self.counts["malformed"] += 1
            logger.debug("snmp trap from %s (%s): malformed, dropped: %s", source, switch, exc)
            return
        if not hmac.compare_digest(note.community, self._community):
            self.counts["bad_community"] += 1
            logger.debug("snmp trap from %s (%s): wrong community, dropped", source, switch)
            return
        if note.pdu_type == INFORM_REQUEST:
            self._answer(note, addr)
        trap = trap_of(note, switch, source, received_ns)
        self.counts["accepted"] += 1
        self.kinds[trap.kind] += 1
        try:
            self._on_trap(trap)
        except Exception:
            logger.exception("snmp trap from %s (%s): on_trap failed", source, switch)

    def _answer(self, note: Notification, addr: tuple[str | int, ...]) -> None:
        """RFC 3416 §4.2.7: a Response with the Inform's request-id and varbinds."""
        if self._endpoint is None or self._endpoint.transport is None:
            return
        response = Message(V2C, note.community, RESPONSE, note.request_id, 0, 0, note.varbinds)
        self._endpoint.transport.sendto(encode_message(response), addr)


def _source(address: str) -> str:
    """An address as the inventory writes it: an IPv4-mapped IPv6 source (a dual-stack socket) as
    IPv4, without an IPv6 zone."""
    address = address.partition("%")[0]
    if address.startswith("::ffff:") and "." in address:
        return address[len("::ffff:") :]
    return address
