"""Reading a poll: ports by name, PoE by port, reboots told from the 497-day wrap, rates and resets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from slamon.probers.snmp_mib import TICKS_WRAP
from slamon.probers.snmp_reading import Walked, read

S = 1_000_000_000  # ns


def walked(at_s: float, ticks: int | None, **columns: dict[tuple[int, ...], object]) -> Walked:
    return Walked(int(at_s * S), ticks, None, None, columns)  # type: ignore[arg-type]


def test_ports_by_name_with_words_and_poe() -> None:
    detail, _ = read(
        walked(
            0,
            8_640_000,
            name={(1,): b"Gi0/1", (2,): b"Gi0/2", (3,): b""},
            oper={(1,): 1, (2,): 2, (3,): 7},
            admin={(1,): 1, (2,): 1, (3,): 2},
            poe={(1, 1): 3, (1, 2): 4},
            in_octets={(1,): 10},
        ),
        None,
    )
    assert detail["uptime_s"] == 86_400
    assert detail["ports"] == {
        "Gi0/1": {"index": 1, "oper": "up", "admin": "up", "poe": "deliveringPower", "in_octets": 10},
        "Gi0/2": {"index": 2, "oper": "down", "admin": "up", "poe": "fault"},
        "3": {"index": 3, "oper": "lowerLayerDown", "admin": "down"},  # no ifName: the ifIndex
    }
    assert "reboot" not in detail
    assert "warnings" not in detail


def test_duplicate_names_fall_back_to_the_index() -> None:
    detail, _ = read(walked(0, 1, name={(1,): b"port", (2,): b"port"}, oper={(1,): 1, (2,): 1}), None)
    assert set(detail["ports"]) == {"1", "2"}  # type: ignore[arg-type]


def test_an_unknown_status_number_is_kept_as_text() -> None:
    detail, _ = read(walked(0, 1, oper={(1,): 99}), None)
    assert detail["ports"] == {"1": {"index": 1, "oper": "99"}}


def test_uptime_going_back_is_a_reboot_with_both_values() -> None:
    _, before = read(walked(0, 100_000), None)
    detail, _ = read(walked(60, 500), before)
    assert detail["reboot"] == {"uptime_before_s": 1000, "uptime_s": 5}


def test_the_32_bit_wrap_is_not_a_reboot() -> None:
    _, before = read(walked(0, TICKS_WRAP - 3000), None)  # 30 s before the wrap
    detail, _ = read(walked(60, 3000), before)  # 60 s later: 30 s after it
    assert "reboot" not in detail
    _, before = read(walked(0, TICKS_WRAP - 3000), None)
    detail, _ = read(walked(60, 900_000), before)  # far from where the wrap would put it
    assert "reboot" in detail


@given(st.integers(0, TICKS_WRAP - 1), st.integers(1, 3600))
def test_a_steady_clock_is_never_a_reboot(start: int, elapsed_s: int) -> None:
    _, before = read(walked(0, start), None)
    detail, _ = read(walked(elapsed_s, (start + elapsed_s * 100) % TICKS_WRAP), before)
    assert "reboot" not in detail


def test_rates_between_polls_and_a_reset_is_a_warning() -> None:
    _, p1 = read(walked(0, 1000, oper={(1,): 1}, in_octets={(1,): 1000}, out_octets={(1,): 5000}), None)
    detail, p2 = read(walked(10, 2000, oper={(1,): 1}, in_octets={(1,): 2250}, out_octets={(1,): 10}), p1)
    port = detail["ports"]["1"]  # type: ignore[index]
    assert port["in_bps"] == 1000.0  # 1250 octets × 8 / 10 s
    assert "out_bps" not in port
    assert detail["warnings"] == [
        "1: ifHCOutOctets went back from 5000 to 10 without a reboot (counter reset): no rate this poll"
    ]
    # after a reboot counters restart: no rate and no warning
    detail, _ = read(walked(20, 100, oper={(1,): 1}, in_octets={(1,): 5}, out_octets={(1,): 5}), p2)
    assert "reboot" in detail
    assert "warnings" not in detail
    assert "in_bps" not in detail["ports"]["1"]  # type: ignore[index]


def test_a_name_ending_in_nul_is_the_name_without_it() -> None:
    """cts-media-converter (snmpsim-data) sends `port0\\0`: an uplink names it port0."""
    detail, _ = read(walked(0, 1, name={(1,): b"port0\x00"}, oper={(1,): 1}), None)
    assert list(detail["ports"]) == ["port0"]  # type: ignore[call-overload]


def test_octet_counters_sent_as_counter32_wrap_at_2_32() -> None:
    """metel-poe-box (snmpsim-data) sends its ifHC octets as Counter32: past 2³² they start again,
    which is a rate, not a reset."""
    first = Walked(
        0, 1000, None, None, {"oper": {(1,): 1}, "in_octets": {(1,): 2**32 - 1000}}, frozenset({"in_octets"})
    )
    _, before = read(first, None)
    second = Walked(
        10 * S, 2000, None, None, {"oper": {(1,): 1}, "in_octets": {(1,): 250}}, frozenset({"in_octets"})
    )
    detail, _ = read(second, before)
    assert "warnings" not in detail
    assert detail["ports"]["1"]["in_bps"] == 1000.0  # type: ignore[index]  # 1250 octets in 10 s
