"""The HD rate (billing/hd.py and the blocks' rollup it reads): a camera is HD when fewer than half
of its month's samples showed low_resolution; cameras never sampled are not counted; the counts
outlive the raw results, and a camera counted from blocks stored before the rollup is uncounted."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import numpy as np
import sqlalchemy as sa

from slamon.billing.hd import HdFigures, hd_figures
from slamon.billing.rates import DeviceFigures
from slamon.model import (
    DEFECT_BITS,
    HOUR,
    ContractId,
    Defect,
    Device,
    DeviceId,
    DeviceKind,
    ProbeKind,
    SiteId,
    to_micros,
)
from slamon.store import ResultColumns, Store
from slamon.store.blocks import KIND_CODES

T0 = to_micros(datetime(2025, 7, 1, tzinfo=UTC))


def figures(device: str, kind: DeviceKind = DeviceKind.CAMERA) -> DeviceFigures:
    d = Device(DeviceId(device), kind, "127.0.0.1", SiteId("S"), ContractId("C"))
    return DeviceFigures(d, (0, 1), 1, 0, 0, 0, 0, ())


def test_a_camera_is_hd_when_fewer_than_half_its_samples_were_low_resolution() -> None:
    found = hd_figures(
        [figures("A"), figures("B"), figures("C"), figures("D"), figures("SW", DeviceKind.SWITCH)],
        {"A": (96, 0), "B": (96, 47), "C": (96, 48), "SW": (10, 10)},  # type: ignore[dict-item]
    )
    assert found == HdFigures(sampled=3, hd=2, uncounted=0), "D was never sampled; a switch is no camera"
    assert found is not None
    assert found.rate == Fraction(2, 3)


def test_no_sample_no_hd_figures_and_uncounted_cameras_are_left_out() -> None:
    assert hd_figures([figures("A")], {}) is None
    found = hd_figures([figures("A"), figures("B")], {"A": (5, None), "B": (5, 0)})  # type: ignore[dict-item]
    assert found == HdFigures(sampled=2, hd=1, uncounted=1)
    assert found is not None
    assert found.rate == 1
    assert HdFigures(1, 0, 1).rate is None


def video(device: int, times: list[int], low: list[bool]) -> ResultColumns:
    n = len(times)
    bit = DEFECT_BITS[Defect.LOW_RESOLUTION]
    return ResultColumns(
        np.full(n, device, np.int32),
        np.full(n, KIND_CODES[ProbeKind.VIDEO], np.uint8),
        np.array(times, np.int64),
        np.array([0 if x else 1 for x in low], np.uint8),
        np.array([bit if x else 0 for x in low], np.uint32),
        np.full(n, 0xFFFFFFFF, np.uint32),
    )


def test_the_tally_comes_from_the_rollups_and_outlives_the_raw_results(store: Store) -> None:
    times = [T0 + i * 15 * 60_000_000 for i in range(8)]  # two hours of 15-minute samples
    with store.begin() as tx:
        tx.results.merge(video(1, times, [True, False, True, True, False, False, False, False]))
        tx.results.merge(video(2, times[:2], [False, False]))
    with store.read() as tx:
        assert tx.results.video_tally([1, 2, 3], T0, T0 + 2 * HOUR) == {1: (8, 3), 2: (2, 0)}
        assert tx.results.video_tally([1], T0 + HOUR, T0 + 2 * HOUR) == {1: (4, 0)}, "the second hour"
    with store.begin() as tx:
        tx.results.let_go(1, T0 // HOUR + 2, T0 + 2 * HOUR)  # retention: the raw bytes go
        assert (
            tx.conn.execute(
                sa.text("SELECT count(*) FROM result_blocks WHERE data IS NOT NULL AND device = 1")
            ).scalar()
            == 0
        )
        tx.conn.execute(
            sa.text("UPDATE result_blocks SET n_low_res = NULL WHERE device = 2")
        )  # stored before 0010
    with store.read() as tx:
        assert tx.results.video_tally([1, 2], T0, T0 + 2 * HOUR) == {1: (8, 3), 2: (2, None)}


def test_the_upgrade_counts_the_stored_video_blocks(store_url: str) -> None:
    """Migration 0010: a video block with its raw results gets its low-resolution count, one let
    go already stays uncounted, other kinds count none."""
    from alembic import command
    from alembic.config import Config

    from slamon.store.blocks import RECORD
    from slamon.store.database import MIGRATIONS

    records = np.zeros(3, RECORD)
    records["defects"] = [DEFECT_BITS[Defect.LOW_RESOLUTION], 0, DEFECT_BITS[Defect.LOW_RESOLUTION] | 1]
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
        insert = (
            "INSERT INTO result_blocks (device, kind, hour, part, n, n_ok, rtt_n, rtt_sum_us, data) "
            "VALUES (1, :k, :h, 0, 3, 1, 0, 0, :d)"
        )
        conn.execute(sa.text(insert), {"k": 2, "h": 5, "d": records.tobytes()})
        conn.execute(sa.text(insert), {"k": 2, "h": 6, "d": None})  # let go before the upgrade
        conn.execute(sa.text(insert), {"k": 0, "h": 5, "d": b"\x00" * 13})
    engine.dispose()
    s = Store(store_url)
    try:
        with s.read() as tx:
            rows = tx.conn.execute(
                sa.text("SELECT kind, hour, n_low_res FROM result_blocks ORDER BY kind, hour")
            ).all()
        assert [tuple(r) for r in rows] == [(0, 5, 0), (2, 5, 2), (2, 6, None)]
    finally:
        s.close()
