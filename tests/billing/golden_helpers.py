"""Small builders for the hand-computed golden statements in test_golden.py.

Contracts, inventories and exclusions are written as JSON (a subset of YAML) so a test can state only
the settings it changes; probe rows come from the harness's `every`.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.billing.harness import every, statement_of, write_case

CST = timezone(timedelta(hours=8))  # Asia/Shanghai has no DST
HEADER = "device,time,probe,ok,rtt_ms,defects\n"

DAY = 86_400
HOUR = 3_600
JULY_S = 31 * DAY  # 2,678,400 s
JUNE_S = 30 * DAY  # 2,592,000 s
AUGUST_S = 31 * DAY  # 2,678,400 s

SLA: dict[str, Any] = {
    "down_after": 3,
    "up_after": 2,
    "degrade_after": 2,
    "stale_after": "5m",
    "unknown_counts_as": "up",
    "upstream_counts": False,
    "upstream_grace": "5m",
    "availability_tiers": [
        {"below": 0.99, "deduct": 0.10},
        {"below": 0.95, "deduct": 0.30},
        {"below": 0.90, "deduct": 1.00},
    ],
    "repair_deadline": {"urban": "4h", "rural": "8h"},
    "repair_overrun": {"per_started_hour": "50.00", "max_per_incident": "500.00"},
    "fleet_kinds": ["camera"],
    "fleet_kpis": {
        "online_rate": {"target": 0.95, "deduct": 0.05},
        "intact_rate": {"target": 0.90, "deduct": 0.05},
    },
    "cap": 0.30,
    "exclusions": ["maintenance", "power", "fiber_cut", "force_majeure", "customer"],
}

# Settings that switch one rule off, so a test isolates the rule it is about.
NO_TIERS: dict[str, Any] = {"availability_tiers": []}
NO_KPIS: dict[str, Any] = {"fleet_kpis": {}}
NO_OVERRUN: dict[str, Any] = {"repair_deadline": {"urban": "31d", "rural": "31d"}}
NO_CAP: dict[str, Any] = {"cap": 1.0}


def contract(
    fees: dict[str, str] | None = None, prorate: bool = True, contract_id: str = "C1", **sla: Any
) -> str:
    """A contract (C1 unless told, Asia/Shanghai) with the FORMATS.md defaults, `sla` keys replaced."""
    terms = copy.deepcopy(SLA)
    terms.update(sla)
    doc = {
        "id": contract_id,
        "vendor": "某某科技有限公司",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "term": {"start": "2025-01-01", "months": 36},
        "fees": fees or {"camera": "100.00", "switch": "0", "link": "0"},
        "prorate": prorate,
        "sla": terms,
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


SITES = [
    {"id": "S1", "name": "城东路口", "district": "右江区", "area": "urban"},
    {"id": "S2", "name": "乡道", "district": "右江区", "area": "rural"},
]


def cam(dev_id: str, n: int, site: str = "S1", **extra: Any) -> dict[str, Any]:
    """A camera of contract C1; `n` makes its address unique."""
    return {"id": dev_id, "kind": "camera", "address": f"10.0.1.{n}", "site": site, "contract": "C1", **extra}


def dev(dev_id: str, kind: str, n: int, site: str = "S1", **extra: Any) -> dict[str, Any]:
    return {"id": dev_id, "kind": kind, "address": f"10.0.2.{n}", "site": site, "contract": "C1", **extra}


def inventory(*devices: dict[str, Any]) -> str:
    return json.dumps({"sites": SITES, "devices": list(devices)}, ensure_ascii=False, indent=1) + "\n"


def at(month: int, day: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """An instant of 2025 in Asia/Shanghai (month 13 = 2026-01)."""
    if month == 13:
        return datetime(2026, 1, day, hh, mm, ss, tzinfo=CST)
    return datetime(2025, month, day, hh, mm, ss, tzinfo=CST)


def iso(t: datetime) -> str:
    return t.isoformat()


def reach(device: str, plan: list[tuple[datetime, int, int]], end: datetime, probe: str = "icmp") -> str:
    """Reachability rows: each (start, ok, step) segment probes every `step` s until the next start."""
    rows = []
    for i, (start, ok, step) in enumerate(plan):
        stop = plan[i + 1][0] if i + 1 < len(plan) else end
        rows.append(every(step, iso(start), iso(stop), device, ok=ok, probe=probe))
    return "".join(rows)


def video(device: str, plan: list[tuple[datetime, int, int]], end: datetime) -> str:
    """Video samples: ok=0 segments carry the defect `black`."""
    rows = []
    for i, (start, ok, step) in enumerate(plan):
        stop = plan[i + 1][0] if i + 1 < len(plan) else end
        rows.append(
            every(step, iso(start), iso(stop), device, ok=ok, probe="video", defects="" if ok else "black")
        )
    return "".join(rows)


def up_all(device: str, start: datetime, end: datetime, step: int = 300) -> str:
    return reach(device, [(start, 1, step)], end)


def down_between(
    device: str, down: datetime, recover: datetime, start: datetime, end: datetime, step: int = 300
) -> str:
    """Up every `step` s from `start`, failing every 60 s from `down`, up again (60 s, then `step`) from
    `recover`: one outage [down, recover) when the failure run is >= 3 probes."""
    return reach(
        device,
        [(start, 1, step), (down, 0, 60), (recover, 1, 60), (recover + timedelta(minutes=10), 1, step)],
        end,
    )


def outage_plan(
    start: datetime, end: datetime, outages: list[tuple[datetime, datetime]], step: int = 300
) -> list[tuple[datetime, int, int]]:
    """A plan that is up from `start` to `end` except the given [down, recover) outages (sorted)."""
    plan: list[tuple[datetime, int, int]] = [(start, 1, step)]
    for down, recover in outages:
        plan += [(down, 0, 60), (recover, 1, 60), (recover + timedelta(minutes=10), 1, step)]
    return plan


def run(
    tmp_path: Path,
    inv: str,
    probes: str,
    months: str | list[str] = "2025-07",
    contract_text: str | None = None,
    exclusions: list[dict[str, Any]] | None = None,
    other_contracts: dict[str, str] | None = None,
    contract_id: str = "C1",
    inspections: list[dict[str, Any]] | None = None,
) -> Any:
    """One statement document of `contract_id`, or a {month: document} dict when `months` is a list.
    `other_contracts` maps file names to contract texts written next to c1.yaml."""
    cfg = write_case(
        tmp_path,
        inv,
        HEADER + probes,
        contract=contract_text or contract(),
        exclusions=None
        if exclusions is None
        else json.dumps(exclusions, ensure_ascii=False, indent=1) + "\n",
        inspections=None
        if inspections is None
        else json.dumps(inspections, ensure_ascii=False, indent=1) + "\n",
    )
    for name, text in (other_contracts or {}).items():
        (tmp_path / "contracts" / name).write_text(text, encoding="utf-8")
    if isinstance(months, str):
        return statement_of(cfg, months, contract_id)
    return {m: statement_of(cfg, m, contract_id) for m in months}


def excl(
    ex_id: str,
    category: str,
    scope: dict[str, list[str]],
    start: datetime,
    end: datetime,
    status: str = "approved",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": ex_id,
        "category": category,
        "scope": scope,
        "start": iso(start),
        "end": iso(end),
        "reason": "test",
        "status": status,
    }
    if status == "approved":
        doc["approved_by"] = "ops-lead"
    return doc


def device(doc: dict[str, Any], dev_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [d for d in doc["devices"] if d["id"] == dev_id]
    assert len(found) == 1, f"{dev_id} on the statement {len(found)} times"
    return found[0]


def outages(doc: dict[str, Any], dev_id: str) -> list[dict[str, Any]]:
    return [o for o in doc["outages"] if o["device"] == dev_id]


def exclusion(doc: dict[str, Any], ex_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [e for e in doc["exclusions"] if e["id"] == ex_id]
    assert len(found) == 1, f"{ex_id} on the statement {len(found)} times"
    return found[0]


def lines(doc: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """Deduction lines as (rule, device or kpi, amount), sorted, reasons left out."""
    return sorted((d["rule"], d.get("device") or d.get("kpi"), d["amount"]) for d in doc["deductions"])


def totals(doc: dict[str, Any]) -> tuple[str, str, str]:
    return doc["fee_total"], doc["deduction_total"], doc["payable"]
