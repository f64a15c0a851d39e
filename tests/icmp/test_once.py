"""probe --once's ICMP engine without a network: its requests are the prober's byte for byte, and
replies written into its receive buffers are taken exactly as checked one by one.

The batch path (`_take`: columns of the buffers, checked in C) must take a batch only when each
reply in it is plainly this round's and new, and then exactly what the reply-by-reply path
(`_take_one_by_one`) takes; any other batch goes reply by reply. The rounds here are built over a
plain UDP socket that is never used: nothing is sent or read. (Rounds over real sockets, both
engines side by side, are in tests/probers/test_icmp.py.)
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from slamon.icmp import once
from slamon.icmp.sockets import CONTROL_LEN, HEADER, MAGIC, PAYLOAD, SO_TIMESTAMPNS
from slamon.probers.icmp import build_requests

TIMEOUT_NS = 500_000_000
N = 300
PACKED = b"".join(socket.inet_aton(f"127.1.{i // 250}.{i % 250 + 1}") for i in range(N))


@pytest.mark.parametrize(
    ("count", "n"), [(1, 1), (1, 3), (2, 3), (1, 50_000), (3, 30_000), (1, 140_000), (2, 65_536)]
)
def test_requests_are_the_probers_byte_for_byte(count: int, n: int) -> None:
    """Sequence numbers and the index's low half wrap at 65,536: the checksums' runs restart there."""
    expected = build_requests(socket.AF_INET, count, n, nonce=0xDEADBEEF, ident=0x1234).tobytes()
    assert bytes(once.requests(count, n, 0xDEADBEEF, 0x1234)) == expected


@dataclass
class _Socket:
    """What _Round takes from a OneRound, over a socket that is never used."""

    sock: socket.socket
    raw: bool
    count: int
    timeout_ns: int = TIMEOUT_NS
    rate: int = 20_000
    buffer: int = 32 << 20


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for s in made:
        s.close()


def rounds(
    sockets: list[socket.socket], *, raw: bool = True, count: int = 1
) -> tuple[once._Round, once._Round]:
    """Two rounds of the same nonce, epoch and send times (every echo sent 1 ms after the epoch,
    RTTs from there): one for each path."""
    made = []
    for _ in range(2):
        sockets.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        r = once._Round(_Socket(sockets[-1], raw, count), PACKED)  # type: ignore[arg-type]
        r.sent = [time.monotonic_ns()] * r.rows
        r.sent_wall = [1_000_000] * r.rows
        r.rows_sent = r.rows
        made.append(r)
    made[1].nonce, made[1].nonce_bytes, made[1].epoch = made[0].nonce, made[0].nonce_bytes, made[0].epoch
    return made[0], made[1]


def put(
    r: once._Round,
    slot: int,
    index: int,
    *,
    rtt_ns: int = 40_000,
    echo: int = 0,
    nonce: int | None = None,
    source: int | None = None,
    options: int = 0,
    kind: int = 0,
    stamped: bool = True,
    cut: int = 0,
) -> None:
    """A reply to echo `echo` of target `index` in receive slot `slot`, as recvmmsg leaves it:
    for a raw socket with the IP header (`options` words of IP options), else the source in the
    slot's address; `cut` bytes short."""
    at = 4 * ((index if source is None else source) % N)
    address = PACKED[at : at + 4]
    icmp = HEADER.pack(kind, 0, 0, 1, 0) + PAYLOAD.pack(
        MAGIC, r.nonce if nonce is None else nonce, index, echo
    )
    if r.raw:
        ip = (
            bytes([0x45 + options, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0])
            + address
            + bytes(4)
            + bytes(4 * options)
        )
        data = ip + icmp
    else:
        data = icmp
        struct.pack_into("<HH4s", r.rnames, slot * once.NAME_LEN, socket.AF_INET, 0, address)
    data = data[: len(data) - cut]
    r.data[slot * once.SLOT : slot * once.SLOT + len(data)] = data
    r.rheaders[slot * 8 + 7] = len(data)
    r.rheaders[slot * 8 + 5] = CONTROL_LEN if stamped else 0
    received = r.epoch * 1_000_000_000 + 1_000_000 + rtt_ns
    level = SO_TIMESTAMPNS << 32 | socket.SOL_SOCKET
    struct.pack_into("<qqqq", r.control, slot * CONTROL_LEN, 32, level, *divmod(received, 1_000_000_000))


def both(
    fast: once._Round, slow: once._Round, write: list[dict[str, int]], *, clock: int | None = None
) -> bool:
    """Write the replies into both rounds; take them by batch (falling back as _drain does) and
    one by one; returns whether the batch path took them, and checks both took the same (the RTT
    of row `clock`, which comes from the monotonic clock at the time, aside)."""
    for r in (fast, slow):
        for slot, kw in enumerate(write):
            put(r, slot, **kw)
    taken = fast._take(len(write))
    if not taken:
        fast._take_one_by_one(len(write))
    slow._take_one_by_one(len(write))
    assert fast.taken == slow.taken
    assert [t for row, t in enumerate(fast.rtt) if row != clock] == [
        t for row, t in enumerate(slow.rtt) if row != clock
    ]
    return taken


def got(r: once._Round) -> dict[int, int]:
    """row -> RTT of the replies taken."""
    return {row: r.rtt[row] for row, taken in enumerate(r.taken) if taken}


@pytest.mark.parametrize("raw", [True, False])
def test_a_batch_of_this_rounds_replies_is_taken_whole(sockets: list[socket.socket], raw: bool) -> None:
    fast, slow = rounds(sockets, raw=raw)
    assert both(fast, slow, [{"index": i, "rtt_ns": 40_000 + i} for i in (5, 3, 9, 0, 299)])
    assert got(fast) == {5: 40_005, 3: 40_003, 9: 40_009, 0: 40_000, 299: 40_299}
    assert both(fast, slow, [{"index": 7}])
    assert list(fast._outcome().received) == [i in (0, 3, 5, 7, 9, 299) for i in range(N)]


