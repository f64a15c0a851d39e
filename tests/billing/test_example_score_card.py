"""docs/sla.md §6.5 and §6.6 worked on the July 2025 example: the example's evidence under YJ-2025
with its tiers and overrun money replaced by the score card of the docs, one missed inspection, and
per-point KPIs. The figures the docs quote, and every figure against the reference."""

from __future__ import annotations

import gzip
import runpy
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from slamon.billing.statement import compute
from slamon.history import import_history
from slamon.issuing import gather
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.store import Store
from tests.billing.test_against_reference import assert_matches_reference
from tests.reference.sla_reference import compute_statement

pytestmark = pytest.mark.slow  # the July example month: a 1.5-million-row import

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "examples" / "july-2025"
INSPECTION = (
    "- {id: MI-2025-07-01, contract: YJ-2025, date: 2025-07-15, site: YJ-S004,\n"
    "   reason: 月度巡检未按时完成, entered_by: 王经理}\n"
)


def documented(marker: str) -> dict[str, Any]:
    """The first YAML block after `marker` in docs/sla.md."""
    doc = (ROOT / "docs" / "sla.md").read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(
        doc.split(marker, 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    )
    return loaded


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's files, its contract as §6.6 rewrites it, and its generated evidence."""
    root = tmp_path_factory.mktemp("july-2025-score-card")
    for name in ("inventory.yaml", "exclusions.yaml"):
        shutil.copy(EXAMPLE / name, root / name)
    contract = yaml.safe_load((EXAMPLE / "contracts" / "yj-2025.yaml").read_text(encoding="utf-8"))
    sla = contract["sla"]
    del sla["availability_tiers"], sla["repair_overrun"]  # the card judges those causes
    sla.update(documented("### 6.6 Score card")["sla"])
    (root / "contracts").mkdir()
    (root / "contracts" / "yj-2025.yaml").write_text(
        yaml.safe_dump(contract, allow_unicode=True), encoding="utf-8"
    )
    (root / "inspections.yaml").write_text(INSPECTION, encoding="utf-8")
    (root / "slamon.yaml").write_text(
        "database: sqlite:///slamon.db\ninventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n"
        "exclusions: exclusions.yaml\ninspections: inspections.yaml\n",
        encoding="utf-8",
    )
    argv = sys.argv
    sys.argv = ["generate.py", str(root / "probes.csv.gz")]
    try:
        runpy.run_path(str(EXAMPLE / "generate.py"), run_name="__main__")
    finally:
        sys.argv = argv
    return root


def statement(root: Path) -> tuple[Any, dict[str, Any]]:
    config = load_config(root / "slamon.yaml")
    store = Store(config.database)
    try:
        import_history(root / "probes.csv.gz", store, load_fleet(config), datetime(2025, 8, 2, tzinfo=UTC))
        with store.begin() as tx:
            st = compute(gather(tx, "YJ-2025", "2025-07"))
    finally:
        store.close()
    return st, st.document(status="draft", revision=1, replaces=None)


def reference(root: Path) -> dict[str, Any]:
    """The reference reads plain CSV."""
    plain = root / "probes.csv"
    if not plain.exists():
        with gzip.open(root / "probes.csv.gz", "rb") as src, plain.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return compute_statement(
        root / "inventory.yaml",
        [root / "contracts" / "yj-2025.yaml"],
        root / "exclusions.yaml",
        [plain],
        "YJ-2025",
        "2025-07",
        root / "inspections.yaml",
    )


def test_the_score_card_of_the_docs(example: Path) -> None:
    """§6.6: 2 fault_hours (C0007, C0017) + 3 overruns × 2 + 1 inspection × 5 = 13 → score 87 →
    pays 90 % → 1,896.41 × 0.10 = 189.641 → 189.64; payable 1,706.77."""
    st, doc = statement(example)
    assert (doc["fee_total"], doc["deduction_total"], doc["payable"]) == ("1896.41", "189.64", "1706.77")
    [card] = doc["deductions"]
    assert (card["rule"], card["score"], card["pay"]) == ("score_card", "87", "0.9")
    assert card["points_lost"] == {"fault_hours": "2", "repair_overrun": "6", "missed_inspection": "5"}
    assert card["reason"] == (
        "score 87 = 100 − 2 fault_hours (2 channels) − 6 repair_overrun (3 outages) − 5 missed_inspection "
        "(1 inspection): at least 85 pays 90% of the fee total 1896.41"
    )
    assert [(i["cause"], i.get("device") or i.get("inspection")) for i in card["items"]] == [
        ("fault_hours", "YJ-C0007"),
        ("fault_hours", "YJ-C0017"),
        ("repair_overrun", "YJ-C0003"),
        ("repair_overrun", "YJ-C0007"),
        ("repair_overrun", "YJ-C0017"),
        ("missed_inspection", "MI-2025-07-01"),
    ]
    charged = [
        (o["device"], o["overrun_hours"], o["deduction"]) for o in doc["outages"] if o["overrun_hours"]
    ]
    assert charged == [("YJ-C0003", 2, "0.00"), ("YJ-C0007", 27, "0.00"), ("YJ-C0017", 2, "0.00")]
    assert_matches_reference(st, doc, reference(example), "july-2025 with a score card")


def test_per_point_kpis_of_the_docs(example: Path, tmp_path: Path) -> None:
    """§6.5: online_rate target 0.999, 1/45 per started point: 0.996224 is 0.2776 points short → 1
    point → 1,896.41 / 45 = 42.1424… → 42.14; intact_rate target 0.999 whole points at 0.02 beside
    the flat 0.05: 0.3188 points → no whole point; flat 1,896.41 × 0.05 = 94.8205 → 94.82."""
    root = tmp_path / "july"
    shutil.copytree(example, root, ignore=shutil.ignore_patterns("slamon.db*"))
    path = root / "contracts" / "yj-2025.yaml"
    contract = yaml.safe_load(path.read_text(encoding="utf-8"))
    contract["sla"]["fleet_kpis"] = {
        "online_rate": {"target": 0.999, "per_point": {"deduct": "1/45"}},
        "intact_rate": {"target": 0.999, "deduct": 0.05, "per_point": {"deduct": 0.02, "points": "whole"}},
    }
    path.write_text(yaml.safe_dump(contract, allow_unicode=True), encoding="utf-8")
    st, doc = statement(root)
    assert [(d["rule"], d.get("kpi"), d.get("points"), d["amount"]) for d in doc["deductions"]] == [
        ("kpi_shortfall", "online_rate", 1, "42.14"),
        ("fleet_kpi", "intact_rate", None, "94.82"),
        ("score_card", None, None, "189.64"),
    ]
    # 42.14 + 94.82 + 189.64 = 326.60; payable 1,896.41 - 326.60 = 1,569.81
    assert (doc["deduction_total"], doc["payable"]) == ("326.60", "1569.81")
    assert_matches_reference(st, doc, reference(root), "july-2025 with per-point KPIs")
