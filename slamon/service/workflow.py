"""The workflow's HTTP API (docs/formats.md): /api/v1/exclusions and /api/v1/audit, thin handlers
over slamon/workflow.py. The actor is the request's (service/auth.py); what it may do is checked
by the workflow; errors are application/problem+json. Reads run on the app's reader threads on the
store's read-only side, writes in a write transaction there (they wait for the monitor's writer)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import mimetypes
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import quote as url_quote

from aiohttp import web

from slamon.access import Permission
from slamon.model import ExclusionStatus
from slamon.service.api import MAX_JSON, json_response
from slamon.service.auth import ACTOR, problem
from slamon.service.keys import CLOCK, MONITOR, READER
from slamon.store import StoreTx
from slamon.workflow import (
    Evidence,
    amend,
    approve,
    evidence_file,
    history,
    listing,
    propose,
    record_to_dict,
    reject,
    zone_of_fleet,
)

T = TypeVar("T")
MAX_BODY = 64 * 1024 * 1024  # a proposal with its evidence, base64 in JSON
MAX_DIGITS = 18  # what both backends' 64-bit integers hold
MAX_AUDIT = 10_000  # entries per page


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/exclusions", list_exclusions)
    app.router.add_post("/api/v1/exclusions", create_exclusion)
    app.router.add_get("/api/v1/exclusions/{id}", show_exclusion)
    app.router.add_post("/api/v1/exclusions/{id}/amend", amend_exclusion)
    app.router.add_post("/api/v1/exclusions/{id}/approve", approve_exclusion)
    app.router.add_post("/api/v1/exclusions/{id}/reject", reject_exclusion)
    app.router.add_get("/api/v1/exclusions/{id}/evidence/{sha256}", get_evidence)
    app.router.add_get("/api/v1/audit", audit_entries)
    app.router.add_get("/api/v1/audit/verify", audit_verify)
    app.router.add_get("/api/v1/openapi.yaml", openapi)
    app.router.add_get("/api/v1/openapi.json", openapi_json)


async def openapi(request: web.Request) -> web.StreamResponse:
    """The OpenAPI 3.1 document of this API (slamon/service/openapi.yaml)."""
    text = resources.files("slamon.service").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return web.Response(text=text, content_type="application/yaml", charset="utf-8")


@functools.cache
def _openapi_json() -> bytes:
    import yaml

    text = resources.files("slamon.service").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return json.dumps(yaml.safe_load(text), ensure_ascii=False, indent=1).encode()


async def openapi_json(request: web.Request) -> web.StreamResponse:
    """The same document as JSON (what most OpenAPI tools fetch)."""
    return web.Response(body=_openapi_json(), content_type="application/json", charset="utf-8")


async def list_exclusions(request: web.Request) -> web.StreamResponse:
    """The exclusions in force the token may see; `status` (repeatable) and `contract` filter."""
    bad = _unknown(request, ("status", "contract"))
    if bad is not None:
        return bad
    statuses = request.query.getall("status", [])
    wrong = [s for s in statuses if s not in {x.value for x in ExclusionStatus}]
    if wrong:
        return problem(400, f"status: {wrong[0]!r} is not proposed, approved or rejected", code="invalid")
    contracts = request.query.getall("contract", [])
    if len(contracts) > 1:
        return problem(400, "contract: give it once", code="invalid")
    actor, fleet = request[ACTOR], request.app[MONITOR].whole
    found = await _read(
        request,
        lambda tx: listing(
            tx,
            fleet,
            actor,
            statuses=[ExclusionStatus(s) for s in statuses],
            contract=contracts[0] if contracts else None,
        ),
    )
    zone = zone_of_fleet(fleet)
    return json_response({"exclusions": [f.to_dict(zone) for f in found], "count": len(found)})


async def create_exclusion(request: web.Request) -> web.StreamResponse:
    """Propose an exclusion: 201 with its first version, and its place in Location."""
    body = await _body(request)
    if isinstance(body, web.StreamResponse):
        return body
    evidence = _evidence(body.pop("evidence", []))
    if isinstance(evidence, web.StreamResponse):
        return evidence
    actor, fleet, now = request[ACTOR], request.app[MONITOR].whole, request.app[CLOCK].now()
    rec = await _write(
        request, lambda tx: propose(tx, fleet, actor, body, evidence, now, where="request body")
    )
    response = json_response(record_to_dict(rec, zone_of_fleet(fleet)), status=201)
    response.headers["Location"] = f"/api/v1/exclusions/{url_quote(rec.exclusion.id)}"
    return response


async def show_exclusion(request: web.Request) -> web.StreamResponse:
    """Every version of one exclusion, oldest first."""
    actor, fleet, ident = request[ACTOR], request.app[MONITOR].whole, request.match_info["id"]
    records = await _read(request, lambda tx: history(tx, fleet, actor, ident))
    zone = zone_of_fleet(fleet)
    return json_response({"id": ident, "versions": [record_to_dict(r, zone) for r in records]})


async def amend_exclusion(request: web.Request) -> web.StreamResponse:
    """A new version with the fields given changed (`note`: why; `evidence`: more files)."""
    body = await _body(request)
    if isinstance(body, web.StreamResponse):
        return body
    evidence = _evidence(body.pop("evidence", []))
    if isinstance(evidence, web.StreamResponse):
        return evidence
    note = body.pop("note", None)
    if note is not None and not isinstance(note, str):
        return problem(422, "request body: note: expected text", code="invalid")
    actor, fleet, now = request[ACTOR], request.app[MONITOR].whole, request.app[CLOCK].now()
    ident = request.match_info["id"]
    rec = await _write(
        request,
        lambda tx: amend(tx, fleet, actor, ident, body, evidence, now, note=note, where="request body"),
    )
    return json_response(record_to_dict(rec, zone_of_fleet(fleet)))


async def approve_exclusion(request: web.Request) -> web.StreamResponse:
    return await _decide(request, approve)


async def reject_exclusion(request: web.Request) -> web.StreamResponse:
    return await _decide(request, reject)


async def _decide(request: web.Request, decide: Callable[..., Any]) -> web.StreamResponse:
    """`{"reason": "…"}`: the decision's reason, required."""
    body = await _body(request, MAX_JSON)
    if isinstance(body, web.StreamResponse):
        return body
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        return problem(422, f"request body: {unknown[0]}: unknown key", code="invalid")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        return problem(422, "request body: reason: expected text", code="invalid")
    actor, fleet, now = request[ACTOR], request.app[MONITOR].whole, request.app[CLOCK].now()
    ident = request.match_info["id"]
    rec = await _write(request, lambda tx: decide(tx, fleet, actor, ident, reason, now))
    return json_response(record_to_dict(rec, zone_of_fleet(fleet)))


