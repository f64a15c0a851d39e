"""SNMP v1/v2c messages on the wire: exactly what a poller sends and reads (RFC 3416 PDUs, encoded
with the BER subset RFC 3417 allows), and nothing else.

Why our own codec: measured on these machines, pysnmp 7 spends 73–327 µs of CPU per varbind and
net-snmp's tools about 7 µs; a city polls 2,000 switches × ~300 varbinds a minute. Decoding here
keeps an OID as its encoded bytes (a table column is a byte prefix, its row index the bytes after
it), so a reply costs a few µs per varbind. SNMPv3 (USM, keys, engine discovery) is not encoded
here: `snmp_v3` uses pysnmp for it.

A reply that does not parse raises `MalformedReply`, naming the byte offset and what was wrong; a
poller fails that one switch with it, never the round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

# BER / SMI tags (RFC 2578 application types, RFC 3416 exceptions and PDUs)
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82
EXCEPTIONS = frozenset({NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW})

GET_REQUEST = 0xA0
GET_NEXT_REQUEST = 0xA1
RESPONSE = 0xA2
SET_REQUEST = 0xA3
V1_TRAP = 0xA4
GET_BULK_REQUEST = 0xA5
INFORM_REQUEST = 0xA6
SNMPV2_TRAP = 0xA7
REPORT = 0xA8
PDU_TYPES = frozenset(range(GET_REQUEST, REPORT + 1))

V1, V2C = 0, 1  # msgVersion values

ERROR_STATUS = (
    "noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess", "wrongType",
    "wrongLength", "wrongEncoding", "wrongValue", "noCreation", "inconsistentValue",
    "resourceUnavailable", "commitFailed", "undoFailed", "authorizationError", "notWritable",
    "inconsistentName",
)  # fmt: skip

Value: TypeAlias = int | bytes | None
"""A decoded value: int for INTEGER and the counters/gauges/ticks, bytes for strings, addresses,
OIDs (encoded) and Opaque, None for NULL and the exceptions (the tag says which)."""

_UNSIGNED = frozenset({COUNTER32, GAUGE32, TIMETICKS, COUNTER64})
_BYTES = frozenset({OCTET_STRING, IP_ADDRESS, OPAQUE, OBJECT_IDENTIFIER})
_NONE = frozenset({NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW})
_MAX_UNSIGNED = {COUNTER32: 32, GAUGE32: 32, TIMETICKS: 32, COUNTER64: 64}


class MalformedReply(ValueError):
    """A datagram that is not a well-formed SNMP message (the text names the byte and the fault)."""


@dataclass(frozen=True, slots=True)
class VarBind:
    oid: bytes  # the OID's encoded contents (no tag or length): compare prefixes, decode on demand
    tag: int
    value: Value


@dataclass(frozen=True, slots=True)
class Message:
    version: int
    community: bytes = field(repr=False)  # a secret: never in a log line
    pdu_type: int
    request_id: int
    error_status: int  # GetBulk: non-repeaters
    error_index: int  # GetBulk: max-repetitions
    varbinds: list[VarBind]


# --- OIDs -----------------------------------------------------------------------------------------


def parse_oid(text: str) -> tuple[int, ...]:
    """'1.3.6.1.2.1.1.3.0' (a leading dot allowed) as arcs; ValueError names what is wrong."""
    parts = text.strip().lstrip(".").split(".")
    if len(parts) < 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a numeric OID (e.g. 1.3.6.1.2.1.1.3.0)")
    arcs = tuple(int(p) for p in parts)
    if arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39) or any(a >= 1 << 32 for a in arcs[2:]):
        raise ValueError(f"{text!r} is not a valid OID (arcs out of range)")
    return arcs


def encode_oid(arcs: Sequence[int]) -> bytes:
    """The contents octets of an OBJECT IDENTIFIER."""
    if len(arcs) < 2:
        raise ValueError("an OID has at least two arcs")
    out = bytearray(_base128(arcs[0] * 40 + arcs[1]))
    for a in arcs[2:]:
        out += _base128(a)
    return bytes(out)


def encode_arcs(arcs: Sequence[int]) -> bytes:
    """Arcs after an OID's first two (a row index), as they follow a column's encoded prefix."""
    out = bytearray()
    for a in arcs:
        out += _base128(a)
    return bytes(out)


def decode_arcs(content: bytes) -> tuple[int, ...]:
    """Base-128 arcs as they are (a row index after a column prefix, or a whole OID's contents
    before the first two arcs are split: use `decode_oid` for that)."""
    arcs: list[int] = []
    value = 0
    pending = False
    for byte in content:
        if not pending and byte == 0x80:
            raise MalformedReply("an OID arc starts with 0x80 (not minimal)")
        value = (value << 7) | (byte & 0x7F)
        if byte & 0x80:
            pending = True
        else:
            arcs.append(value)
            value = 0
            pending = False
    if pending:
        raise MalformedReply("an OID ends inside an arc")
    return tuple(arcs)


def decode_oid(content: bytes) -> tuple[int, ...]:
    """An OID's arcs from its contents octets."""
    if not content:
        raise MalformedReply("an empty OID")
    arcs = decode_arcs(content)
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return head + arcs[1:]


