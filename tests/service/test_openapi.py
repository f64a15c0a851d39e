"""The OpenAPI document says what the app serves: every route and method, and the bodies the
exclusions and audit endpoints really give validate against its schemas (JSON Schema 2020-12)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from slamon.loaders.config import ApiAuth
from slamon.units import quote_short
from tests.service.test_access import CLAIM, serve

DOC = yaml.safe_load(
    (Path(__file__).parents[2] / "slamon" / "service" / "openapi.yaml").read_text(encoding="utf-8")
)


def check(body: Any, schema: str) -> None:
    Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": DOC["components"]}
    ).validate(body)


def test_every_route_is_in_the_document_and_no_other() -> None:
    from unittest.mock import MagicMock

    from slamon.model import ProbeKind
    from slamon.service.web import create_app

    app = create_app(MagicMock(), MagicMock(), {ProbeKind.ICMP: MagicMock()})
    served = {
        (r.resource.canonical, r.method.lower())
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD" and r.resource.canonical != "/"
    }
    documented = {
        (path, method) for path, item in DOC["paths"].items() for method in item if method != "parameters"
    }
    assert served == documented


async def test_the_bodies_match_the_schemas(tmp_path: Path, aiohttp_client: Any) -> None:
    s = await serve(tmp_path, aiohttp_client, ApiAuth.TOKENS)
    try:
        claim = {**CLAIM, "evidence": [{"name": "a.txt", "content_base64": base64.b64encode(b"a").decode()}]}
        status, created = await s.call("POST", "/api/v1/exclusions", "ops", json=claim)
        assert status == 201
        check(created, "Version")
        check(claim, "Proposal")
        status, decided = await s.call(
            "POST", f"/api/v1/exclusions/{created['id']}/approve", "contract_manager", json={"reason": "ok"}
        )
        check(decided, "Version")
        status, listed = await s.call("GET", "/api/v1/exclusions", "viewer")
        for filed in listed["exclusions"]:
            check(filed, "Filed")
        status, shown = await s.call("GET", f"/api/v1/exclusions/{created['id']}", "viewer")
        for version in shown["versions"]:
            check(version, "Version")
        status, audit = await s.call("GET", "/api/v1/audit", "admin")
        for entry in audit["entries"]:
            check(entry, "AuditEntry")
        for who, method, path in (
            (None, "GET", "/api/v1/exclusions"),
            ("viewer", "POST", "/api/v1/exclusions"),
            ("admin", "POST", "/api/v1/exclusions/EX-9/approve"),
        ):
            status, problem = await s.call(method, path, who, json={"reason": "x"})
            assert status in (401, 403, 404)
            check(problem, "Problem")
        resp = await s.client.get(
            "/api/v1/openapi.yaml", headers={"Authorization": f"Bearer {s.tokens['viewer']}"}
        )
        assert yaml.safe_load(await resp.text()) == DOC
        resp = await s.client.get(
            "/api/v1/openapi.json", headers={"Authorization": f"Bearer {s.tokens['viewer']}"}
        )
        assert (resp.status, resp.content_type) == (200, "application/json")
        assert await resp.json() == DOC
        # aiohttp's own errors are problems too: no route, a body too large
        status, missing = await s.call("GET", "/api/v1/nothing", "viewer")
        assert status == 404
        check(missing, "Problem")
        status, large = await s.call(
            "POST",
            "/api/v1/exclusions/EX-9/approve",
            "admin",
            data=io.BytesIO(b'{"reason": "' + b"x" * 2_000_000 + b'"}'),
            headers={"Content-Type": "application/json"},
        )
        assert (status, large["code"]) == (413, "too_large")
        check(large, "Problem")
    finally:
        await s.monitor.close()
        s.store.close()


def allows(value: Any, schema: str) -> bool:
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": DOC["components"]}
    ).is_valid(value)


async def test_the_server_refuses_what_the_document_forbids_at_the_edges(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    """Edges generated requests seldom reach: a month of a known contract the document's Month does
    not allow is a 400 (year 0 and 9999-12 were server errors), as in a statement to verify (422),
    and so is a hash there that is not sha256:<hex>; a revision in other digits (once a server
    error), an empty `to` (once taken as none), an audit page over 10,000 are 400s."""
    s = await serve(tmp_path, aiohttp_client, ApiAuth.TOKENS)
    try:
        for month in ("1970-01", "2025-07", "2199-12"):
            assert allows(month, "Month")
            status, _ = await s.call("GET", f"/api/v1/statements/C1/{month}/revisions/1", "admin")
            assert status == 404  # a month the server takes: no such revision
        for month, why in (
            ("0000-01", "is out of range (1970 to 2199)"),
            ("9999-12", "is out of range (1970 to 2199)"),
            ("1969-12", "is out of range (1970 to 2199)"),
            ("2200-01", "is out of range (1970 to 2199)"),
            ("٢٠٢٥-٠٧", "is not a month (use YYYY-MM, e.g. 2025-07)"),
            ("2025-13", "is not a month (use YYYY-MM, e.g. 2025-07)"),
        ):
            assert not allows(month, "Month")
            for method, path in (
                ("GET", f"/api/v1/statements/C1/{month}"),
                ("GET", f"/api/v1/statements/C1/{month}/revisions/1"),
                ("POST", f"/api/v1/statements/C1/{month}/issue"),
                ("GET", f"/api/v1/statements?month={month}"),
            ):
                status, problem = await s.call(method, path, "admin")
                assert (status, problem["detail"]) == (400, f"month: {month!r} {why}"), path
                check(problem, "Problem")
        statement = {"contract": "C1", "hash": "sha256:" + "0" * 64, "inputs_sha256": "sha256:" + "0" * 64}
        for month in ("0000-01", "9999-12"):
            status, problem = await s.call(
                "POST", "/api/v1/statements/verify", "admin", json={**statement, "month": month}
            )
            assert (status, problem["detail"]) == (
                422,
                f"request body: month: {month!r} is out of range (1970 to 2199)",
            )
        status, problem = await s.call(
            "POST", "/api/v1/statements/verify", "admin", json={**statement, "month": ""}
        )
        assert (status, problem["detail"]) == (
            422,
            "request body: month: '' is not a month (use YYYY-MM, e.g. 2025-07)",
        )
        for key, value in (("hash", "x"), ("inputs_sha256", "sha256:" + "F" * 64)):
            assert not allows(value, "Digest")
            status, problem = await s.call(
                "POST",
                "/api/v1/statements/verify",
                "admin",
                json={**statement, "month": "2025-07", key: value},
            )
            assert (status, problem["detail"]) == (
                422,
                f"request body: {key}: {quote_short(value)} is not sha256:<64 hex digits>",
            )
        status, verdict = await s.call(
            "POST", "/api/v1/statements/verify", "admin", json={**statement, "month": "2025-07"}
        )
        assert (status, verdict["ok"]) == (200, False)  # well formed: it does not verify
        status, problem = await s.call("GET", "/api/v1/statements/C1/2025-07/revisions/²", "admin")
        assert (status, problem["detail"]) == (400, "revision: '²' is not a revision number (1, 2, …)")
        for query in ("to=", "from="):
            status, problem = await s.call("GET", f"/api/v1/outages?{query}", "admin")
            assert (status, problem["detail"]) == (400, f"{query[:-1]}: '' is not an ISO-8601 instant")
        assert not allows("", "Instant")
        status, problem = await s.call("GET", "/api/v1/audit?limit=10001", "admin")
        assert (status, problem["code"]) == (400, "invalid")
    finally:
        await s.monitor.close()
        s.store.close()
