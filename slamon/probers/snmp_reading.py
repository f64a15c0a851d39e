"""What one SNMP poll of a switch says, as evidence: ports by name, reboots, traffic rates (pure).

The poller (`snmp.py`) hands over the raw values it walked; this module turns them into the
`detail` of the switch's ProbeResult (FORMATS.md: `uptime_s`, `ports` by `ifName`), comparing with
the previous good poll of the same switch for what only two polls tell: a reboot (sysUpTime went
back, and not by its 497-day wrap), and a rate per port (a 64-bit octet counter cannot wrap
between two polls, so one that went back was reset: no rate then, and a warning that says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slamon.probers.snmp_mib import (
    ADMIN_STATUS,
    OPER_STATUS,
    POE_DETECTION_STATUS,
    TICKS_WRAP,
)

COUNTER32_WRAP = 1 << 32
from slamon.probers.snmp_wire import Value

Index = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Walked:
    """The raw values of one complete poll."""

    at_ns: int  # monotonic, when the poll's first reply came
    uptime_ticks: int | None
    pse_power_w: int | None
    pse_used_w: int | None
    columns: Mapping[str, Mapping[Index, Value]]  # column key (snmp_mib.Column.key) → row → value
    narrow: frozenset[str] = frozenset()  # columns whose counters the agent sent as Counter32


@dataclass(frozen=True, slots=True)
class Previous:
    """What the last good poll of a switch leaves for the next one."""

    at_ns: int
    uptime_ticks: int | None
    octets: Mapping[int, tuple[int | None, int | None]] = field(default_factory=dict)  # ifIndex → in, out


def read(walked: Walked, previous: Previous | None) -> tuple[dict[str, object], Previous]:
    """(the result's detail, what the next poll compares with)."""
    detail: dict[str, object] = {}
    warnings: list[str] = []
    rebooted = False
    elapsed_s = None if previous is None else (walked.at_ns - previous.at_ns) / 1e9
    ticks = walked.uptime_ticks
    if ticks is not None:
        detail["uptime_s"] = ticks // 100
        before = None if previous is None else previous.uptime_ticks
        if before is not None and elapsed_s is not None and _rebooted(before, ticks, elapsed_s):
            rebooted = True
            detail["reboot"] = {"uptime_before_s": before // 100, "uptime_s": ticks // 100}

    cols = walked.columns
    names, admin, oper = cols.get("name", {}), cols.get("admin", {}), cols.get("oper", {})
    errors, c_in, c_out = cols.get("in_errors", {}), cols.get("in_octets", {}), cols.get("out_octets", {})
    poe = _poe_by_port(cols.get("poe", {}))
    indexes = sorted({i[0] for col in (names, admin, oper) for i in col if len(i) == 1})
    labels = _labels(indexes, names)
    ports: dict[str, dict[str, object]] = {}
    octets: dict[int, tuple[int | None, int | None]] = {}
    for index in indexes:
        key = (index,)
        port: dict[str, object] = {"index": index}
        _word(port, "oper", oper.get(key), OPER_STATUS)
        _word(port, "admin", admin.get(key), ADMIN_STATUS)
        if index in poe:
            _word(port, "poe", poe[index], POE_DETECTION_STATUS)
        got_in, got_out = _int(c_in.get(key)), _int(c_out.get(key))
        if got_in is not None:
            port["in_octets"] = got_in
        if got_out is not None:
            port["out_octets"] = got_out
        in_errors = _int(errors.get(key))
        if in_errors is not None:
            port["in_errors"] = in_errors
        octets[index] = (got_in, got_out)
        if previous is not None and elapsed_s and elapsed_s > 0 and not rebooted:
            seen = previous.octets.get(index)
            if seen is not None:
                for word, now, then in (("in", got_in, seen[0]), ("out", got_out, seen[1])):
                    if now is None or then is None:
                        continue
                    if now < then and f"{word}_octets" in walked.narrow:
                        now += COUNTER32_WRAP  # a 32-bit counter wraps within minutes at 1 Gbit/s
                    if now < then:
                        warnings.append(
                            f"{labels[index]}: if{'HCIn' if word == 'in' else 'HCOut'}Octets went back "
                            f"from {then} to {now} without a reboot (counter reset): no rate this poll"
                        )
                    else:
                        port[f"{word}_bps"] = round((now - then) * 8 / elapsed_s, 1)
        ports[labels[index]] = port
    detail["ports"] = ports
    if walked.pse_power_w is not None or walked.pse_used_w is not None:
        detail["poe"] = {"budget_w": walked.pse_power_w, "used_w": walked.pse_used_w}
    if warnings:
        detail["warnings"] = warnings
    return detail, Previous(walked.at_ns, ticks, octets)


def _rebooted(before: int, now: int, elapsed_s: float) -> bool:
    """sysUpTime went back: a reboot, unless the 32-bit ticks wrapped in the time between."""
    if now >= before:
        return False
    expected = before + int(elapsed_s * 100)
    if expected < TICKS_WRAP:
        return True
    slack = max(6000, int(elapsed_s * 10))  # a minute, or a tenth of the time between polls
    return abs(now - (expected - TICKS_WRAP)) > slack


def _labels(indexes: list[int], names: Mapping[Index, Value]) -> dict[int, str]:
    """ifName where the switch has one (and it is unique), else the ifIndex as text (FORMATS.md)."""
    text: dict[int, str] = {}
    for index in indexes:
        raw = names.get((index,))
        # some agents end the name with a NUL, as C strings do: `port0\0` is port0
        name = raw.decode("utf-8", "replace").strip().strip("\x00").strip() if isinstance(raw, bytes) else ""
        text[index] = name
    seen: dict[str, int] = {}
    for name in text.values():
        seen[name] = seen.get(name, 0) + 1
    return {i: n if n and seen[n] == 1 and not n.isdigit() else str(i) for i, n in text.items()}


def _poe_by_port(rows: Mapping[Index, Value]) -> dict[int, Value]:
    """pethPsePortDetectionStatus by port number (the table's second index), first group first."""
    out: dict[int, Value] = {}
    for index in sorted(rows):
        if len(index) == 2:
            out.setdefault(index[1], rows[index])
    return out


def _word(port: dict[str, object], key: str, value: Value, words: Mapping[int, str]) -> None:
    if isinstance(value, int):
        port[key] = words.get(value, str(value))


def _int(value: Value) -> int | None:
    return value if isinstance(value, int) else None
