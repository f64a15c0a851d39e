"""Shared fixtures: a fake clock and paths to test data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from slamon.clock import FakeClock
from slamon.store import Store
from tests.harness.fixtures import fleet_ns  # noqa: F401  (network-namespace harness)

TESTDATA = Path(__file__).parent / "testdata"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 7, 1, tzinfo=UTC))


# --- the store, against SQLite and PostgreSQL ------------------------------------------------

POSTGRES_URL = os.environ.get("SLAMON_TEST_POSTGRES", "postgresql+psycopg://127.0.0.1:5432/test")


def postgres_schema_url() -> Iterator[str]:
    """A throwaway schema in the test database, dropped afterwards."""
    admin = sa.create_engine(POSTGRES_URL, pool_pre_ping=True)  # a test may restart PostgreSQL
    schema = f"slamon_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {str(exc.orig).splitlines()[0]}"
        if os.environ.get("SLAMON_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'slamon.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    yield s
    s.close()