async def get_evidence(request: web.Request) -> web.StreamResponse:
    """One evidence file's bytes, with its name."""
    actor, fleet = request[ACTOR], request.app[MONITOR].whole
    ident, sha = request.match_info["id"], request.match_info["sha256"]
    attachment, content = await _read(request, lambda tx: evidence_file(tx, fleet, actor, ident, sha))
    media = mimetypes.guess_type(attachment.name)[0] or "application/octet-stream"
    return web.Response(
        body=content,
        content_type=media,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{url_quote(attachment.name)}",
            "Digest": "sha-256=" + base64.b64encode(bytes.fromhex(attachment.sha256)).decode(),
        },
    )


async def audit_entries(request: web.Request) -> web.StreamResponse:
    """The audit log, oldest first: `after` (a seq), `limit` (at most 10,000), `subject`."""
    bad = _unknown(request, ("after", "limit", "subject"))
    if bad is not None:
        return bad
    request[ACTOR].require(Permission.AUDIT)
    numbers: dict[str, int] = {}
    for name, default in (("after", 0), ("limit", MAX_AUDIT)):
        text = request.query.get(name)
        if text is not None and not (text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS):
            return problem(
                400, f"{name}: {text!r} is not a whole number up to {MAX_DIGITS} digits", code="invalid"
            )
        numbers[name] = default if text is None else int(text)
    limit = numbers["limit"]
    if limit > MAX_AUDIT:
        return problem(
            400, f"limit: {limit} is more than a page holds (at most {MAX_AUDIT:,})", code="invalid"
        )
    subject = request.query.get("subject")
    entries = await _read(
        request, lambda tx: tx.audit.entries(after=numbers["after"], limit=limit + 1, subject=subject)
    )
    zone = zone_of_fleet(request.app[MONITOR].whole)
    rows = []
    for e in entries[:limit]:
        row = e.to_dict()
        row["at"] = _iso(e.at, zone)
        rows.append(row)
    return json_response({"entries": rows, "count": len(rows), "more": len(entries) > limit})


