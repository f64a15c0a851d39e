"""The text statement: the buyer and each rate beside its target, with the verdict the statement's
own KPI lines give, and rates cut (never rounded up to a target they miss)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from slamon.billing.render.context import Context
from slamon.billing.render.text import render_text
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.model import ContractId

EXAMPLE = Path(__file__).parents[3] / "examples" / "july-2025" / "slamon.yaml"


def document(online: float, intact: float, deductions: list[dict[str, Any]]) -> dict[str, Any]:
    """The parts of a statement document the text's head reads."""
    return {
        "contract": "YJ-2025",
        "month": "2025-07",
        "timezone": "Asia/Shanghai",
        "vendor": "某某科技有限公司",
        "status": "draft",
        "revision": 1,
        "hash": "sha256:" + "0" * 64,
        "currency": "CNY",
        "fee_total": "1000.00",
        "deduction_total": "50.00",
        "payable": "950.00",
        "rates": {"online_rate": online, "intact_rate": intact},
        "devices": [],
        "deductions": deductions,
        "outages": [],
        "exclusions": [],
    }


def head(doc: dict[str, Any], context: Context | None) -> list[str]:
    out = io.StringIO()
    render_text(doc, out, context)
    return out.getvalue().split("\n\nDeductions")[0].splitlines()


def example_context() -> Context:
    fleet = load_fleet(load_config(EXAMPLE))
    return Context.of(fleet.contracts[ContractId("YJ-2025")], fleet.inventory, ())


def test_the_buyer_and_each_rate_beside_its_target() -> None:
    """The example contract: online ≥ 95 %, intact ≥ 90 %. An online rate a hair below 95 % is
    charged by the statement and printed cut, 94.9999 %, never rounded up to 95.0000 %."""
    missed = {
        "rule": "fleet_kpi",
        "kpi": "online_rate",
        "reason": "online rate below target",
        "amount": "50.00",
    }
    lines = head(document(0.94999996, 0.95, [missed]), example_context())
    assert lines[1] == "for 某某市公安局右江分局"
    assert "  online rate        94.9999 %    target ≥ 95 %: missed, 50.00 CNY" in lines
    assert "  intact rate        95.0000 %    target ≥ 90 %: met" in lines


def test_a_kpi_charged_twice_shows_the_sum_and_without_context_no_target() -> None:
    lines = head(
        document(
            0.9,
            0.9,
            [
                {"rule": "fleet_kpi", "kpi": "online_rate", "reason": "", "amount": "20.00"},
                {"rule": "kpi_shortfall", "kpi": "online_rate", "reason": "", "amount": "30.00"},
            ],
        ),
        example_context(),
    )
    assert "  online rate        90.0000 %    target ≥ 95 %: missed, 50.00 CNY" in lines
    charged = head(
        document(0.9, 0.9, [{"rule": "fleet_kpi", "kpi": "online_rate", "reason": "", "amount": "5.00"}]),
        None,
    )
    assert "  online rate        90.0000 %    below its target: missed, 5.00 CNY" in charged
    bare = head(document(0.9, 0.9, []), None)
    assert not any(line.startswith("for ") for line in bare)
    assert "  online rate        90.0000 %    no target" in bare


def test_the_api_writes_the_text_as_the_command_line_does(tmp_path: Path) -> None:
    """/api/v1/statements/…?format=text takes its context from the same place as `slamon statement
    --format text` (Context.for_statement): the buyer and the targets, not the ids alone."""
    from slamon.issuing import Outcome
    from slamon.service.statements_api import _render
    from slamon.store import Store

    fleet = load_fleet(load_config(EXAMPLE))
    store = Store(f"sqlite:///{tmp_path / 'slamon.db'}")
    try:
        missed = {"rule": "fleet_kpi", "kpi": "online_rate", "reason": "", "amount": "50.00"}
        doc = document(0.94999996, 0.95, [missed])
        body = _render(Outcome(doc, None), "text", fleet, store, "YJ-2025").decode()
    finally:
        store.close()
    out = io.StringIO()
    render_text(doc, out, example_context())
    assert body == out.getvalue()
    assert "for 某某市公安局右江分局" in body
