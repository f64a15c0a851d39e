"""Bearer tokens on the HTTP API and the workflow's endpoints, against the real monitor, store and app:
each role allowed and refused, a token limited to contracts, revocation, api.auth's three modes,
application/problem+json errors, refusals logged, API writes in the audit log."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from slamon.loaders.config import ApiAuth, ApiConfig
from slamon.model import ContractId, ExclusionCategory, Fleet, ProbeKind, SlaTerms
from slamon.probers.scripted import ScriptedProber
from slamon.service import auth
from slamon.service.journal import Journal
from slamon.service.monitor import Monitor
from slamon.service.web import create_app
from slamon.service.writer import Writer
from slamon.store import Store
from tests.harness.fleets import T0, fleet_of
from tests.harness.scenarios import PaperFleet, Scenario, camera_fails_and_recovers
from tests.service.drive import INTERVAL, PLAN

C2_DEVICES = [d.id for d in PLAN if d.site == "SIM-S2"]


def two_contracts() -> Fleet:
    """PLAN's site SIM-S1 under C1 and SIM-S2 under C2 (which closes proposals a day after a month)."""
    fleet = fleet_of(PLAN)
    c1 = fleet.contracts[ContractId("C1")]
    c1 = replace(c1, sla=SlaTerms(exclusions=frozenset({ExclusionCategory.POWER})))
    c2 = replace(c1, id=ContractId("C2"), sla=SlaTerms(filing_deadline=timedelta(days=1)))
    devices = {
        i: replace(d, contract=c2.id) if d.site == "SIM-S2" else d for i, d in fleet.inventory.devices.items()
    }
    return Fleet(replace(fleet.inventory, devices=devices), {c1.id: c1, c2.id: c2})


@dataclass
class Served:
    monitor: Monitor
    store: Store
    client: Any
    tokens: dict[str, str]  # by role name (and "revoked")

    async def call(self, method: str, path: str, who: str | None, **kw: Any) -> tuple[int, Any]:
        headers = dict(kw.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(who, who)}"
        resp = await self.client.request(method, path, headers=headers, **kw)
        if resp.content_type in ("application/json", "application/problem+json"):
            body = await resp.json(content_type=None)
            if resp.content_type == "application/problem+json":
                assert body["title"]
                assert body["status"] == resp.status
            return resp.status, body
        return resp.status, await resp.read()


async def serve(
    tmp_path: Path,
    aiohttp_client: Any,
    mode: ApiAuth,
    *,
    with_tokens: bool = True,
    story: list[Scenario] = (),
) -> Served:
    store = Store(f"sqlite:///{tmp_path / 'access.db'}")
    from slamon.clock import FakeClock

    clock = FakeClock(T0)
    paper = PaperFleet()
    prober = ScriptedProber(clock, silent_if=lambda d: paper.is_silenced(d.address))
    writer = Writer(store, Journal(tmp_path / "journal"), retry_first=0.005, retry_max=0.02)
    fleet = two_contracts()
    monitor = Monitor(
        fleet, store, clock, {ProbeKind.ICMP: prober}, {ProbeKind.ICMP: INTERVAL}, writer=writer
    )
    await monitor.start()
    for i in range(12 if story else 1):
        for scenario in story:
            scenario.apply(paper, i)
        clock.set(T0 + i * INTERVAL)
        await monitor.run_round(ProbeKind.ICMP)
    await monitor.flush()
    tokens: dict[str, str] = {}
    if with_tokens:
        with store.begin() as tx:
            for role, contracts in (
                ("viewer", ["C1"]),
                ("ops", None),
                ("contract_manager", None),
                ("admin", None),
                ("revoked", None),
            ):
                info, tokens[role] = tx.tokens.create(
                    f"{role}-tok", "ops" if role == "revoked" else role, contracts, "setup", 1
                )
            tx.tokens.revoke(info.id, "setup", 2)
    app = create_app(monitor, clock, {ProbeKind.ICMP: INTERVAL}, access=ApiConfig(auth=mode))
    return Served(monitor, store, await aiohttp_client(app), tokens)


