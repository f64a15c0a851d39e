"""The ICMP prober against real sockets, inside a network namespace where chosen devices are silent."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slamon.clock import FakeClock
from slamon.model import ContractId, Device, DeviceId, DeviceKind, ProbeResult, SiteId
from slamon.probers.icmp import IcmpProber, IcmpUnavailable, build_requests
from slamon.probers.mmsg import Sender
from tests.harness import no_ipv6
from tests.harness.fixtures import unavailable
from tests.harness.netns import FleetNamespace

NOW = datetime(2025, 7, 1, tzinfo=UTC)


def cameras(addresses: list[str]) -> list[Device]:
    return [
        Device(DeviceId(f"C{i:03d}"), DeviceKind.CAMERA, a, SiteId("S"), ContractId("C"))
        for i, a in enumerate(addresses)
    ]


ENGINES = ["prober", "once"]  # the service's (probers/icmp.py), probe --once's (icmp/once.py)


def probe(
    fleet_ns: FleetNamespace, devices: list[Device], engine: str = "prober", **kw: object
) -> dict[str, ProbeResult]:
    if engine == "once":
        return probe_once(fleet_ns, devices, **kw)  # type: ignore[arg-type]

    async def one_round() -> list[ProbeResult]:
        prober = IcmpProber(FakeClock(NOW), timeout=timedelta(milliseconds=300), **kw)  # type: ignore[arg-type]
        try:
            return [r async for batch in prober.round(devices) for r in batch]
        finally:
            await prober.aclose()

    with fleet_ns.inside():
        return {r.device: r for r in asyncio.run(one_round())}


def probe_once(
    fleet_ns: FleetNamespace,
    devices: list[Device],
    *,
    timeout: timedelta = timedelta(milliseconds=300),
    count: int = 1,
    rate: int = 20_000,
    mode: str = "auto",
) -> dict[str, ProbeResult]:
    """One round of probe --once's engine over IPv4 devices, as the ProbeResults cli.py makes of it."""
    from slamon.cli import icmp_errors, icmp_results
    from slamon.icmp.once import OneRound
    from slamon.loaders.fleet_cache import ipv4_packed

    packed = ipv4_packed([d.address for d in devices])
    assert packed is not None
    timeout_ns = int(timeout.total_seconds() * 1e9)
    with fleet_ns.inside(), OneRound(timeout_ns=timeout_ns, count=count, rate=rate, mode=mode) as sock:
        outcome = sock.run(packed)
    errors = icmp_errors(outcome.received, outcome.cut_from, outcome.refused)
    ids = [d.id for d in devices]
    return {r.device: r for r in icmp_results(ids, NOW, outcome.received, outcome.rtt_ns, count, errors)}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["raw", "dgram"])
def test_silent_devices_fail_and_the_others_answer(fleet_ns: FleetNamespace, mode: str, engine: str) -> None:
    devices = cameras([f"127.0.30.{i}" for i in range(1, 201)])
    fleet_ns.silence("127.0.30.7", "127.0.30.100/30")
    results = probe(fleet_ns, devices, engine, mode=mode)
    assert len(results) == 200
    silent = {
        d.id
        for d in devices
        if d.address in {"127.0.30.7", "127.0.30.100", "127.0.30.101", "127.0.30.102", "127.0.30.103"}
    }
    assert {d for d, r in results.items() if not r.ok} == silent
    for d, r in results.items():
        assert r.time == NOW, "a round's results carry the time the round started, from the clock"
        if d in silent:
            assert (r.error, r.loss, r.rtt_ms) == ("no echo reply", 1.0, None)
        else:
            assert r.rtt_ms is not None
            assert 0 < r.rtt_ms < 300
            assert r.loss == 0.0


@pytest.mark.parametrize("engine", ENGINES)
def test_restored_devices_answer_again(fleet_ns: FleetNamespace, engine: str) -> None:
    devices = cameras(["127.0.30.1", "127.0.30.2"])
    fleet_ns.silence("127.0.30.2")
    assert not probe(fleet_ns, devices, engine)["C001"].ok
    fleet_ns.restore("127.0.30.2")
    assert probe(fleet_ns, devices, engine)["C001"].ok


