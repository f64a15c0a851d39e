"""Write a small case as real files (slamon.yaml, inventory, contract, exclusions, probe CSV), import
it the way `slamon import` does, and return the statement document `slamon statement` prints."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slamon.history import import_history
from slamon.issuing import statement
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.store import Store

NOW = datetime(2026, 1, 1, tzinfo=UTC)

CONTRACT = """\
id: C1
vendor: 某某科技有限公司
currency: CNY
timezone: Asia/Shanghai
term: {start: 2025-01-01, months: 36}
fees: {camera: "100.00", switch: "0", link: "0"}
prorate: true
sla:
  down_after: 3
  up_after: 2
  degrade_after: 2
  stale_after: 5m
  unknown_counts_as: up
  upstream_counts: false
  upstream_grace: 5m
  availability_tiers:
    - {below: 0.99, deduct: 0.10}
    - {below: 0.95, deduct: 0.30}
    - {below: 0.90, deduct: 1.00}
  repair_deadline: {urban: 4h, rural: 8h}
  repair_overrun: {per_started_hour: "50.00", max_per_incident: "500.00"}
  fleet_kinds: [camera]
  fleet_kpis:
    online_rate: {target: 0.95, deduct: 0.05}
    intact_rate: {target: 0.90, deduct: 0.05}
  cap: 0.30
  exclusions: [maintenance, power, fiber_cut, force_majeure, customer]
"""


def write_case(
    root: Path,
    inventory: str,
    probes: str,
    contract: str = CONTRACT,
    exclusions: str | None = None,
    inspections: str | None = None,
) -> Path:
    """Files of one case under `root`; returns the config path."""
    (root / "contracts").mkdir(parents=True, exist_ok=True)
    (root / "contracts" / "c1.yaml").write_text(textwrap.dedent(contract), encoding="utf-8")
    (root / "inventory.yaml").write_text(textwrap.dedent(inventory), encoding="utf-8")
    (root / "probes.csv").write_text(textwrap.dedent(probes).lstrip(), encoding="utf-8")
    config = "database: sqlite:///slamon.db\ninventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n"
    if exclusions is not None:
        (root / "exclusions.yaml").write_text(textwrap.dedent(exclusions), encoding="utf-8")
        config += "exclusions: exclusions.yaml\n"
    if inspections is not None:
        (root / "inspections.yaml").write_text(textwrap.dedent(inspections), encoding="utf-8")
        config += "inspections: inspections.yaml\n"
    (root / "slamon.yaml").write_text(config, encoding="utf-8")
    return root / "slamon.yaml"


def statement_of(
    config_path: Path, month: str, contract: str = "C1", *, csv: Path | None = None, issue: bool = False
) -> dict[str, Any]:
    config = load_config(config_path)
    fleet = load_fleet(config)
    store = Store(config.database)
    try:
        import_history(csv or config_path.parent / "probes.csv", store, fleet, NOW)
        return statement(store, contract, month, issue=issue, now=NOW).document
    finally:
        store.close()


def every(
    step_s: int, start: str, end: str, device: str, ok: int = 1, probe: str = "icmp", defects: str = ""
) -> str:
    """CSV rows for one device from `start` (inclusive) to `end` (exclusive) every `step_s` seconds."""
    t0 = datetime.fromisoformat(start)
    t1 = datetime.fromisoformat(end)
    rows = []
    t = t0
    from datetime import timedelta

    while t < t1:
        rtt = "0.5" if ok and probe != "video" else ""
        rows.append(f"{device},{t.isoformat()},{probe},{ok},{rtt},{defects}")
        t += timedelta(seconds=step_s)
    return "\n".join(rows) + ("\n" if rows else "")