@pytest.fixture
async def served(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[Served]:
    s = await serve(tmp_path, aiohttp_client, ApiAuth.TOKENS)
    yield s
    await s.monitor.close()
    s.store.close()


CLAIM = {
    "category": "power",
    "scope": {"sites": ["SIM-S1"]},
    "start": "2025-07-10T08:00:00+08:00",
    "end": "2025-07-10T12:00:00+08:00",
    "reason": "供电局停电",
}


async def test_open_paths_need_no_token_and_the_rest_does(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await served.call("GET", "/metrics", None))[0] == 200
    assert (await served.call("GET", "/healthz", None))[0] == 200
    caplog.set_level(logging.WARNING, logger="slamon.service.auth")
    resp = await served.client.get("/api/v1/devices")
    assert (resp.status, resp.content_type, resp.headers["WWW-Authenticate"]) == (
        401,
        "application/problem+json",
        'Bearer realm="slamon"',
    )
    assert await resp.json(content_type=None) == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "this needs a bearer token (Authorization: Bearer …)",
        "code": "unauthorized",
    }
    status, body = await served.call("GET", "/api/v1/devices", "slamon_nope_secret")
    assert (status, body["detail"]) == (401, "unknown token")
    status, body = await served.call("GET", "/api/v1/devices", "revoked")
    revoked_id = served.tokens["revoked"].split("_")[1]
    assert (status, body["detail"]) == (401, f"token {revoked_id} was revoked at 1970-01-01T00:00:00+00:00")
    resp = await served.client.get("/api/v1/devices", headers={"Authorization": "Basic eDp5"})
    assert resp.status == 401
    assert [r.getMessage() for r in caplog.records] == [
        "refused GET /api/v1/devices from 127.0.0.1 (no token): this needs a bearer token (Authorization: Bearer …)",
        "refused GET /api/v1/devices from 127.0.0.1 (token nope): unknown token",
        f"refused GET /api/v1/devices from 127.0.0.1 (token {revoked_id}): token {revoked_id} was revoked at 1970-01-01T00:00:00+00:00",
        "refused GET /api/v1/devices from 127.0.0.1 (no token): the Authorization header is not `Bearer <token>`",
    ]


async def test_a_revoked_token_is_refused_from_the_next_request(served: Served) -> None:
    assert (await served.call("GET", "/api/v1/devices", "ops"))[0] == 200
    with served.store.begin() as tx:
        tx.tokens.revoke(served.tokens["ops"].split("_")[1], "admin", 3)
    status, body = await served.call("GET", "/api/v1/devices", "ops")
    assert (status, body["detail"].split(" was ")[1]) == (401, "revoked at 1970-01-01T00:00:00+00:00")