@pytest.mark.parametrize("engine", ENGINES)
def test_several_echoes_measure_loss(fleet_ns: FleetNamespace, engine: str) -> None:
    devices = cameras(["127.0.30.1", "127.0.30.2"])
    fleet_ns.silence("127.0.30.2")
    results = probe(fleet_ns, devices, engine, count=3)
    assert (results["C000"].ok, results["C000"].loss) == (True, 0.0)
    assert (results["C001"].ok, results["C001"].loss) == (False, 1.0)


def test_both_engines_give_the_same_results(fleet_ns: FleetNamespace) -> None:
    """The service's engine and probe --once's, over the same devices (every tenth one silent),
    three echoes each: the same outcome for every device, RTTs aside."""
    devices = cameras([f"127.0.{30 + i // 250}.{i % 250 + 1}" for i in range(600)])
    fleet_ns.silence(*(d.address for d in devices[::10]))
    rounds = [probe(fleet_ns, devices, engine, count=3) for engine in ENGINES]
    assert len(rounds[0]) == len(rounds[1]) == 600
    for d in devices:
        a, b = (r[d.id] for r in rounds)
        assert (a.device, a.kind, a.time, a.ok, a.loss, a.error, a.defects, a.detail) == (
            b.device,
            b.kind,
            b.time,
            b.ok,
            b.loss,
            b.error,
            b.defects,
            b.detail,
        )
        assert (a.rtt_ms is None) == (b.rtt_ms is None)
    assert sum(not r.ok for r in rounds[1].values()) == 60


@pytest.mark.parametrize("mode", ["raw", "dgram"])
def test_ipv6(fleet_ns: FleetNamespace, mode: str) -> None:
    fleet_ns.add_addresses("fd00:5a::10", "fd00:5a::11")
    fleet_ns.silence("fd00:5a::11")
    results = probe(fleet_ns, cameras(["fd00:5a::10", "fd00:5a::11", "127.0.30.1"]), mode=mode)
    assert {d: r.ok for d, r in results.items()} == {"C000": True, "C001": False, "C002": True}


def test_without_privilege_the_error_names_both_fixes(fleet_ns: FleetNamespace) -> None:
    # no group may open ICMP datagram sockets in this namespace
    fleet_ns.run(["sh", "-c", "echo 1 0 > /proc/sys/net/ipv4/ping_group_range"], check=True)
    with fleet_ns.inside(), pytest.raises(IcmpUnavailable) as err:
        IcmpProber(FakeClock(NOW), mode="dgram").check()
    message = str(err.value)
    assert "CAP_NET_RAW" in message
    assert "setcap cap_net_raw+ep" in message
    assert "net.ipv4.ping_group_range" in message


@pytest.mark.parametrize("engine", ENGINES)
def test_a_full_round_is_paced_by_the_rate(fleet_ns: FleetNamespace, engine: str) -> None:
    devices = cameras([f"127.0.{30 + i // 250}.{i % 250 + 1}" for i in range(2000)])
    if engine == "once":
        started = time.monotonic()
        assert all(r.ok for r in probe(fleet_ns, devices, engine, rate=10_000).values())
        took = time.monotonic() - started
    else:
        with fleet_ns.inside():
            took = asyncio.run(_timed(devices, rate=10_000))
    assert took >= 0.18, "2,000 echoes at 10,000/s take at least 0.2 s to send"


async def _timed(devices: list[Device], rate: int) -> float:
    prober = IcmpProber(FakeClock(NOW), timeout=timedelta(milliseconds=300), rate=rate)
    started = asyncio.get_running_loop().time()
    try:
        results = [r async for batch in prober.round(devices) for r in batch]
    finally:
        await prober.aclose()
    assert all(r.ok for r in results)
    return asyncio.get_running_loop().time() - started


def test_requests_carry_valid_checksums() -> None:
    import socket

    packets = build_requests(socket.AF_INET, 2, 3, nonce=0xDEADBEEF, ident=0x1234)
    for row in packets:
        words = row.view(">u2").astype(int)
        total = int(words.sum())
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        assert total == 0xFFFF, "a correct ICMP checksum makes the one's complement sum all ones"


