"""A tiny, independent pinger: one echo per address, from inside a FleetNamespace, all at once.

For checking what the namespace simulates (is this address silent right now?) in well under a
second for a whole test fleet, without spawning `ping` per address and without slamon's prober
(which is what the harness exists to test). Uses ICMP datagram sockets ("ping sockets"): the
namespace sets net.ipv4.ping_group_range to everyone, the kernel fills in the checksum and the
identifier, and hands this socket only the replies meant for it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import struct
import time
from collections.abc import Iterable
from typing import Protocol

HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
PAYLOAD = struct.Struct("!4sI")  # magic, index of the address
MAGIC = b"HRNS"
ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}


class _Inside(Protocol):
    def inside(self) -> contextlib.AbstractContextManager[None]: ...


def ping_all(fleet: _Inside, addresses: Iterable[str], *, timeout: float = 0.5) -> dict[str, bool]:
    """address → whether it answered within `timeout` seconds (bounded: one wait, then stop)."""
    targets = [str(ipaddress.ip_address(a)) for a in addresses]
    versions = {ipaddress.ip_address(a).version for a in targets}
    socks: dict[int, socket.socket] = {}
    try:
        with fleet.inside():  # the sockets stay in the namespace after the thread leaves it
            if 4 in versions:
                socks[4] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            if 6 in versions:
                socks[6] = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)
        answered = [False] * len(targets)
        for index, address in enumerate(targets):
            family = ipaddress.ip_address(address).version
            packet = HEADER.pack(ECHO_REQUEST[family], 0, 0, 0, index & 0xFFFF)
            socks[family].sendto(packet + PAYLOAD.pack(MAGIC, index), (address, 0))
        deadline = time.monotonic() + timeout
        pending = len(targets)
        by_fd = {s.fileno(): (v, s) for v, s in socks.items()}
        while pending and (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select(list(by_fd), [], [], left)
            for fd in readable:
                version, sock = by_fd[fd]
                data, source = sock.recvfrom(256)
                if len(data) < HEADER.size + PAYLOAD.size or data[0] != ECHO_REPLY[version]:
                    continue
                magic, index = PAYLOAD.unpack_from(data, HEADER.size)
                if (
                    magic == MAGIC
                    and index < len(targets)
                    and not answered[index]
                    and ipaddress.ip_address(source[0]) == ipaddress.ip_address(targets[index])
                ):
                    answered[index] = True
                    pending -= 1
        return dict(zip(targets, answered, strict=True))
    finally:
        for sock in socks.values():
            sock.close()
