"""The committed dashboards are what the code builds (nobody edits the JSON by hand), the build is
deterministic, and the dashboards are well formed: stable uids, unique panel ids, every query on the
chosen data source, every expression valid PromQL (promtool)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slamon.dashboards import DATASOURCE, FOLDER, build_all, load_dir, panels, render, write_all
from slamon.errors import SlamonError
from tests.dashboards import COMMITTED, ROOT, committed, substitute, targets, used, variables
from tests.harness.fixtures import require_tool

UIDS = {
    "fleet-overview": "slamon-fleet-overview",
    "device": "slamon-device",
    "contract-month": "slamon-contract-month",
}


def test_the_committed_json_is_what_the_code_builds(tmp_path: Path) -> None:
    written = write_all(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in COMMITTED.glob("*.json"))
    stale = [p.name for p in written if p.read_bytes() != (COMMITTED / p.name).read_bytes()]
    assert not stale, f"dashboards/{stale} differ from the code: run `python dashboards/generate.py`"


def test_the_build_is_deterministic() -> None:
    assert {n: render(d) for n, d in build_all().items()} == {n: render(d) for n, d in build_all().items()}


def test_python_m_slamon_dashboards_writes_what_the_code_builds(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "slamon.dashboards", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout.split() == [str(tmp_path / "out" / f"{n}.json") for n in UIDS]
    assert load_dir(tmp_path / "out") == load_dir(COMMITTED) == build_all()


def test_uids_titles_and_variables() -> None:
    dashboards = committed()
    assert {n: d["uid"] for n, d in dashboards.items()} == UIDS
    for name, doc in dashboards.items():
        assert doc["title"].startswith("slamon: "), name
        assert doc["tags"] == ["slamon"], name
        names = [v["name"] for v in variables(doc)]
        assert names[0] == "datasource", name
        assert variables(doc)[0] == {
            "allowCustomValue": True,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "query": "prometheus",
            "skipUrlSync": False,
            "type": "datasource",
        }
        assert {"contract", "district"} <= set(names), name
        for v in variables(doc)[1:]:
            assert v["datasource"] == {"type": "prometheus", "uid": DATASOURCE}, (name, v["name"])
            assert v["query"].startswith("label_values("), (name, v["name"])
    assert "device" in [v["name"] for v in variables(dashboards["device"])]


def test_every_panel_has_a_unique_id_and_queries_the_chosen_data_source() -> None:
    for name, doc in committed().items():
        nested = [p for row in doc["panels"] if row["type"] == "row" for p in row["panels"]]
        ids = [p["id"] for p in doc["panels"] + nested]
        assert len(ids) == len(set(ids)), name
        titles = [p["title"] for p in panels(doc)]
        assert len(titles) == len(set(titles)), name
        for panel in panels(doc):
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE}, (name, panel["title"])
            refs = [t["refId"] for t in panel["targets"]]
            assert refs, (name, panel["title"])
            assert len(refs) == len(set(refs)), (name, panel["title"])
            assert panel["description"], (name, panel["title"])


def test_every_variable_a_query_uses_is_defined() -> None:
    for name, doc in committed().items():
        defined = {v["name"] for v in variables(doc)}
        for target in targets({name: doc}):
            unknown = {v for v in used(target.expr) if not v.startswith("__") and not v.isdigit()} - defined
            assert not unknown, f"{target}: undefined {unknown}"


def test_every_expression_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression (variables set to sample values) as a recording rule."""
    promtool = require_tool("promtool", "prometheus")
    values = {"contract": "QS-2026", "district": "右江区", "device": "QS-SW2"}
    all_targets = list(targets(committed()))
    rules = tmp_path / "rules.yml"
    lines = ["groups:", "  - name: dashboards", "    rules:"]
    for i, t in enumerate(all_targets):
        expr = substitute(t.expr, values).replace("\n", " ")
        lines += [
            f"      - record: dashboard_query_{i}",
            f"        expr: '{expr.replace(chr(39), chr(39) * 2)}'",
        ]
    rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(all_targets)} rules found" in done.stdout


def test_load_dir_names_a_folder_without_dashboards_and_a_file_that_is_not_one(tmp_path: Path) -> None:
    with pytest.raises(SlamonError, match=f"^{re.escape(str(tmp_path))}: no \\*\\.json dashboards in it$"):
        load_dir(tmp_path)
    (tmp_path / "device.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(SlamonError, match=re.escape("device.json: not a dashboard JSON file (no uid)")):
        load_dir(tmp_path)
    (tmp_path / "device.json").write_text("{", encoding="utf-8")
    with pytest.raises(SlamonError, match=re.escape("device.json: not a dashboard JSON file (Expecting")):
        load_dir(tmp_path)


def test_the_provisioning_files_point_grafana_at_the_push_folder() -> None:
    provider = yaml.safe_load((COMMITTED / "provisioning" / "slamon.yaml").read_text(encoding="utf-8"))
    assert provider["apiVersion"] == 1
    [slamon] = provider["providers"]
    assert (slamon["type"], slamon["folder"], slamon["folderUid"]) == ("file", FOLDER, FOLDER)
    assert slamon["allowUiUpdates"] is False  # edits belong in the code
    assert Path(slamon["options"]["path"]).is_absolute()
    source = yaml.safe_load(
        (COMMITTED / "provisioning" / "datasource.example.yaml").read_text(encoding="utf-8")
    )
    [prometheus] = source["datasources"]
    assert (prometheus["type"], prometheus["access"], prometheus["isDefault"]) == (
        "prometheus",
        "proxy",
        True,
    )
