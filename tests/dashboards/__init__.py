"""Helpers shared by the dashboard tests: the committed dashboards, their targets and variables, and
the substitution Grafana does before a query reaches Prometheus."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slamon.dashboards import panels

ROOT = Path(__file__).parents[2]
COMMITTED = ROOT / "dashboards"
SCHEMA = Path(__file__).parent / "schema"

# Grafana's own interval variables, as a test with a 1 s scrape interval may set them
BUILTINS = {"__rate_interval": "10s", "__interval": "1s", "__range": "60s", "__range_s": "60"}
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.DOTALL)
METRIC = re.compile(r"\bslamon_[a-z_]+\b")


def committed() -> dict[str, dict[str, Any]]:
    """The committed dashboards, by file name."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(COMMITTED.glob("*.json"))}


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}"


def targets(dashboards: Mapping[str, dict[str, Any]]) -> Iterator[Target]:
    for name, doc in dashboards.items():
        for panel in panels(doc):
            for t in panel.get("targets", []):
                yield Target(name, panel["title"], t["refId"], t["expr"], bool(t.get("instant")))


def variables(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc.get("templating", {}).get("list", []))


def used(expr: str) -> set[str]:
    """The variable names an expression refers to."""
    return {a or b for a, b in VARIABLE.findall(expr)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """What Grafana sends: known variables replaced, anything else (`$1` of label_replace) left as is."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return values.get(name, BUILTINS.get(name, m.group(0)))

    return VARIABLE.sub(one, expr)


def regex_value(value: str) -> str:
    """A single value of a multi-value variable, escaped as Grafana escapes it for `=~` (and for a
    PromQL string literal)."""
    escaped = re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", value)
    return escaped.replace("\\", "\\\\")
