"""Every figure of slamon's statements against an independent reference implementation of SLA.md.

tests/reference/ was written from the spec alone, without reading slamon: an elementary-interval
sweep instead of slamon's interval sets and run machine. Random mixed fleets (tests/reference/
generate.py: links, switches, cameras, video, exclusions of every status, outages across months,
commissioning, gaps, shuffled rows with jitter) go through the real importer and store; each
contract-month must agree exactly, to the microsecond and to the cent.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from slamon.billing.statement import compute
from slamon.history import import_history
from slamon.issuing import gather
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.model import SECOND
from slamon.store import Store
from tests.reference.generate import generate_case
from tests.reference.sla_reference import compute_statements

pytestmark = pytest.mark.slow  # statements of generated months against the reference

SEEDS = range(int(os.environ.get("SLAMON_REFERENCE_SEEDS", "8")))


def sec(us: int) -> Fraction:
    return Fraction(us, SECOND)


def slamon_statements(case: Any, tmp: Path) -> dict[tuple[str, str], Any]:
    config_path = case.out_dir / "slamon.yaml"
    config_path.write_text(
        f"database: sqlite:///{tmp / 'slamon.db'}\ninventory: {case.inventory.name}\n"
        f"contracts: [contracts/*.yaml]\nexclusions: {case.exclusions.name}\n"
        + (f"inspections: {case.inspections.name}\n" if case.inspections else ""),
        encoding="utf-8",
    )
    config = load_config(config_path)
    fleet = load_fleet(config)
    store = Store(config.database)
    try:
        for probes in case.probes:
            import_history(probes, store, fleet, datetime(2030, 1, 1, tzinfo=UTC))
        out = {}
        with store.begin() as tx:
            for contract, month in case.interesting:
                st = compute(gather(tx, contract, month))
                out[(contract, month)] = (st, st.document(status="draft", revision=1, replaces=None))
        return out
    finally:
        store.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_statements_match_the_reference(seed: int, tmp_path: Path) -> None:
    case = generate_case(seed, tmp_path / "case")
    ours = slamon_statements(case, tmp_path)
    theirs = compute_statements(
        case.inventory, case.contracts, case.exclusions, case.probes, case.interesting, case.inspections
    )
    for key in case.interesting:
        st, doc = ours[key]
        assert_matches_reference(st, doc, theirs[key], f"seed {seed} {key}")


def assert_matches_reference(st: Any, doc: dict[str, Any], ref: dict[str, Any], where: str) -> None:
    """Every figure of one statement (slamon's exact values and its JSON) equals the reference's."""
    assert doc["fee_total"] == ref["fee_total"], where
    assert doc["deduction_total"] == ref["deduction_total"], where
    assert doc["payable"] == ref["payable"], where
    assert {k.value: v for k, v in st.rates.items()} == ref["rates"], where

    mine = {f.device.id: f for f in st.devices}
    assert sorted(mine) == sorted(d["id"] for d in ref["devices"]), where
    by_id = {d["id"]: d for d in doc["devices"]}
    for d in ref["devices"]:
        f = mine[d["id"]]
        got = (
            by_id[d["id"]]["fee"],
            sec(f.scheduled),
            sec(f.excluded),
            sec(f.down),
            sec(f.degraded),
            f.availability,
            by_id[d["id"]]["deduction"],
        )
        want = (
            d["fee"],
            d["scheduled_s"],
            d["excluded_s"],
            d["down_s"],
            d["degraded_s"],
            d["availability"],
            d["deduction"],
        )
        assert got == want, f"{where} device {d['id']}"

    outs = {(f.device.id, o.span[0]): o for f in st.devices for o in f.outages}
    docs = {(o["device"], o["start"]): o for o in doc["outages"]}
    assert sorted(outs) == sorted((o["device"], o["start_us"]) for o in ref["outages"]), where
    for o in ref["outages"]:
        mine_o = outs[(o["device"], o["start_us"])]
        shown = docs[(o["device"], o["start"])]
        assert (
            sec(mine_o.counted),
            {k: sec(v) for k, v in mine_o.causes.items()},
            shown["overrun_hours"],
            shown["deduction"],
        ) == (o["counted_s"], o["causes"], o["overrun_hours"], o["deduction"]), f"{where} outage {o['start']}"
        if shown["end"] is not None:  # ended inside the month: the whole outage is known
            assert (shown["end"], sec(mine_o.counted_total), shown["evidence"]) == (
                o["end"],
                o["counted_total_s"],
                o["evidence"],
            ), f"{where} outage {o['start']}"

    assert [(e["id"], e["honoured"], e["excluded_s"]) for e in doc["exclusions"]] == [
        (e["id"], e["honoured"], e["excluded_s"]) for e in ref["exclusions"]
    ], where

    def lines(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (x["rule"], x.get("device"), x.get("kpi"), x.get("outage_start"), x["amount"]) for x in items
        )

    assert lines(doc["deductions"]) == lines(ref["deductions"]), where

    # the rule kinds seen in tenders (docs/sla.md §6.5, §6.6): the points behind the money
    def points(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((x["kpi"], x["points"]) for x in items if x["rule"] == "kpi_shortfall")

    assert points(doc["deductions"]) == points(ref["deductions"]), where
    mine_card = [x for x in doc["deductions"] if x["rule"] == "score_card"]
    ref_card = [x for x in ref["deductions"] if x["rule"] == "score_card"]
    assert len(mine_card) == len(ref_card), where
    for m, r in zip(mine_card, ref_card, strict=True):
        assert (Fraction(m["score"]), Fraction(m["pay"])) == (r["score"], r["pay"]), where
        assert {k: Fraction(v) for k, v in m["points_lost"].items()} == r["points_lost"], where
        assert sum(Fraction(i["points"]) for i in m["items"]) == sum(r["points_lost"].values()), where
