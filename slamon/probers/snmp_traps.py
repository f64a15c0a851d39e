"""SNMP traps from our switches: a UDP listener that turns a port or restart event into an immediate
poll of the switch that sent it.

Why: a round polls a switch once an interval, so a port that goes down just after a poll is seen
a whole interval later. A switch tells us at once with a trap; `on_trap` (the service schedules a
poll of that switch) puts the port's state into the evidence within seconds. The trap itself is
not evidence: it only says when to look, and the poll reads what is.

Which traps: SNMPv2-Trap and InformRequest (v2c, RFC 3416; and SNMPv3, RFC 3412/3414), and the
SNMPv1 Trap-PDU (RFC 1157, still sent by older switches), each mapped to RFC 3584's snmpTrapOID:
coldStart, warmStart, linkDown and linkUp (RFC 3418 / RFC 2863; for link traps the ifIndex, and
ifName, ifDescr, ifOperStatus and ifAdminStatus where the switch sends them) are named, anything
else is "other" and still passed on, since any trap from a known switch is a reason to poll it. An
Inform is answered with a Response echoing its request-id and varbinds (RFC 3416 §4.2.7), so the
switch stops resending it.

How a datagram is checked, in this order, each failure counted in `counts` and dropped, never
passed on and never raised:

- its UDP source address must be a known switch's (`set_switches`, replaced at each reload), else
  "unknown_source" (not even decoded; a switch that sends traps from another interface than its
  polled address needs its trap source set to that one). A v1 trap's agent-addr is not trusted;
- it must decode as a v1 Trap or a v2c Trap or Inform, or as an SNMPv3 message (its header, in
  clear), else "malformed" (logged at debug level with the reason);
- v1/v2c: its community must be ours (compared in constant time), else "bad_community". The
  community is never logged, nor put in a repr;
- SNMPv3: it must come from the one USM user slamon polls with (`SnmpV3Credentials`), at authPriv,
  with its keys, else "bad_credentials" (an unknown user, a lower security level, a wrong auth key
  (wrong digest) or a wrong priv key (cannot be decrypted), or no SNMPv3 user configured). The keys
  are never logged.

SNMPv3: pysnmp's engine (`_V3Receiver`) authenticates, decrypts and answers, fed with the datagrams
of this socket; the decrypted PDU then goes through the v2c decoder, so a v3 trap becomes the same
`Trap`. A trap is sent with its sender's engine ID (RFC 3414: the switch is authoritative), so the
keys are localized to it: the user is added for each engine ID a known switch sends with, once,
read from the message's header (`decode_v3_header`) before pysnmp checks anything; the header
only chooses the key, and refuses what pysnmp would take unauthenticated (below): it lets nothing
through (a forged engine ID fails the digest). An
Inform is sent with ours (`engine_id`, stable across restarts: Cisco's `snmp-server engineID
remote` wants it), which the switch learns by discovery (RFC 3414 §4): a discovery request from a
known switch is answered with a Report and not counted. pysnmp checks no timeliness for a trap it
authenticates (the replay of a trap asks for one poll more). A noAuthNoPriv or authNoPriv message
of our user is refused before pysnmp sees it, as is a message with no user name that is not a
discovery request (pysnmp would pass its PDU on, unauthenticated).

The listener is off unless the service starts it on a port (162 is the standard one).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

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
    is_v3_message,
    parse_oid,
    read_expected,
    read_header,
    read_integer,
)

if TYPE_CHECKING:
    from slamon.probers.snmp import SnmpV3Credentials

logger = logging.getLogger(__name__)

TrapKind = Literal["linkDown", "linkUp", "coldStart", "warmStart", "other"]
KINDS: tuple[TrapKind, ...] = ("linkDown", "linkUp", "coldStart", "warmStart", "other")
# what happens to a datagram (`TrapListener.counts`, the metric slamon_snmp_traps_total{outcome}):
# passed on; not from a known switch; not a trap, inform or SNMPv3 message; a v1/v2c community that
# is not ours; SNMPv3 that is not our user at authPriv with its keys
OUTCOMES = ("accepted", "unknown_source", "malformed", "bad_community", "bad_credentials")

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
    """A datagram on the trap port that is not a well-formed v1 Trap, v2c Trap or Inform, or SNMPv3
    message."""


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

    version: int  # V1, V2C or V3
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


# --- SNMPv3: the header in clear ------------------------------------------------------------------

V3 = 3
USM = 3  # msgSecurityModel: the User-based Security Model (RFC 3414)
AUTH, PRIV, REPORTABLE = 0x01, 0x02, 0x04  # msgFlags
_LEVELS = {0: "noAuthNoPriv", AUTH: "authNoPriv", AUTH | PRIV: "authPriv"}


@dataclass(frozen=True, slots=True)
class V3Header:
    """What an SNMPv3 message says in clear (RFC 3412 §6, RFC 3414 §2.4): enough to choose the key
    pysnmp needs for it. Nothing here is checked yet: pysnmp authenticates it."""

    msg_id: int
    flags: int  # AUTH, PRIV, REPORTABLE
    engine_id: bytes  # msgAuthoritativeEngineID: the sender's for a trap, ours for an inform
    boots: int
    time: int
    user: bytes  # msgUserName; empty in a discovery request
    encrypted: bool  # msgData is an encrypted OCTET STRING (else a plaintext ScopedPDU)

    @property
    def level(self) -> str:
        return _LEVELS.get(self.flags & (AUTH | PRIV), "invalid")


def decode_v3_header(data: bytes) -> V3Header:
    """The header of an SNMPv3 USM message (`V3Header`); MalformedTrap (naming the byte and the
    fault) for anything else, whatever the bytes."""
    try:
        return _v3_header(data)
    except MalformedTrap:
        raise
    except MalformedReply as exc:
        raise MalformedTrap(str(exc)) from None


def _v3_header(data: bytes) -> V3Header:
    start, stop = read_expected(data, 0, len(data), SEQUENCE, "a message SEQUENCE")
    if stop != len(data):
        raise MalformedTrap(f"byte {stop}: {len(data) - stop} bytes after the message")
    version, at = read_integer(data, start, stop, "the version")
    if version != V3:
        raise MalformedTrap(f"version {version} is not SNMPv3")
    g_start, g_stop = read_expected(data, at, stop, SEQUENCE, "the msgGlobalData")
    msg_id, g = read_integer(data, g_start, g_stop, "the msgID")
    _, g = read_integer(data, g, g_stop, "the msgMaxSize")
    f_start, g = read_expected(data, g, g_stop, OCTET_STRING, "the msgFlags")
    if g - f_start != 1:
        raise MalformedTrap(f"byte {f_start}: msgFlags of {g - f_start} bytes (1)")
    flags = data[f_start]
    if flags & (AUTH | PRIV) == PRIV:
        raise MalformedTrap(f"byte {f_start}: msgFlags say privacy without authentication")
    model, g = read_integer(data, g, g_stop, "the msgSecurityModel")
    if g != g_stop:
        raise MalformedTrap(f"byte {g}: bytes after the msgGlobalData")
    if model != USM:
        raise MalformedTrap(f"security model {model}, not USM (3)")
    s_start, at = read_expected(data, g_stop, stop, OCTET_STRING, "the msgSecurityParameters")
    u_start, u_stop = read_expected(data, s_start, at, SEQUENCE, "the USM security parameters")
    if u_stop != at:
        raise MalformedTrap(f"byte {u_stop}: bytes after the USM security parameters")
    e_start, u = read_expected(data, u_start, u_stop, OCTET_STRING, "the msgAuthoritativeEngineID")
    engine_id = data[e_start:u]
    boots, u = read_integer(data, u, u_stop, "the msgAuthoritativeEngineBoots")
    engine_time, u = read_integer(data, u, u_stop, "the msgAuthoritativeEngineTime")
    n_start, u = read_expected(data, u, u_stop, OCTET_STRING, "the msgUserName")
    user = data[n_start:u]
    _, u = read_expected(data, u, u_stop, OCTET_STRING, "the msgAuthenticationParameters")
    _, u = read_expected(data, u, u_stop, OCTET_STRING, "the msgPrivacyParameters")
    if u != u_stop:
        raise MalformedTrap(f"byte {u}: bytes after the msgPrivacyParameters")
    tag, _, d_stop = read_header(data, at, stop)
    if tag not in (SEQUENCE, OCTET_STRING):
        raise MalformedTrap(f"byte {at}: msgData of tag 0x{tag:02x} (a ScopedPDU or an OCTET STRING)")
    if d_stop != stop:
        raise MalformedTrap(f"byte {d_stop}: bytes after the msgData")
    return V3Header(msg_id, flags, engine_id, boots, engine_time, user, tag == OCTET_STRING)


def receiver_engine_id(host: str | None = None) -> bytes:
    """Our SNMPv3 engine ID, the one informs are sent to: RFC 3411's text format under pysnmp's
    enterprise number (20408), "slamon@" and the host's name (27 bytes at most), the same at each
    start."""
    text = ("slamon@" + (socket.gethostname() if host is None else host)).encode("utf-8")[:27]
    return b"\x80\x00\x4f\xb8\x04" + text


def _v2c_wrapped(pdu: bytes) -> bytes:
    """A v2c message (empty community) around an encoded PDU, for `decode_notification`."""
    content = b"\x02\x01\x01\x04\x00" + pdu
    n = len(content)
    size = bytes((n,)) if n < 0x80 else bytes((0x84,)) + n.to_bytes(4, "big")
    return bytes((SEQUENCE,)) + size + content


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


MAX_ENGINE_IDS = 4096  # switches' engine IDs the keys are localized to (the oldest dropped first)
Send = Callable[[bytes, tuple[Any, ...]], None]


class _V3Receiver:
    """pysnmp's engine for the SNMPv3 traps and informs of our one user: it authenticates, decrypts
    and answers (informs, discovery) through `send`; the listener chooses what reaches it. No
    socket of its own: `receive` feeds it a datagram, and what it sends goes through `send`."""

    def __init__(self, credentials: SnmpV3Credentials, engine_id: bytes, send: Send) -> None:
        from pysnmp.entity import config
        from pysnmp.entity.engine import SnmpEngine
        from pysnmp.entity.rfc3413 import ntfrcv
        from pysnmp.proto.rfc1902 import OctetString

        from slamon.probers.snmp_v3 import AUTH_PROTOCOLS, PRIV_PROTOCOLS

        self.user = credentials.user.encode("utf-8")
        self.engine_id = engine_id
        self._config = config
        self._octets = OctetString
        engine = SnmpEngine()
        # our engine ID, set as SnmpEngine(snmpEngineID=…) would, without its boots file in /tmp
        # (a path any local user can make first); snmpEngineBoots must grow at each start (RFC 3414
        # 2.2.2: a switch ignores our Reports of a time that went back): minutes since 1970
        found, boots = engine.get_mib_builder().import_symbols(
            "__SNMP-FRAMEWORK-MIB", "snmpEngineID", "snmpEngineBoots"
        )
        found.syntax = found.syntax.clone(engine_id)
        engine.snmpEngineID = found.syntax
        boots.syntax = boots.syntax.clone(max(1, int(time.time() // 60)))
        engine.transport_dispatcher = _Dispatcher(send)  # what pysnmp sends; no socket, no timer
        self._auth = AUTH_PROTOCOLS[credentials.auth_protocol]
        self._priv = PRIV_PROTOCOLS[credentials.priv_protocol]
        # the passphrases hashed once (RFC 3414 A.2.1, a megabyte of hashing each); localizing the
        # result to an engine ID is one hash more
        self._auth_master = config.AUTH_SERVICES[self._auth].hash_passphrase(credentials.auth_key)
        self._priv_master = config.PRIV_SERVICES[self._priv].hash_passphrase(self._auth, credentials.priv_key)
        self._engine = engine
        self._engines: dict[bytes, None] = {}  # the senders' engine IDs the user has, oldest first
        self._add_user(engine_id)  # informs
        self._receiver = ntfrcv.NotificationReceiver(engine, self._notified)
        engine.observer.register_observer(self._refused, "rfc3412.prepareDataElements:sm-failure")
        self._pdu: Any = None
        self._failure: object = None

    def _add_user(self, engine_id: bytes) -> None:
        c = self._config
        c.add_v3_user(
            self._engine,
            self.user,
            self._auth,
            self._auth_master,
            self._priv,
            self._priv_master,
            securityEngineId=self._octets(engine_id),
            authKeyType=c.USM_KEY_TYPE_MASTER,
            privKeyType=c.USM_KEY_TYPE_MASTER,
        )

    def _localized(self, engine_id: bytes) -> None:
        """The user, with its keys localized to a sender's engine ID (~3 ms, once per engine ID)."""
        if engine_id == self.engine_id or engine_id in self._engines:
            return
        if len(self._engines) >= MAX_ENGINE_IDS:
            oldest = next(iter(self._engines))
            del self._engines[oldest]
            self._config.delete_v3_user(self._engine, self.user, securityEngineId=self._octets(oldest))
        self._add_user(engine_id)
        self._engines[engine_id] = None

    def receive(self, data: bytes, addr: tuple[Any, ...], head: V3Header) -> tuple[str, str, bytes | None]:
        """(outcome, why, the PDU's BER encoding when accepted); outcome "" for a discovery or
        time synchronization request, answered with a Report and not counted."""
        if not head.user:
            if head.engine_id or head.flags & (AUTH | PRIV):
                return "bad_credentials", f"no user name, {head.level} (not a discovery request)", None
        elif head.user == self.user:
            if head.flags & (AUTH | PRIV) != AUTH | PRIV:
                return "bad_credentials", f"{head.level} from user {head.user!r}: authPriv wanted", None
            if 5 <= len(head.engine_id) <= 32:  # else pysnmp's discovery: a Report
                self._localized(head.engine_id)
        # another user: pysnmp refuses it (usmStatsUnknownUserNames, a Report to an inform)
        self._tick()
        self._pdu = self._failure = None
        try:
            self._engine.message_dispatcher.receive_message(self._engine, _DOMAIN, addr, data)
        except Exception as exc:  # noqa: BLE001  # pysnmp, on whatever bytes (its text: not logged)
            return "malformed", f"pysnmp: {type(exc).__name__}", None
        pdu, self._pdu = self._pdu, None
        failure, self._failure = self._failure, None
        if pdu is not None:
            from pyasn1.codec.ber import encoder

            return "accepted", "", bytes(encoder.encode(pdu))
        if failure is None:  # pysnmp dropped it after checking it: a PDU nobody here receives
            return "malformed", "not a trap or an inform (or an inform to another engine ID)", None
        return _failure_outcome(failure, head)

    def _tick(self) -> None:
        """A tick of pysnmp's timer, as its transport dispatcher would give (SnmpEngine's tick
        callback): its USM and v3 message processing queue each message's engine ID, to expire
        it 300 / `get_timer_resolution()` ticks later, and keep them until then. One tick a message,
        at 300 s a tick: what a message queued expires at the next one, and memory stays flat.
        Nothing needed is lost: pysnmp learns a switch's engine time from each authenticated trap
        (RFC 3414 3.2.6), and for an inform the time is ours."""
        engine = self._engine
        engine.message_dispatcher.receive_timer_tick(engine, 0)
        for handler in (*engine.message_processing_subsystems.values(), *engine.security_models.values()):
            handler.receive_timer_tick(engine, 0)

    def _notified(
        self, engine: Any, state: Any, context_engine_id: Any, context: Any, binds: Any, cb_ctx: Any
    ) -> None:
        """NotificationReceiver's callback (an inform is answered by then): keep the PDU of a
        message of our user at authPriv."""
        request = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        if request.get("securityLevel") == 3 and bytes(request.get("securityName") or b"") == self.user:
            self._pdu = request.get("pdu")
        else:  # cannot happen: `receive` lets no other through
            self._failure = f"security level {request.get('securityLevel')}"

    def _refused(self, engine: Any, where: str, variables: Mapping[str, Any], cb_ctx: Any) -> None:
        status = variables.get("statusInformation")
        self._failure = status.get("errorIndication") if status is not None else None

    def close(self) -> None:
        self._receiver.close(self._engine)
        self._engine.observer.unregister_observer(self._refused)
        self._engine.transport_dispatcher = None