@pytest.mark.parametrize(
    ("odd", "taken"),
    [
        ({"nonce": 12345}, None),  # another round's, or another process's
        ({"source": 8}, None),  # the right payload from the wrong address
        ({"kind": 8}, None),  # not an echo reply
        ({"cut": 1}, None),  # truncated
        ({"index": N}, None),  # no such target
        ({"echo": 1}, None),  # no such echo (count 1)
        ({"index": 4}, None),  # the same reply twice: the first one counts
        ({"options": 1}, 6),  # IP options: the echo sits 4 bytes further
        ({"stamped": False}, 6),  # no kernel stamp: the RTT from the monotonic clock
        ({"rtt_ns": TIMEOUT_NS + 1}, 6),  # a stamp off by more than the timeout: the wall clock moved
    ],
)
def test_a_batch_with_one_odd_reply_is_taken_one_by_one(
    sockets: list[socket.socket], odd: dict[str, int], taken: int | None
) -> None:
    fast, slow = rounds(sockets)
    write = [{"index": i} for i in (4, 5)] + [{"index": 6, **odd}] + [{"index": i} for i in (7, 8)]
    assert not both(fast, slow, write, clock=taken if odd.keys() & {"stamped", "rtt_ns"} else None)
    assert set(got(fast)) == {4, 5, 7, 8} | ({taken} if taken is not None else set())
    if taken is not None:
        assert 0 <= got(fast)[taken] <= TIMEOUT_NS


def test_replies_to_consecutive_targets_are_taken_as_slices(sockets: list[socket.socket]) -> None:
    """A loopback's batches: consecutive targets in order, checked and stored as slices; the
    same answers as reply by reply, and the same refusals."""
    fast, slow = rounds(sockets)
    assert both(fast, slow, [{"index": i, "rtt_ns": 1_000 + i} for i in range(100, 150)])
    assert got(fast) == {i: 1_000 + i for i in range(100, 150)}
    assert not both(fast, slow, [{"index": i} for i in range(145, 155)])  # 145-149 again
    assert not both(fast, slow, [{"index": i} for i in range(N - 2, N)] + [{"index": N}])  # past the end
    for r in (fast, slow):
        r.swept = 200
    assert not both(fast, slow, [{"index": i} for i in range(195, 205)])  # 195-199 final
    for r in (fast, slow):
        r.cut_from, r.cut_final = 260, True
    assert not both(fast, slow, [{"index": i} for i in range(250, 270)])  # 260-269 given up
    assert set(got(fast)) == {*range(100, 155), N - 2, N - 1, *range(200, 205), *range(250, 260)}


def test_a_batch_across_a_second_keeps_its_rtts(sockets: list[socket.socket]) -> None:
    """Kernel stamps are (seconds, nanoseconds): a batch whose replies straddle a second."""
    fast, slow = rounds(sockets)
    for r in (fast, slow):
        r.sent_wall[10:20] = [900_000_000] * 10  # sent 0.9 s after the epoch, back 0.15 s later
    write = [{"index": i, "rtt_ns": 899_000_000 + 150_000_000 + i} for i in range(10, 20)]
    assert both(fast, slow, [{"index": i, "rtt_ns": 40_000} for i in range(5, 10)] + write)
    assert got(fast) == {**dict.fromkeys(range(5, 10), 40_000), **{i: 150_000_000 + i for i in range(10, 20)}}


def test_replies_already_taken_or_too_late_do_not_count(sockets: list[socket.socket]) -> None:
    fast, slow = rounds(sockets)
    assert both(fast, slow, [{"index": 20, "rtt_ns": 1}])
    assert not both(fast, slow, [{"index": 20, "rtt_ns": 2}, {"index": 21}])  # 20 again
    assert got(fast) == {20: 1, 21: 40_000}
    for r in (fast, slow):
        r.swept = 10  # targets 0-9 are past their deadline: final
    assert not both(fast, slow, [{"index": 9}, {"index": 30}])
    assert set(got(fast)) == {20, 21, 30}
    for r in (fast, slow):
        r.sent[40], r.sent_wall[40] = 0, once.NOT_SENT  # never sent (the sender gave up before it)
    assert not both(fast, slow, [{"index": 40}, {"index": 41}])
    assert set(got(fast)) == {20, 21, 30, 41}


def test_several_echoes_are_counted_per_target(sockets: list[socket.socket]) -> None:
    fast, slow = rounds(sockets, count=2)
    assert both(fast, slow, [{"index": 1, "echo": 0, "rtt_ns": 10}, {"index": 1, "echo": 1, "rtt_ns": 30}])
    assert both(fast, slow, [{"index": 2, "echo": 1, "rtt_ns": 5}])
    assert not both(fast, slow, [{"index": 3, "echo": 2}])  # no third echo
    assert got(fast) == {1: 10, N + 1: 30, N + 2: 5}
    outcome = fast._outcome()
    assert (list(outcome.received[:4]), outcome.rtt_ns[:4]) == ([0, 2, 1, 0], [0, 40, 5, 0])


def test_a_round_of_nothing_ends_at_once(sockets: list[socket.socket]) -> None:
    sockets.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    outcome = once._Round(_Socket(sockets[-1], True, 1), b"").run()  # type: ignore[arg-type]
    assert (list(outcome.received), outcome.rtt_ns, outcome.cut_from, outcome.refused) == ([], [], 0, "")
