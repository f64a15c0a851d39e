"""The shipped Prometheus, Alertmanager, Kubernetes and peer-exporter configs: the tools accept
them, Alertmanager routes each contract to its receivers, the three ways of scraping slamon agree,
and the peer exporters' configs are the ones the benchmarks write."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.fixtures import require_tool
from tests.ops.stack import ALERTS, EXPORTERS, ROOT, load_yaml

PROMETHEUS_CONFIGS = [
    EXPORTERS / "prometheus.yml",
    EXPORTERS / "prometheus-file-sd.yml",
    EXPORTERS / "peers" / "prometheus-peers.yml",
]


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("path", PROMETHEUS_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_promtool_checks_the_config_and_what_it_loads(path: Path) -> None:
    done = run([require_tool("promtool", "prometheus"), "check", "config", str(path)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is valid prometheus config file syntax" in done.stdout


def test_the_prometheus_configs_load_every_rule_file() -> None:
    for name in ("prometheus.yml", "prometheus-file-sd.yml"):
        loaded = {(EXPORTERS / p).resolve() for p in load_yaml(EXPORTERS / name)["rule_files"]}
        assert loaded == {
            ALERTS / "slamon.rules.yml",
            ALERTS / "sla-targets.rules.yml",
            EXPORTERS / "recording.rules.yml",
        }, name


def test_amtool_checks_the_alertmanager_config() -> None:
    done = run(
        [require_tool("amtool", "prometheus-alertmanager"), "check-config", str(ALERTS / "alertmanager.yml")]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ("alertname=SlamonSwitchDown contract=QS-2026 site=QS-S1 severity=page", "qs-2026-pager"),
        ("alertname=SlamonVideoDegraded contract=QS-2026 site=QS-S1 severity=ticket", "qs-2026-tickets"),
        ("alertname=SlamonSlaAtRisk contract=YJ-2025 severity=page", "yj-2025-pager"),
        ("alertname=SlamonDeviceDown contract=YJ-2025 severity=ticket", "yj-2025-tickets"),
        ("alertname=SlamonDeviceDown contract=ZZ-2030 severity=page", "slamon-ops"),  # no route of its own
        ("alertname=SlamonProberStale probe=icmp severity=page", "slamon-ops"),
    ],
)
def test_alertmanager_routes_by_contract(labels: str, receiver: str) -> None:
    amtool = require_tool("amtool", "prometheus-alertmanager")
    done = run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTS / 'alertmanager.yml'}",
            f"--verify.receivers={receiver}",
            *labels.split(),
        ]
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alertmanager_config_inhibits_by_labels_the_alerts_carry() -> None:
    """An inhibition's `equal` labels must be on both sides, or it silences nothing (or everything)."""
    rules = {r["alert"]: r for g in load_yaml(ALERTS / "slamon.rules.yml")["groups"] for r in g["rules"]}
    carries = {
        # the labels of the series each alert's expression keeps, plus the rule's own
        "SlamonDeviceDown": {"device", "kind", "site", "district", "contract", "cause"},
        "SlamonSwitchDown": {"device", "kind", "site", "district", "contract", "cause"},
        "SlamonLinkDown": {"device", "kind", "site", "district", "contract", "cause"},
        "SlamonVideoDegraded": {"device", "kind", "site", "district", "contract", "state"},
        "SlamonSiteOutage": {"site", "contract", "district"},
    }
    for rule in load_yaml(ALERTS / "alertmanager.yml")["inhibit_rules"]:
        names = [m.split("=", 1)[1].strip('~"') for m in (*rule["source_matchers"], *rule["target_matchers"])]
        for alternatives in names:
            for alert in alternatives.split("|"):
                assert alert in rules, f"{alert}: no such alert"
                assert set(rule["equal"]) <= carries[alert] | set(rules[alert].get("labels", {})), alert


def test_the_three_ways_to_scrape_slamon_agree() -> None:
    static = load_yaml(EXPORTERS / "prometheus.yml")["scrape_configs"][0]
    file_sd = load_yaml(EXPORTERS / "prometheus-file-sd.yml")["scrape_configs"][0]
    service, monitor = yaml.safe_load_all(
        (EXPORTERS / "kubernetes" / "servicemonitor.yaml").read_text("utf-8")
    )
    [endpoint] = monitor["spec"]["endpoints"]
    for job in (static, file_sd):
        assert (job["job_name"], job["scrape_interval"], job["scrape_timeout"]) == ("slamon", "30s", "20s")
    assert (endpoint["interval"], endpoint["scrapeTimeout"], endpoint["path"]) == ("30s", "20s", "/metrics")
    # the job label is the Service's name: the one SlamonServiceDown selects
    assert (service["kind"], service["metadata"]["name"]) == ("Service", "slamon")
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    [target] = load_yaml(EXPORTERS / "file_sd" / "slamon.json")  # JSON is YAML
    assert target["targets"] == static["static_configs"][0]["targets"] == ["127.0.0.1:9108"]


# --- the peer exporters' configs: the benchmarks' own ---------------------------------------------


def constants(path: Path) -> dict[str, Any]:
    """The module-level literal constants of a benchmark script, read without importing it."""
    out: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def test_the_blackbox_config_is_the_one_bench_icmp_writes() -> None:
    bench = constants(ROOT / "benchmarks" / "bench_icmp.py")
    assert load_yaml(EXPORTERS / "peers" / "blackbox.yml") == yaml.safe_load(bench["BLACKBOX_CONFIG"])


def test_the_snmp_exporter_config_is_the_one_bench_snmp_writes() -> None:
    """bench_snmp.py renders EXPORTER_CONFIG from its COLUMNS and IF_METRIC, as start_exporter does."""
    bench = constants(ROOT / "benchmarks" / "bench_snmp.py")
    walk = "\n".join(f"  - {oid}" for oid in bench["COLUMNS"].values())
    metrics = "\n".join(
        bench["IF_METRIC"].format(name=n, oid=bench["COLUMNS"][n], type=t)
        for n, t in bench["IF_TYPES"].items()
    )
    written = bench["EXPORTER_CONFIG"].format(
        version="?", community=bench["COMMUNITY"], walk=walk, if_metrics=metrics
    )
    assert load_yaml(EXPORTERS / "peers" / "snmp.yml") == yaml.safe_load(written)


def test_snmp_exporter_accepts_its_config() -> None:
    exporter = shutil.which("prometheus-snmp-exporter")
    if exporter is None:  # .ci/run installs it
        pytest.skip("prometheus-snmp-exporter not installed (Debian package prometheus-snmp-exporter)")
    done = run([exporter, "--dry-run", f"--config.file={EXPORTERS / 'peers' / 'snmp.yml'}"])
    assert done.returncode == 0, done.stdout + done.stderr


def test_blackbox_exporter_accepts_its_config() -> None:
    exporter = shutil.which("prometheus-blackbox-exporter")
    if exporter is None:  # .ci/run installs it
        pytest.skip(
            "prometheus-blackbox-exporter not installed (Debian package prometheus-blackbox-exporter)"
        )
    done = run([exporter, "--config.check", f"--config.file={EXPORTERS / 'peers' / 'blackbox.yml'}"])
    assert done.returncode == 0, done.stdout + done.stderr
