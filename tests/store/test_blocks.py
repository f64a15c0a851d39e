"""Hourly blocks built for many devices at once equal the ones built block by block."""

from __future__ import annotations

import hashlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from slamon.model import HOUR
from slamon.store import blocks as blk
from slamon.store.blocks import NO_RTT, ResultColumns


@given(
    st.lists(
        st.tuples(
            st.integers(0, 4), st.integers(0, 2), st.integers(0, 3 * HOUR), st.booleans(), st.integers(0, 3)
        ),
        max_size=60,
    )
)
def test_block_rows_equal_encode_and_rollup_block_by_block(
    rows: list[tuple[int, int, int, bool, int]],
) -> None:
    rows = list({(r[0], r[1], r[2]): r for r in rows}.values())  # one result per device, kind and instant
    cols = ResultColumns(
        np.array([r[0] for r in rows], np.int32),
        np.array([r[1] for r in rows], np.uint8),
        np.array([r[2] for r in rows], np.int64),
        np.array([r[3] for r in rows], np.uint8),
        np.zeros(len(rows), np.uint32),
        np.array([NO_RTT if r[4] == 0 else r[4] * 1000 for r in rows], np.uint32),
    )
    cols, _ = blk.sort_and_dedupe(cols)
    want = []
    for dev, kind, hour, a, b in blk.block_groups(cols):
        records = blk.encode(cols, hour, a, b)
        data = records.tobytes()
        want.append((dev, kind, hour, 7, *blk.rollup(records), data, hashlib.sha256(data).hexdigest()))
    assert blk.block_rows(cols, 7) == want
