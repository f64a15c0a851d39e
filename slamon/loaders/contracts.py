"""Contract files: the fees and SLA settings a statement is computed from (SLA.md).

Every number is read exactly (Decimal, never float) and checked against the range its meaning
allows, so that a typo is a load error rather than a wrong invoice.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from os import PathLike
from typing import TypeVar

from slamon.errors import ContractError
from slamon.loaders.yamlio import Source, describe, key_path, load_yaml
from slamon.model import (
    Contract,
    ContractId,
    DeviceKind,
    ExclusionCategory,
    FaultHours,
    FaultTime,
    Kpi,
    KpiTarget,
    PayBand,
    PerPoint,
    PointCount,
    RepairOverrun,
    ScoreCard,
    SlaTerms,
    Tier,
    UnknownCountsAs,
)
from slamon.units import quote

E = TypeVar("E", bound=StrEnum)

DEFAULT_CURRENCY = "CNY"
DEFAULT_TIMEZONE = "Asia/Shanghai"
AREA_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
AREA_HINT = "use lowercase letters, digits and _, e.g. urban"

MAX_TERM_MONTHS = 1200  # a hundred years
TERM_START_YEARS = (1970, 2199)  # so that every month of any term has a 4-digit year
MAX_COUNT = 10_000  # down_after, up_after, degrade_after: probes in a row
MAX_STALE_AFTER = timedelta(days=1)
MAX_UPSTREAM_GRACE = timedelta(days=1)
MAX_REPAIR_DEADLINE = timedelta(days=365)
MAX_FILING_DEADLINE = timedelta(days=366)  # exclusion proposals for a month: at most a year after it
MAX_FAULT_OVER = timedelta(days=31)  # a score card's fault_hours.over: no month is longer
MAX_SCORE = Decimal(100)
SCORE_PLACES = 2  # points and band scores: 0.5 points, a band from 92.5
MAX_RATIO_DIGITS = 9  # a per-point share written as a ratio: 1/45, at most 9 digits each side
_RATIO = re.compile(r"([0-9]+)/([0-9]+)")

_CURRENCY = re.compile(r"[A-Z]{3}")
_TOP_KEYS = ("id", "vendor", "buyer", "currency", "timezone", "term", "fees", "prorate", "sla")
_SLA_KEYS = (
    "down_after",
    "up_after",
    "degrade_after",
    "stale_after",
    "unknown_counts_as",
    "upstream_counts",
    "upstream_grace",
    "availability_tiers",
    "repair_deadline",
    "repair_overrun",
    "fleet_kinds",
    "fleet_kpis",
    "cap",
    "exclusions",
    "score_card",
    "filing_deadline",
    "min_coverage",
)
_SCORE_ITEMS = ("fault_hours", "repair_overrun", "missed_inspection")
_KIND_NAMES = tuple(kind.value for kind in DeviceKind)
_KINDS = ", ".join(_KIND_NAMES)
_KPI_NAMES = tuple(kpi.value for kpi in Kpi)


def load_contract(path: str | PathLike[str]) -> Contract:
    """Read and validate one contract file; raises ContractError naming the key and the problem."""
    src = Source(path, ContractError)
    doc = src.mapping(
        "", load_yaml(path, ContractError), _TOP_KEYS, required=("id", "vendor", "term", "fees")
    )
    contract_id = ContractId(src.ident("id", doc["id"]))
    vendor = src.text("vendor", doc["vendor"])
    buyer: str | None = None
    if "buyer" in doc:
        if isinstance(doc["buyer"], str) and not doc["buyer"].strip():
            src.fail("buyer", "empty (give the buyer's name, or leave the key out)")
        buyer = src.text("buyer", doc["buyer"])
    currency = DEFAULT_CURRENCY
    if "currency" in doc:
        currency = src.text("currency", doc["currency"])
        if not _CURRENCY.fullmatch(currency):
            src.fail(
                "currency", f"{quote(currency)} is not a currency code (use 3 capital letters, e.g. CNY)"
            )
    timezone = DEFAULT_TIMEZONE
    if "timezone" in doc:
        timezone = _timezone(src, doc["timezone"])
    term = src.mapping("term", doc["term"], ("start", "months"), required=("start", "months"))
    term_start = src.calendar_date("term.start", term["start"])
    if not TERM_START_YEARS[0] <= term_start.year <= TERM_START_YEARS[1]:
        src.fail(
            "term.start",
            f"{term_start.isoformat()} is out of range (use a date from {TERM_START_YEARS[0]}-01-01 "
            f"to {TERM_START_YEARS[1]}-12-31)",
        )
    term_months = src.integer("term.months", term["months"], minimum=1, maximum=MAX_TERM_MONTHS)
    fees = _fees(src, doc["fees"])
    prorate = src.boolean("prorate", doc["prorate"]) if "prorate" in doc else True
    sla = _sla(src, doc.get("sla", {}))
    return Contract(
        id=contract_id,
        vendor=vendor,
        currency=currency,
        timezone=timezone,
        term_start=term_start,
        term_months=term_months,
        fees=fees,
        prorate=prorate,
        sla=sla,
        buyer=buyer,
    )


def load_contracts(paths: Iterable[str | PathLike[str]]) -> dict[ContractId, Contract]:
    """Every contract by id; the same id in two files is an error naming both."""
    contracts: dict[ContractId, Contract] = {}
    files: dict[ContractId, str | PathLike[str]] = {}
    for path in paths:
        contract = load_contract(path)
        if contract.id in files:
            raise ContractError(
                path, "id", f"duplicate contract id {quote(contract.id)} (also in {files[contract.id]})"
            )
        contracts[contract.id] = contract
        files[contract.id] = path
    return contracts


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA zone that zoneinfo can load (tzdata is a dependency)."""
    if not name or name != name.strip():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _timezone(src: Source, value: object) -> str:
    name = src.text("timezone", value)
    if not is_time_zone(name):
        src.fail("timezone", f"unknown time zone {quote(name)}")
    return name