async def audit_verify(request: web.Request) -> web.StreamResponse:
    """The chain walked (as `slamon audit verify`): 200 with `ok` true or false and the problems."""
    request[ACTOR].require(Permission.AUDIT)
    report = await _read(request, lambda tx: tx.audit.verify())
    head = None if report.head is None else f"{report.head[0]}:{report.head[1]}"
    return json_response(
        {"ok": report.ok, "entries": report.entries, "head": head, "problems": list(report.problems)}
    )


# --- helpers ------------------------------------------------------------------------------------


def _unknown(request: web.Request, allowed: tuple[str, ...]) -> web.Response | None:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        return problem(
            400, f"unknown query parameter {unknown[0]!r} (use {', '.join(allowed)})", code="invalid"
        )
    return None


async def _body(request: web.Request, limit: int = MAX_BODY) -> dict[str, Any] | web.Response:
    """The request's JSON object (up to `limit` bytes)."""
    if request.content_type != "application/json":
        return problem(415, "send the body as application/json", code="invalid")
    try:
        raw = await request.clone(client_max_size=limit).read()
    except web.HTTPRequestEntityTooLarge:
        return problem(413, f"the body is larger than {limit:,} bytes", code="too_large")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return problem(400, f"the body is not JSON: {exc}", code="invalid")
    if not isinstance(body, dict):
        return problem(422, "request body: expected a JSON object", code="invalid")
    return body


def _evidence(value: object) -> list[Evidence] | web.Response:
    """`[{"name": …, "content_base64": …}, …]` as files."""
    if not isinstance(value, list):
        return problem(422, "request body: evidence: expected a list", code="invalid")
    files: list[Evidence] = []
    for i, item in enumerate(value):
        where = f"request body: evidence[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "content_base64"}:
            return problem(422, f"{where}: expected {{name, content_base64}}", code="invalid")
        name, content = item["name"], item["content_base64"]
        if not isinstance(name, str) or not isinstance(content, str):
            return problem(422, f"{where}: name and content_base64 are text", code="invalid")
        try:
            files.append(Evidence(name, base64.b64decode(content, validate=True)))
        except (binascii.Error, ValueError):
            return problem(422, f"{where}.content_base64: not base64", code="invalid")
    return files


async def _read(request: web.Request, fn: Callable[[StoreTx], T]) -> T:
    store = request.app[MONITOR].store

    def run() -> T:
        with store.read() as tx:
            return fn(tx)

    return await asyncio.get_running_loop().run_in_executor(request.app[READER], run)


async def _write(request: web.Request, fn: Callable[[StoreTx], T]) -> T:
    store = request.app[MONITOR].store

    def run() -> T:
        with store.begin() as tx:
            return fn(tx)

    return await asyncio.get_running_loop().run_in_executor(request.app[READER], run)


def _iso(at: int, zone: Any) -> str:
    from slamon.model import from_micros

    return from_micros(at).astimezone(zone).isoformat(timespec="seconds")
