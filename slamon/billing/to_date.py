"""The month so far, as /metrics and the API show it (pure): what each contract's statement of the
month in progress says now, and what is at risk (risk.py). Computed where the store's jobs run
(service/mtd.py, in a child process) and carried to the service as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slamon.billing import risk
from slamon.billing.periods import period_of
from slamon.billing.rates import DeviceFigures, fleet_rates
from slamon.billing.statement import Statement
from slamon.model import SECOND, Kpi


@dataclass(frozen=True, slots=True)
class Money:
    currency: str
    fee_total: str
    deductions: str  # if the month ended now
    payable: str


@dataclass(slots=True)
class MonthToDate:
    rates: dict[str, dict[Kpi, float]] = field(default_factory=dict)  # contract -> KPI -> rate
    districts: dict[tuple[str, str], dict[Kpi, float]] = field(default_factory=dict)
    kpi_margins: dict[str, dict[Kpi, float]] = field(default_factory=dict)  # rate - target
    money: dict[str, Money] = field(default_factory=dict)
    # (device, contract, district, availability so far)
    availability: list[tuple[str, str, str, float]] = field(default_factory=list)
    # (device, contract, seconds of counted downtime left, the tier's threshold)
    tier_margins: list[tuple[str, str, float, str]] = field(default_factory=list)
    # (device, contract, seconds left before the repair deadline (negative: overrun), area)
    repair_left: list[tuple[str, str, float, str]] = field(default_factory=list)

    def add(self, st: Statement) -> None:
        """One contract's month-to-date statement."""
        contract = st.input.contract
        cid = contract.id
        whole = period_of(st.input.period.month, st.input.period.timezone)
        sites = st.input.inventory.sites
        self.rates[cid] = {k: float(v) for k, v in st.rates.items()}
        self.kpi_margins[cid] = {k: float(v) for k, v in risk.kpi_margins(st.rates, contract).items()}
        self.money[cid] = Money(
            contract.currency, str(st.fee_total), str(st.deduction_total), str(st.payable)
        )
        districts: dict[str, list[DeviceFigures]] = {}
        tiers = contract.sla.availability_tiers
        for f in st.devices:
            district = sites[f.device.site].district
            districts.setdefault(district, []).append(f)
            if f.scheduled > f.excluded:
                self.availability.append((f.device.id, cid, district, float(f.availability)))
            margin = risk.tier_margin(f, whole, tiers)
            if margin is not None:
                self.tier_margins.append((f.device.id, cid, margin.seconds / SECOND, margin.below))
            self.repair_left += [
                (r.device, cid, r.left / SECOND, r.area) for r in risk.repair_left(f, contract, sites)
            ]
        for district, figures in districts.items():
            self.districts[(cid, district)] = {k: float(v) for k, v in fleet_rates(figures, contract).items()}

    def to_json(self) -> dict[str, Any]:
        def kpis(rates: dict[Kpi, float]) -> dict[str, float]:
            return {k.value: v for k, v in rates.items()}

        return {
            "rates": {c: kpis(r) for c, r in self.rates.items()},
            "districts": [[c, d, kpis(r)] for (c, d), r in self.districts.items()],
            "kpi_margins": {c: kpis(r) for c, r in self.kpi_margins.items()},
            "money": {c: [m.currency, m.fee_total, m.deductions, m.payable] for c, m in self.money.items()},
            "availability": self.availability,
            "tier_margins": self.tier_margins,
            "repair_left": self.repair_left,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MonthToDate:
        def kpis(rates: dict[str, float]) -> dict[Kpi, float]:
            return {Kpi(k): float(v) for k, v in rates.items()}

        return cls(
            rates={c: kpis(r) for c, r in doc["rates"].items()},
            districts={(c, d): kpis(r) for c, d, r in doc["districts"]},
            kpi_margins={c: kpis(r) for c, r in doc["kpi_margins"].items()},
            money={c: Money(*m) for c, m in doc["money"].items()},
            availability=[tuple(x) for x in doc["availability"]],
            tier_margins=[tuple(x) for x in doc["tier_margins"]],
            repair_left=[tuple(x) for x in doc["repair_left"]],
        )
