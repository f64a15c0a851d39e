"""Small helpers to write hand-made input sets (inventory, contracts, exclusions, probes)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

CST = timezone(timedelta(hours=8))
JULY = datetime(2025, 7, 1, tzinfo=CST)
H = 3600
JULY_S = 31 * 86400


def at(hours: float, base: datetime = JULY) -> str:
    """ISO instant `hours` after 2025-07-01 00:00+08:00."""
    return (base + timedelta(hours=hours)).isoformat()


def contract(cid: str, **sla_over: Any) -> dict[str, Any]:
    top = {k: sla_over.pop(k) for k in ("fees", "prorate", "timezone") if k in sla_over}
    sla: dict[str, Any] = {
        "down_after": 3,
        "up_after": 2,
        "degrade_after": 2,
        "stale_after": "2h",
        "unknown_counts_as": "up",
        "upstream_counts": False,
        "upstream_grace": "5m",
        "availability_tiers": [],
        "repair_deadline": {"urban": "4h", "rural": "8h"},
        "repair_overrun": {"per_started_hour": "50.00", "max_per_incident": "500.00"},
        "fleet_kinds": ["camera"],
        "fleet_kpis": {},
        "exclusions": ["maintenance", "power", "fiber_cut", "force_majeure", "customer"],
    }
    sla.update(sla_over)
    out: dict[str, Any] = {
        "id": cid,
        "vendor": "v",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "term": {"start": "2025-01-01", "months": 36},
        "fees": {"camera": "100.00", "switch": "0", "link": "0"},
        "prorate": True,
        "sla": sla,
    }
    out.update(top)
    return out


def reach(
    dev: str,
    hours: range | list[int],
    fails: set[int] | range = frozenset(),
    probe: str = "icmp",
    skip: set[int] | range = frozenset(),
    base: datetime = JULY,
) -> list[list[str]]:
    return [[dev, at(h, base), probe, "0" if h in fails else "1", "0.5", ""] for h in hours if h not in skip]


def video(
    dev: str,
    hours: range | list[int],
    bad: set[int] | range = frozenset(),
    no_defect_list: set[int] = frozenset(),
) -> list[list[str]]:
    rows = []
    for h in hours:
        if h in bad:
            rows.append([dev, at(h), "video", "0", "", "" if h in no_defect_list else "black;frozen"])
        else:
            rows.append([dev, at(h), "video", "1", "", ""])
    return rows


@dataclass
class Case:
    root: Path
    sites: list[dict[str, Any]]
    devices: list[dict[str, Any]]
    contracts: list[dict[str, Any]]
    exclusions: list[dict[str, Any]] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def write(self) -> tuple[Path, list[Path], Path, list[Path]]:
        self.root.mkdir(parents=True, exist_ok=True)
        inv = self.root / "inventory.yaml"
        inv.write_text(
            yaml.safe_dump({"sites": self.sites, "devices": self.devices}, allow_unicode=True),
            encoding="utf-8",
        )
        cdir = self.root / "contracts"
        cdir.mkdir(exist_ok=True)
        cpaths = []
        for c in self.contracts:
            p = cdir / f"{c['id']}.yaml"
            p.write_text(yaml.safe_dump(c, allow_unicode=True, sort_keys=False), encoding="utf-8")
            cpaths.append(p)
        ex = self.root / "exclusions.yaml"
        ex.write_text(yaml.safe_dump(self.exclusions, allow_unicode=True, sort_keys=False), encoding="utf-8")
        probes = self.root / "probes.csv"
        with open(probes, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["device", "time", "probe", "ok", "rtt_ms", "defects"])
            w.writerows(self.rows)
        return inv, cpaths, ex, [probes]
