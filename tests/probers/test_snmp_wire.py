"""The SNMP codec: round trips, every truncation and random bytes fail as MalformedReply, and what
net-snmp's tools put on the wire decodes (bytes captured from snmpget/snmpd)."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slamon.probers.snmp_wire import (
    COUNTER32,
    COUNTER64,
    END_OF_MIB_VIEW,
    GAUGE32,
    GET_BULK_REQUEST,
    GET_REQUEST,
    INTEGER,
    IP_ADDRESS,
    NO_SUCH_OBJECT,
    NULL,
    OCTET_STRING,
    RESPONSE,
    SNMPV2_TRAP,
    TIMETICKS,
    V2C,
    MalformedReply,
    Message,
    VarBind,
    decode_arcs,
    decode_message,
    decode_oid,
    encode_arcs,
    encode_message,
    encode_oid,
    encode_request,
    format_oid,
    parse_oid,
)

oids = st.tuples(st.integers(0, 2), st.integers(0, 39)).flatmap(
    lambda head: st.lists(st.integers(0, 2**32 - 1), max_size=20).map(lambda rest: head + tuple(rest))
)


def values() -> st.SearchStrategy[tuple[int, int | bytes | None]]:
    return st.one_of(
        st.tuples(st.just(INTEGER), st.integers(-(2**31), 2**31 - 1)),
        st.tuples(st.sampled_from([COUNTER32, GAUGE32, TIMETICKS]), st.integers(0, 2**32 - 1)),
        st.tuples(st.just(COUNTER64), st.integers(0, 2**64 - 1)),
        st.tuples(st.just(OCTET_STRING), st.binary(max_size=300)),
        st.tuples(st.just(IP_ADDRESS), st.binary(min_size=4, max_size=4)),
        st.tuples(st.sampled_from([NULL, NO_SUCH_OBJECT, END_OF_MIB_VIEW]), st.none()),
    )


messages = st.builds(
    Message,
    st.just(V2C),
    st.binary(max_size=40),
    st.sampled_from([RESPONSE, SNMPV2_TRAP]),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 18),
    st.integers(0, 200),
    st.lists(st.builds(lambda oid, tv: VarBind(encode_oid(oid), *tv), oids, values()), max_size=30),
)


@given(oids)
def test_oid_round_trip(arcs: tuple[int, ...]) -> None:
    assert decode_oid(encode_oid(arcs)) == arcs
    assert parse_oid(format_oid(encode_oid(arcs))) == arcs


@given(st.lists(st.integers(0, 2**32 - 1), max_size=10))
def test_index_arcs_round_trip(arcs: list[int]) -> None:
    assert decode_arcs(encode_arcs(arcs)) == tuple(arcs)


@given(messages)
def test_message_round_trip(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@given(messages, st.data())
def test_every_truncation_is_malformed(message: Message, data: st.DataObject) -> None:
    wire = encode_message(message)
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(MalformedReply):
        decode_message(wire[:cut])


@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    try:
        decode_message(data)
    except MalformedReply:
        pass


@given(messages, st.data())
def test_a_flipped_byte_is_malformed_or_still_a_message(message: Message, data: st.DataObject) -> None:
    wire = bytearray(encode_message(message))
    at = data.draw(st.integers(0, len(wire) - 1))
    wire[at] ^= data.draw(st.integers(1, 255))
    try:
        assert isinstance(decode_message(bytes(wire)), Message)
    except MalformedReply:
        pass


def test_a_get_request_is_byte_for_byte_what_snmpget_sends() -> None:
    """snmpget's own request, caught on a UDP socket, is what encode_request makes of the same
    community, request-id and OID."""
    if shutil.which("snmpget") is None:
        pytest.skip("net-snmp's snmpget is not installed (apt-get install snmp)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        port = s.getsockname()[1]
        tool = subprocess.Popen(
            ["snmpget", "-v2c", "-c", "public", "-r0", "-t1", f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            sent = s.recv(65535)
        finally:
            tool.wait(10)
    request_id = decode_message(sent).request_id
    ours = encode_request(
        V2C, b"public", GET_REQUEST, request_id, [encode_oid(parse_oid("1.3.6.1.2.1.1.3.0"))]
    )
    assert ours == sent


def test_a_getbulk_carries_non_repeaters_and_max_repetitions() -> None:
    wire = encode_request(V2C, b"c", GET_BULK_REQUEST, 7, [encode_oid((1, 3, 6, 1, 2, 1, 2, 2, 1, 8))], 0, 25)
    got = decode_message(wire)
    assert (got.pdu_type, got.request_id, got.error_status, got.error_index) == (GET_BULK_REQUEST, 7, 0, 25)
    assert got.varbinds == [VarBind(encode_oid((1, 3, 6, 1, 2, 1, 2, 2, 1, 8)), NULL, None)]


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("", "truncated"),
        ("0400", "a message SEQUENCE expected"),
        ("3000", "truncated"),
        ("3003020103", "version 3 is not SNMPv1 or v2c"),
        ("30800201", "indefinite length"),
        ("3005020101040a", "says 10 bytes"),
        ("30070201010400" + "7f00", "not a v2c PDU"),
        ("30070201010400" + "a200", "byte 9: truncated"),
        ("300302010100", "1 bytes after the message"),
    ],
)
def test_malformed_replies_name_the_fault(wire: str, message: str) -> None:
    with pytest.raises(MalformedReply, match=message):
        decode_message(bytes.fromhex(wire))


def test_an_unknown_value_type_is_named() -> None:
    wire = bytearray(
        encode_message(Message(V2C, b"c", RESPONSE, 1, 0, 0, [VarBind(encode_oid((1, 3, 6)), NULL, None)]))
    )
    wire[-2] = 0x99  # the value's tag
    with pytest.raises(MalformedReply, match="unknown value tag 0x99"):
        decode_message(bytes(wire))


def test_a_counter_too_wide_for_its_type_is_malformed() -> None:
    wire = encode_message(
        Message(V2C, b"c", RESPONSE, 1, 0, 0, [VarBind(encode_oid((1, 3, 6)), COUNTER32, 2**32)])
    )
    with pytest.raises(MalformedReply, match="does not fit"):
        decode_message(wire)


@pytest.mark.parametrize("text", ["", "1", "1.3.x", "3.1", "1.40", "1.3.6." + str(2**32)])
def test_bad_oids_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="OID"):
        parse_oid(text)
