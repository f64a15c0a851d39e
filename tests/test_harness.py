"""The namespace harness against the real thing: ping, UDP, TCP, setns, cleanup, and the scenarios.

Tests that need a namespace take the `fleet_ns` fixture, which skips where namespaces cannot work
(fails instead under SLAMON_REQUIRE_NETNS=1). The scenario bookkeeping tests need nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from slamon.loaders.contracts import load_contracts
from slamon.loaders.inventory import load_inventory
from tests.harness.fixtures import fleet_ns, require_namespaces, require_tool, unavailable
from tests.harness.icmp import ping_all
from tests.harness.netns import (
    FleetNamespace,
    SilenceBook,
    live_namespaces,
    namespace_exists,
    network_text,
    remove_stale_namespaces,
    stale_namespaces,
)
from tests.harness.scenarios import (
    DEVICE,
    AddressPlan,
    Outage,
    PaperFleet,
    Scenario,
    Step,
    camera_fails_and_recovers,
    derive_outages,
    flapping,
    site_power,
    switch_down,
    upstream,
)

__all__ = ["fleet_ns"]  # the fixture, until tests/conftest.py imports it

T0 = datetime(2025, 7, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
FAST = 0.2  # seconds to wait for echo replies on loopback (they take microseconds)


def ping(fleet: FleetNamespace, address: str) -> bool:
    """`ping -c1 -W1` inside the namespace: the reference that owes nothing to Python sockets."""
    return fleet.run([require_tool("ping", "iputils-ping"), "-c1", "-W1", address]).returncode == 0


def netns_id() -> str:
    """The network namespace of the calling thread (not of the process)."""
    return os.readlink("/proc/thread-self/ns/net")


# --- ICMP ---------------------------------------------------------------------------------------


def test_ping_fails_while_silenced_and_works_again_after_restore(fleet_ns: FleetNamespace) -> None:
    assert ping(fleet_ns, "127.0.30.5")
    fleet_ns.silence("127.0.30.5")
    assert fleet_ns.silenced() == {"127.0.30.5"}
    assert not ping(fleet_ns, "127.0.30.5")
    assert ping(fleet_ns, "127.0.30.6")  # only what was silenced
    fleet_ns.restore("127.0.30.5")
    assert fleet_ns.silenced() == set()
    assert ping(fleet_ns, "127.0.30.5")
    assert fleet_ns.dropped_packets() == 1


def test_a_silenced_range_silences_every_address_in_it(fleet_ns: FleetNamespace) -> None:
    inside = [f"127.0.30.{h}" for h in (0, 1, 5, 128, 254, 255)]
    outside = ["127.0.29.255", "127.0.31.0", "127.0.0.1"]
    fleet_ns.silence("127.0.30.0/24")
    answers = ping_all(fleet_ns, inside + outside, timeout=FAST)
    assert [a for a, ok in answers.items() if ok] == outside

    fleet_ns.restore("127.0.30.5")  # a hole in the range
    answers = ping_all(fleet_ns, inside, timeout=FAST)
    assert [a for a, ok in answers.items() if ok] == ["127.0.30.5"]
    assert not fleet_ns.is_silenced("127.0.30.5")
    assert fleet_ns.is_silenced("127.0.30.4")

    fleet_ns.restore("127.0.0.0/16")  # covers what is left
    assert fleet_ns.silenced() == set()
    assert all(ping_all(fleet_ns, inside, timeout=FAST).values())


def test_restoring_what_is_not_silenced_changes_nothing(fleet_ns: FleetNamespace) -> None:
    fleet_ns.silence("127.0.30.5", "fd00:5a::1")
    fleet_ns.restore("127.0.30.6", "127.0.31.0/24", "fd00:5a::2")
    assert fleet_ns.silenced() == {"127.0.30.5", "fd00:5a::1"}
    fleet_ns.restore_all()
    assert fleet_ns.silenced() == set()


def test_bad_addresses_are_refused_and_nothing_changes(fleet_ns: FleetNamespace) -> None:
    fleet_ns.silence("127.0.30.5")
    for bad in ("127.0.30.5/24", "camera-1", "127.0.30.300", ""):
        with pytest.raises(ValueError, match="not an IP address"):
            fleet_ns.silence("127.0.30.6", bad)
    assert fleet_ns.silenced() == {"127.0.30.5"}


def test_ipv6_on_lo_works_and_can_be_silenced(fleet_ns: FleetNamespace) -> None:
    assert fleet_ns.ipv6
    assert fleet_ns.run(["cat", "/proc/sys/net/ipv6/conf/lo/disable_ipv6"]).stdout.strip() == "0"
    assert ping(fleet_ns, "fd00:5a::1")  # added by FleetNamespace by default
    fleet_ns.silence("fd00:5a::1")
    assert not ping(fleet_ns, "fd00:5a::1")
    fleet_ns.restore("fd00:5a::1")
    assert ping(fleet_ns, "fd00:5a::1")

    fleet_ns.add_addresses("fd00:5a:1::10", "fd00:5a:1::11", "fd00:5a:2::10")
    fleet_ns.silence("fd00:5a:1::/64", "::1")
    answers = ping_all(fleet_ns, ["fd00:5a:1::10", "fd00:5a:1::11", "fd00:5a:2::10", "::1"], timeout=FAST)
    assert answers == {"fd00:5a:1::10": False, "fd00:5a:1::11": False, "fd00:5a:2::10": True, "::1": False}
    fleet_ns.restore("::1", "fd00:5a:1::11")
    answers = ping_all(fleet_ns, ["fd00:5a:1::10", "fd00:5a:1::11", "::1", "127.0.0.1"], timeout=FAST)
    assert answers == {"fd00:5a:1::10": False, "fd00:5a:1::11": True, "::1": True, "127.0.0.1": True}


# --- everything else to a silenced address goes quiet too ------------------------------------------


def test_udp_and_tcp_to_a_silenced_address_time_out(fleet_ns: FleetNamespace) -> None:
    with fleet_ns.inside():
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with server, listener, client:
        server.bind(("127.0.30.7", 0))  # an "SNMP agent" on the camera's address
        listener.bind(("127.0.30.7", 0))  # and an "RTSP server"
        listener.listen()
        server.settimeout(FAST)
        client.sendto(b"get", server.getsockname())
        assert server.recvfrom(16)[0] == b"get"
        assert connects(fleet_ns, listener.getsockname()) == "connected"

        fleet_ns.silence("127.0.30.7")
        client.sendto(b"get", server.getsockname())
        with pytest.raises(TimeoutError):
            server.recvfrom(16)
        assert connects(fleet_ns, listener.getsockname()) == "timeout"  # not refused: silent

        fleet_ns.restore("127.0.30.7")
        client.sendto(b"get", server.getsockname())
        assert server.recvfrom(16)[0] == b"get"


def connects(fleet: FleetNamespace, address: tuple[str, int]) -> str:
    with fleet.inside():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(FAST)
        try:
            sock.connect(address)
        except TimeoutError:
            return "timeout"
        except ConnectionRefusedError:
            return "refused"
        return "connected"


# --- inside(): the calling thread moves, and its sockets stay --------------------------------------


def test_inside_moves_the_calling_thread_and_back(fleet_ns: FleetNamespace) -> None:
    host = netns_id()
    with fleet_ns.inside():
        moved = netns_id()
        seen_by_other_thread: list[str] = []
        other = threading.Thread(target=lambda: seen_by_other_thread.append(netns_id()))
        other.start()  # started inside: inherits the namespace
        other.join(5)
    assert netns_id() == host != moved
    assert seen_by_other_thread == [moved]
    assert fleet_ns.run(["readlink", "/proc/self/ns/net"]).stdout.strip() == moved

    with pytest.raises(ZeroDivisionError), fleet_ns.inside():
        1 / 0  # noqa: B018
    assert netns_id() == host


def test_inside_in_a_worker_thread_leaves_the_main_thread_alone(fleet_ns: FleetNamespace) -> None:
    host = netns_id()
    seen: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def worker() -> None:
        with fleet_ns.inside():
            seen.append(netns_id())
            entered.set()
            release.wait(5)
        seen.append(netns_id())

    thread = threading.Thread(target=worker)
    thread.start()
    assert entered.wait(5)
    assert netns_id() == host  # the main thread did not move
    release.set()
    thread.join(5)
    assert seen[0] != host
    assert seen[1] == host


def test_a_udp_server_bound_inside_answers_clients_inside_only(fleet_ns: FleetNamespace) -> None:
    with fleet_ns.inside():
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        inner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    outer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # in the host's namespace
    with server, inner, outer:
        port = server.getsockname()[1]
        server.settimeout(FAST)
        for sock in (inner, outer):
            sock.settimeout(FAST)

        outer.sendto(b"from outside", ("127.0.0.1", port))  # reaches the host's 127.0.0.1:port
        with pytest.raises(TimeoutError):
            server.recvfrom(64)

        inner.sendto(b"from inside", ("127.0.0.1", port))
        data, peer = server.recvfrom(64)
        server.sendto(data.upper(), peer)
        assert inner.recvfrom(64)[0] == b"FROM INSIDE"


def test_an_event_loop_made_inside_serves_processes_run_inside(fleet_ns: FleetNamespace) -> None:
    """The setup a slamon test wants: asyncio sockets inside, a subprocess inside talking to them."""

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.DatagramTransport, transport)

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(b"echo:" + data, addr)

    client = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)\n"
        "s.sendto(b'hi', ('127.0.0.1', int(sys.argv[1]))); print(s.recv(64).decode())\n"
    )

    async def serve() -> str:
        with fleet_ns.inside():
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                Echo, local_addr=("127.0.0.1", 0)
            )
        try:
            port = transport.get_extra_info("sockname")[1]
            proc = await asyncio.create_subprocess_exec(
                *fleet_ns.command([sys.executable, "-c", client, str(port)]),
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            return out.decode().strip()
        finally:
            transport.close()

    assert asyncio.run(serve()) == "echo:hi"


# --- clean-up -------------------------------------------------------------------------------------


def test_namespaces_are_removed_on_exit_and_when_the_body_raises() -> None:
    require_namespaces()
    with FleetNamespace() as fleet:
        name = fleet.name
        assert namespace_exists(name)
        assert name in live_namespaces()
        assert name.startswith(f"slamon-{os.getpid()}-")
    assert not namespace_exists(name)
    assert name not in live_namespaces()

    names: list[str] = []

    def body() -> None:
        with FleetNamespace() as fleet:
            names.append(fleet.name)
            fleet.silence("127.0.30.0/24")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        body()
    assert not namespace_exists(names[0])
    assert names[0] not in live_namespaces()


def test_closing_stops_the_processes_it_started() -> None:
    require_namespaces()
    with FleetNamespace() as fleet:
        child = fleet.popen(["sleep", "30"])
        assert child.poll() is None
    assert child.returncode is not None  # terminated by PID, waited for
    fleet.close()  # idempotent


def test_stale_namespaces_of_dead_processes_can_be_removed() -> None:
    require_namespaces()
    name = f"slamontest-{_dead_pid()}-1"
    ip = require_tool("ip", "iproute2")
    subprocess.run([ip, "netns", "add", name], check=True, timeout=30)
    try:
        assert stale_namespaces("slamontest") == [name]
        assert remove_stale_namespaces("slamontest") == [name]
        assert not namespace_exists(name)
    finally:
        subprocess.run([ip, "netns", "del", name], capture_output=True, check=False, timeout=30)


def _dead_pid() -> int:
    """The PID of a child that has exited and been waited for: no process has it now."""
    child = subprocess.Popen(["true"])
    child.wait(10)
    return child.pid


def test_a_closed_namespace_refuses_work() -> None:
    require_namespaces()
    with FleetNamespace() as fleet:
        pass
    with pytest.raises(RuntimeError, match="not open"), fleet.inside():
        pass
    with pytest.raises(RuntimeError, match="not open"):
        fleet.silence("127.0.30.5")


def test_require_netns_turns_a_skip_into_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLAMON_REQUIRE_NETNS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no netns"):
        unavailable("no netns")
    monkeypatch.setenv("SLAMON_REQUIRE_NETNS", "1")
    with pytest.raises(pytest.fail.Exception, match="no netns"):
        unavailable("no netns")


# --- scenarios: bookkeeping (no namespace needed) ------------------------------------------------


def test_silence_bookkeeping_matches_the_namespace_rules() -> None:
    book = SilenceBook()
    book.silence("127.0.30.0/24", "127.0.30.5", "fd00:5a::/64")
    book.restore("127.0.30.5")
    assert not book.is_silenced("127.0.30.5")
    assert book.is_silenced("127.0.30.4")
    assert book.is_silenced("127.0.30.6")
    assert book.collapsed(4) == [
        "127.0.30.0/30",
        "127.0.30.4/32",
        "127.0.30.6/31",
        "127.0.30.8/29",
        "127.0.30.16/28",
        "127.0.30.32/27",
        "127.0.30.64/26",
        "127.0.30.128/25",
    ]
    book.restore("127.0.0.0/8", "fd00:5a::1")
    hole = ipaddress.IPv6Network("fd00:5a::/64").address_exclude(ipaddress.IPv6Network("fd00:5a::1/128"))
    assert book.silenced() == {network_text(n) for n in hole}
    assert "fd00:5a::" in book.silenced()  # a /128 reads as the address


def test_grid_plan_addresses_and_topology() -> None:
    plan = AddressPlan.grid(sites=2, switches=2, cameras=3)
    assert len(plan) == 2 * (1 + 2 * (1 + 3))
    assert plan.address("SIM-S1L") == "127.31.0.1"
    assert plan.address("SIM-S2W1") == "127.32.1.1"
    assert plan.address("SIM-S2W1C3") == "127.32.1.13"
    assert plan.behind("SIM-S1W2") == ["SIM-S1W2C1", "SIM-S1W2C2", "SIM-S1W2C3"]
    assert plan.ancestors("SIM-S1W2C1") == ["SIM-S1W2", "SIM-S1L"]
    assert len(plan.behind("SIM-S1L")) == 8
    assert plan.sites() == ["SIM-S1", "SIM-S2"]
    v6 = AddressPlan.grid(sites=1, switches=1, cameras=1, ipv6=True)
    assert v6.addresses() == ["fd00:5a:1::1", "fd00:5a:1:1::1", "fd00:5a:1:1::b"]


def test_a_plan_from_the_example_inventory() -> None:
    example = Path(__file__).parents[1] / "examples" / "july-2025"
    contracts = load_contracts(sorted((example / "contracts").glob("*.yaml")))
    inventory = load_inventory(example / "inventory.yaml", contracts)
    plan = AddressPlan.from_inventory(inventory.devices.values())
    assert plan.devices["YJ-C0013"].parent == "YJ-SW004"
    assert "YJ-C0013" in plan.behind("YJ-LINK02")
    assert plan.devices["YJ-SW004"].kind == "switch"


def test_camera_fails_and_recovers_expects_one_outage() -> None:
    plan = AddressPlan.grid(sites=1, switches=1, cameras=2)
    scenario = camera_fails_and_recovers(plan, "SIM-S1W1C1", fail_at=1, down_after=3, up_after=2)
    assert scenario.outages == (Outage("SIM-S1W1C1", 1, 5, DEVICE),)
    assert [scenario.down_during(r) for r in range(scenario.rounds)] == [
        frozenset(),
        *[frozenset({"SIM-S1W1C1"})] * 4,
        *[frozenset()] * 3,
    ]
    blip = camera_fails_and_recovers(plan, "SIM-S1W1C1", down_rounds=2, down_after=3)
    assert blip.outages == ()
    assert "blip" in blip.summary


def test_flapping_shorter_than_down_after_is_no_outage() -> None:
    plan = AddressPlan.grid(sites=1, switches=1, cameras=1)
    scenario = flapping(plan, "SIM-S1W1C1", flaps=4, down_rounds=2, up_rounds=1, down_after=3)
    assert scenario.outages == ()
    downs = [bool(scenario.down_during(r)) for r in range(scenario.rounds)]
    assert downs == [
        False,
        True,
        True,
        False,
        True,
        True,
        False,
        True,
        True,
        False,
        True,
        True,
        False,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="down_rounds < down_after"):
        flapping(plan, "SIM-S1W1C1", down_rounds=3, down_after=3)


def test_switch_down_takes_everything_behind_it_and_blames_upstream() -> None:
    plan = AddressPlan.grid(sites=2, switches=2, cameras=2)
    scenario = switch_down(plan, "SIM-S1W2", fail_at=2, down_rounds=3, down_after=3)
    assert scenario.with_outage() == {"SIM-S1W2", "SIM-S1W2C1", "SIM-S1W2C2"}
    assert scenario.outage_of("SIM-S1W2") == [Outage("SIM-S1W2", 2, 5, DEVICE)]
    assert scenario.outage_of("SIM-S1W2C1") == [Outage("SIM-S1W2C1", 2, 5, upstream("SIM-S1W2"))]
    assert scenario.steps[0] == Step(
        2, silence=("127.31.2.1", "127.31.2.11", "127.31.2.12"), note="SIM-S1W2 and 2 behind it fail"
    )


def test_site_power_takes_the_whole_site() -> None:
    plan = AddressPlan.grid(sites=2, switches=2, cameras=2)
    scenario = site_power(plan, "SIM-S2")
    assert scenario.with_outage() == set(plan.at_site("SIM-S2"))
    assert {o.device for o in scenario.outages if o.cause == DEVICE} == {"SIM-S2L"}
    assert scenario.outage_of("SIM-S2W1C2")[0].cause == upstream("SIM-S2W1")


@pytest.mark.parametrize(
    "make",
    [
        lambda p: camera_fails_and_recovers(p, "SIM-S1W1C2"),
        lambda p: camera_fails_and_recovers(p, "SIM-S1W1C2", down_rounds=2),
        lambda p: camera_fails_and_recovers(p, "SIM-S1W1C2", down_rounds=7, down_after=5, up_after=3),
        lambda p: flapping(p, "SIM-S2W2", flaps=5, down_rounds=2, up_rounds=1),
        lambda p: switch_down(p, "SIM-S1W1"),
        lambda p: switch_down(p, "SIM-S2W2", fail_at=0, down_rounds=6, down_after=2, up_after=1),
        lambda p: site_power(p, "SIM-S1"),
    ],
)
def test_hand_written_expectations_agree_with_the_rule(make: object) -> None:
    plan = AddressPlan.grid(sites=2, switches=2, cameras=2)
    scenario: Scenario = make(plan)  # type: ignore[operator]
    derived = derive_outages(plan, scenario.down_by_round(), scenario.down_after, scenario.up_after)
    assert set(derived) == set(scenario.outages), scenario.describe()


def test_a_scenario_of_ones_own_derives_its_outages() -> None:
    plan = AddressPlan.grid(sites=1, switches=1, cameras=2)
    steps = [
        Step(1, silence=("127.31.1.0/24",), note="switch and cameras"),
        Step(5, restore=("127.31.1.1", "127.31.1.11")),  # camera 2 stays dark
    ]
    scenario = Scenario.from_steps("partial recovery", "C2 stays down", plan, steps, rounds=9)
    assert set(scenario.outages) == {
        Outage("SIM-S1W1", 1, 5, DEVICE),
        Outage("SIM-S1W1C1", 1, 5, upstream("SIM-S1W1")),
        Outage("SIM-S1W1C2", 1, None, upstream("SIM-S1W1")),
    }
    assert "open" in scenario.describe()


def test_run_applies_each_step_before_its_round() -> None:
    plan = AddressPlan.grid(sites=1, switches=1, cameras=1)
    scenario = camera_fails_and_recovers(plan, "SIM-S1W1C1", fail_at=1, down_after=2, up_after=1)
    paper = PaperFleet()
    seen: list[tuple[int, datetime, bool]] = []
    scenario.run(
        paper, lambda rnd: seen.append((rnd.index, rnd.now, paper.is_silenced("127.31.1.11"))), T0, MINUTE
    )
    assert seen == [(r, T0 + r * MINUTE, r in (1, 2, 3)) for r in range(scenario.rounds)]


# --- scenarios against real packets --------------------------------------------------------------


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_scenarios_silence_exactly_the_devices_they_say(fleet_ns: FleetNamespace, ipv6: bool) -> None:
    plan = AddressPlan.grid(sites=2, switches=2, cameras=3, ipv6=ipv6)
    plan.install(fleet_ns)
    for scenario in (
        switch_down(plan, "SIM-S1W2", down_after=2, up_after=1),
        site_power(plan, "SIM-S2", down_after=2, up_after=1),
        flapping(plan, "SIM-S1W1C1", flaps=2, down_after=2, up_after=1),
    ):
        for rnd in scenario.timeline(T0, MINUTE):
            scenario.apply(fleet_ns, rnd.index)
            answers = ping_all(fleet_ns, plan.addresses(), timeout=FAST)
            failed = {d.id for d in plan if not answers[d.address]}
            assert failed == rnd.down, f"round {rnd.index}\n{scenario.describe()}"
        assert fleet_ns.silenced() == set()
