"""The committed dashboards against Grafana's own schema: the dashboard JSON model, and each panel's
options and custom field config against its plugin's types, all from the npm package @grafana/schema
(TypeScript only) turned into JSON Schema by ts-json-schema-generator (schema/generate.sh; the
versions are in schema/VERSIONS). The schemas are strict: an unknown key is an error.

The plugin option schemas are used without their `required` lists: Grafana fills every option a
dashboard leaves out from the plugin's defaults (the types say so: `defaultOptions:
Partial<Options>`), so a dashboard need not spell them all."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import pytest
from jsonschema import Draft7Validator

from slamon.dashboards import panels
from tests.dashboards import SCHEMA, committed

DASHBOARDS = committed()


@functools.cache
def dashboard_validator() -> Draft7Validator:
    return Draft7Validator(json.loads((SCHEMA / "dashboard.schema.json").read_text(encoding="utf-8")))


def _optional(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _optional(v) for k, v in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [_optional(v) for v in schema]
    return schema


@functools.cache
def plugin_validator(plugin: str, part: str) -> Draft7Validator | None:
    path = SCHEMA / f"panel-{plugin}.{part}.schema.json"
    if not path.exists():
        return None
    return Draft7Validator(_optional(json.loads(path.read_text(encoding="utf-8"))))


def errors(validator: Draft7Validator, doc: Any) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(doc)
    )


def test_the_schema_is_grafanas_current_one() -> None:
    assert (SCHEMA / "VERSIONS").read_text(encoding="utf-8").splitlines() == [
        "@grafana/schema 13.2.3",
        "ts-json-schema-generator 2.10.0",
    ]
    dashboard = json.loads((SCHEMA / "dashboard.schema.json").read_text(encoding="utf-8"))
    assert dashboard["$ref"] == "#/definitions/Dashboard"
    assert dashboard["definitions"]["Dashboard"]["additionalProperties"] is False


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_each_dashboard_is_valid(name: str) -> None:
    assert errors(dashboard_validator(), DASHBOARDS[name]) == []


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_each_panel_s_options_are_valid_for_its_plugin(name: str) -> None:
    found = []
    for panel in panels(DASHBOARDS[name]):
        plugin = panel["type"]
        options = plugin_validator(plugin, "options")
        assert options is not None, f"no option schema for panel type {plugin}: add it to schema/generate.sh"
        found += [f"{panel['title']}: options/{e}" for e in errors(options, panel.get("options", {}))]
        custom = plugin_validator(plugin, "fieldconfig")
        if custom is not None:
            config = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
            found += [f"{panel['title']}: fieldConfig.defaults.custom/{e}" for e in errors(custom, config)]
    assert found == []


def test_the_schema_catches_what_a_hand_edit_gets_wrong() -> None:
    """The validation is not vacuous: the mistakes a hand edit makes are reported, by path."""
    doc = copy.deepcopy(DASHBOARDS["fleet-overview"])
    doc["refresh"] = 30
    doc["titel"] = "typo"
    doc["panels"][1]["gridPos"] = "bad"
    doc["templating"]["list"][1]["refresh"] = 5
    found = errors(dashboard_validator(), doc)
    assert [e.split(":")[0] for e in found] == ["(top)", "panels/1", "refresh", "templating/list/1/refresh"]
    assert found[0] == "(top): Additional properties are not allowed ('titel' was unexpected)"
    assert found[1].endswith("is not valid under any of the given schemas")  # neither a panel nor a row
    assert found[2:] == [
        "refresh: 30 is not of type 'string'",
        "templating/list/1/refresh: 5 is not one of [0, 1, 2]",
    ]
    stat = next(p for p in panels(DASHBOARDS["fleet-overview"]) if p["type"] == "stat")
    options = plugin_validator("stat", "options")
    assert options is not None
    assert errors(options, {**stat["options"], "colourMode": "value", "graphMode": "bars"}) == [
        "(top): Additional properties are not allowed ('colourMode' was unexpected)",
        "graphMode: 'bars' is not one of ['area', 'line', 'none']",
    ]
