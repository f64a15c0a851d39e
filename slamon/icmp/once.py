"""One ICMP round in a short-lived process (`slamon probe --once`): the prober's round, plain Python.

A process that pings its fleet once and exits pays for everything it loads. Importing numpy costs
about a third of what fping spends pinging 50,000 devices, and asyncio another tenth, so this
round uses neither. It keeps the rules and wire format of slamon/probers/icmp.py, so its results
mean the same:

- every echo request is built up front (identifier, sequence, checksum; the payload carries a
  per-round nonce, the target's index and the echo number), echo-major;
- they are sent paced at `rate`, in slices of rate × SLICE (smaller when the receive buffer is
  small), BURST per sendmmsg call, each recorded with the monotonic and the wall-clock time taken
  before its call; a socket that takes nothing for `timeout` ends the sending, and the echoes not
  sent yet are given up together;
- replies are read with recvmmsg after every slice and matched by nonce, index, echo number and
  source address, each RTT the kernel's receive stamp less the wall-clock send time (the
  monotonic difference when the wall clock was stepped in between);
- a device is final once all its echoes are back, or `timeout` after its last echo went (checked
  at every look at the socket; a reply read after that no longer counts).

What differs is how: one blocking loop (sleep between slices, poll(2) for the last replies, looks
at most every TICK once everything is sent), and the bookkeeping in lists, dicts and the standard
library's arrays. Replies are checked a batch at a time, a column of the receive buffer per field
(strided memoryview slices compared or converted in C), and only a batch that is not plainly
ours and new (IP options, another process's echo replies on a raw socket, a duplicate, a late
reply, an unstamped one) is taken apart one reply at a time.

IPv4 only (addresses packed as fleet_cache.ipv4_packed gives them): a fleet with IPv6 addresses,
or devices another probe kind watches, is probed by the service's engines instead (cli.py decides).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import select
import socket
import struct
import time
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import add, mul, sub
from typing import Self

from slamon.icmp.sockets import (
    BURST,
    CALLS,
    CONTROL_LEN,
    ECHO_REPLY,
    ECHO_REQUEST,
    GAVE_UP,
    HEADER,
    MAGIC,
    MMSG_WORDS,
    MSG_DONTWAIT,
    NAME_LEN,
    PACKET_LEN,
    PAYLOAD,
    RECEIVE_BUFFER,
    SMALL_BUFFER,
    SO_TIMESTAMPNS,
    TICK,
    open_socket,
    refused_sends,
    slice_size,
)

logger = logging.getLogger(__name__)

SLOTS = 1024  # replies per recvmmsg call
SLOT = 128  # bytes kept of each reply: a raw socket's IP header (20, up to 60) and the echo
_STAMPED_WORD = SO_TIMESTAMPNS << 32 | socket.SOL_SOCKET  # a cmsg's level and type as one 64-bit word
_STAMPED = _STAMPED_WORD.to_bytes(8, "little")
_CONTROL_LEN = CONTROL_LEN.to_bytes(8, "little")
_SECOND = 1_000_000_000
_WORD = 4  # the receive buffer read as 32-bit words: SLOT, NAME_LEN and the fields' offsets divide by it
NOT_SENT = 1 << 62  # an echo's wall-clock send time until it goes: any reply to it has a negative RTT
_KEEP_ERRNO = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS)  # a full send buffer: wait


@dataclass(slots=True)
class Outcome:
    """What one round found, by target index (the addresses' order)."""

    received: Sequence[int]  # echoes that came back (0 … count)
    rtt_ns: Sequence[int]  # the sum of their round-trip times
    cut_from: int  # targets from here on had echoes given up (the length when none were)
    refused: str  # then, the error of those that got no reply


class OneRound:
    """An IPv4 ICMP socket (raw when privileged, else datagram) and the one round sent through
    it. Opening it is where a missing privilege shows up: IcmpUnavailable, the prober's message."""

    def __init__(self, *, timeout_ns: int, count: int = 1, rate: int = 20_000, mode: str = "auto") -> None:
        if count < 1 or rate < 1:
            raise ValueError("count and rate must be at least 1")
        self.timeout_ns, self.count, self.rate = timeout_ns, count, rate
        self.sock, self.raw, self.buffer = open_socket(socket.AF_INET, mode)
        if self.buffer < RECEIVE_BUFFER:
            logger.info(SMALL_BUFFER, self.buffer >> 10, RECEIVE_BUFFER)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, packed: bytes) -> Outcome:
        """Ping each IPv4 address in `packed` (4 bytes each, as inet_pton writes them) `count`
        times; never raises for a target."""
        return _Round(self, packed).run()


