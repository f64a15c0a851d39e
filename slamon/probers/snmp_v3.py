"""SNMPv3 (USM, authPriv) for the switches whose inventory says `snmp: {version: 3}`, through pysnmp.

The poll is v2c's (`snmp.Conversation`: the GET of the scalars, then the columns walked side by
side with GETBULK, each column stopped at its end, an agent that goes back refused), so the result
and its `detail` are the same; only `request` differs: each one goes through pysnmp's engine, which
does what v3 adds (discovering the agent's engine ID and time, localizing the keys, HMAC and
encryption). One engine per prober (`Session`), made at its first SNMPv3 poll and closed with the
prober, holding the one USM user, a UDP transport per address family and a target per switch.

pysnmp is used at its command-generator level (`cmdgen.*CommandGenerator.send_varbinds` with
numeric OIDs): the high-level `get_cmd` / `bulk_cmd` resolve every OID through MIB modules (and
set up pysmi's MIB compiler, which may fetch MIB files), and `bulk_walk_cmd` walks past a table.
Measured here: ~95 µs of CPU per value (9 ms a poll of a 4-port agent, ~30 ms of a 48-port
switch), against a few µs for our v2c codec: fine for the switches that need v3, not the path for a
whole city. Making the engine (and each passphrase into its key) costs ~0.1 s once, at the first
SNMPv3 poll.

Errors, as the result's text:
- the agent says the user or keys are wrong (a Report: usmStatsUnknownUserNames, WrongDigests,
  DecryptionErrors, UnsupportedSecLevels) → "SNMPv3: wrong user or keys (…)", at once, not retried;
- no reply: a wrong privacy key looks like this too (the agent cannot decrypt the request and drops
  it), so after the last try an unauthenticated discovery request tells the two apart: an agent that
  answers it is up, and it is the keys → "SNMPv3: wrong user or keys (…)"; else the v2c wording,
  "no reply after N tries of T s (…)";
- an error-status → "the agent answered genErr at OID", as for v2c.
The keys are never in an error, a log line or a repr.

`rtt_ms` is the first request's round trip; on the first poll of a switch it includes the engine
discovery (one or two round trips more). `requests` and `loss` count our requests, not discovery.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.error import PySnmpError
from pysnmp.proto import errind
from pysnmp.proto.error import StatusInformation
from pysnmp.proto.rfc1902 import ObjectName
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from slamon.probers.snmp import Conversation, PollFailed, SnmpSettings, SnmpV3Credentials, error_text
from slamon.probers.snmp_wire import (
    END_OF_MIB_VIEW,
    GET_BULK_REQUEST,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    NULL,
    RESPONSE,
    Message,
    Value,
    VarBind,
    decode_oid,
    encode_integer,
    encode_oid,
    encode_tlv,
    is_v3_message,
)

# slamon.yaml's names (net-snmp's -a and -x names) → pysnmp's protocols. net-snmp's AES192 and
# AES256 extend the key as draft-blumenthal-aes-usm says; the C ones (Cisco's) as draft-reeder.
AUTH_PROTOCOLS = {
    "MD5": config.USM_AUTH_HMAC96_MD5,
    "SHA": config.USM_AUTH_HMAC96_SHA,
    "SHA224": config.USM_AUTH_HMAC128_SHA224,
    "SHA256": config.USM_AUTH_HMAC192_SHA256,
    "SHA384": config.USM_AUTH_HMAC256_SHA384,
    "SHA512": config.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS = {
    "DES": config.USM_PRIV_CBC56_DES,
    "AES": config.USM_PRIV_CFB128_AES,
    "AES192": config.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES192C": config.USM_PRIV_CFB192_AES,
    "AES256": config.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES256C": config.USM_PRIV_CFB256_AES,
}
_PARAMS = "slamon-v3"  # the engine's one target-parameters entry: the user at authPriv

# A Report naming one of these means the user or keys are wrong: (class, what it says)
_WRONG_KEYS: tuple[tuple[type[Exception], str], ...] = (
    (errind.UnknownUserName, "the agent has no user {user!r}"),
    (errind.WrongDigest, "the agent rejects the auth key: a wrong auth key or auth_protocol"),
    (errind.DecryptionError, "the agent cannot decrypt the request: a wrong priv key or priv_protocol"),
    (errind.UnsupportedSecurityLevel, "the agent does not allow authPriv for user {user!r}"),
    (errind.AuthenticationFailure, "the reply fails authentication: a wrong auth key or auth_protocol"),
    (errind.AuthenticationError, "the reply fails authentication: a wrong auth key or auth_protocol"),
)


def ready(credentials: SnmpV3Credentials) -> str:
    """Why SNMPv3 polls cannot work here ('' when they can): pysnmp encrypts with `cryptography`."""
    if credentials.auth_protocol not in AUTH_PROTOCOLS:
        return f"unknown auth protocol {credentials.auth_protocol!r}"
    if credentials.priv_protocol not in PRIV_PROTOCOLS:
        return f"unknown priv protocol {credentials.priv_protocol!r}"
    try:
        from cryptography.hazmat.decrepit.ciphers import algorithms, modes  # noqa: F401
    except ImportError:
        return "pysnmp encrypts with the `cryptography` package (47 or later), which is not installed"
    return ""


class Session:
    """One pysnmp engine for a prober's SNMPv3 switches (see the module docstring)."""

    def __init__(self, credentials: SnmpV3Credentials, timeout: timedelta) -> None:
        self.credentials = credentials
        self._timeout_cs = max(1, round(timeout.total_seconds() * 100))  # pysnmp counts hundredths
        self._engine: Any = None
        self._domains: set[tuple[int, ...]] = set()
        self._targets: dict[tuple[str, int], str] = {}
        self._get = cmdgen.GetCommandGenerator()
        self._bulk = cmdgen.BulkCommandGenerator()

    def conversation(self, settings: SnmpSettings, target: tuple[str, int]) -> V3Conversation:
        return V3Conversation(self, settings, target)

    def _open(self) -> Any:
        """The engine, made in the running event loop (pysnmp's dispatcher takes that loop)."""
        if self._engine is None:
            c = self.credentials
            engine = SnmpEngine()
            config.add_v3_user(
                engine,
                c.user,
                AUTH_PROTOCOLS[c.auth_protocol],
                c.auth_key,
                PRIV_PROTOCOLS[c.priv_protocol],
                c.priv_key,
            )
            config.add_target_parameters(engine, _PARAMS, c.user, "authPriv")
            self._engine = engine
        return self._engine

    def target(self, address: tuple[str, int]) -> str:
        """The engine's name for a switch's agent (its transport opened at the first of a family)."""
        name = self._targets.get(address)
        if name is None:
            engine = self._open()
            v6 = ":" in address[0]
            domain = udp6.DOMAIN_NAME if v6 else udp.DOMAIN_NAME
            if domain not in self._domains:
                transport = udp6.Udp6AsyncioTransport() if v6 else udp.UdpAsyncioTransport()
                config.add_transport(engine, domain, transport.open_client_mode())
                self._domains.add(domain)
            name = f"switch{len(self._targets)}"
            config.add_target_address(
                engine, name, domain, address, _PARAMS, timeout=self._timeout_cs, retryCount=0
            )
            self._targets[address] = name
        return name

    async def send(
        self, target: str, pdu_type: int, oids: Sequence[tuple[int, ...]], repetitions: int
    ) -> tuple[Any, int, int, Sequence[tuple[Any, Any]]]:
        """One request, pysnmp's answer: (errorIndication, errorStatus, errorIndex, varBinds).
        A request pysnmp cannot even prepare raises StatusInformation or PySnmpError."""
        engine = self._open()
        future: asyncio.Future[tuple[Any, int, int, Sequence[tuple[Any, Any]]]]
        future = asyncio.get_running_loop().create_future()

        def done(
            engine: Any, handle: Any, indication: Any, status: Any, index: Any, binds: Any, context: Any
        ) -> None:
            if not future.done():
                future.set_result((indication, int(status or 0), int(index or 0), binds or ()))

        binds = [(ObjectName(arcs), None) for arcs in oids]
        if pdu_type == GET_BULK_REQUEST:
            self._bulk.send_varbinds(engine, target, None, b"", 0, repetitions, binds, done)
        else:
            self._get.send_varbinds(engine, target, None, b"", binds, done)
        return await future

    async def aclose(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()  # closes the transports and stops the timer
            self._engine = None
            await asyncio.sleep(0)  # the sockets close in the loop's next turn
            await asyncio.sleep(0)


class V3Conversation(Conversation):
    """One SNMPv3 poll of one switch: the v2c walk, its requests through the session's engine."""

    def __init__(self, session: Session, settings: SnmpSettings, target: tuple[str, int]) -> None:
        super().__init__(settings, target)
        self.session = session

    async def request(self, pdu_type: int, oids: Sequence[bytes], repetitions: int = 0) -> Message:
        settings = self.settings
        user = self.session.credentials.user
        timeout = settings.timeout.total_seconds()
        try:
            target = self.session.target(self.target)
        except (PySnmpError, OSError, ValueError) as exc:
            raise self.fail("send", f"cannot send: {exc}") from None
        arcs = [decode_oid(oid) for oid in oids]
        for attempt in range(settings.retries + 1):
            self.requests += 1
            if attempt:
                self.resent += 1
            sent = time.monotonic_ns()
            try:
                # pysnmp times the request out; this bounds discovery's round trips, and a bug
                async with asyncio.timeout(timeout * 4 + 1):
                    indication, status, index, binds = await self.session.send(
                        target, pdu_type, arcs, repetitions
                    )
            except TimeoutError:
                continue
            except StatusInformation as exc:
                indication, status, index, binds = exc.get("errorIndication"), 0, 0, ()
            except PySnmpError as exc:
                raise self.fail("v3_error", f"SNMPv3: {exc}") from None
            if isinstance(indication, errind.RequestTimedOut):
                continue
            if indication:
                raise self._failed(indication, user)
            now = time.monotonic_ns()
            if self.rtt_ms is None:
                self.rtt_ms = (now - sent) / 1e6
                self.first_reply_ns = now
            message = Message(3, b"", RESPONSE, 0, status, index, [_varbind(o, v) for o, v in binds])
            self.varbinds += len(message.varbinds)
            if message.error_status:
                raise self.fail("error_status", error_text(message, oids))
            return message
        # keys are the suspect only when nothing of this poll got through: an agent that answered
        # before and times out now is busy, not refusing our keys
        if self.rtt_ms is None and await answers_discovery(self.target, timeout):
            raise self.fail(
                "v3_keys",
                f"SNMPv3: wrong user or keys (the agent answers SNMPv3 discovery but not the requests of "
                f"user {user!r}: a wrong priv key or priv_protocol?)",
            )
        raise self.no_reply("agent down, filtered, or not speaking SNMPv3")

    def _failed(self, indication: object, user: str) -> PollFailed:
        for kind, text in _WRONG_KEYS:
            if isinstance(indication, kind):
                return self.fail("v3_keys", f"SNMPv3: wrong user or keys ({text.format(user=user)})")
        if isinstance(indication, errind.EncryptionError):
            return self.fail(
                "v3_error",
                "SNMPv3: pysnmp cannot encrypt (it needs the `cryptography` package, 47 or later)",
            )
        return self.fail("v3_error", f"SNMPv3: {indication}")


def _varbind(oid: Any, value: Any) -> VarBind:
    """A pysnmp (OID, value) as our codec's VarBind: the OID encoded, the BER tag, the value as
    snmp_wire.Value (int, bytes, or None for NULL and the exceptions)."""
    tag = value.tagSet[-1]  # the outermost tag: an application or context one where the type has it
    code = int(tag.tagClass) | int(tag.tagFormat) | int(tag.tagId)
    got: Value
    if isinstance(value, EndOfMibView):
        code, got = END_OF_MIB_VIEW, None
    elif isinstance(value, NoSuchObject):
        code, got = NO_SUCH_OBJECT, None
    elif isinstance(value, NoSuchInstance):
        code, got = NO_SUCH_INSTANCE, None
    elif isinstance(value, univ.Null):  # before OctetString: pyasn1's Null is one
        code, got = NULL, None
    elif isinstance(value, univ.Integer):  # INTEGER, Counter32/64, Gauge32, TimeTicks, Unsigned32
        got = int(value)
    elif isinstance(value, univ.OctetString):  # OCTET STRING, IpAddress, Opaque, BITS
        got = value.asOctets()
    elif isinstance(value, univ.ObjectIdentifier):
        got = encode_oid(tuple(value))
    else:  # no other type is in SNMPv2-SMI
        code, got = NULL, None
    return VarBind(encode_oid(tuple(oid)), code, got)


# --- telling a wrong privacy key from an agent that is down -------------------------------------


async def answers_discovery(target: tuple[str, int], wait_s: float) -> bool:
    """Whether the agent answers an SNMPv3 discovery request (no user, no keys: RFC 3414 4) within
    `wait_s` seconds: if so it is up, and silence to our authPriv requests is their keys' doing."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[bool] = loop.create_future()

    class Probe(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
            if not answered.done():
                answered.set_result(is_v3_message(data))

        def error_received(self, exc: Exception) -> None:  # ICMP port unreachable, on Linux
            if not answered.done():
                answered.set_result(False)

    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    try:
        transport, _ = await loop.create_datagram_endpoint(Probe, remote_addr=target, family=family)
    except OSError:
        return False
    try:
        transport.sendto(_discovery_request(int.from_bytes(os.urandom(3), "big")))
        async with asyncio.timeout(wait_s):
            return await answered
    except (TimeoutError, OSError):
        return False
    finally:
        transport.close()


def _discovery_request(msg_id: int) -> bytes:
    """An SNMPv3 GET with no varbinds, no user and an empty engine ID, reportable: an agent answers
    it with a Report of usmStatsUnknownEngineIDs (how managers learn its engine ID)."""
    usm = encode_tlv(
        0x30, encode_tlv(0x04, b"") + encode_integer(0) + encode_integer(0) + encode_tlv(0x04, b"") * 3
    )
    header = encode_tlv(
        0x30, encode_integer(msg_id) + encode_integer(65507) + encode_tlv(0x04, b"\x04") + encode_integer(3)
    )
    pdu = encode_tlv(
        0xA0, encode_integer(msg_id) + encode_integer(0) + encode_integer(0) + encode_tlv(0x30, b"")
    )
    scoped = encode_tlv(0x30, encode_tlv(0x04, b"") + encode_tlv(0x04, b"") + pdu)
    return encode_tlv(0x30, encode_integer(3) + header + encode_tlv(0x04, usm) + scoped)
