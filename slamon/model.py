"""The vocabulary every part of slamon shares: ids, kinds, states, causes and the loaded fleet.

Loaded values are frozen and hold aware UTC datetimes and timedeltas, as people read them.
The state engine, the store and billing work on `Micros` (integer microseconds since the Unix
epoch, UTC): exact, cheap to compare, and the unit the database keeps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import NewType, TypeAlias

DeviceId = NewType("DeviceId", str)
SiteId = NewType("SiteId", str)
ContractId = NewType("ContractId", str)
ExclusionId = NewType("ExclusionId", str)
InspectionId = NewType("InspectionId", str)

Micros: TypeAlias = int
"""An instant as microseconds since 1970-01-01T00:00:00Z, or a duration in microseconds."""

SECOND: Micros = 1_000_000
HOUR: Micros = 3600 * SECOND
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime | timedelta) -> Micros:
    """Exact conversion of an aware datetime (or a timedelta) to microseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value.isoformat()} has no UTC offset")
        value = value - _EPOCH
    return (value.days * 86_400 + value.seconds) * SECOND + value.microseconds


def from_micros(value: Micros) -> datetime:
    """The aware UTC datetime of an instant in microseconds."""
    return _EPOCH + timedelta(microseconds=value)


class DeviceKind(StrEnum):
    CAMERA = "camera"
    SWITCH = "switch"
    LINK = "link"


class ProbeKind(StrEnum):
    ICMP = "icmp"
    SNMP = "snmp"
    VIDEO = "video"

    @property
    def is_reachability(self) -> bool:
        """ICMP and SNMP results say whether a device answers; video results say how well it sees."""
        return self is not ProbeKind.VIDEO


class Defect(StrEnum):
    """What a video sample can be wrong with. The order is the bit order in stored results: append only."""

    NO_SIGNAL = "no_signal"
    LOW_RESOLUTION = "low_resolution"
    BLACK = "black"
    FROZEN = "frozen"
    BLUR = "blur"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    COLOR_CAST = "color_cast"
    NOISE = "noise"
    OCCLUDED = "occluded"
    STRIPE = "stripe"
    JITTER = "jitter"
    SCENE_CHANGE = "scene_change"
    LOW_CONTRAST = "low_contrast"
    MOSAIC = "mosaic"


DEFECT_BITS: Mapping[Defect, int] = {d: 1 << i for i, d in enumerate(Defect)}


def defects_to_mask(defects: frozenset[Defect]) -> int:
    mask = 0
    for d in defects:
        mask |= DEFECT_BITS[d]
    return mask


def mask_to_defects(mask: int) -> frozenset[Defect]:
    return frozenset(d for d, bit in DEFECT_BITS.items() if mask & bit)


