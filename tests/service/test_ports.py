"""The switches' ports in the service: port_fault's words, the ledger's port events (a whole table
first, then changes only), and port_evidence, which reads an outage's uplink port back from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slamon.engine.ports import PortEvidence, find_port, port_evidence, port_fault
from slamon.model import DeviceId, Event, ProbeKind, ProbeResult, Uplink, to_micros
from slamon.service.ports import SwitchPorts

T0 = datetime(2026, 12, 1, tzinfo=UTC)
SW = DeviceId("SW1")


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ({"oper": "up", "admin": "up"}, None),
        ({"oper": "up", "admin": "up", "poe": "deliveringPower"}, None),
        ({"oper": "down", "admin": "up"}, "port Gi0/5 down"),
        ({"oper": "down", "admin": "down"}, "port Gi0/5 admin-down"),  # shut beats down
        ({"oper": "lowerLayerDown", "admin": "up"}, "port Gi0/5 lowerLayerDown"),
        ({"oper": "up", "admin": "up", "poe": "fault"}, "port Gi0/5 poe fault"),  # a link, no power
        ({"oper": "up", "admin": "up", "poe": "otherFault"}, "port Gi0/5 poe otherFault"),
        ({"oper": "up", "admin": "up", "poe": "searching"}, None),
    ],
)
def test_port_fault_words(state: dict[str, object], words: str | None) -> None:
    assert port_fault("Gi0/5", state) == words


def test_find_port_by_name_or_index() -> None:
    ports = {"Gi0/5": {"index": 5}, "Gi0/6": {"index": 6}}
    assert find_port(ports, "Gi0/6") == ("Gi0/6", {"index": 6})
    assert find_port(ports, "5") == ("Gi0/5", {"index": 5})
    assert find_port(ports, "7") is None


def snmp(at: int, ok: bool = True, **ports: str) -> ProbeResult:
    detail = {
        "uptime_s": 100 + at,
        "ports": {
            name: {"index": i, "oper": oper, "admin": "up", "in_octets": at}
            for i, (name, oper) in enumerate(sorted(ports.items()), start=1)
        },
    }
    return ProbeResult(SW, ProbeKind.SNMP, T0 + timedelta(seconds=at), ok, detail=detail if ok else {})


def test_the_ledger_gets_the_whole_table_once_then_changes_only() -> None:
    ports = SwitchPorts()
    first = ports.take([snmp(0, g1="up", g2="up")])
    assert first == [
        Event(
            to_micros(T0),
            "ports",
            SW,
            {
                "ports": {
                    "g1": {"index": 1, "oper": "up", "admin": "up"},
                    "g2": {"index": 2, "oper": "up", "admin": "up"},
                }
            },
        )
    ]
    assert ports.take([snmp(60, g1="up", g2="up")]) == []  # counters moved: not a port event
    changed = ports.take([snmp(120, g1="up", g2="down")])
    assert [(e.kind, e.body) for e in changed] == [
        ("port", {"ports": {"g2": {"index": 2, "oper": "down", "admin": "up"}}})
    ]
    assert ports.take([snmp(180, ok=False)]) == []  # a failed poll keeps the last ports
    assert ports.readings[SW].ok is False
    assert ports.readings[SW].ports["g2"]["oper"] == "down"
    assert ports.errors == {"other": 1}
    gone = ports.take([snmp(240, g1="up")])  # g2 left the table
    assert [e.body for e in gone] == [{"ports": {"g2": None}}]
    daily = ports.take([snmp(86_400 + 240, g1="up")])  # a day after the last whole table
    assert [e.kind for e in daily] == ["ports"]


def test_a_poe_status_that_goes_away_is_a_change() -> None:
    ports = SwitchPorts()
    with_poe = ProbeResult(
        SW, ProbeKind.SNMP, T0, True, detail={"ports": {"g5": {"index": 5, "oper": "up", "poe": "fault"}}}
    )
    without = ProbeResult(
        SW,
        ProbeKind.SNMP,
        T0 + timedelta(seconds=60),
        True,
        detail={"ports": {"g5": {"index": 5, "oper": "up"}}},
    )
    ports.take([with_poe])
    assert [e.body for e in ports.take([without])] == [{"ports": {"g5": {"index": 5, "oper": "up"}}}]
    ledger = [e for r in (with_poe, without) for e in SwitchPorts().take([r])]  # (each alone: whole tables)
    assert (
        port_evidence(ledger, Uplink(SW, "g5"), to_micros(T0) + 120_000_000, to_micros(T0) + 180_000_000)
        is None
    )


def test_a_result_older_than_the_reading_does_not_replace_it() -> None:
    """A trap's poll at T0+5 s, then the round's poll of the same switch stamped at T0: the newer
    reading stays, and the ledger gets nothing out of order."""
    ports = SwitchPorts()
    ports.take([snmp(0, g5="up")])
    ports.take([snmp(65, g5="down")])  # the trap's poll
    assert ports.take([snmp(60, g5="up")]) == []  # the round's, begun earlier
    assert ports.readings[SW].ports["g5"]["oper"] == "down"


def test_a_reboot_is_an_event() -> None:
    ports = SwitchPorts()
    r = ProbeResult(
        SW, ProbeKind.SNMP, T0, True, detail={"ports": {}, "reboot": {"uptime_before_s": 9, "uptime_s": 1}}
    )
    assert ports.take([r]) == [
        Event(to_micros(T0), "reboot", SW, {"uptime_before_s": 9, "uptime_s": 1}),
        Event(to_micros(T0), "ports", SW, {"ports": {}}),  # (its first table: empty)
    ]
    assert ports.reboots == {SW: 1}


def events(*steps: tuple[int, bool, dict[str, str]]) -> list[Event]:
    return [
        Event(
            at,
            "port",
            SW,
            {"full": full, "ports": {n: {"index": int(n[1:]), "oper": o} for n, o in p.items()}},
        )
        for at, full, p in steps
    ]


UP = Uplink(SW, "g5")


def test_port_evidence_reads_the_state_at_the_start_or_the_first_fault_inside() -> None:
    ledger = events(
        (0, True, {"g5": "up", "g6": "up"}), (100, False, {"g5": "down"}), (300, False, {"g5": "up"})
    )
    assert port_evidence(ledger, UP, 150, 250) == PortEvidence(100, SW, "g5", "port g5 down")  # in effect
    assert port_evidence(ledger, UP, 50, 250) == PortEvidence(100, SW, "g5", "port g5 down")  # seen inside
    assert port_evidence(ledger, UP, 50, 90) is None  # up all along
    assert port_evidence(ledger, UP, 310, 400) is None  # back up before
    assert port_evidence(ledger, Uplink(SW, "6"), 0, 400) is None  # by ifIndex: never at fault
    assert port_evidence(ledger, Uplink(DeviceId("SW2"), "g5"), 0, 400) is None  # another switch


def test_a_full_table_replaces_what_came_before() -> None:
    ledger = events((0, True, {"g5": "down"}), (100, True, {"g5": "up"}))  # a restart in between
    assert port_evidence(ledger, UP, 150, 250) is None


def test_port_metrics_uplinks_keeps_only_the_ports_devices_hang_off() -> None:
    """probes.snmp.port_metrics: uplinks: a city's 100,000 ports are not 600,000 series; the ports
    a device names (by ifName or ifIndex) are kept, the switch-wide series too."""
    from slamon.service.ports import port_families

    ports = SwitchPorts(port_metrics="uplinks", hanging={SW: {"g1": [DeviceId("C1")], "3": [DeviceId("C3")]}})
    ports.take([snmp(0, g1="up", g2="down", g3="up")])
    series = {name: [labels for labels, _ in samples] for name, _, _, _, samples in port_families(ports)}
    assert series["slamon_switch_port_up"] == [("SW1", "g1"), ("SW1", "g3")]  # g3 is ifIndex 3
    assert series["slamon_switch_snmp_up"] == [("SW1",)]
    everything = SwitchPorts(readings=ports.readings)
    assert len({n: list(s) for n, _, _, _, s in port_families(everything)}["slamon_switch_port_up"]) == 3


def test_the_ledger_by_switch_reads_what_the_whole_history_reads() -> None:
    """PortLedger replays an outage from the latest whole table before it: the same answers as
    port_evidence over every event of every switch."""
    from slamon.engine.ports import PortLedger

    ledger = [
        *events((0, True, {"g5": "up"}), (100, False, {"g5": "down"}), (200, True, {"g5": "down"})),
        Event(210, "ports", "SW2", {"ports": {"g5": {"index": 5, "oper": "down"}}}),
        *events((300, False, {"g5": "up"}), (400, True, {"g5": "up"}), (450, False, {"g5": "down"})),
    ]
    by_switch = PortLedger(ledger)
    for start in range(0, 500, 25):
        for end in range(start + 1, 520, 35):
            for uplink in (UP, Uplink(SW, "5"), Uplink(DeviceId("SW2"), "g5"), Uplink(DeviceId("SW3"), "g5")):
                assert by_switch.evidence(uplink, start, end) == port_evidence(ledger, uplink, start, end)
