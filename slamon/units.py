"""Durations and decimals as people write them in slamon's files.

Pure functions: they raise ValueError with the human half of the message ("'30 s' is not a
duration …"); the loaders add the file and the key, so the same rules read the same everywhere.
Both refuse absurd sizes from the text alone, before anything is built from it: `1e999999999` is
a valid Decimal, but adding a cent to it takes minutes.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

DURATION_HINT = "use 500ms, 30s, 15m, 4h, 1d"
DECIMAL_MAX_EXPONENT = 30
"""A decimal's digits may reach from 10^-30 to 10^30 (money and rates need far less: the loaders
bound each kind of number tighter); anything outside is refused as out of range."""
_DURATION_MAX_CHARS = 32  # longer than any duration timedelta can hold ("999999999d" is 10)
_QUOTE_MAX_CHARS = 40

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
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a {len(str(abs(value)))}-digit number"  # (YAML reads at most 4,300 digits)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def quote_short(value: object) -> str:
    """`quote`, with text longer than 40 characters cut (`'YJ-C0001YJ-C0001YJ-C0001…'`): for
    values that are wrong because they are long."""
    if isinstance(value, str) and len(value) > _QUOTE_MAX_CHARS:
        return repr(value[:_QUOTE_MAX_CHARS]) + "…"
    return quote(value)


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
    if len(text) > _DURATION_MAX_CHARS:
        raise ValueError(f"{quote_short(text)} is too long a duration")
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
    A number whose digits reach beyond 10^±30 (`DECIMAL_MAX_EXPONENT`) is out of range, judged
    from its text before a Decimal is made.
    """
    bad = ValueError(f"{quote_short(value)} is not a decimal number")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int):
        if value.bit_length() > 4 * DECIMAL_MAX_EXPONENT:  # (10^30 < 2^100 < 2^120)
            raise ValueError(f"{quote(value)} is out of range")
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise bad
        text = repr(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise bad
        text = str(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        text = value
    else:
        raise bad
    if not _in_range(text):
        raise ValueError(f"{quote_short(value)} is out of range")
    return Decimal(text)


def _in_range(text: str) -> bool:
    """Whether the decimal `text` (of `_DECIMAL`'s form) has its digits within 10^±30."""
    mantissa, _, exponent = text.lower().partition("e")
    if len(exponent) > 12:
        return False  # an exponent of more than 10 digits, whatever the mantissa
    shift = int(exponent) if exponent else 0
    whole, _, fraction = mantissa.lstrip("+-").partition(".")
    whole = whole.lstrip("0")
    fraction = fraction.rstrip("0")
    if not whole and not fraction:
        return abs(shift) <= DECIMAL_MAX_EXPONENT  # zero
    top = len(whole) - 1 + shift if whole else shift - (len(fraction) - len(fraction.lstrip("0"))) - 1
    bottom = shift - len(fraction) if fraction else shift + len(whole) - len(whole.rstrip("0"))
    return top < DECIMAL_MAX_EXPONENT and bottom >= -DECIMAL_MAX_EXPONENT
