"""Durations and decimals as written in slamon's files."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slamon.units import format_duration, parse_decimal, parse_duration, quote, quote_short

HINT = "(use 500ms, 30s, 15m, 4h, 1d)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("4h", timedelta(hours=4)),
        ("1d", timedelta(days=1)),
        ("90d", timedelta(days=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d4h", timedelta(days=1, hours=4)),
        ("1m30s", timedelta(seconds=90)),
        ("2s500ms", timedelta(milliseconds=2500)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
        ("90s", timedelta(seconds=90)),
        ("0s", timedelta(0)),
        ("05m", timedelta(minutes=5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("30 s", "'30 s'"),
        ("-5m", "'-5m'"),
        ("0.5h", "'0.5h'"),
        ("", "''"),
        ("30", "'30'"),
        ("s", "'s'"),
        ("30S", "'30S'"),
        ("1w", "'1w'"),
        ("30m1h", "'30m1h'"),
        ("1h1h", "'1h1h'"),
        (" 30s", "' 30s'"),
        ("30s ", "'30s '"),
        ("１s", "'１s'"),
        (30, "30"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        (["30s"], "a list"),
    ],
)
def test_parse_duration_rejects(value: object, shown: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{shown} is not a duration {HINT}")):
        parse_duration(value)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("999999999999d", "'999999999999d'"),
        ("9" * 5000 + "d", f"'{'9' * 40}'…"),  # more digits than int() takes: refused before
        ("1d" + "0" * 40 + "1s", "'1d00000000000000000000000000000000000000'…"),
    ],
)
def test_parse_duration_too_long(text: str, shown: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(shown)} is too long a duration$"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(hours=4), "4h"),
        (timedelta(hours=10, minutes=12), "10h12m"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(0), "0s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(days=90), "90d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(microseconds=1500), "1ms500us"),
        (-timedelta(minutes=5), "-5m"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_format_duration_reads_back(millis: int) -> None:
    td = timedelta(milliseconds=millis)
    assert parse_duration(format_duration(td)) == td


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("92.29", Decimal("92.29")),
        ("0", Decimal(0)),
        ("0.10", Decimal("0.10")),
        ("-1", Decimal(-1)),
        ("+1.5", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("1e2", Decimal("1E+2")),
        (12, Decimal(12)),
        (0.1, Decimal("0.1")),
        (0.3, Decimal("0.3")),
        (92.29, Decimal("92.29")),
        (1e-05, Decimal("0.00001")),
        (Decimal("1.25"), Decimal("1.25")),
    ],
)
def test_parse_decimal(value: object, expected: Decimal) -> None:
    parsed = parse_decimal(value)
    assert parsed == expected
    assert str(parsed) == str(expected)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("92,29", "'92,29'"),
        ("9 2", "'9 2'"),
        ("", "''"),
        (" 1", "' 1'"),
        ("1_000", "'1_000'"),
        ("NaN", "'NaN'"),
        ("Infinity", "'Infinity'"),
        ("１２", "'１２'"),
        ("1.2.3", "'1.2.3'"),
        (True, "true"),
        (False, "false"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (Decimal("NaN"), "NaN"),
        (None, "null"),
        ({"a": 1}, "a mapping"),
    ],
)
def test_parse_decimal_rejects(value: object, shown: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{shown} is not a decimal number")):
        parse_decimal(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parse_decimal_takes_the_shortest_repr_of_a_float(value: float) -> None:
    if value != 0 and not 1e-30 <= abs(value) < 1e30:
        with pytest.raises(ValueError, match="is out of range"):
            parse_decimal(value)
    elif value != 0 and len(Decimal(repr(value)).as_tuple().digits) - Decimal(repr(value)).adjusted() > 31:
        with pytest.raises(ValueError, match="is out of range"):
            parse_decimal(value)  # 1.5e-29 has digits down to 10^-30 and beyond
    else:
        assert float(parse_decimal(value)) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1e30", "'1e30' is out of range"),
        ("1e999999999", "'1e999999999' is out of range"),
        ("-1e999999999", "'-1e999999999' is out of range"),
        ("1e-999999999", "'1e-999999999' is out of range"),
        ("1e99999999999999999999", "'1e99999999999999999999' is out of range"),
        ("0e999999999", "'0e999999999' is out of range"),
        ("0.0000000000000000000000000000001", "'0.0000000000000000000000000000001' is out of range"),
        ("1" * 31, f"'{'1' * 31}' is out of range"),
        ("1" * 1000, f"'{'1' * 40}'… is out of range"),
        ("x" * 1000, f"'{'x' * 40}'… is not a decimal number"),
        (10**30, f"{10**30} is out of range"),
        (10**200, "a 201-digit number is out of range"),
        (1e30, "1e+30 is out of range"),
        (1e-31, "1e-31 is out of range"),
    ],
)
def test_parse_decimal_refuses_what_is_out_of_range(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_decimal(value)


@pytest.mark.parametrize(
    "text",
    ["1e29", "123456789012345678901234567890", "1e-30", "0.000000000000000000000000000001", "0e30", "-1.5"],
)
def test_parse_decimal_takes_the_edges_of_the_range(text: str) -> None:
    assert parse_decimal(text) == Decimal(text)


def test_parse_decimal_refuses_a_huge_exponent_at_once() -> None:
    """The text decides: no Decimal arithmetic on 10^999999999 (which takes minutes)."""
    started = time.process_time()
    for _ in range(1000):
        with pytest.raises(ValueError, match="out of range"):
            parse_decimal("9.99e999999999")
    assert time.process_time() - started < 1.0


def test_quote() -> None:
    assert quote("x") == "'x'"
    assert quote(3) == "3"
    assert quote(None) == "null"
    assert quote([1]) == "a list"
    assert quote(10**40) == "a 41-digit number"
    assert quote(-(10**40)) == "a 41-digit number"
    assert quote(2**128 - 1) == str(2**128 - 1)


def test_quote_short() -> None:
    assert quote_short("x" * 40) == repr("x" * 40)
    assert quote_short("x" * 41) == repr("x" * 40) + "…"
    assert quote_short(12) == "12"