def _fees(src: Source, value: object) -> dict[DeviceKind, Decimal]:
    doc = src.mapping("fees", value, _KIND_NAMES, unknown=f"unknown device kind (use {_KINDS})")
    return {DeviceKind(kind): src.money(key_path("fees", kind), fee) for kind, fee in doc.items()}


def _sla(src: Source, value: object) -> SlaTerms:
    doc = src.mapping("sla", value, _SLA_KEYS)
    defaults = SlaTerms()

    def count(key: str, default: int) -> int:
        return src.integer(f"sla.{key}", doc[key], minimum=1, maximum=MAX_COUNT) if key in doc else default

    stale_after = defaults.stale_after
    if "stale_after" in doc:
        stale_after = src.duration("sla.stale_after", doc["stale_after"], maximum=MAX_STALE_AFTER)
    upstream_grace = defaults.upstream_grace
    if "upstream_grace" in doc:
        upstream_grace = src.duration(
            "sla.upstream_grace", doc["upstream_grace"], zero_ok=True, maximum=MAX_UPSTREAM_GRACE
        )
    unknown_counts_as = defaults.unknown_counts_as
    if "unknown_counts_as" in doc:
        unknown_counts_as = src.choice(
            "sla.unknown_counts_as", doc["unknown_counts_as"], UnknownCountsAs, "a way to count unknown time"
        )
    upstream_counts = defaults.upstream_counts
    if "upstream_counts" in doc:
        upstream_counts = src.boolean("sla.upstream_counts", doc["upstream_counts"])
    tiers = _tiers(src, doc["availability_tiers"]) if "availability_tiers" in doc else ()
    deadlines = _repair_deadline(src, doc["repair_deadline"]) if "repair_deadline" in doc else {}
    overrun = _repair_overrun(src, doc["repair_overrun"]) if "repair_overrun" in doc else None
    score_card = _score_card(src, doc["score_card"]) if "score_card" in doc else None
    if score_card is not None:
        # each cause is judged once: by the classic rule or by the score card (docs/sla.md §6.6)
        if score_card.fault_hours is not None and tiers:
            src.fail(
                "sla.score_card.fault_hours",
                "a device's downtime is judged by sla.availability_tiers already (a contract has one or the other)",
            )
        if score_card.repair_overrun is not None and overrun is not None:
            src.fail(
                "sla.score_card.repair_overrun",
                "overruns are charged by sla.repair_overrun already (a contract has one or the other)",
            )
        if score_card.repair_overrun is not None and not deadlines:
            src.fail(
                "sla.score_card.repair_overrun",
                "needs sla.repair_deadline (the deadlines an overrun is measured against)",
            )
    return SlaTerms(
        down_after=count("down_after", defaults.down_after),
        up_after=count("up_after", defaults.up_after),
        degrade_after=count("degrade_after", defaults.degrade_after),
        stale_after=stale_after,
        unknown_counts_as=unknown_counts_as,
        upstream_counts=upstream_counts,
        upstream_grace=upstream_grace,
        availability_tiers=tiers,
        repair_deadline=deadlines,
        repair_overrun=overrun,
        fleet_kinds=_fleet_kinds(src, doc["fleet_kinds"]) if "fleet_kinds" in doc else defaults.fleet_kinds,
        fleet_kpis=_fleet_kpis(src, doc["fleet_kpis"]) if "fleet_kpis" in doc else {},
        cap=src.fraction("sla.cap", doc["cap"], zero_ok=True) if "cap" in doc else None,
        exclusions=_exclusions(src, doc["exclusions"]) if "exclusions" in doc else frozenset(),
        score_card=score_card,
        filing_deadline=(
            src.duration(
                "sla.filing_deadline", doc["filing_deadline"], zero_ok=True, maximum=MAX_FILING_DEADLINE
            )
            if "filing_deadline" in doc
            else None
        ),
        min_coverage=src.fraction("sla.min_coverage", doc["min_coverage"], zero_ok=True)
        if "min_coverage" in doc
        else None,
    )


