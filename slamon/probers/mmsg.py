"""sendmmsg(2) and recvmmsg(2) over numpy buffers: a round's packets cross into the kernel hundreds
per call instead of one Python call each, and replies come back as arrays to match in bulk.

Message headers are laid out in numpy arrays (Linux, 64-bit little-endian; the libc calls and the
layout, checked at import against ctypes' own, are slamon/icmp/sockets.py's), so building them for 100,000
targets costs a few array operations.
Replies carry the kernel's receive time (SO_TIMESTAMPNS), so a round-trip time does not depend on
when the process got round to reading the socket.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import socket
import sys
from dataclasses import dataclass

import numpy as np

from slamon.icmp.sockets import (
    CALLS,
    CONTROL_LEN,
    IOV_WORDS,
    MMSG_WORDS,
    MSG_DONTWAIT,
    NAME_LEN,
    SO_TIMESTAMPNS,
)

_CALLS = CALLS


def _address(arr: np.ndarray) -> int:
    return int(arr.ctypes.data)


def sockaddrs(family: int, addresses: list[str]) -> tuple[np.ndarray, int]:
    """(one sockaddr per row, its length) for address texts of one family, port 0. An IPv6 zone
    (`fe80::1%eth0`) becomes the scope id. An address that cannot be written gets an invalid
    family: sending to it fails, which fails that target only."""
    n = len(addresses)
    if family == socket.AF_INET:
        out, size, at, width = np.zeros((n, 16), np.uint8), 16, 4, 4
    else:
        out, size, at, width = np.zeros((n, 28), np.uint8), 28, 8, 16
    bad: list[int] = []
    try:  # the usual fleet: every address plain, packed in one C-level pass
        packed = b"".join(map(functools.partial(socket.inet_pton, family), addresses))
    except OSError:  # a zone or an unusable address: one at a time
        one_by_one = bytearray()
        for i, a in enumerate(addresses):
            one = _packed(family, a.partition("%")[0])
            if one is None:
                bad.append(i)
            one_by_one += one or bytes(width)
        packed = bytes(one_by_one)
    if n:
        out[:, at : at + width] = np.frombuffer(packed, np.uint8).reshape(n, width)
    out[:, 0:2] = np.frombuffer(int(family).to_bytes(2, sys.byteorder), np.uint8)
    # no family at all: the kernel refuses to send there (EAFNOSUPPORT); an all-zero address would
    # be this host, which answers: a false "up"
    out[bad, 0:2] = 0xFF
    if family == socket.AF_INET6:
        for i, a in enumerate(addresses):
            if "%" in a:
                out[i, 24:28] = np.frombuffer(
                    _scope(a.partition("%")[2]).to_bytes(4, sys.byteorder), np.uint8
                )
    return out, size


def _packed(family: int, address: str) -> bytes | None:
    try:
        return socket.inet_pton(family, address)
    except OSError:
        return None


def _scope(zone: str) -> int:
    """An IPv6 zone as its interface index: a name (eth0) or a number; 0 when there is none such."""
    if zone.isdigit():
        return int(zone)
    try:
        return socket.if_nametoindex(zone)
    except OSError:
        return 0


class Sender:
    """Every packet of a round with its destination, sent in slices with sendmmsg."""

    def __init__(self, sock: socket.socket, packets: np.ndarray, names: np.ndarray, name_len: int) -> None:
        assert _CALLS is not None
        self._call = _CALLS[0]
        self.sock = sock  # not its number: a closed socket's number may come back as another one
        rows, size = packets.shape
        targets = names.shape[0]
        self.packets, self.names = packets, names  # kept alive: the headers point into them
        self.iov = np.zeros((rows, IOV_WORDS), np.uint64)
        self.iov[:, 0] = _address(packets) + np.arange(rows, dtype=np.uint64) * size
        self.iov[:, 1] = size
        self.headers = np.zeros((rows, MMSG_WORDS), np.uint64)
        row_target = np.arange(rows, dtype=np.uint64) % max(targets, 1)  # packet rows are echo-major
        self.headers[:, 0] = _address(names) + row_target * names.shape[1]
        self.headers[:, 1] = name_len
        self.headers[:, 2] = _address(self.iov) + np.arange(rows, dtype=np.uint64) * (IOV_WORDS * 8)
        self.headers[:, 3] = 1
        self.base = _address(self.headers)

    def send(self, start: int, count: int) -> int:
        """Send packets [start, start + count); how many went (at least 1), 0 when the socket's
        buffer is full; an error of the first packet is raised as OSError."""
        fd = self.sock.fileno()
        if fd < 0:
            raise OSError(errno.EBADF, "the ICMP socket is closed")
        got = self._call(fd, self.base + start * MMSG_WORDS * 8, count, 0)
        if got >= 0:
            return int(got)
        err = ctypes.get_errno()
        if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS):
            return 0
        raise OSError(err, os.strerror(err))


@dataclass(slots=True)
class Batch:
    """Replies read by one recvmmsg call: the first `count` rows of the receiver's buffers."""

    count: int
    data: np.ndarray  # (count, slot) bytes of each datagram, truncated to the slot
    length: np.ndarray  # (count,) bytes of each datagram read (at most the slot)
    names: np.ndarray  # (count, NAME_LEN) the source sockaddr
    received_ns: np.ndarray  # (count,) kernel receive time, CLOCK_REALTIME ns; 0 if none came


class Receiver:
    """Reads up to `slots` datagrams per call without blocking, with their kernel timestamps."""

    def __init__(self, sock: socket.socket, slots: int = 1024, slot_size: int = 128) -> None:
        assert _CALLS is not None
        self._call = _CALLS[1]
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock = sock
        self.slots = slots
        self.data = np.zeros((slots, slot_size), np.uint8)
        self.names = np.zeros((slots, NAME_LEN), np.uint8)
        self.control = np.zeros((slots, CONTROL_LEN // 8), np.int64)
        self.iov = np.zeros((slots, IOV_WORDS), np.uint64)
        rows = np.arange(slots, dtype=np.uint64)
        self.iov[:, 0] = _address(self.data) + rows * slot_size
        self.iov[:, 1] = slot_size
        self.headers = np.zeros((slots, MMSG_WORDS), np.uint64)
        self.headers[:, 0] = _address(self.names) + rows * NAME_LEN
        self.headers[:, 2] = _address(self.iov) + rows * (IOV_WORDS * 8)
        self.headers[:, 3] = 1
        self.headers[:, 4] = _address(self.control) + rows * CONTROL_LEN
        self.base = _address(self.headers)

    def read(self) -> Batch | None:
        """The datagrams waiting now (up to `slots`), or None when there are none."""
        h = self.headers
        h[:, 1] = NAME_LEN  # the kernel writes back the lengths it used
        h[:, 5] = CONTROL_LEN
        fd = self.sock.fileno()
        if fd < 0:
            raise OSError(errno.EBADF, "the ICMP socket is closed")
        got = self._call(fd, self.base, self.slots, MSG_DONTWAIT, None)
        if got <= 0:
            if got < 0 and ctypes.get_errno() not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            return None
        k = int(got)
        ctl = self.control[:k]
        # one cmsg: [cmsg_len, level | type << 32, tv_sec, tv_nsec]
        stamped = (h[:k, 5] >= CONTROL_LEN) & (ctl[:, 1] == (SO_TIMESTAMPNS << 32 | socket.SOL_SOCKET))
        received = np.where(stamped, ctl[:, 2] * 1_000_000_000 + ctl[:, 3], 0)
        return Batch(k, self.data[:k], (h[:k, 7] & 0xFFFFFFFF).astype(np.int64), self.names[:k], received)