def format_oid(content: bytes) -> str:
    try:
        return ".".join(map(str, decode_oid(content)))
    except MalformedReply:
        return "(malformed OID " + content.hex() + ")"


def _base128(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


# --- encoding -------------------------------------------------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def encode_tlv(tag: int, content: bytes) -> bytes:
    """A BER type-length-value: definite length, the shortest form."""
    return bytes((tag,)) + _length(len(content)) + content


def encode_integer(value: int) -> bytes:
    """An INTEGER TLV, two's complement, the fewest octets."""
    return encode_tlv(INTEGER, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


_NULL_VALUE = b"\x05\x00"


def encode_request(
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    oids: Sequence[bytes],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """A GetRequest / GetNextRequest / GetBulkRequest (`oids` as `encode_oid` contents; every value
    NULL). For a GetBulk, error-status and error-index carry non-repeaters and max-repetitions."""
    binds = b"".join(encode_tlv(SEQUENCE, encode_tlv(OBJECT_IDENTIFIER, oid) + _NULL_VALUE) for oid in oids)
    pdu = (
        encode_integer(request_id)
        + encode_integer(non_repeaters)
        + encode_integer(max_repetitions)
        + encode_tlv(SEQUENCE, binds)
    )
    return encode_tlv(
        SEQUENCE, encode_integer(version) + encode_tlv(OCTET_STRING, community) + encode_tlv(pdu_type, pdu)
    )


def encode_message(message: Message) -> bytes:
    """Any v1/v2c message with values (a Response, a trap): agents in tests, and traps we send."""
    binds = b"".join(
        encode_tlv(SEQUENCE, encode_tlv(OBJECT_IDENTIFIER, v.oid) + _value(v)) for v in message.varbinds
    )
    pdu = (
        encode_integer(message.request_id)
        + encode_integer(message.error_status)
        + encode_integer(message.error_index)
        + encode_tlv(SEQUENCE, binds)
    )
    return encode_tlv(
        SEQUENCE,
        encode_integer(message.version)
        + encode_tlv(OCTET_STRING, message.community)
        + encode_tlv(message.pdu_type, pdu),
    )


def _value(v: VarBind) -> bytes:
    if v.value is None:
        return bytes((v.tag, 0))
    if isinstance(v.value, bytes):
        return encode_tlv(v.tag, v.value)
    if v.tag == INTEGER:
        return encode_integer(v.value)
    return encode_tlv(v.tag, v.value.to_bytes((v.value.bit_length() + 8) // 8 or 1, "big"))


# --- decoding -------------------------------------------------------------------------------------


def read_header(data: bytes, at: int, end: int) -> tuple[int, int, int]:
    """(tag, contents start, contents end) of the TLV at `at`, which must end by `end` (definite
    lengths of up to 4 bytes: SNMP allows no other)."""
    if at + 2 > end:
        raise MalformedReply(f"byte {at}: truncated (a header needs 2 bytes, {end - at} left)")
    tag = data[at]
    n = data[at + 1]
    at += 2
    if n & 0x80:
        size = n & 0x7F
        if size == 0:
            raise MalformedReply(f"byte {at - 1}: indefinite length (not allowed in SNMP)")
        if size > 4 or at + size > end:
            raise MalformedReply(f"byte {at - 1}: a length of {size} bytes")
        n = int.from_bytes(data[at : at + size], "big")
        at += size
    if at + n > end:
        raise MalformedReply(f"byte {at}: tag 0x{tag:02x} says {n} bytes, {end - at} are left (truncated)")
    return tag, at, at + n


def read_expected(data: bytes, at: int, end: int, tag: int, what: str) -> tuple[int, int]:
    got, start, stop = read_header(data, at, end)
    if got != tag:
        raise MalformedReply(f"byte {at}: {what} expected (tag 0x{tag:02x}), found tag 0x{got:02x}")
    return start, stop


def read_integer(data: bytes, at: int, end: int, what: str) -> tuple[int, int]:
    start, stop = read_expected(data, at, end, INTEGER, what)
    if stop == start or stop - start > 8:
        raise MalformedReply(f"byte {at}: {what} has {stop - start} bytes")
    return int.from_bytes(data[start:stop], "big", signed=True), stop


def is_v3_message(data: bytes) -> bool:
    """Whether a datagram starts as an SNMPv3 message: SEQUENCE { INTEGER 3, … (not a decode)."""
    if len(data) < 5 or data[0] != SEQUENCE:
        return False
    at = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    return data[at : at + 3] == b"\x02\x01\x03"


def decode_message(data: bytes) -> Message:
    """A v1/v2c message of any PDU type but the v1 Trap (RFC 1157's own layout)."""
    end = len(data)
    start, stop = read_expected(data, 0, end, SEQUENCE, "a message SEQUENCE")
    if stop != end:
        raise MalformedReply(f"byte {stop}: {end - stop} bytes after the message")
    version, at = read_integer(data, start, stop, "the version")
    if version not in (V1, V2C):
        raise MalformedReply(f"version {version} is not SNMPv1 or v2c")
    c_start, at = read_expected(data, at, stop, OCTET_STRING, "the community")
    community = data[c_start:at]
    pdu_type, p_start, p_stop = read_header(data, at, stop)
    if pdu_type not in PDU_TYPES or pdu_type == V1_TRAP:
        raise MalformedReply(f"byte {at}: tag 0x{pdu_type:02x} is not a v2c PDU")
    if p_stop != stop:
        raise MalformedReply(f"byte {p_stop}: bytes after the PDU")
    request_id, at = read_integer(data, p_start, p_stop, "the request-id")
    error_status, at = read_integer(data, at, p_stop, "the error-status")
    error_index, at = read_integer(data, at, p_stop, "the error-index")
    at, list_end = read_expected(data, at, p_stop, SEQUENCE, "the varbind list")
    if list_end != p_stop:
        raise MalformedReply(f"byte {list_end}: bytes after the varbind list")
    return Message(
        version,
        community,
        pdu_type,
        request_id,
        error_status,
        error_index,
        decode_varbinds(data, at, list_end),
    )


def decode_varbinds(data: bytes, at: int, end: int) -> list[VarBind]:
    """The varbinds between `at` and `end` (a varbind list's contents), with the offsets of `data`
    in any error."""
    out: list[VarBind] = []
    append = out.append
    while at < end:
        # the usual short forms inline (a varbind under 128 bytes), the general case through _header
        if (
            at + 4 <= end
            and data[at] == SEQUENCE
            and data[at + 1] < 0x80
            and data[at + 2] == OBJECT_IDENTIFIER
        ):
            stop = at + 2 + data[at + 1]
            o_len = data[at + 3]
            if stop > end or o_len >= 0x80:
                s, stop = read_expected(data, at, end, SEQUENCE, "a varbind")
                o_start, o_stop = read_expected(data, s, stop, OBJECT_IDENTIFIER, "a varbind's OID")
            else:
                o_start = at + 4
                o_stop = o_start + o_len
        else:
            s, stop = read_expected(data, at, end, SEQUENCE, "a varbind")
            o_start, o_stop = read_expected(data, s, stop, OBJECT_IDENTIFIER, "a varbind's OID")
        if o_stop >= stop:
            raise MalformedReply(f"byte {at}: a varbind without a value")
        tag, v_start, v_stop = read_header(data, o_stop, stop)
        if v_stop != stop:
            raise MalformedReply(f"byte {v_stop}: bytes after a varbind's value")
        if o_stop == o_start:
            raise MalformedReply(f"byte {at}: an empty OID")
        if tag == INTEGER or tag in _UNSIGNED:
            size = v_stop - v_start
            if size == 0 or size > 9:
                raise MalformedReply(f"byte {o_stop}: an integer of {size} bytes")
            if tag == INTEGER:
                value: Value = int.from_bytes(data[v_start:v_stop], "big", signed=True)
            else:
                value = int.from_bytes(data[v_start:v_stop], "big")
                if value >> _MAX_UNSIGNED[tag]:
                    raise MalformedReply(f"byte {o_stop}: {value} does not fit tag 0x{tag:02x}")
        elif tag in _BYTES:
            value = data[v_start:v_stop]
        elif tag in _NONE:
            value = None
        else:
            raise MalformedReply(f"byte {o_stop}: unknown value tag 0x{tag:02x}")
        append(VarBind(data[o_start:o_stop], tag, value))
        at = stop
    return out
