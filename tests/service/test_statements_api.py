"""/api/v1/statements against the real monitor, store and app: the draft in every format, issuing
(who may, the month not ended, low coverage accepted, issued once), the stored revisions listed and
downloaded byte for byte, verify, a token limited to contracts, the audit log, a missing CJK font."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from slamon.errors import StatementError
from slamon.loaders.config import ApiAuth
from slamon.service.keys import CLOCK
from tests.service.test_access import Served, serve

DOC = yaml.safe_load(
    (Path(__file__).parents[2] / "slamon" / "service" / "openapi.yaml").read_text(encoding="utf-8")
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def check(body: Any, schema: str) -> None:
    Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": DOC["components"]}
    ).validate(body)


@pytest.fixture
async def served(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[Served]:
    s = await serve(tmp_path, aiohttp_client, ApiAuth.TOKENS)
    yield s
    await s.monitor.close()
    s.store.close()


def after_the_month(s: Served) -> None:
    s.client.server.app[CLOCK].set(datetime(2025, 8, 2, tzinfo=UTC))


async def test_the_draft_in_every_format(served: Served) -> None:
    status, draft = await served.call("GET", "/api/v1/statements/C1/2025-07", "viewer")
    assert status == 200
    check(draft, "Statement")
    assert (draft["contract"], draft["status"], draft["revision"], draft.get("replaces")) == (
        "C1",
        "draft",
        1,
        None,
    )
    for fmt, media, start in (
        ("csv", "text/csv", b""),
        ("text", "text/plain", b""),
        ("xlsx", XLSX, b"PK"),
        ("pdf", "application/pdf", b"%PDF"),
    ):
        resp = await served.client.get(
            f"/api/v1/statements/C1/2025-07?format={fmt}",
            headers={"Authorization": f"Bearer {served.tokens['viewer']}"},
        )
        body = await resp.read()
        assert (resp.status, resp.content_type) == (200, media), body[:200]
        assert body.startswith(start)
        assert resp.headers["Content-Disposition"].endswith(f"C1-2025-07-draft-r1.{fmt}")
    for who, path, status, code in (
        ("viewer", "/api/v1/statements/C2/2025-07", 403, "forbidden"),
        (None, "/api/v1/statements/C1/2025-07", 401, "unauthorized"),
        ("admin", "/api/v1/statements/NOPE/2025-07", 404, "not_found"),
        ("admin", "/api/v1/statements/C1/2025-13", 400, "invalid"),
        ("admin", "/api/v1/statements/C1/2025-07?format=docx", 400, "invalid"),
        ("admin", "/api/v1/statements/C1/1999-01", 404, "not_found"),
    ):
        got, problem = await served.call("GET", path, who)
        assert (got, problem["code"]) == (status, code), problem
        check(problem, "Problem")


async def test_issue_list_download_and_verify(served: Served) -> None:
    s = served
    issue = "/api/v1/statements/C1/2025-07/issue"
    status, problem = await s.call("POST", issue, "ops")
    assert (status, problem["code"]) == (403, "forbidden")
    status, problem = await s.call("POST", issue, "contract_manager")
    assert (status, problem["code"]) == (409, "conflict")
    assert "before the month has ended" in problem["detail"]
    after_the_month(s)
    status, problem = await s.call("POST", issue, "contract_manager")
    assert status == 409
    assert "below the contract's minimum" in problem["detail"]
    status, problem = await s.call("POST", issue, "contract_manager", json={"colour": "red"})
    assert (status, problem["code"]) == (422, "invalid")
    big = io.BytesIO(b'{"accept_low_coverage": "' + b"x" * 2_000_000 + b'"}')
    status, problem = await s.call(
        "POST", issue, "admin", data=big, headers={"Content-Type": "application/json"}
    )
    assert (status, problem["code"]) == (413, "too_large")
    resp = await s.client.post(
        issue,
        json={"accept_low_coverage": "one round of evidence in the test"},
        headers={"Authorization": f"Bearer {s.tokens['contract_manager']}"},
    )
    assert resp.status == 201, await resp.text()
    assert resp.headers["Location"] == "/api/v1/statements/C1/2025-07/revisions/1"
    issued_bytes = await resp.read()
    issued = json.loads(issued_bytes)
    check(issued, "Statement")
    assert (issued["status"], issued["coverage_override"]["by"]) == ("issued", "contract_manager-tok")
    status, again = await s.call("POST", issue, "admin")  # inputs unchanged: the same revision
    assert (status, again) == (200, issued)

    status, listed = await s.call("GET", "/api/v1/statements", "viewer")
    assert (status, listed["count"]) == (200, 1)
    check(listed["statements"][0], "Revision")
    assert listed["statements"][0]["hash"] == issued["hash"]
    assert (await s.call("GET", "/api/v1/statements?contract=C2", "viewer"))[0] == 403
    assert (await s.call("GET", "/api/v1/statements?month=2025-06", "admin"))[1]["count"] == 0

    path = listed["statements"][0]["href"]
    resp = await s.client.get(path, headers={"Authorization": f"Bearer {s.tokens['viewer']}"})
    assert (resp.status, await resp.read()) == (200, issued_bytes)  # byte for byte
    resp = await s.client.get(path + "?format=pdf", headers={"Authorization": f"Bearer {s.tokens['viewer']}"})
    assert (resp.status, (await resp.read())[:4]) == (200, b"%PDF")
    assert (await s.call("GET", "/api/v1/statements/C1/2025-07/revisions/2", "viewer"))[0] == 404
    assert (await s.call("GET", "/api/v1/statements/C1/2025-07/revisions/x", "viewer"))[0] == 400

    verify = "/api/v1/statements/verify"
    status, verdict = await s.call("POST", verify, "viewer", json=issued)
    assert (status, verdict["ok"]) == (200, True), verdict
    status, verdict = await s.call("POST", verify, "viewer", json={**issued, "payable": "0.00"})
    assert (status, verdict["ok"]) == (200, False)
    assert any("hash" in line for line in verdict["findings"])
    status, problem = await s.call("POST", verify, "viewer", json={"contract": "C1"})
    assert (status, problem["code"]) == (422, "invalid")
    status, problem = await s.call("POST", verify, "viewer", json={**issued, "contract": "C2"})
    assert status == 403

    status, audit = await s.call("GET", "/api/v1/audit?subject=C1 2025-07 revision 1", "admin")
    assert [e["action"] for e in audit["entries"]] == ["statement.issue"]
    assert audit["entries"][0]["actor"].startswith("contract_manager-tok (token ")


async def test_a_pdf_without_a_cjk_font_is_a_503_naming_the_package(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slamon.billing.render import fonts

    def missing() -> None:
        raise StatementError(fonts.MISSING)

    monkeypatch.setattr(fonts, "cjk_fonts", missing)
    status, problem = await served.call("GET", "/api/v1/statements/C1/2025-07?format=pdf", "admin")
    assert (status, problem["code"]) == (503, "unavailable")
    assert fonts.PACKAGE in problem["detail"]
