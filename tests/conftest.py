"""Shared fixtures: a fake clock and paths to test data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from slamon.clock import FakeClock

TESTDATA = Path(__file__).parent / "testdata"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 7, 1, tzinfo=UTC))