class DeviceState(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


class ExclusionCategory(StrEnum):
    MAINTENANCE = "maintenance"
    POWER = "power"
    FIBER_CUT = "fiber_cut"
    FORCE_MAJEURE = "force_majeure"
    CUSTOMER = "customer"


class ExclusionStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


class UnknownCountsAs(StrEnum):
    UP = "up"
    DOWN = "down"
    EXCLUDED = "excluded"


class Kpi(StrEnum):
    ONLINE_RATE = "online_rate"
    INTACT_RATE = "intact_rate"


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One observation of one device: the unit of evidence the SLA is computed from."""

    device: DeviceId
    kind: ProbeKind
    time: datetime  # aware UTC, from the injected Clock
    ok: bool
    rtt_ms: float | None = None
    loss: float | None = None
    defects: frozenset[Defect] = frozenset()
    error: str | None = None  # why ok is False, for humans; never a metric label
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """Evidence the results alone do not hold, as the ledger keeps it: a switch's port states as
    they changed (`port`), a reboot (`reboot`), a site that went dark while its upstream answered
    (`power`)."""

    at: Micros
    kind: str  # port | reboot | power
    subject: str  # a switch's id (port, reboot) or a site's (power)
    body: Mapping[str, object]  # JSON: what was seen


# --- inventory --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Site:
    id: SiteId
    name: str
    district: str
    area: str  # a key of the contract's repair_deadline: urban, rural, …


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    version: str = "2c"  # "2c" or "3"
    port: int = 161


@dataclass(frozen=True, slots=True)
class Uplink:
    """The switch port a device hangs off: `port` is the port's ifName, or its ifIndex as digits."""

    switch: DeviceId
    port: str

    def __str__(self) -> str:
        return f"{self.switch}:{self.port}"


@dataclass(frozen=True, slots=True)
class Device:
    id: DeviceId
    kind: DeviceKind
    address: str  # normalised IPv4 or IPv6 text
    site: SiteId
    contract: ContractId
    parent: DeviceId | None = None
    channels: int = 1
    stream: str | None = None
    snmp: SnmpTarget | None = None
    in_service: datetime | None = None  # aware UTC; None: since forever
    out_of_service: datetime | None = None  # aware UTC, exclusive; None: still in service
    uplink: Uplink | None = None  # the switch port behind it (SNMP port evidence)


@dataclass(frozen=True, slots=True)
class Inventory:
    sites: Mapping[SiteId, Site]
    devices: Mapping[DeviceId, Device]

    def ancestors(self, device: DeviceId) -> Iterator[Device]:
        """Parent, grandparent, … nearest first (the loader has rejected cycles)."""
        parent = self.devices[device].parent
        while parent is not None:
            d = self.devices[parent]
            yield d
            parent = d.parent


# --- contracts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tier:
    below: Decimal
    deduct: Decimal


class PointCount(StrEnum):
    """How a per-point shortfall counts a part of a percentage point (docs/sla.md §6.5)."""

    STARTED = "started"  # every started point: ceil
    WHOLE = "whole"  # whole points only: floor


@dataclass(frozen=True, slots=True)
class PerPoint:
    """Per percentage point a fleet rate falls below its target, `deduct` of the fee total."""

    deduct: Fraction  # exact: tenders write 1/45, which no decimal is
    points: PointCount = PointCount.STARTED
    limit: Decimal | None = None  # `max`: the most the line takes, as a share of the fee total


@dataclass(frozen=True, slots=True)
class KpiTarget:
    target: Decimal
    deduct: Decimal | None  # the flat share below the target; None: only per_point applies
    per_point: PerPoint | None = None


class FaultTime(StrEnum):
    """What a score card's fault_hours item counts as a channel's fault time."""

    DOWN = "down"  # D
    DOWN_OR_DEGRADED = "down_or_degraded"  # D + G


class ScoreCause(StrEnum):
    """The causes a score card takes points off for, in the order a statement lists them."""

    FAULT_HOURS = "fault_hours"
    REPAIR_OVERRUN = "repair_overrun"
    MISSED_INSPECTION = "missed_inspection"


@dataclass(frozen=True, slots=True)
class FaultHours:
    over: timedelta  # more than this much fault time in the month loses points
    points: Decimal  # per channel
    time: FaultTime = FaultTime.DOWN


@dataclass(frozen=True, slots=True)
class PayBand:
    at_least: Decimal  # the lowest score of the band
    pay: Decimal  # the share of the fee total paid


@dataclass(frozen=True, slots=True)
class ScoreCard:
    """A 100-point monthly assessment and the share of the fee its score pays (docs/sla.md §6.6).

    `pay` runs from the highest band down; the loader has checked that the last starts at 0, each
    starts below the one above and pays no more than it."""

    pay: tuple[PayBand, ...]
    fault_hours: FaultHours | None = None
    repair_overrun: Decimal | None = None  # points per outage past its repair deadline
    missed_inspection: Decimal | None = None  # points per missed inspection


@dataclass(frozen=True, slots=True)
class RepairOverrun:
    per_started_hour: Decimal
    max_per_incident: Decimal | None = None


DEFAULT_MIN_COVERAGE = Decimal("0.99")
"""sla.min_coverage when a contract does not set it: the share of the devices' scheduled seconds
with evidence below which a month is issued only with an explicit override (docs/sla.md §7)."""


@dataclass(frozen=True, slots=True)
class SlaTerms:
    """Every number of SLA.md as one contract sets it; defaults are SLA.md's."""

    down_after: int = 3
    up_after: int = 2
    degrade_after: int = 2
    stale_after: timedelta = timedelta(minutes=5)
    unknown_counts_as: UnknownCountsAs = UnknownCountsAs.UP
    upstream_counts: bool = False
    upstream_grace: timedelta = timedelta(minutes=5)
    availability_tiers: tuple[Tier, ...] = ()
    repair_deadline: Mapping[str, timedelta] = field(default_factory=dict)
    repair_overrun: RepairOverrun | None = None
    fleet_kinds: frozenset[DeviceKind] = frozenset({DeviceKind.CAMERA})
    fleet_kpis: Mapping[Kpi, KpiTarget] = field(default_factory=dict)
    cap: Decimal | None = None
    exclusions: frozenset[ExclusionCategory] = frozenset()
    score_card: ScoreCard | None = None
    filing_deadline: timedelta | None = None  # exclusion proposals for a month close this long after it
    min_coverage: Decimal | None = None  # None: DEFAULT_MIN_COVERAGE (a month below it is not issued)

    @property
    def coverage_needed(self) -> Decimal:
        """The coverage a month needs to be issued without an override."""
        return DEFAULT_MIN_COVERAGE if self.min_coverage is None else self.min_coverage


@dataclass(frozen=True, slots=True)
class Contract:
    id: ContractId
    vendor: str
    currency: str
    timezone: str  # IANA name, e.g. Asia/Shanghai
    term_start: date
    term_months: int
    fees: Mapping[DeviceKind, Decimal]  # per channel per month
    prorate: bool = True
    sla: SlaTerms = field(default_factory=SlaTerms)
    buyer: str | None = None  # 甲方, the bureau that leases the devices: named on the PDF it signs


# --- exclusions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    devices: frozenset[DeviceId] = frozenset()
    sites: frozenset[SiteId] = frozenset()
    contracts: frozenset[ContractId] = frozenset()

    def covers(self, device: Device) -> bool:
        return device.id in self.devices or device.site in self.sites or device.contract in self.contracts


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A maintenance window or an after-the-fact exclusion (SLA.md §4)."""

    id: ExclusionId
    category: ExclusionCategory
    scope: Scope
    start: datetime  # aware UTC
    end: datetime  # aware UTC, exclusive
    reason: str
    status: ExclusionStatus
    approved_by: str | None = None


# --- inspections ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MissedInspection:
    """An inspection round (巡检) the vendor did not do, as operations entered it: what a score card's
    missed_inspection item counts in the month of its `date`."""

    id: InspectionId
    contract: ContractId
    date: date  # the day it was due, in the contract's time zone
    reason: str
    entered_by: str
    site: SiteId | None = None


# --- the whole picture ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fleet:
    """Everything the files say, cross-checked: what `slamon check` validates and `run` monitors."""

    inventory: Inventory
    contracts: Mapping[ContractId, Contract]
    exclusions: tuple[Exclusion, ...] = ()
    inspections: tuple[MissedInspection, ...] = ()
    # SHA-256 of the canonical inventory, as the store versions it, when the fleet cache knows it:
    # hashing 100,000 devices again at every start would cost a second
    inventory_sha256: str | None = field(default=None, compare=False)
