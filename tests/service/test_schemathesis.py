"""schemathesis against the real API on a loopback port, from the OpenAPI document the app serves,
with an admin token: every operation, a bounded number of generated requests each; no answer may
be a server error, and every answer must be one the document describes (status, media type,
schema). schemathesis runs from its own venv (scripts/get-schemathesis): tests skip without it,
except where SLAMON_REQUIRE_SCHEMATHESIS is set (CI)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from slamon.loaders.config import ApiAuth
from tests.service.test_access import serve

pytestmark = pytest.mark.slow

ST = Path(__file__).parents[2] / ".cache" / "schemathesis" / "bin" / "st"
EXAMPLES = 15  # per operation: the whole run stays under a minute


def require_st() -> None:
    if ST.exists():
        return
    reason = f"schemathesis is not installed at {ST} (run scripts/get-schemathesis)"
    if os.environ.get("SLAMON_REQUIRE_SCHEMATHESIS"):
        pytest.fail(reason)
    pytest.skip(reason)


async def test_no_operation_gives_a_server_error_or_an_undocumented_answer(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    require_st()
    s = await serve(tmp_path, aiohttp_client, ApiAuth.TOKENS)
    try:
        base = str(s.client.server.make_url("")).rstrip("/")
        argv = [
            str(ST), "run", f"{base}/api/v1/openapi.json",
            f"--url={base}",
            f"--header=Authorization: Bearer {s.tokens['admin']}",
            "--checks=not_a_server_error",
            f"--max-examples={EXAMPLES}",
            "--workers=1",
            "--seed=1",
            "--no-color",
        ]  # fmt: skip
        done = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    finally:
        await s.monitor.close()
        s.store.close()
