"""schemathesis against the real API on a loopback port, from the OpenAPI document the app serves,
with an admin token: every operation, a bounded number of generated requests each, with every
check schemathesis has (`--checks=all`). So no answer may be a server error; every answer must be
one the document describes (its status, its media type, a body that validates against its schema,
the headers it names); a request the document forbids must be refused (a 4xx), and one it allows
must not be refused as malformed (400, 422). The one allowance, in CONFIG: three operations whose
JSON body must also hold against the store (an unknown device, site or contract, an end not after
its start, a month outside the contract's term, past the filing deadline) may answer a schema-valid
body with 422, and GET /api/v1/outages may answer 400 for `to` not after `from` — rules across
values and the store's contents that a schema cannot state. The checks that cannot apply here pass
without effect: there is no DELETE (use_after_free), and one token is given (object-level
authorization compares two). schemathesis runs from its own venv (scripts/get-schemathesis): tests
skip without it, except where SLAMON_REQUIRE_SCHEMATHESIS is set (CI). ST_SEED and ST_EXAMPLES
change the seed (1) and the examples per operation (15), to try more."""

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
EXAMPLES = 15  # per operation: the whole run stays well under a minute
SEED = 1
# schemathesis's default statuses for a schema-valid request, and 422 where the body's content must
# hold against the store; 400 where a parameter must hold against another (`to` after `from`)
ACCEPTED = '"2xx", "3xx", "401", "403", "404", "409", "429", "5xx"'
CONFIG = f"""
[[operations]]
include-name = ["POST /api/v1/exclusions", "POST /api/v1/exclusions/{{id}}/amend", "POST /api/v1/statements/verify"]
checks.positive_data_acceptance.expected-statuses = [{ACCEPTED}, "422"]

[[operations]]
include-name = "GET /api/v1/outages"
checks.positive_data_acceptance.expected-statuses = [{ACCEPTED}, "400"]
"""


def require_st() -> None:
    if ST.exists():
        return
    reason = f"schemathesis is not installed at {ST} (run scripts/get-schemathesis)"
    if os.environ.get("SLAMON_REQUIRE_SCHEMATHESIS"):
        pytest.fail(reason)
    pytest.skip(reason)


async def test_every_answer_is_one_the_document_describes(tmp_path: Path, aiohttp_client: Any) -> None:
    require_st()
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    s = await serve(tmp_path, aiohttp_client, ApiAuth.TOKENS)
    try:
        base = str(s.client.server.make_url("")).rstrip("/")
        argv = [
            str(ST), f"--config-file={config}", "run", f"{base}/api/v1/openapi.json",
            f"--url={base}",
            f"--header=Authorization: Bearer {s.tokens['admin']}",
            "--checks=all",
            f"--max-examples={os.environ.get('ST_EXAMPLES', EXAMPLES)}",
            "--workers=1",
            f"--seed={os.environ.get('ST_SEED', SEED)}",
            "--no-color",
        ]  # fmt: skip
        done = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    finally:
        await s.monitor.close()
        s.store.close()
