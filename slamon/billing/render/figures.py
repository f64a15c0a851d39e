"""What every renderer that prints a rate prints the same way: the rate cut to 4 decimals of a
percent, the contract's target, and whether the statement charged the KPI (its verdict comes from
the statement's own deduction lines, never from comparing rounded figures)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from slamon.model import Contract

KPI_RULES = ("fleet_kpi", "kpi_shortfall")  # the lines a KPI below its target makes
KPIS = (("online_rate", "Online rate"), ("intact_rate", "Intact rate"))


def percent_cut(rate: float) -> Decimal:
    """A rate in percent, cut (not rounded) to 4 decimals: 0.98999996 is 98.9999, never shown as
    99.0000 and so as reaching a 99 % target it misses."""
    return (Decimal(repr(rate)) * 100).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)


def target_percent(value: Decimal) -> str:
    """A contract's target (a fraction such as 0.99) in percent, as written: 99, 99.5."""
    return f"{(value * 100).normalize():f}"


@dataclass(frozen=True, slots=True)
class KpiVerdict:
    key: str  # online_rate | intact_rate
    rate: float
    target: Decimal | None  # None: the contract sets none (or is not known to the renderer)
    charged: Decimal | None  # what the statement deducted for it (flat and per point); None: nothing

    @property
    def met(self) -> bool | None:
        """False when the statement charged it, True when it has a target and was not charged."""
        if self.charged is not None:
            return False
        return None if self.target is None else True


def kpi_verdicts(doc: Mapping[str, Any], contract: Contract | None) -> list[KpiVerdict]:
    targets = {k.value: t.target for k, t in contract.sla.fleet_kpis.items()} if contract else {}
    charged: dict[str, Decimal] = {}
    for line in doc["deductions"]:
        if line["rule"] in KPI_RULES and line.get("kpi"):
            charged[line["kpi"]] = charged.get(line["kpi"], Decimal("0.00")) + Decimal(line["amount"])
    return [KpiVerdict(key, doc["rates"][key], targets.get(key), charged.get(key)) for key, _ in KPIS]
