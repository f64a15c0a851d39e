"""The pure core stays pure: the model, the engine and billing never load I/O libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

IO_LIBRARIES = ("aiohttp", "sqlalchemy", "pysnmp", "av", "psycopg", "alembic")


PURE_CORE = [
    "slamon.model",
    "slamon.engine.timeline",
    "slamon.engine.live",
    "slamon.engine.ports",
    "slamon.engine.power",
    "slamon.billing.causes",
    "slamon.billing.rates",
    "slamon.billing.deductions",
    "slamon.billing.statement",
    "slamon.billing.render.csv",
]


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_pure_core_imports_no_io_library(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {IO_LIBRARIES!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