def requests(count: int, n: int, nonce: int, ident: int) -> bytearray:
    """icmp.build_requests in plain Python: every echo request of a round, echo-major (row
    e × n + i is echo e of target i), PACKET_LEN bytes each. Every field is written as a column
    of the whole buffer (extended slice assignment); the checksums, one's complement sums, as
    one pass over the rows, from the sum of the fields that are the same in every request."""
    rows = count * n
    size = PACKET_LEN
    template = HEADER.pack(ECHO_REQUEST[socket.AF_INET], 0, 0, ident, 0) + PAYLOAD.pack(MAGIC, nonce, 0, 0)
    packets = bytearray(template) * rows
    index = array("I", range(n)) * count
    columns = [(index, 16, 4)]
    if count > 1:  # else the sequence is the index's low half, and every echo number 0
        seq = array("H", range(min(rows, 0x10000))) * (rows // 0x10000 + 1)  # sequence: row & 0xFFFF
        del seq[rows:]
        echo = array("H")
        for e in range(count):
            echo += array("H", [e]) * n
        columns += [(seq, 6, 2), (echo, 20, 2)]
    fixed = sum(struct.unpack(f"!{size // 2}H", template))  # type, identifier, magic, nonce
    check = array("H")
    for e in range(count):
        # row e × n + i adds its sequence ((e × n + i) & 0xFFFF), the index's two halves and e:
        # +2 from one row to the next, but where the sequence or the index's low half wraps
        start, i = e * n, 0
        while i < n:
            run = min(n - i, 0x10000 - ((start + i) & 0xFFFF), 0x10000 - (i & 0xFFFF))
            check += _checksums(fixed + e + ((start + i) & 0xFFFF) + (i >> 16) + (i & 0xFFFF), run)
            i += run
    for column, at, width in [(check, 2, 2), *columns]:
        column.byteswap()  # network order
        data = column.tobytes()
        for b in range(width):
            packets[at + b :: size] = data[b::width]
            if count == 1 and at == 16 and b >= 2:  # the sequence: the index's last two bytes
                packets[at - 12 + b :: size] = data[b::width]
    return packets


def _checksums(first: int, rows: int) -> array[int]:
    """The checksums of `rows` packets whose 16-bit words sum to first, first + 2, first + 4…:
    the one's complement of the folded sum, which for a sum s > 0 is 0xFFFE - (s - 1) % 0xFFFF,
    so 2 less from one packet to the next, modulo 0xFFFF: runs of range() down to 0 or 1."""
    out = array("H")
    c = 0xFFFE - (first - 1) % 0xFFFF
    while len(out) < rows:
        take = min(rows - len(out), c // 2 + 1)
        out += array("H", range(c, c - 2 * take, -2))
        c = (c - 2 * take) % 0xFFFF
    return out


def _pinned(buffer: bytearray) -> tuple[object, int]:
    """(a ctypes view that keeps `buffer` from moving, its address)."""
    view = (ctypes.c_char * len(buffer)).from_buffer(buffer)
    return view, ctypes.addressof(view)


class _Round:
    """One round's buffers, message headers and bookkeeping (see the module docstring)."""

    def __init__(self, sock: OneRound, packed: bytes) -> None:
        assert CALLS is not None  # open_socket refused otherwise
        self.send_call, self.recv_call = CALLS
        self.fd = sock.sock.fileno()
        self.raw, self.buffer = sock.raw, sock.buffer
        self.timeout_ns, self.count, self.rate = sock.timeout_ns, sock.count, sock.rate
        self.packed = packed
        n = self.n = len(packed) // 4
        rows = self.rows = self.count * n
        self.nonce = int.from_bytes(os.urandom(4), "big")
        self.nonce_bytes = self.nonce.to_bytes(4, "big")
        self.packets = memoryview(requests(self.count, n, self.nonce, (os.getpid() + 1) & 0xFFFF))
        self.source = array("I", packed).tolist()  # each target's address, as a reply's word reads
        names = bytearray(16 * n)  # sockaddr_in, port 0
        names[0::16] = int(socket.AF_INET).to_bytes(2, "little")[:1] * n
        for b in range(4):
            names[4 + b :: 16] = packed[b::4]
        self.names = memoryview(names)
        self.step = slice_size(self.rate, self.buffer)
        self._pins: list[tuple[object, int]] = []
        self._send_buffers()
        self._receive_buffers()
        # bookkeeping, by row (echo-major) or by target
        self.sent = [0] * rows  # monotonic ns each echo went; 0 = not (yet)
        self.epoch = time.time_ns() // _SECOND  # wall-clock times are kept in ns since this second
        self.sent_wall = [NOT_SENT] * rows  # the same instants on the wall clock (since the epoch)
        self.rows_sent = 0
        self.taken = bytearray(rows)  # 1 where a reply to that row's echo counts
        self.rtt = [0] * rows  # its RTT (ns): the first reply's
        self.swept = 0  # targets 0..swept-1 are past their deadline: final
        self.scan = 0  # no target below this is still waiting (for the end of the round)
        self.all_sent = False
        self.cut_from = n  # targets from here on have echoes the sender gave up on
        self.cut_final = False  # and a look has been taken since: they are final
        self.refused = ""

    def _send_buffers(self) -> None:
        """A slice's packets and destinations are copied into fixed buffers that fixed message
        headers point into: the headers of a whole round (100,000 × 3 pointers, each a Python
        int on its way in) cost more to build than the copies."""
        step = self.step
        self.stage_packets = bytearray(PACKET_LEN * step)
        self.stage_names = bytearray(16 * step)
        self._pins += [_pinned(self.stage_packets), _pinned(self.stage_names)]
        packets_at, names_at = self._pins[0][1], self._pins[1][1]
        self.iov = array("Q", [0]) * (2 * step)
        self.iov[0::2] = array("Q", range(packets_at, packets_at + PACKET_LEN * step, PACKET_LEN))
        self.iov[1::2] = array("Q", [PACKET_LEN]) * step
        iov_at = self.iov.buffer_info()[0]
        self.headers = array("Q", [0]) * (MMSG_WORDS * step)
        self.headers[0::MMSG_WORDS] = array("Q", range(names_at, names_at + 16 * step, 16))
        self.headers[1::MMSG_WORDS] = array("Q", [16]) * step
        self.headers[2::MMSG_WORDS] = array("Q", range(iov_at, iov_at + 16 * step, 16))
        self.headers[3::MMSG_WORDS] = array("Q", [1]) * step
        self.headers_at = self.headers.buffer_info()[0]

    def _stage(self, start: int, end: int) -> None:
        """Rows [start, end) (at most a slice) into the send buffers."""
        self.stage_packets[: (end - start) * PACKET_LEN] = self.packets[start * PACKET_LEN : end * PACKET_LEN]
        n, at, row = self.n, 0, start
        while row < end:  # the destinations, by target (rows are echo-major)
            i = row % n
            take = min(end - row, n - i)
            self.stage_names[16 * at : 16 * (at + take)] = self.names[16 * i : 16 * (i + take)]
            at, row = at + take, row + take

    def _receive_buffers(self) -> None:
        self.data = bytearray(SLOTS * SLOT)
        self.rnames = bytearray(SLOTS * NAME_LEN)
        self.control = bytearray(SLOTS * CONTROL_LEN)
        self._pins += [_pinned(self.data), _pinned(self.rnames), _pinned(self.control)]
        data_at, names_at, control_at = (pin[1] for pin in self._pins[-3:])
        self.riov = array("Q", bytes(16 * SLOTS))
        self.riov[0::2] = array("Q", range(data_at, data_at + SLOT * SLOTS, SLOT))
        self.riov[1::2] = array("Q", [SLOT]) * SLOTS
        riov_at = self.riov.buffer_info()[0]
        h = self.rheaders = array("Q", bytes(8 * MMSG_WORDS * SLOTS))
        h[0::MMSG_WORDS] = array("Q", range(names_at, names_at + NAME_LEN * SLOTS, NAME_LEN))
        h[2::MMSG_WORDS] = array("Q", range(riov_at, riov_at + 16 * SLOTS, 16))
        h[3::MMSG_WORDS] = array("Q", [1]) * SLOTS
        h[4::MMSG_WORDS] = array("Q", range(control_at, control_at + CONTROL_LEN * SLOTS, CONTROL_LEN))
        self.rheaders_at = h.buffer_info()[0]
        self.name_lens = array("Q", [NAME_LEN]) * SLOTS  # the kernel writes back the lengths it used
        self.control_lens = array("Q", [CONTROL_LEN]) * SLOTS
        self.words = memoryview(self.data).cast("I")
        self.header_words = memoryview(self.rheaders)
        self.name_words = memoryview(self.rnames).cast("I")
        self.stamps = memoryview(self.control).cast("q")  # a cmsg: [len, level | type << 32, s, ns]

    # --- sending ---------------------------------------------------------------------------------

    def run(self) -> Outcome:
        total, step = self.rows, self.step
        sent, sent_wall, send, fd = self.sent, self.sent_wall, self.send_call, self.fd
        epoch_ns = self.epoch * _SECOND
        started = time.monotonic()
        row = 0
        stuck = 0  # monotonic ns since the socket refused to take more
        while row < total and not self.all_sent:
            start, end = row, min(row + step, total)
            self._stage(start, end)
            while row < end:  # a slice, in calls of at most BURST packets
                before, before_wall = time.monotonic_ns(), time.time_ns()
                went = send(fd, self.headers_at + (row - start) * MMSG_WORDS * 8, min(BURST, end - row), 0)
                if went < 0:
                    err = ctypes.get_errno()
                    if err in _KEEP_ERRNO:
                        went = 0
                    else:  # unreachable network, bad address…: no reply will come, which is evidence
                        at = row % self.n * 4
                        to = socket.inet_ntoa(self.packed[at : at + 4])
                        logger.debug("icmp send to %s failed: %s", to, os.strerror(err))
                        went = 1
                if went == 0:  # the send buffer is full: let it drain, for `timeout` at most
                    stuck = stuck or before
                    if before - stuck < self.timeout_ns:
                        self.rows_sent = row
                        self.look()
                        time.sleep(0.001)
                        continue
                    self._give_up(row)
                    break
                stuck = 0
                sent[row : row + went] = [before] * went
                sent_wall[row : row + went] = [before_wall - epoch_ns] * went
                row += went
            else:
                self.rows_sent = row
                self.look()
                ahead = row / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        self.all_sent = True
        self._wait()
        return self._outcome()

    def _give_up(self, row: int) -> None:
        """Rows from `row` on are never sent: their targets are final at the next look, with what
        came back for the echoes that did go (sent at least `timeout` ago by now)."""
        total = self.rows
        self.rows_sent = row
        self.cut_from = row % self.n if total - row < self.n else 0  # echo-major: the cut is a tail
        self.refused = refused_sends(self.timeout_ns)
        self.all_sent = True
        logger.warning(GAVE_UP, self.refused, total - row, self.n - self.cut_from)

    def _wait(self) -> None:
        """Looks until every target is final: when a reply comes (at most every TICK) or at the
        next deadline."""
        poll = select.poll()
        poll.register(self.fd, select.POLLIN)
        while True:
            looked = time.monotonic_ns()
            self.look()
            if self._done():
                return
            first = self.scan  # the earliest deadline of a target still waiting
            last_row = (self.count - 1) * self.n + first
            deadline = self.sent[last_row] + self.timeout_ns if first < self.cut_from else looked
            wait_ms = max(0, -(-(deadline - time.monotonic_ns()) // 1_000_000))
            if poll.poll(wait_ms):
                rest = TICK - (time.monotonic_ns() - looked) / 1e9
                if rest > 0:
                    time.sleep(rest)

    def _done(self) -> bool:
        """Every target final: all its echoes back, past its deadline, or cut (after a look)."""
        limit = self.cut_from if self.cut_final else self.n
        i = max(self.scan, self.swept)
        if i < limit:
            complete = self.taken.__getitem__ if self.count == 1 else self._complete
            if not all(map(complete, range(i, limit))):
                while i < limit and complete(i):
                    i += 1
            else:
                i = limit
        self.scan = i
        return i >= limit

    def _complete(self, i: int) -> bool:
        return self.taken[i :: self.n].count(1) == self.count

    # --- reading ---------------------------------------------------------------------------------

    def look(self) -> None:
        """Read every reply waiting, then finalise the targets past their deadline (a reply read
        in this look still counts, as in the prober)."""
        now = time.monotonic_ns()
        self._drain()
        last = max(0, self.rows_sent - (self.count - 1) * self.n)  # targets whose last echo went
        base = (self.count - 1) * self.n
        upto = bisect_right(self.sent, now - self.timeout_ns, base + self.swept, base + last) - base
        self.swept = max(self.swept, upto)
        if self.refused:
            self.cut_final = True

    def _drain(self) -> None:
        h = self.rheaders
        while True:
            h[1::MMSG_WORDS] = self.name_lens
            h[5::MMSG_WORDS] = self.control_lens
            k = self.recv_call(self.fd, self.rheaders_at, SLOTS, MSG_DONTWAIT, None)
            if k <= 0:
                if k < 0 and (err := ctypes.get_errno()) not in (
                    errno.EAGAIN,
                    errno.EWOULDBLOCK,
                    errno.EINTR,
                ):
                    logger.debug("icmp receive: %s", os.strerror(err))  # e.g. a queued ICMP error: read once
                return
            if not self._take(k):
                self._take_one_by_one(k)
            if k < SLOTS:
                return

    def _take(self, k: int) -> bool:
        """The k replies just read, as columns, when every one of them is an echo reply of this
        round, from its target, stamped by the kernel, to an echo sent and not yet answered, of a
        target not final yet, received within `timeout`; False (nothing taken) when one is not,
        or may not be: _take_one_by_one sorts them out."""
        w, step = self.words, SLOT // _WORD
        at = 20 if self.raw else 0  # a raw socket's replies start with the IP header
        end = k * SLOT
        h = self.header_words
        if (
            (self.raw and self.data[0:end:SLOT] != b"\x45" * k)  # IPv4, a 20-byte header (no options)
            or h[7::MMSG_WORDS][:k].tobytes() != (at + PACKET_LEN).to_bytes(8, "little") * k
            or self.data[at:end:SLOT] != bytes(k)  # type: echo reply (0)
            or w[(at + 8) // _WORD :: step][:k].tobytes() != MAGIC * k
            or w[(at + 12) // _WORD :: step][:k].tobytes() != self.nonce_bytes * k
            or h[5::MMSG_WORDS][:k].tobytes() != _CONTROL_LEN * k  # a timestamp came with each
            or self.stamps[1::4][:k].tobytes() != _STAMPED * k
        ):
            return False
        index = array("I", w[(at + 16) // _WORD :: step][:k].tobytes())
        index.byteswap()
        n, first = self.n, index[0]
        limit = self.cut_from if self.cut_final else n  # targets from here on are final (or none)
        source = w[12 // _WORD :: step] if self.raw else self.name_words[4 // _WORD :: NAME_LEN // _WORD]
        echoes = self.data[at + 20 : end : SLOT] + self.data[at + 21 : end : SLOT]
        if self.count == 1 and echoes == bytes(2 * k) and index == array("I", range(first, first + k)):
            # one echo each, replies to consecutive targets in order (a loopback's, a healthy LAN's):
            # every check and store a slice of the round's columns
            if first < self.swept or first + k > limit or self.taken.find(1, first, first + k) >= 0:
                return False
            if source[:k].tolist() != self.source[first : first + k]:
                return False
            sent = self.sent_wall[first : first + k]
            rows: list[int] | range = range(first, first + k)
        else:
            rows = index.tolist()
            if max(rows) >= limit or min(rows) < self.swept:
                return False
            if source[:k].tolist() != list(map(self.source.__getitem__, rows)):
                return False
            if self.count == 1:
                if echoes != bytes(2 * k):
                    return False
            else:
                echo = array("H", memoryview(self.data).cast("H")[(at + 20) // 2 :: SLOT // 2][:k].tobytes())
                echo.byteswap()
                if max(echo) >= self.count:
                    return False
                rows = list(map(add, map(mul, echo, repeat(n)), rows))
            if len(set(rows)) != k or any(map(self.taken.__getitem__, rows)):
                return False
            sent = list(map(self.sent_wall.__getitem__, rows))
        # the kernel's receive times, in ns since the round's first second: (s - epoch) × 10⁹ + ns
        seconds, nanoseconds = self.stamps[2::4][:k].tolist(), self.stamps[3::4][:k].tolist()
        if seconds.count(seconds[0]) == k:  # all in one second (nearly every batch)
            received = map(add, nanoseconds, repeat((seconds[0] - self.epoch) * _SECOND))
        else:
            whole = map(mul, map(sub, seconds, repeat(self.epoch)), repeat(_SECOND))
            received = map(add, whole, nanoseconds)
        rtts = list(map(sub, received, sent))
        if min(rtts) < 0 or max(rtts) > self.timeout_ns:  # not sent (NOT_SENT), or the wall clock moved
            return False
        if isinstance(rows, range):
            self.taken[first : first + k] = b"\x01" * k
            self.rtt[first : first + k] = rtts
        else:
            deque(map(self.taken.__setitem__, rows, repeat(1)), maxlen=0)
            deque(map(self.rtt.__setitem__, rows, rtts), maxlen=0)
        return True

    def _take_one_by_one(self, k: int) -> None:
        """The k replies just read, each checked on its own (as the prober's _match does in bulk)."""
        data, h, stamps = self.data, self.rheaders, self.stamps
        n, count = self.n, self.count
        for s in range(k):
            base = s * SLOT
            length = h[s * MMSG_WORDS + 7] & 0xFFFFFFFF
            if self.raw:
                at = (data[base] & 0x0F) * 4
                source = int.from_bytes(data[base + 12 : base + 16], "little")
            else:
                at = 0
                name = s * NAME_LEN
                source = int.from_bytes(self.rnames[name + 4 : name + 8], "little")
            if at + PACKET_LEN > SLOT or length < at + PACKET_LEN:
                continue
            icmp = data[base + at : base + at + PACKET_LEN]
            kind, _, _, _, _ = HEADER.unpack_from(icmp)
            magic, nonce, i, e = PAYLOAD.unpack_from(icmp, HEADER.size)
            if kind != ECHO_REPLY[socket.AF_INET] or magic != MAGIC or nonce != self.nonce:
                continue
            if i >= n or e >= count or source != self.source[i]:
                continue
            if i < self.swept or (self.cut_final and i >= self.cut_from):
                continue  # final: too late
            row = e * n + i
            if self.sent[row] <= 0 or self.taken[row]:
                continue
            stamped = h[s * MMSG_WORDS + 5] >= CONTROL_LEN and stamps[s * 4 + 1] == _STAMPED_WORD
            rtt = (stamps[s * 4 + 2] - self.epoch) * _SECOND + stamps[s * 4 + 3] - self.sent_wall[row]
            if not stamped or rtt < 0 or rtt > self.timeout_ns:  # no stamp, or the wall clock moved
                rtt = time.monotonic_ns() - self.sent[row]
            self.taken[row] = 1
            self.rtt[row] = rtt

    # --- the outcome -----------------------------------------------------------------------------

    def _outcome(self) -> Outcome:
        n, received, rtt = self.n, self.taken[: self.n], self.rtt[: self.n]
        for e in range(1, self.count):  # the echoes of a target summed, a column at a time
            received = bytearray(map(add, received, self.taken[e * n : (e + 1) * n]))
            rtt = list(map(add, rtt, self.rtt[e * n : (e + 1) * n]))
        return Outcome(received, rtt, self.cut_from, self.refused)