def probe_files(tmp_path: Path, *addresses: str) -> Path:
    """slamon.yaml for cameras CAM1, CAM2… at these addresses; returns its path."""
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "c.yaml").write_text(
        "id: C1\nvendor: v\nterm: {start: 2025-01-01, months: 36}\nfees: {camera: '1'}\n", encoding="utf-8"
    )
    (tmp_path / "inventory.yaml").write_text(
        "sites:\n  - {id: S1, name: n, district: d, area: urban}\ndevices:\n"
        + "".join(
            f"  - {{id: CAM{i}, kind: camera, address: '{a}', site: S1, contract: C1}}\n"
            for i, a in enumerate(addresses, 1)
        ),
        encoding="utf-8",
    )
    (tmp_path / "slamon.yaml").write_text(
        "database: sqlite:///db.sqlite\ninventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n",
        encoding="utf-8",
    )
    return tmp_path / "slamon.yaml"


def test_probe_once_json_in_the_namespace(fleet_ns: FleetNamespace, tmp_path: Path) -> None:
    probe_files(tmp_path, "127.0.30.1", "127.0.30.2")
    fleet_ns.silence("127.0.30.2")
    done = fleet_ns.run(
        [
            sys.executable,
            "-m",
            "slamon.cli",
            "-c",
            str(tmp_path / "slamon.yaml"),
            "probe",
            "--once",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(x["device"], x["probe"], x["ok"], x["error"]) for x in lines] == [
        ("CAM1", "icmp", True, None),
        ("CAM2", "icmp", False, "no echo reply"),
    ]
    assert set(lines[0]) == {"device", "probe", "time", "ok", "rtt_ms", "loss", "defects", "error", "detail"}
    assert lines[0]["time"].endswith("+08:00")
    assert not (tmp_path / "db.sqlite").exists(), "probe --once stores nothing"


def test_ipv6_devices_need_an_ipv6_socket_at_start(fleet_ns: FleetNamespace, tmp_path: Path) -> None:
    """On a host without IPv6 (socket(AF_INET6) refused, as with ipv6.disable=1), an inventory with
    IPv6 devices is an error at start naming the problem, not a round that fails every time; a
    round of IPv4 devices only does not need IPv6."""
    if (reason := no_ipv6.unavailable()) is not None:
        unavailable(reason)
    fleet_ns.add_addresses("fd00:5a::10")
    config = probe_files(tmp_path, "127.0.30.1", "fd00:5a::10")
    argv = [sys.executable, "-m", "slamon.cli", "-c", str(config), "probe", "--once"]

    done = fleet_ns.run(no_ipv6.command(argv), check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "slamon: error: cannot open an ICMPv6 socket for 1 IPv6 device (CAM2 fd00:5a::10): "
        "Address family not supported by protocol (is IPv6 disabled on this host?)\n"
    )

    done = fleet_ns.run(no_ipv6.command([*argv, "--device", "CAM1"]), check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:3] == ["CAM1", "icmp", "ok"]

    done = fleet_ns.run(argv, check=False)  # with IPv6, both answer
    assert done.returncode == 0, done.stderr
    assert [line.split()[:3] for line in done.stdout.splitlines()] == [
        ["CAM1", "icmp", "ok"],
        ["CAM2", "icmp", "ok"],
    ]


def test_check_opens_the_ipv6_socket_only_when_a_device_needs_it(fleet_ns: FleetNamespace) -> None:
    before = _icmp_sockets()
    opened = []
    with fleet_ns.inside():
        for addresses in (["127.0.30.1"], ["127.0.30.1", "fd00:5a::1"]):
            prober = IcmpProber(FakeClock(NOW), mode="raw")
            assert prober.check(cameras(addresses)) == "raw"
            opened.append(sorted(family for _, family in _icmp_sockets() - before))
            asyncio.run(prober.aclose())
    assert opened == [["AF_INET"], ["AF_INET", "AF_INET6"]]
    assert _icmp_sockets() == before


def _icmp_sockets() -> set[tuple[int, str]]:
    """(fd, address family) of each ICMP socket this process holds open, as the kernel says."""
    found = set()
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            continue
        try:
            if sock.proto in (socket.IPPROTO_ICMP, socket.IPPROTO_ICMPV6):
                found.add((fd, socket.AddressFamily(sock.family).name))
        finally:
            sock.detach()
    return found


def test_an_unusable_address_fails_alone(fleet_ns: FleetNamespace) -> None:
    """A zoned link-local address nobody answers and a malformed one fail as targets; the round and
    the other devices go on (an all-zero destination would have been this host: a false up)."""
    results = probe(fleet_ns, cameras(["127.0.30.1", "fe80::1%lo", "fe80::2%nosuchif", "300.1.2.3"]))
    assert {d: r.ok for d, r in results.items()} == {
        "C000": True,
        "C001": False,
        "C002": False,
        "C003": False,
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_a_wall_clock_step_neither_stalls_the_round_nor_skews_rtts(
    fleet_ns: FleetNamespace, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """Deadlines run on the monotonic clock; a reply stamped across a wall-clock step falls back to
    the monotonic difference."""
    import time as real

    from slamon.icmp import once
    from slamon.probers import icmp

    calls = {"n": 0}

    class SteppedBack:
        monotonic = staticmethod(real.monotonic)
        monotonic_ns = staticmethod(real.monotonic_ns)
        sleep = staticmethod(real.sleep)

        @staticmethod
        def time_ns() -> int:
            calls["n"] += 1
            return real.time_ns() - (0 if calls["n"] == 1 else 3_000_000_000)  # 3 s back after one call

    monkeypatch.setattr(once if engine == "once" else icmp, "time", SteppedBack)
    devices = cameras([f"127.0.30.{i}" for i in range(1, 201)])
    started = real.monotonic()
    results = probe(fleet_ns, devices, engine, rate=20_000)
    assert real.monotonic() - started < 1.5, "the 300 ms timeout, not 3 s more"
    assert calls["n"] > 1
    assert all(r.ok for r in results.values())
    assert all(r.rtt_ms is not None and 0 <= r.rtt_ms < 300 for r in results.values())


@pytest.mark.parametrize("engine", ENGINES)
def test_a_small_receive_buffer_loses_no_reply(
    fleet_ns: FleetNamespace, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """Without CAP_NET_ADMIN the receive queue is capped by net.core.rmem_max; a round is then sent
    in slices whose replies fit it, so nothing is dropped into a false down."""
    from slamon.icmp import sockets as icmp_socket

    def small(sock: socket.socket) -> int:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)) // 2

    monkeypatch.setattr(icmp_socket, "large_receive_buffer", small)
    devices = cameras([f"127.0.{30 + i // 250}.{i % 250 + 1}" for i in range(3000)])
    results = probe(fleet_ns, devices, engine, rate=200_000)
    assert sum(r.ok for r in results.values()) == 3000


class RefusingSendmmsg:
    """sendmmsg(2) for probe --once's engine (`call(fd, headers, count, flags) -> taken`) over a
    socket that takes `accept` packets and then refuses every send (0 taken)."""

    def __init__(self, real: object, accept: int) -> None:
        self.real, self.accept, self.taken, self.refusals = real, accept, 0, 0

    def __call__(self, fd: int, headers: int, count: int, flags: int) -> int:
        if self.taken >= self.accept:
            self.refusals += 1
            return 0
        went = int(self.real(fd, headers, min(count, self.accept - self.taken), flags))  # type: ignore[operator]
        self.taken += max(went, 0)
        return went


class RefusingSender:
    """The ICMP sender's interface (`send(start, count) -> packets taken`) over a socket that takes
    `accept` packets and then refuses every send, as a send buffer that never drains does
    (sendmmsg takes 0)."""

    def __init__(self, real: Sender, accept: int) -> None:
        self.real, self.accept, self.taken, self.refusals = real, accept, 0, 0

    def send(self, start: int, count: int) -> int:
        if self.taken >= self.accept:
            self.refusals += 1
            return 0
        went = self.real.send(start, min(count, self.accept - self.taken))
        self.taken += went
        return went


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("count", "accept", "expected"),
    [
        # one echo each: the first 50 went and answered, the other 150 were never sent
        (1, 50, {range(50): (True, 0.0, None), range(50, 200): (False, 1.0, "refused")}),
        # two echoes each, echo-major: every first echo went, the second one to the first 50 only
        (2, 250, {range(50): (True, 0.0, None), range(50, 200): (True, 0.5, None)}),
        # two echoes each: the first echo to the first 50 only, no second echo at all
        (2, 50, {range(50): (True, 0.5, None), range(50, 200): (False, 1.0, "refused")}),
    ],
)
def test_a_socket_that_keeps_refusing_ends_the_round_not_each_echo(
    fleet_ns: FleetNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    count: int,
    accept: int,
    expected: dict[range, tuple[bool, float, str | None]],
    engine: str,
) -> None:
    """Once the socket has taken nothing for `timeout`, every echo not sent yet is given up at once
    (each of their devices failed with the reason, unless an echo that did go came back): the round
    ends about `timeout` after the refusals began, where giving up one echo per `timeout` took
    150 × 300 ms."""
    from slamon.icmp import once
    from slamon.probers import icmp, mmsg

    senders: list[RefusingSender | RefusingSendmmsg] = []

    def refusing(sock: socket.socket, packets: object, names: object, name_len: int) -> RefusingSender:
        senders.append(RefusingSender(mmsg.Sender(sock, packets, names, name_len), accept))  # type: ignore[arg-type]
        return senders[-1]  # type: ignore[return-value]

    if engine == "once":
        assert once.CALLS is not None
        senders.append(RefusingSendmmsg(once.CALLS[0], accept))
        monkeypatch.setattr(once, "CALLS", (senders[0], once.CALLS[1]))
    else:
        monkeypatch.setattr(icmp, "Sender", refusing)
    devices = cameras([f"127.0.30.{i}" for i in range(1, 201)])
    started = time.monotonic()
    results = probe(fleet_ns, devices, engine, count=count)
    took = time.monotonic() - started
    assert (senders[0].taken, senders[0].refusals > 0) == (accept, True)
    assert took < 2 * 0.3 + 0.3, f"{took:.2f} s: the sending, one timeout of refusals, one for the replies"
    for indices, (ok, loss, error) in expected.items():
        for i in indices:
            r = results[f"C{i:03d}"]
            reason = "the socket refused sends for 300ms" if error == "refused" else None
            assert (r.ok, r.loss, r.error) == (ok, loss, reason), (i, r)
    assert "the socket refused sends for 300ms: gave up on the round's other" in caplog.text


def test_probe_once_reads_the_fleet_cache_and_loads_no_store_library(
    fleet_ns: FleetNamespace, tmp_path: Path
) -> None:
    """With a database there (as `slamon run` leaves it), the first probe parses the files and
    remembers the fleet, the next one reads it back; both print the same devices, and the warm one
    imports neither SQLAlchemy nor aiohttp, nor (an IPv4 fleet pinged alone, by the one-shot
    engine) numpy, asyncio or the model."""
    from slamon.store import Store

    config = probe_files(tmp_path, "127.0.30.1", "127.0.30.2")
    Store(f"sqlite:///{tmp_path / 'db.sqlite'}").close()
    fleet_ns.silence("127.0.30.2")
    argv = [
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "slamon.cli",
        "-c",
        str(config),
        "probe",
        "--once",
        "--json",
    ]
    runs = [fleet_ns.run(argv, capture_output=True, text=True, check=False) for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert [(x["device"], x["ok"], x["error"]) for x in lines] == [
            ("CAM1", True, None),
            ("CAM2", False, "no echo reply"),
        ]
    imported = [{line.rpartition("|")[2].strip() for line in done.stderr.splitlines()} for done in runs]
    assert "sqlalchemy" in imported[0], "cold: the entry is written through the Store"
    assert {"sqlalchemy", "aiohttp", "alembic", "numpy", "asyncio", "slamon.model"}.isdisjoint(imported[1])
    assert "slamon.icmp.once" in imported[1]


def test_results_built_slot_by_slot_equal_those_built_by_the_constructor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A round's results are built without ProbeResult.__init__ (half its cost); they must be the
    very results __init__ gives, each with a `detail` of its own."""
    from slamon.model import ProbeKind
    from slamon.probers import icmp

    n = 3
    columns = (
        ["C1", "C2", "C3"],
        [ProbeKind.ICMP] * n,
        [NOW] * n,
        [True, False, True],
        [0.1, None, 2.5],
        [0.0, 1.0, 0.5],
        [frozenset()] * n,
        [None, "no echo reply", None],
    )
    assert icmp._BY_SLOT
    fast = icmp._probe_results(n, *columns)
    monkeypatch.setattr(icmp, "_BY_SLOT", False)
    slow = icmp._probe_results(n, *columns)
    assert fast == slow
    assert [type(r) for r in fast] == [ProbeResult] * n
    assert len({id(r.detail) for r in fast}) == n
