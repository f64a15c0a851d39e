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
