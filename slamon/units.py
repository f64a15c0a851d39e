"""Durations and decimals as people write them in slamon's files.

Pure functions: they raise ValueError with the human half of the message ("'30 s' is not a
duration …"); the loaders add the file and the key, so the same rules read the same everywhere.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

DURATION_HINT = "use 500ms, 30s, 15m, 4h, 1d"

# Units largest first, each at most once: "1h30m", "1d4h", "1m30s", "500ms".
_DURATION = re.compile(
    r"(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m(?!s))?(?:(?P<s>[0-9]+)s)?(?:(?P<ms>[0-9]+)ms)?"
)
# Plain decimal notation, optionally with an exponent (repr() of a float can give "1e-05").
# Only ASCII digits: Decimal() itself would accept "1_000", " 1 " and non-ASCII digits.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

_UNITS: tuple[tuple[str, int], ...] = (
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
    ("ms", 1_000),
)


def quote(value: object) -> str:
    """How a value read from a file is shown in a message: text quoted, YAML words as YAML writes them."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def parse_duration(text: object) -> timedelta:
    """`500ms`, `30s`, `15m`, `4h`, `1d` and compounds such as `1h30m`: whole numbers, no spaces, no sign.

    Anything else (including a YAML number) is rejected rather than guessed at: `30` could mean
    seconds or minutes, and a wrong guess silently changes what the SLA counts.
    """
    bad = ValueError(f"{quote(text)} is not a duration ({DURATION_HINT})")
    if not isinstance(text, str) or not text:
        raise bad
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise bad
    micros = sum(int(match[unit]) * size for unit, size in _UNITS if match[unit] is not None)
    try:
        return timedelta(microseconds=micros)
    except OverflowError:
        raise ValueError(f"{quote(text)} is too long a duration") from None


def format_duration(td: timedelta) -> str:
    """The shortest form parse_duration reads back: `4h`, `10h12m`, `1m30s`; `0s` for zero.

    A remainder below a millisecond (never produced by parse_duration) is shown as `us`.
    """
    micros = (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    parts: list[str] = []
    for unit, size in _UNITS:
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    if micros:
        parts.append(f"{micros}us")
    return sign + "".join(parts)


def parse_decimal(value: object) -> Decimal:
    """An exact Decimal from a decimal string, an int, or a YAML float.

    A float is taken by its shortest repr, so YAML `0.1` is Decimal("0.1") and not
    0.1000000000000000055511151231257827…; booleans, NaN and infinities are not numbers here.
    """
    bad = ValueError(f"{quote(value)} is not a decimal number")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise bad
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise bad
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return Decimal(value)
    raise bad
