"""ICMP sockets and the libc calls that move many packets per call, without numpy.

Both ICMP engines use these: the service's rounds (probers/icmp.py, with numpy buffers from
probers/mmsg.py) and the one-shot round of `slamon probe --once` (once.py, plain Python), so that a
short process loads neither numpy nor asyncio to ping a fleet once.

- `open_socket`: a raw socket when privileged (with an echo-reply filter), else an ICMP datagram
  socket (net.ipv4.ping_group_range); a large receive buffer; an IPv4 one sets Don't Fragment.
- `CALLS`: sendmmsg(2) and recvmmsg(2) through ctypes, with the message-header layout (Linux,
  64-bit little-endian; checked at import against ctypes' own layout) that both engines lay out
  as words: `struct mmsghdr` is eight 64-bit words, `struct iovec` two.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import sys
from datetime import timedelta
from typing import Any

from slamon.errors import SlamonError
from slamon.units import format_duration

MSG_DONTWAIT = 0x40
SO_TIMESTAMPNS = 35  # also the cmsg type of the timestamp (SCM_TIMESTAMPNS)
MMSG_WORDS = 8  # struct mmsghdr: 64 bytes as eight 64-bit words
IOV_WORDS = 2  # struct iovec: base, length
NAME_LEN = 28  # room for a sockaddr_in6
CONTROL_LEN = 32  # CMSG_SPACE(sizeof(struct timespec))

MAGIC = b"SLMN"
PAYLOAD = struct.Struct("!4sIIH")  # magic, round nonce, target index, echo number
HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
PACKET_LEN = HEADER.size + PAYLOAD.size
ECHO_REQUEST: dict[int, int] = {int(socket.AF_INET): 8, int(socket.AF_INET6): 128}
ECHO_REPLY: dict[int, int] = {int(socket.AF_INET): 0, int(socket.AF_INET6): 129}
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2
RECEIVE_BUFFER = 32 << 20
SMALL_BUFFER = (  # logged (INFO) with the KiB granted and RECEIVE_BUFFER
    "ICMP receive buffer is %d KiB (net.core.rmem_max): rounds are sent in slices that fit it; "
    "raise net.core.rmem_max to %d (or grant CAP_NET_ADMIN) for fewer, larger ones"
)
NO_PERMISSION = (
    "cannot open an ICMP socket: raw sockets need root or CAP_NET_RAW "
    "(sudo setcap cap_net_raw+ep {python}), and unprivileged ICMP needs this group in "
    "net.ipv4.ping_group_range (sudo sysctl -w net.ipv4.ping_group_range='0 2147483647')"
)


NO_REPLY = "no echo reply"  # the error of a device none of whose echoes came back
GAVE_UP = "icmp: %s: gave up on the round's other %d echoes (%d devices)"  # logged (WARNING)
TICK = 0.02  # seconds between looks at the socket once a round's echoes are all sent
SLICE = 0.02  # seconds of sending between pauses: rate × SLICE packets at a time
BURST = 32  # packets per sendmmsg call, which share one send time


def slice_size(rate: int, buffer: int) -> int:
    """Packets sent between two reads of the socket: a slice's replies must fit the receive
    queue until the next read (~2 KiB each, queued)."""
    return max(1, min(int(rate * SLICE), buffer // 2048))


def refused_sends(timeout_ns: int) -> str:
    """The error of the devices whose echoes were given up because the socket took nothing for
    `timeout`."""
    return f"the socket refused sends for {format_duration(timedelta(microseconds=timeout_ns // 1000))}"


class IcmpUnavailable(SlamonError):
    """Neither a raw nor a datagram ICMP socket can be opened."""


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _layout_ok() -> bool:
    """The word offsets both engines write: name 0, namelen 1, iov 2, iovlen 3, control 4,
    controllen 5, flags 6, msg_len 7 (the low half of each word)."""
    m = _Msghdr
    return (
        sys.byteorder == "little"
        and ctypes.sizeof(_Mmsghdr) == MMSG_WORDS * 8
        and ctypes.sizeof(_Iovec) == IOV_WORDS * 8
        and [getattr(m, f[0]).offset for f in m._fields_] == [0, 8, 16, 24, 32, 40, 48]
        and _Mmsghdr.msg_len.offset == 56
    )


def _libc_calls() -> tuple[Any, Any] | None:
    if not sys.platform.startswith("linux") or not _layout_ok():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        send, recv = libc.sendmmsg, libc.recvmmsg
    except (OSError, AttributeError):
        return None
    send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    send.restype = ctypes.c_int
    recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    recv.restype = ctypes.c_int
    return send, recv


CALLS = _libc_calls()  # (sendmmsg, recvmmsg), or None where they cannot be used
AVAILABLE = CALLS is not None
NOT_AVAILABLE = "the ICMP prober needs Linux's sendmmsg and recvmmsg (64-bit, little-endian)"


def open_socket(family: int, mode: str) -> tuple[socket.socket, bool, int]:
    """(a non-blocking ICMP socket of `family`, whether it is raw, the bytes its receive queue may
    hold). mode: auto (raw, else datagram), raw or dgram. IcmpUnavailable names both fixes."""
    if not AVAILABLE:
        raise IcmpUnavailable(NOT_AVAILABLE)
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    errors: list[OSError] = []
    for raw in (True, False) if mode == "auto" else (mode == "raw",):
        try:
            sock = socket.socket(family, socket.SOCK_RAW if raw else socket.SOCK_DGRAM, proto)
        except PermissionError as exc:
            errors.append(exc)
            continue
        sock.setblocking(False)
        if raw:
            only_echo_replies(sock, family)
        if family == socket.AF_INET:
            # Don't Fragment, as the kernel sets it on these small packets anyway: with it asked
            # for, the kernel leaves the IP id at 0 instead of drawing one per packet (a tenth
            # of a raw send's kernel time); an echo request is far below any path's MTU
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        return sock, raw, large_receive_buffer(sock)
    raise IcmpUnavailable(NO_PERMISSION.format(python=os.path.realpath(sys.executable))) from errors[-1]


def only_echo_replies(sock: socket.socket, family: int) -> None:
    """A raw socket receives every ICMP packet of the host unless told otherwise."""
    if family == socket.AF_INET:
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF & ~(1 << ECHO_REPLY[family])))
    else:
        words = [0xFFFFFFFF] * 8  # a set bit blocks that type
        words[129 >> 5] &= ~(1 << (129 & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("8I", *words))


def large_receive_buffer(sock: socket.socket) -> int:
    """Ask for RECEIVE_BUFFER; returns what the kernel granted (without CAP_NET_ADMIN it caps the
    size at net.core.rmem_max, about 200 KiB by default)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, RECEIVE_BUFFER)  # SO_RCVBUFFORCE, needs CAP_NET_ADMIN
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)) // 2  # the kernel reports twice