def _failure_outcome(failure: object, head: V3Header) -> tuple[str, str, bytes | None]:
    """What pysnmp's refusal (its errorIndication) counts as."""
    from pysnmp.proto import errind

    if isinstance(failure, errind.UnknownEngineID):  # RFC 3414 §4, before an inform
        return "", "discovery request, answered with our engine ID", None
    if isinstance(failure, errind.NotInTimeWindow):  # an inform sender's clock of us is stale
        return "", "not in the time window, answered with our engine time", None
    if isinstance(failure, errind.ParseError | errind.InvalidMsg):
        return "malformed", str(failure), None
    if isinstance(failure, errind.UnknownSecurityName):
        return "bad_credentials", f"user {head.user!r} is not ours", None
    if isinstance(failure, errind.AuthenticationFailure | errind.WrongDigest):
        return "bad_credentials", "wrong digest: a wrong auth key or auth protocol", None
    if isinstance(failure, errind.DecryptionError):
        return "bad_credentials", "cannot decrypt: a wrong priv key or priv protocol", None
    return "bad_credentials", str(failure), None


class _Dispatcher:
    """The little of pysnmp's transport dispatcher its engine uses to answer: sending."""

    def __init__(self, send: Send) -> None:
        self.send = send

    def send_message(self, message: bytes, domain: object, address: tuple[Any, ...]) -> None:
        self.send(bytes(message), address)

    def get_timer_resolution(self) -> float:
        return 300.0  # s a tick: see _V3Receiver._tick

    def get_timer_ticks(self) -> int:
        return 0


