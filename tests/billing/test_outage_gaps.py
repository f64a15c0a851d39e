"""Outages across monitoring gaps (SLA.md §3) beyond the golden figures: how the renderings show the
gaps, and a store written before the rule is brought up to it (its timelines remember the engine's
rule set, EngineParams.rules, and the first fleet sync after the upgrade rebuilds them from the raw
results still held, as a change of a contract's state settings does)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import sqlalchemy as sa

from slamon.billing.render.csv import render_csv
from slamon.billing.render.text import render_text
from slamon.billing.statement import compute
from slamon.history import import_history
from slamon.issuing import gather
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.store import Store
from tests.billing.golden_helpers import HEADER, at, cam, contract, inventory, iso, run
from tests.billing.harness import NOW, write_case
from tests.billing.test_golden import failure_with_a_gap


def outages_of(store: Store) -> list[tuple[str, str | None, int, list[dict[str, str]]]]:
    with store.begin() as tx:
        doc = compute(gather(tx, "C1", "2025-07")).document(status="draft", revision=1, replaces=None)
    return [(o["start"], o["end"], o["counted_s"], o["evidence"].get("gaps", [])) for o in doc["outages"]]


def test_timelines_stored_by_the_old_rules_are_rebuilt_on_the_first_sync(tmp_path: Path) -> None:
    inv = inventory(cam("CAM1", 1, site="S2"))
    cfg = write_case(tmp_path, inv, HEADER + failure_with_a_gap(at(7, 10, 20)), contract=contract())
    config = load_config(cfg)
    fleet = load_fleet(config)
    store = Store(config.database)
    try:
        import_history(tmp_path / "probes.csv", store, fleet, NOW)
        merged = [
            (
                iso(at(7, 10, 6)),
                iso(at(7, 10, 20)),
                49_800,
                [{"start": iso(at(7, 10, 12, 55)), "end": iso(at(7, 10, 13, 5))}],
            )
        ]
        assert outages_of(store) == merged

        # what the previous version stored: the outage split at the gap, settings without `rules`
        with store.begin() as tx:
            conn = tx.conn
            params = json.loads(conn.execute(sa.text("SELECT params FROM timelines")).scalar_one())
            del params["rules"]
            conn.execute(
                sa.text("UPDATE timelines SET params = :p"), {"p": json.dumps(params, sort_keys=True)}
            )
            row = conn.execute(sa.text("SELECT * FROM outages")).mappings().one()
            conn.execute(sa.text("DELETE FROM outages"))
            gap_start, gap_end = row["start_at"] + 24_900_000_000, row["start_at"] + 25_500_000_000
            old = {**row, "gaps": None}
            conn.execute(
                sa.text(
                    "INSERT INTO outages (device, start_at, end_at, open, end_reason, first_failure, "
                    "last_failure, recovered, gaps) VALUES (:device, :start_at, :end_at, :open, "
                    ":end_reason, :first_failure, :last_failure, :recovered, :gaps)"
                ),
                [
                    {
                        **old,
                        "end_at": gap_start,
                        "end_reason": "unknown",
                        "last_failure": gap_start - 300_000_000,
                        "recovered": None,
                    },
                    {**old, "start_at": gap_end, "first_failure": gap_end},
                ],
            )
        assert [o[:3] for o in outages_of(store)] == [
            (iso(at(7, 10, 6)), iso(at(7, 10, 12, 55)), 24_900),
            (iso(at(7, 10, 13, 5)), iso(at(7, 10, 20)), 24_900),
        ]

        # the next import (the same rows: nothing new) syncs the fleet and rebuilds the timeline
        import_history(tmp_path / "probes.csv", store, fleet, NOW)
        assert outages_of(store) == merged
    finally:
        store.close()


def test_the_renderings_show_the_gaps(tmp_path: Path) -> None:
    doc = run(tmp_path, inventory(cam("CAM1", 1, site="S2")), failure_with_a_gap(at(7, 10, 20)))
    text = io.StringIO()
    render_text(doc, text)
    assert "monitoring gap 07-10 12:55 → 07-10 13:05 (10m, no cause)" in text.getvalue()
    sheet = io.StringIO()
    render_csv(doc, sheet)
    header, row = [
        line for line in sheet.getvalue().splitlines() if line.startswith(("section,device,", "outage,"))
    ]
    assert header.endswith(",recovered,gaps")
    assert row.endswith(f",{iso(at(7, 10, 12, 55))}/{iso(at(7, 10, 13, 5))}")


def test_the_outages_api_sees_the_same_outage(tmp_path: Path) -> None:
    """/api/v1/outages reads the outages the statement does: one, across the gap, whose causes
    leave the gap out."""
    from slamon.model import to_micros
    from slamon.service.api import outage_report

    inv = inventory(cam("CAM1", 1, site="S2"))
    cfg = write_case(tmp_path, inv, HEADER + failure_with_a_gap(at(7, 10, 20)), contract=contract())
    config = load_config(cfg)
    fleet = load_fleet(config)
    store = Store(config.database)
    try:
        import_history(tmp_path / "probes.csv", store, fleet, NOW)
        report = outage_report(store, fleet, {}, to_micros(at(7, 10)), to_micros(at(7, 11)))
    finally:
        store.close()
    [o] = report["outages"]
    assert (o["start"], o["end"], o["causes"]) == (
        iso(at(7, 10, 6)),
        iso(at(7, 10, 20)),
        {"device": 49_800.0},
    )
    assert o["evidence"]["gaps"] == [{"start": iso(at(7, 10, 12, 55)), "end": iso(at(7, 10, 13, 5))}]