def _tiers(src: Source, value: object) -> tuple[Tier, ...]:
    tiers: list[Tier] = []
    for i, item in enumerate(src.sequence("sla.availability_tiers", value)):
        where = key_path("sla.availability_tiers", i)
        tier = src.mapping(where, item, ("below", "deduct"), required=("below", "deduct"))
        tiers.append(
            Tier(
                below=src.fraction(key_path(where, "below"), tier["below"], zero_ok=False),
                deduct=src.fraction(key_path(where, "deduct"), tier["deduct"], zero_ok=True),
            )
        )
    return tuple(tiers)


def _repair_deadline(src: Source, value: object) -> dict[str, timedelta]:
    if not isinstance(value, dict):
        src.fail("sla.repair_deadline", f"expected a mapping, got {describe(value)}")
    deadlines: dict[str, timedelta] = {}
    for area, deadline in value.items():
        if not isinstance(area, str):
            src.fail("sla.repair_deadline", f"{quote(area)} is not an area name ({AREA_HINT})")
        where = key_path("sla.repair_deadline", area)
        if not AREA_PATTERN.fullmatch(area):
            src.fail(where, f"{quote(area)} is not an area name ({AREA_HINT})")
        if deadline is None:
            src.fail(where, "empty (required)")
        deadlines[area] = src.duration(where, deadline, maximum=MAX_REPAIR_DEADLINE)
    return deadlines


def _repair_overrun(src: Source, value: object) -> RepairOverrun:
    where = "sla.repair_overrun"
    doc = src.mapping(where, value, ("per_started_hour", "max_per_incident"), required=("per_started_hour",))
    per_hour = src.money(key_path(where, "per_started_hour"), doc["per_started_hour"])
    cap: Decimal | None = None
    if "max_per_incident" in doc:
        cap = src.money(key_path(where, "max_per_incident"), doc["max_per_incident"])
    return RepairOverrun(per_started_hour=per_hour, max_per_incident=cap)


def _fleet_kinds(src: Source, value: object) -> frozenset[DeviceKind]:
    if not src.sequence("sla.fleet_kinds", value):
        src.fail("sla.fleet_kinds", f"empty (give at least one of {_KINDS})")
    return _distinct(src, "sla.fleet_kinds", value, DeviceKind, "a device kind", "kind")


def _fleet_kpis(src: Source, value: object) -> dict[Kpi, KpiTarget]:
    doc = src.mapping(
        "sla.fleet_kpis", value, _KPI_NAMES, unknown=f"unknown kpi (use {', '.join(_KPI_NAMES)})"
    )
    kpis: dict[Kpi, KpiTarget] = {}
    for name, item in doc.items():
        where = key_path("sla.fleet_kpis", name)
        kpi = src.mapping(where, item, ("target", "deduct", "per_point"), required=("target",))
        target = src.fraction(key_path(where, "target"), kpi["target"], zero_ok=False)
        if "deduct" not in kpi and "per_point" not in kpi:
            src.fail(key_path(where, "deduct"), "missing (required unless per_point is given)")
        deduct = None
        if "deduct" in kpi:
            deduct = src.fraction(key_path(where, "deduct"), kpi["deduct"], zero_ok=True)
        per_point = (
            _per_point(src, key_path(where, "per_point"), kpi["per_point"]) if "per_point" in kpi else None
        )
        kpis[Kpi(name)] = KpiTarget(target=target, deduct=deduct, per_point=per_point)
    return kpis


def _per_point(src: Source, where: str, value: object) -> PerPoint:
    doc = src.mapping(where, value, ("deduct", "points", "max"), required=("deduct",))
    points = PointCount.STARTED
    if "points" in doc:
        points = src.choice(key_path(where, "points"), doc["points"], PointCount, "a way to count points")
    limit = src.fraction(key_path(where, "max"), doc["max"], zero_ok=False) if "max" in doc else None
    return PerPoint(deduct=_share(src, key_path(where, "deduct"), doc["deduct"]), points=points, limit=limit)