_DOMAIN = (1, 3, 6, 1, 6, 1, 1)  # snmpUDPDomain: pysnmp keeps it with the address, and sends nothing by it


class TrapListener:
    """Traps from known switches on one UDP socket; see the module docstring for which and how.
    `v3`: the SNMPv3 user whose traps and informs are taken (None: SNMPv3 ones are refused)."""

    def __init__(
        self,
        community: bytes,
        switches: Mapping[str, DeviceId],
        on_trap: Callable[[Trap], None],
        v3: SnmpV3Credentials | None = None,
    ) -> None:
        self._community = community
        self._switches: dict[str, DeviceId] = {}
        self.set_switches(switches)
        self._on_trap = on_trap  # called in the event loop: it must not block
        self._endpoint: _Endpoint | None = None
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)  # datagrams by outcome (a metric)
        self.kinds: dict[str, int] = dict.fromkeys(KINDS, 0)  # accepted traps by kind (a metric)
        self._v3 = v3
        self._v3_receiver: _V3Receiver | None = None  # made at start
        self._v3_refused = "no SNMPv3 user is configured (probes.snmp.v3)"
        self.engine_id = receiver_engine_id()  # ours, for SNMPv3 informs

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
        if self._v3 is not None and self._v3_receiver is None:
            self._start_v3(self._v3)  # before the socket: ready for the first datagram
        loop = asyncio.get_running_loop()
        _, endpoint = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._received), local_addr=(host, port)
        )
        self._endpoint = endpoint
        sock = endpoint.transport.get_extra_info("socket") if endpoint.transport is not None else None
        if sock is not None:  # a restart of a whole site sends hundreds of traps at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    def _start_v3(self, credentials: SnmpV3Credentials) -> None:
        """pysnmp's engine, its keys hashed (~0.1 s, once); a user it cannot serve is logged and its
        traps refused, as the poller's check says for the polls."""
        from slamon.probers.snmp_v3 import ready

        problem = ready(credentials)
        if problem:
            self._v3_refused = f"SNMPv3 traps cannot be checked: {problem}"
            logger.warning("snmp traps: %s; they are counted as bad_credentials", self._v3_refused)
            return
        self._v3_receiver = _V3Receiver(credentials, self.engine_id, self._send)
        logger.info(
            "snmp traps: SNMPv3 traps and informs of %s; informs to engine ID 0x%s",
            credentials,
            self.engine_id.hex(),
        )

    async def aclose(self) -> None:
        receiver, self._v3_receiver = self._v3_receiver, None
        if receiver is not None:
            receiver.close()
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
        if is_v3_message(data):  # a byte look, not a decode
            self._received_v3(data, addr, source, switch, received_ns)
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
        self._deliver(note, switch, source, received_ns)

    def _received_v3(
        self, data: bytes, addr: tuple[str | int, ...], source: str, switch: DeviceId, received_ns: int
    ) -> None:
        try:
            head = decode_v3_header(data)
        except MalformedTrap as exc:
            self.counts["malformed"] += 1
            logger.debug("snmp trap from %s (%s): malformed SNMPv3, dropped: %s", source, switch, exc)
            return
        if self._v3_receiver is None:
            outcome, why, pdu = "bad_credentials", self._v3_refused, None
        else:
            outcome, why, pdu = self._v3_receiver.receive(data, addr, head)
        if pdu is not None:
            try:
                note = dataclasses.replace(decode_notification(_v2c_wrapped(pdu)), version=V3)
            except MalformedTrap as exc:
                outcome, why = "malformed", str(exc)
            else:
                self._deliver(note, switch, source, received_ns)
                return
        if not outcome:
            logger.debug("snmp trap from %s (%s): SNMPv3 %s", source, switch, why)
            return
        self.counts[outcome] += 1
        logger.debug(
            "snmp trap from %s (%s): SNMPv3 %s, dropped: %s (engine ID 0x%s)",
            source,
            switch,
            "refused" if outcome == "bad_credentials" else outcome,
            why,
            head.engine_id.hex(),
        )

    def _deliver(self, note: Notification, switch: DeviceId, source: str, received_ns: int) -> None:
        trap = trap_of(note, switch, source, received_ns)
        self.counts["accepted"] += 1
        self.kinds[trap.kind] += 1
        try:
            self._on_trap(trap)
        except Exception:
            logger.exception("snmp trap from %s (%s): on_trap failed", source, switch)

    def _send(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self._endpoint is not None and self._endpoint.transport is not None:
            self._endpoint.transport.sendto(data, addr)

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
