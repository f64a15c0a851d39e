"""大写金额: the official examples, a reference written another way, and a reader that reads them back."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slamon.billing.render.capitals import capitals

DIGITS = "零壹贰叁肆伍陆柒捌玖"


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        # the examples of 《正确填写票据和结算凭证的基本规定》 (the first form where two are allowed)
        ("1409.50", "壹仟肆佰零玖元伍角"),
        ("6007.14", "陆仟零柒元壹角肆分"),
        ("1680.32", "壹仟陆佰捌拾元零叁角贰分"),
        ("107000.53", "壹拾万柒仟元零伍角叁分"),
        ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
        ("325.04", "叁佰贰拾伍元零肆分"),
        # the statements' own figures and the edges
        ("1327.49", "壹仟叁佰贰拾柒元肆角玖分"),
        ("1896.41", "壹仟捌佰玖拾陆元肆角壹分"),
        ("568.92", "伍佰陆拾捌元玖角贰分"),
        ("0", "零元整"),
        ("0.00", "零元整"),
        ("-0.00", "零元整"),
        ("0.50", "伍角"),
        ("0.05", "伍分"),
        ("0.55", "伍角伍分"),
        ("1", "壹元整"),
        ("10", "壹拾元整"),
        ("10.00", "壹拾元整"),
        ("12", "壹拾贰元整"),
        ("110", "壹佰壹拾元整"),
        ("1010", "壹仟零壹拾元整"),
        ("1001", "壹仟零壹元整"),
        ("10000", "壹万元整"),
        ("100001", "壹拾万零壹元整"),
        ("1000100", "壹佰万零壹佰元整"),
        ("10010000", "壹仟零壹万元整"),
        ("100000000", "壹亿元整"),
        ("100000001", "壹亿零壹元整"),
        ("101000000", "壹亿零壹佰万元整"),
        ("110000000", "壹亿壹仟万元整"),
        ("1000000000000", "壹万亿元整"),
        ("1000100000000", "壹万零壹亿元整"),
        ("10000000000000000", "壹亿亿元整"),
        ("20.50", "贰拾元零伍角"),
        ("20.05", "贰拾元零伍分"),
        ("21.05", "贰拾壹元零伍分"),
        ("100.10", "壹佰元零壹角"),
        ("-27.69", "负贰拾柒元陆角玖分"),
        ("1E+2", "壹佰元整"),
    ],
)
def test_known_amounts(amount: str, words: str) -> None:
    assert capitals(Decimal(amount)) == words


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0.001", "0.001 has more than 2 decimal places"),
        ("1.005", "1.005 has more than 2 decimal places"),
        ("NaN", "NaN is not an amount"),
        ("-Infinity", "-Infinity is not an amount"),
    ],
)
def test_refuses_what_is_not_an_amount_in_fen(amount: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        capitals(Decimal(amount))


# --- a reference written another way: one walk over the digits, 万 and 亿 as markers -----------


def reference(fen: int) -> str:
    """Below 10^12 元 only (no 万亿): digits left to right, a pending 零 dropped at a group mark."""
    if fen < 0:
        return "负" + reference(-fen)
    yuan, jiao, fen_ = fen // 100, fen // 10 % 10, fen % 10
    assert yuan < 10**12
    words = ""
    if yuan:
        digits = str(yuan)
        pending, started = False, False
        for i, ch in enumerate(digits):
            place = len(digits) - 1 - i
            if ch == "0":
                pending = pending or started
            else:
                words += ("零" if pending else "") + DIGITS[int(ch)] + ("", "拾", "佰", "仟")[place % 4]
                pending, started = False, True
            if place in (4, 8):
                group = digits[max(0, i - 3) : i + 1]
                if group.strip("0"):
                    words += "万" if place == 4 else "亿"
                    pending = False
        words += "元"
    if not jiao and not fen_:
        return words + "整" if yuan else "零元整"
    if jiao:
        words += ("零" if yuan and yuan % 10 == 0 else "") + DIGITS[jiao] + "角"
    elif yuan:
        words += "零"
    return words + (DIGITS[fen_] + "分" if fen_ else "")


def amount(fen: int) -> Decimal:
    return Decimal(fen) / 100


def test_every_amount_up_to_20000_yuan_in_steps_that_cover_every_jiao_and_fen_form() -> None:
    for yuan in range(20_001):
        for cents in (0, 5, 50, 55) if yuan > 100 else range(100):
            fen = yuan * 100 + cents
            assert capitals(amount(fen)) == reference(fen), fen


@given(st.integers(min_value=-(10**14) + 1, max_value=10**14 - 1))
def test_agrees_with_the_reference(fen: int) -> None:
    assert capitals(amount(fen)) == reference(fen)


# --- read back: the words say the amount, and the 零 rules hold -----------------------------------


def read(words: str) -> int:
    """The amount in fen that Chinese capitals say (零 is only a separator to a reader)."""
    if words.startswith("负"):
        return -read(words[1:])
    yuan, _, rest = words.rpartition("元") if "元" in words else ("", "", words)
    fen = 100 * _read_integer(yuan)
    rest = rest.removesuffix("整").replace("零", "")
    if "角" in rest:
        fen += 10 * DIGITS.index(rest[rest.index("角") - 1])
    if "分" in rest:
        fen += DIGITS.index(rest[rest.index("分") - 1])
    return fen


def _read_integer(words: str) -> int:
    if "亿" in words:
        high, _, low = words.rpartition("亿")
        return _read_integer(high) * 10**8 + _read_integer(low)
    if "万" in words:
        high, _, low = words.partition("万")
        return _read_integer(high) * 10**4 + _read_integer(low)
    total, digit = 0, 0
    for ch in words.replace("零", ""):
        if ch in DIGITS:
            digit = DIGITS.index(ch)
        else:
            total += digit * {"拾": 10, "佰": 100, "仟": 1000}[ch]
            digit = 0
    return total + digit


@given(st.integers(min_value=-(10**22), max_value=10**22))
def test_reads_back_as_the_amount(fen: int) -> None:
    words = capitals(amount(fen))
    assert read(words) == fen
    assert set(words) <= set(DIGITS + "拾佰仟万亿元角分整负")
    assert "零零" not in words
    assert words == "零元整" or not words.lstrip("负").startswith("零")
    assert not words.endswith("零")
    for unit in "拾佰仟万亿元角分":
        assert f"零{unit}" not in words or words == "零元整"
    assert words.endswith("整") == (fen % 100 == 0)
    assert ("元" in words) == (abs(fen) >= 100 or fen == 0)