def _share(src: Source, where: str, value: object) -> Fraction:
    """A share of the fee total from 0 to 1: a decimal (at most 6 places), or a ratio of whole
    numbers as tenders write it ("1/45"), kept exact."""
    if isinstance(value, str) and "/" in value:
        ratio = _RATIO.fullmatch(value)
        if ratio is None:
            src.fail(where, f"{quote(value)} is not a ratio (use whole numbers, e.g. 1/45)")
        top, bottom = ratio.groups()
        if len(top) > MAX_RATIO_DIGITS or len(bottom) > MAX_RATIO_DIGITS:
            src.fail(where, f"{quote(value)} has more than {MAX_RATIO_DIGITS} digits on a side")
        if int(bottom) == 0:
            src.fail(where, f"{quote(value)} divides by zero")
        share = Fraction(int(top), int(bottom))
        if share > 1:
            src.fail(where, f"{quote(value)} must be between 0 and 1")
        return share
    return Fraction(src.fraction(where, value, zero_ok=True))


def _score_card(src: Source, value: object) -> ScoreCard:
    where = "sla.score_card"
    doc = src.mapping(where, value, (*_SCORE_ITEMS, "pay"), required=("pay",))
    if not any(item in doc for item in _SCORE_ITEMS):
        src.fail(where, f"give at least one of {', '.join(_SCORE_ITEMS)}")
    fault_hours = None
    if "fault_hours" in doc:
        at = key_path(where, "fault_hours")
        item = src.mapping(at, doc["fault_hours"], ("over", "points", "time"), required=("over", "points"))
        time = FaultTime.DOWN
        if "time" in item:
            time = src.choice(key_path(at, "time"), item["time"], FaultTime, "a fault time")
        fault_hours = FaultHours(
            over=src.duration(key_path(at, "over"), item["over"], zero_ok=True, maximum=MAX_FAULT_OVER),
            points=_score(src, key_path(at, "points"), item["points"]),
            time=time,
        )

    def per_event(name: str) -> Decimal | None:
        if name not in doc:
            return None
        at = key_path(where, name)
        item = src.mapping(at, doc[name], ("points",), required=("points",))
        return _score(src, key_path(at, "points"), item["points"])

    return ScoreCard(
        pay=_pay_bands(src, key_path(where, "pay"), doc["pay"]),
        fault_hours=fault_hours,
        repair_overrun=per_event("repair_overrun"),
        missed_inspection=per_event("missed_inspection"),
    )


def _score(src: Source, where: str, value: object) -> Decimal:
    """Points (lost, or where a band starts): 0 to 100, at most 2 decimal places."""
    number = src.decimal(where, value)
    if number < 0:
        src.fail(where, f"{number} must not be negative")
    if number > MAX_SCORE:
        src.fail(where, f"{number} must be at most {MAX_SCORE}")
    src.places(where, number, SCORE_PLACES)
    return number


def _pay_bands(src: Source, where: str, value: object) -> tuple[PayBand, ...]:
    """The bands from the highest score down: every score from 0 to 100 in exactly one, and a
    lower score never paid more."""
    items = src.sequence(where, value)
    if not items:
        src.fail(where, "empty (give the bands from the highest score down, the last at_least: 0)")
    bands: list[PayBand] = []
    for i, item in enumerate(items):
        at = key_path(where, i)
        band = src.mapping(at, item, ("at_least", "pay"), required=("at_least", "pay"))
        at_least = _score(src, key_path(at, "at_least"), band["at_least"])
        pay = src.fraction(key_path(at, "pay"), band["pay"], zero_ok=True)
        if bands and at_least >= bands[-1].at_least:
            src.fail(
                key_path(at, "at_least"),
                f"{at_least} must be below {bands[-1].at_least}, where the band above starts "
                f"(list the bands from the highest score down)",
            )
        if bands and pay > bands[-1].pay:
            src.fail(key_path(at, "pay"), f"{pay} is more than the band above pays ({bands[-1].pay})")
        bands.append(PayBand(at_least=at_least, pay=pay))
    if bands[-1].at_least != 0:
        last = bands[-1].at_least
        src.fail(
            key_path(key_path(where, len(bands) - 1), "at_least"),
            f"{last} leaves the scores below {last} without a band (the last band must be at_least: 0)",
        )
    return tuple(bands)


def _exclusions(src: Source, value: object) -> frozenset[ExclusionCategory]:
    return _distinct(src, "sla.exclusions", value, ExclusionCategory, "an exclusion category", "category")


def _distinct(src: Source, where: str, value: object, enum: type[E], noun: str, word: str) -> frozenset[E]:
    """A list of members of a closed set, each at most once."""
    members: list[E] = []
    for i, item in enumerate(src.sequence(where, value)):
        at = key_path(where, i)
        member = src.choice(at, item, enum, noun)
        if member in members:
            src.fail(at, f"duplicate {word} {quote(member.value)}")
        members.append(member)
    return frozenset(members)
