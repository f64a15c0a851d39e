"""Billing periods (SLA.md §1): calendar months in the contract's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from slamon.model import Contract, Device, Micros, to_micros

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits only, matched whole
FIRST_YEAR, LAST_YEAR = 1970, 2199  # the months slamon bills: its instants' range (the API's too)


@dataclass(frozen=True, slots=True)
class Period:
    month: str  # YYYY-MM
    timezone: str
    start: Micros
    end: Micros  # exclusive: 00:00 on the first of the next month

    @property
    def length(self) -> Micros:
        return self.end - self.start

    @property
    def first_day(self) -> date:
        return date(int(self.month[:4]), int(self.month[5:]), 1)


def parse_month(text: str) -> tuple[int, int]:
    """'2025-07' → (2025, 7); ValueError with a readable message otherwise, also for a year outside
    1970 to 2199 (a month of year 0 or 9999-12 has no start or end to compute)."""
    m = _MONTH.fullmatch(text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month (use YYYY-MM, e.g. 2025-07)")
    year = int(m.group(1))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"{text!r} is out of range ({FIRST_YEAR} to {LAST_YEAR})")
    return year, int(m.group(2))


def period_of(month: str, timezone: str) -> Period:
    year, mon = parse_month(month)
    zone = ZoneInfo(timezone)
    nxt = (year + 1, 1) if mon == 12 else (year, mon + 1)
    start = to_micros(datetime(year, mon, 1, tzinfo=zone))
    end = to_micros(datetime(nxt[0], nxt[1], 1, tzinfo=zone))
    return Period(f"{year:04d}-{mon:02d}", timezone, start, end)


def months_of_term(contract: Contract) -> tuple[str, str]:
    """The first and last month of the contract's term, as YYYY-MM."""
    y, m = contract.term_start.year, contract.term_start.month
    last = y * 12 + (m - 1) + contract.term_months - 1
    return f"{y:04d}-{m:02d}", f"{last // 12:04d}-{last % 12 + 1:02d}"


def in_term(contract: Contract, month: str) -> bool:
    first, last = months_of_term(contract)
    return first <= month <= last


def service_span(device: Device) -> tuple[Micros | None, Micros | None]:
    """[in_service, out_of_service) in µs; None for an open end."""
    return (
        None if device.in_service is None else to_micros(device.in_service),
        None if device.out_of_service is None else to_micros(device.out_of_service),
    )


def service_window(device: Device, period: Period) -> tuple[Micros, Micros]:
    """W = [max(P.start, in_service), min(P.end, out_of_service)); empty when start >= end."""
    first, last = service_span(device)
    start = period.start if first is None else max(period.start, first)
    end = period.end if last is None else min(period.end, last)
    return start, max(start, end)
