"""The alert and recording rules: promtool checks and unit-tests them, every alert follows the
house rules (STYLE.md: Slamon<Thing><Condition>, `for:`, summary, description, a runbook section in
docs/alerts.md), and every metric a rule reads is one slamon exports today."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.harness.fixtures import require_tool
from tests.ops.stack import ALERTS, DOCS, EXPORTERS, ROOT, load_yaml

RULE_FILES = [
    ALERTS / "slamon.rules.yml",
    ALERTS / "sla-targets.rules.yml",
    EXPORTERS / "recording.rules.yml",
]
TEST_FILES = sorted([*(ALERTS / "tests").glob("*.yml"), *(EXPORTERS / "tests").glob("*.yml")])
ALERT_NAME = re.compile(r"Slamon[A-Z][a-z]+(?:[A-Z][a-z]+)+")
SEVERITIES = {"page", "ticket"}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("promtool", "prometheus")
    return subprocess.run(
        [tool, *map(str, args)], capture_output=True, text=True, check=False, timeout=60, cwd=ROOT
    )


def alerts() -> list[dict[str, Any]]:
    groups = load_yaml(ALERTS / "slamon.rules.yml")["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_promtool_checks_the_rules(path: Path) -> None:
    done = promtool("check", "rules", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_promtool_unit_tests_pass(path: Path) -> None:
    done = promtool("test", "rules", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tested: set[str] = set()
    for path in (ALERTS / "tests").glob("*.yml"):
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    tested.add(case["alertname"])
    assert {a["alert"] for a in alerts()} <= tested


def test_every_alert_is_named_and_annotated_as_the_house_style_says() -> None:
    docs = (DOCS / "alerts.md").read_text(encoding="utf-8")
    anchors = {m.lower() for m in re.findall(r"^#+ (\S+)$", docs, re.MULTILINE)}
    problems = []
    for rule in alerts():
        name = rule["alert"]
        if not ALERT_NAME.fullmatch(name):
            problems.append(f"{name}: not Slamon<Thing><Condition>")
        if not rule.get("for"):
            problems.append(f"{name}: no for:")
        if rule.get("labels", {}).get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity is not one of {sorted(SEVERITIES)}")
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not annotations.get(key):
                problems.append(f"{name}: no {key}")
        if annotations.get("runbook_url") != f"docs/alerts.md#{name.lower()}":
            problems.append(f"{name}: runbook_url is not docs/alerts.md#{name.lower()}")
        if name.lower() not in anchors:
            problems.append(f"{name}: docs/alerts.md has no section '## {name}'")
    assert not problems, "\n".join(problems)


def exported_metrics() -> set[str]:
    """Every metric name slamon's source writes (the families of service/metrics.py, the port
    families of service/ports.py): a counter family named X is exposed as X_total."""
    names: set[str] = set()
    for path in (ROOT / "slamon").rglob("*.py"):
        for name in re.findall(r"[\"'](slamon_[a-z0-9_]+)", path.read_text(encoding="utf-8")):
            names |= {name, f"{name}_total"}
    return names


def test_every_metric_the_rules_read_is_exported_by_slamon() -> None:
    """'A panel or alert whose metric does not exist yet is not committed.'"""
    exported = exported_metrics()
    assert {
        "slamon_device_cause",
        "slamon_switch_port_up",
        "slamon_rounds_total",
    } <= exported  # the scan works
    missing = {}
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                for metric in re.findall(
                    r"(?<![\w:])slamon_[a-z0-9_]+(?![\w:])", rule["expr"]
                ):  # not level:name:op
                    if metric not in exported:
                        missing.setdefault(metric, []).append(rule.get("alert") or rule.get("record"))
    assert not missing, missing


def test_the_sla_targets_come_from_slamon_which_reads_the_contracts() -> None:
    """slamon exports each contract's fleet KPI targets (slamon_sla_target); the rules file copies
    none by hand, and the exported targets are the example contracts' own."""
    from prometheus_client import CollectorRegistry

    from slamon.loaders.contracts import load_contracts
    from slamon.service.metrics import TargetCollector

    [group] = load_yaml(ALERTS / "sla-targets.rules.yml")["groups"]
    [target] = [r for r in group["rules"] if r["record"] == "slamon:sla_target"]
    assert target["expr"] == "max by (contract, kpi) (slamon_sla_target)"
    contracts = load_contracts(sorted((ROOT / "examples").glob("*/contracts/*.yaml")))
    registry = CollectorRegistry()
    registry.register(TargetCollector(lambda: contracts))
    expected = {}
    for path in (ROOT / "examples").glob("*/contracts/*.yaml"):
        contract = load_yaml(path)
        for kpi, terms in contract["sla"].get("fleet_kpis", {}).items():
            expected[contract["id"], kpi] = float(terms["target"])
    exported = {
        (s.labels["contract"], s.labels["kpi"]): s.value
        for metric in registry.collect()
        for s in metric.samples
    }
    assert exported == expected