async def test_a_viewer_reads_its_own_contracts_only(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    status, body = await served.call("GET", "/api/v1/devices", "viewer")
    assert status == 200
    assert {d["contract"] for d in body["devices"]} == {"C1"}
    assert body["count"] == len(PLAN) - len(C2_DEVICES)
    assert (await served.call("GET", "/api/v1/devices", "viewer", params={"contract": "C1"}))[0] == 200
    caplog.set_level(logging.WARNING, logger="slamon.service.auth")
    status, body = await served.call("GET", "/api/v1/devices", "viewer", params={"contract": "C2"})
    viewer_id = served.tokens["viewer"].split("_")[1]
    assert (status, body["detail"]) == (
        403,
        f"viewer-tok (viewer, token {viewer_id}) may not read contract C2",
    )
    status, body = await served.call("GET", f"/api/v1/devices/{C2_DEVICES[0]}", "viewer")
    assert (status, body["detail"]) == (404, f"no device '{C2_DEVICES[0]}'")
    assert (await served.call("GET", f"/api/v1/devices/{C2_DEVICES[0]}", "ops"))[0] == 200
    status, body = await served.call("GET", "/api/v1/outages", "viewer")
    assert status == 200
    assert {o["contract"] for o in body["outages"]} <= {"C1"}
    status, body = await served.call("POST", "/api/v1/exclusions", "viewer", json=CLAIM)
    assert (status, body["detail"], body["code"]) == (
        403,
        f"viewer-tok (viewer, token {viewer_id}) may not propose or amend exclusions",
        "forbidden",
    )
    assert (await served.call("GET", "/api/v1/audit", "viewer"))[0] == 403
    assert len(caplog.records) == 4, "every refusal is logged"


async def test_the_workflow_over_http_each_role_allowed_and_refused(served: Served) -> None:
    status, body = await served.call("POST", "/api/v1/exclusions", "ops", json=CLAIM)
    assert status == 201, body
    ident = body["id"]
    assert (ident, body["version"], body["status"], body["actor"], body["source"]) == (
        "EX-2025-07-01", 1, "proposed", "ops-tok", "api"
    )  # fmt: skip
    c2 = {**CLAIM, "scope": {"sites": ["SIM-S2"]}}
    assert (await served.call("POST", "/api/v1/exclusions", "admin", json=c2))[0] == 201

    status, body = await served.call("GET", "/api/v1/exclusions", "viewer")
    assert (status, [e["id"] for e in body["exclusions"]]) == (200, [ident]), "only what reaches C1"
    status, body = await served.call("GET", "/api/v1/exclusions", "ops", params={"status": "proposed"})
    assert body["count"] == 2

    status, body = await served.call(
        "POST", f"/api/v1/exclusions/{ident}/approve", "ops", json={"reason": "ok"}
    )
    assert (status, body["code"]) == (403, "forbidden")
    status, body = await served.call(
        "POST", f"/api/v1/exclusions/{ident}/approve", "viewer", json={"reason": "ok"}
    )
    assert status == 403
    status, body = await served.call(
        "POST", f"/api/v1/exclusions/{ident}/approve", "contract_manager", json={"reason": "供电局通知属实"}
    )
    assert (status, body["status"], body["exclusion"]["approved_by"], body["note"]) == (
        200, "approved", "contract_manager-tok", "供电局通知属实"
    )  # fmt: skip
    status, body = await served.call(
        "POST", f"/api/v1/exclusions/{ident}/approve", "admin", json={"reason": "again"}
    )
    assert (status, body["code"]) == (409, "conflict")
    assert body["detail"].startswith(
        f"exclusion {ident} is already approved (version 2, by contract_manager-tok at "
    )
    status, body = await served.call(
        "POST", f"/api/v1/exclusions/{ident}/reject", "contract_manager", json={}
    )
    assert (status, body["detail"]) == (422, "give a reason to reject it (--reason)")
    status, body = await served.call("POST", "/api/v1/exclusions/EX-9/reject", "admin", json={"reason": "x"})
    assert (status, body["detail"], body["code"]) == (404, "no exclusion 'EX-9'", "not_found")

    status, body = await served.call(
        "POST",
        f"/api/v1/exclusions/{ident}/amend",
        "ops",
        json={"end": "2025-07-10T11:00:00+08:00", "note": "早恢复"},
    )
    assert (status, body["version"], body["status"], body["note"]) == (200, 3, "proposed", "早恢复")
    status, body = await served.call("GET", f"/api/v1/exclusions/{ident}", "viewer")
    assert [(v["version"], v["action"], v["actor"]) for v in body["versions"]] == [
        (1, "propose", "ops-tok"),
        (2, "approve", "contract_manager-tok"),
        (3, "amend", "ops-tok"),
    ]

    status, body = await served.call("GET", "/api/v1/audit", "contract_manager")
    assert status == 200
    assert [(e["actor"], e["action"], e["subject"]) for e in body["entries"]] == [
        ("setup", "token.create", served.tokens["viewer"].split("_")[1]),
        ("setup", "token.create", served.tokens["ops"].split("_")[1]),
        ("setup", "token.create", served.tokens["contract_manager"].split("_")[1]),
        ("setup", "token.create", served.tokens["admin"].split("_")[1]),
        ("setup", "token.create", served.tokens["revoked"].split("_")[1]),
        ("setup", "token.revoke", served.tokens["revoked"].split("_")[1]),
        ("ops-tok", "exclusion.propose", ident),
        ("admin-tok", "exclusion.propose", "EX-2025-07-02"),
        ("contract_manager-tok", "exclusion.approve", ident),
        ("ops-tok", "exclusion.amend", ident),
    ]
    assert body["entries"][6]["body"]["token"] == served.tokens["ops"].split("_")[1]
    assert (await served.call("GET", "/api/v1/audit", "ops"))[0] == 403
    status, body = await served.call("GET", "/api/v1/audit/verify", "admin")
    assert (status, body["ok"], body["entries"], body["problems"]) == (200, True, 10, [])


async def test_the_audit_log_pages_by_after_and_limit_and_refuses_a_limit_over_a_page(
    served: Served,
) -> None:
    status, body = await served.call("GET", "/api/v1/audit?after=1&limit=2", "admin")
    assert (status, [e["seq"] for e in body["entries"]], body["more"]) == (200, [2, 3], True)
    status, body = await served.call("GET", "/api/v1/audit?after=4&limit=10000", "admin")
    assert (status, [e["seq"] for e in body["entries"]], body["more"]) == (200, [5, 6], False)
    status, body = await served.call("GET", "/api/v1/audit?limit=0", "admin")
    assert (status, body["entries"], body["more"]) == (200, [], True)
    status, body = await served.call("GET", "/api/v1/audit?limit=10001", "admin")
    assert (status, body["detail"], body["code"]) == (
        400,
        "limit: 10001 is more than a page holds (at most 10,000)",
        "invalid",
    )
    status, body = await served.call("GET", "/api/v1/audit?limit=1000000000000000000", "admin")
    assert (status, body["detail"]) == (
        400,
        "limit: '1000000000000000000' is not a whole number up to 18 digits",
    )


async def test_problems_name_the_field_the_deadline_and_the_body(served: Served) -> None:
    bad = {**CLAIM, "scope": {"devices": ["NOPE"]}}
    status, body = await served.call("POST", "/api/v1/exclusions", "ops", json=bad)
    assert (status, body["detail"]) == (422, "request body: scope.devices[0]: unknown device 'NOPE'")
    june = {**CLAIM, "scope": {"sites": ["SIM-S2"]}, "start": "2025-06-30T08:00:00+08:00"}
    status, body = await served.call("POST", "/api/v1/exclusions", "ops", json=june)
    assert (status, body["code"]) == (422, "late")
    assert body["detail"] == (
        "too late: exclusions for 2025-06 under contract C2 could be proposed until 2025-07-02T00:00:00+08:00 "
        "(sla.filing_deadline: 1d after the month); it is 2025-07-10T16:00:00+08:00"
    )
    status, body = await served.call(
        "POST", "/api/v1/exclusions", "ops", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert (status, body["detail"]) == (
        400,
        "the body is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    )
    status, body = await served.call("POST", "/api/v1/exclusions", "ops", data=b"x")
    assert (status, body["detail"]) == (415, "send the body as application/json")
    status, body = await served.call("GET", "/api/v1/exclusions", "ops", params={"state": "x"})
    assert (status, body["detail"]) == (400, "unknown query parameter 'state' (use status, contract)")


async def test_evidence_goes_in_as_base64_and_comes_back_by_its_sha256(served: Served) -> None:
    photo = b"\xff\xd8\xff\xe0 the notice on the pole"
    claim = {**CLAIM, "evidence": [{"name": "通知.jpg", "content_base64": base64.b64encode(photo).decode()}]}
    status, body = await served.call("POST", "/api/v1/exclusions", "ops", json=claim)
    assert status == 201
    [ev] = body["evidence"]
    assert (ev["name"], ev["sha256"], ev["size"]) == (
        "通知.jpg",
        hashlib.sha256(photo).hexdigest(),
        len(photo),
    )
    resp = await served.client.get(
        f"/api/v1/exclusions/{body['id']}/evidence/{ev['sha256']}",
        headers={"Authorization": f"Bearer {served.tokens['viewer']}"},
    )
    assert (resp.status, resp.content_type, await resp.read()) == (200, "image/jpeg", photo)
    assert resp.headers["Content-Disposition"] == "attachment; filename*=UTF-8''%E9%80%9A%E7%9F%A5.jpg"
    bad = {**CLAIM, "evidence": [{"name": "a", "content_base64": "***"}]}
    status, problem = await served.call("POST", "/api/v1/exclusions", "ops", json=bad)
    assert (status, problem["detail"]) == (422, "request body: evidence[0].content_base64: not base64")


async def test_auth_auto_closes_the_api_once_a_token_exists(
    tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "TOKENS_RECHECK_S", 0.0)
    s = await serve(tmp_path, aiohttp_client, ApiAuth.AUTO, with_tokens=False)
    try:
        assert (await s.call("GET", "/api/v1/devices", None))[0] == 200, "no token yet: open, as before"
        status, body = await s.call("POST", "/api/v1/exclusions", None, json=CLAIM)
        assert (status, body["detail"]) == (401, "this needs a bearer token"), "writes need a token"
        with s.store.begin() as tx:
            _, token = tx.tokens.create("ops", "ops", None, "admin", 1)
        assert (await s.call("GET", "/api/v1/devices", None))[0] == 401
        assert (await s.call("GET", "/api/v1/devices", token))[0] == 200
        assert (await s.call("GET", "/metrics", None))[0] == 200
    finally:
        await s.monitor.close()
        s.store.close()


async def test_auth_off_serves_reads_to_anyone_and_writes_to_tokens(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    s = await serve(tmp_path, aiohttp_client, ApiAuth.OFF)
    try:
        assert (await s.call("GET", "/api/v1/devices", None))[0] == 200
        assert (await s.call("GET", "/api/v1/exclusions", None))[0] == 200
        assert (await s.call("GET", "/api/v1/audit", None))[0] == 401
        assert (await s.call("POST", "/api/v1/exclusions", "ops", json=CLAIM))[0] == 201
    finally:
        await s.monitor.close()
        s.store.close()


async def test_an_approval_through_the_api_changes_the_outages_causes(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    """The outage report judges causes by the store's exclusions: the workflow's decisions count at once."""
    story = [camera_fails_and_recovers(PLAN, "SIM-S1W1C2", fail_at=1, down_rounds=6)]
    s = await serve(tmp_path, aiohttp_client, ApiAuth.TOKENS, story=story)
    try:
        window = {
            "from": "2025-07-10T15:00:00+08:00",
            "to": "2025-07-10T17:00:00+08:00",
            "device": "SIM-S1W1C2",
        }

        async def causes() -> list[str]:
            status, body = await s.call("GET", "/api/v1/outages", "ops", params=window)
            assert status == 200, body
            return [c for o in body["outages"] for c in o["causes"]]

        assert await causes() == ["device"]
        claim = {
            **CLAIM,
            "scope": {"devices": ["SIM-S1W1C2"]},
            "start": "2025-07-10T16:00:00+08:00",
            "end": "2025-07-10T17:00:00+08:00",
        }
        _, created = await s.call("POST", "/api/v1/exclusions", "ops", json=claim)
        assert await causes() == ["device"], "a proposal changes nothing"
        await s.call(
            "POST", f"/api/v1/exclusions/{created['id']}/approve", "contract_manager", json={"reason": "ok"}
        )
        assert await causes() == ["excluded:power"]
    finally:
        await s.monitor.close()
        s.store.close()
