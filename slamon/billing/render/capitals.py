"""An amount in Chinese capitals (大写金额), as an invoice or a payment order writes it.

`capitals(Decimal("1327.49"))` is `壹仟叁佰贰拾柒元肆角玖分`. The rules are those of the People's
Bank's 《正确填写票据和结算凭证的基本规定》, taking the first of the forms it allows where it
allows two:

- digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟万亿, then 元角分; `壹拾` keeps its 壹 (壹拾元整);
- a run of zeros between two written digits is one 零 (陆仟零柒元, 壹仟零壹万); zeros at the end
  of a 万 or 亿 group are not read (壹拾万柒仟元), but a group that starts with zeros after a
  written one is (壹拾万零壹元, 壹亿零壹佰万元);
- 整 after 元 when there are no 角 and 分 (壹佰元整); none after 角 (壹仟肆佰零玖元伍角) or 分;
- 零 after 元 when the 元 digit is 0 and 角 follows (壹仟陆佰捌拾元零叁角贰分), and when 角 is 0 and
  分 follows (壹万陆仟肆佰零玖元零贰分);
- below one 元 the 元 is not written (伍角, 伍分); nothing at all is 零元整; a negative amount
  starts with 负.

The currency word (人民币) is the caller's. Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal

DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = ("", "拾", "佰", "仟")
_WAN = 10**4
_YI = 10**8


def capitals(amount: Decimal) -> str:
    """The amount in Chinese capitals; raises ValueError unless it is a finite amount in whole fen."""
    if not amount.is_finite():
        raise ValueError(f"{amount} is not an amount")
    fen_total = amount * 100
    if fen_total != fen_total.to_integral_value():
        raise ValueError(f"{amount} has more than 2 decimal places")
    fen_count = int(fen_total)
    if fen_count < 0:
        return "负" + capitals(-amount)
    yuan, rest = divmod(fen_count, 100)
    jiao, fen = divmod(rest, 10)
    if yuan == 0 and rest == 0:
        return "零元整"
    out = _integer(yuan) + "元" if yuan else ""
    if rest == 0:
        return out + "整"
    if jiao:
        if yuan and yuan % 10 == 0:
            out += "零"
        out += DIGITS[jiao] + "角"
    elif yuan:
        out += "零"
    if fen:
        out += DIGITS[fen] + "分"
    return out


def _integer(n: int) -> str:
    """A whole number > 0 read in groups of 亿 and 万, e.g. 壹拾万零壹."""
    if n >= _YI:
        high, low = divmod(n, _YI)
        return _integer(high) + "亿" + (("零" if low < _YI // 10 else "") + _integer(low) if low else "")
    if n >= _WAN:
        high, low = divmod(n, _WAN)
        return _group(high) + "万" + (("零" if low < _WAN // 10 else "") + _group(low) if low else "")
    return _group(n)


def _group(n: int) -> str:
    """1 to 9999: 仟佰拾 and the ones, one 零 for a run of zeros between written digits."""
    out = ""
    pending_zero = False
    for place in (3, 2, 1, 0):
        digit = n // 10**place % 10
        if digit == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out += "零"
            pending_zero = False
        out += DIGITS[digit] + _PLACES[place]
    return out
