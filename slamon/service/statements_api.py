"""Statements over HTTP (/api/v1/statements), thin handlers over slamon/issuing.py: the issued
revisions, a month's statement computed now, an issued revision byte for byte, issuing, verifying.
Each in the formats of `slamon statement` (json, csv, xlsx, pdf, text). The work runs on the app's
reader threads; the actor is the request's (service/auth.py): any role reads the contracts its
token may see, `contract_manager` and `admin` issue (in the audit log as `statement.issue`)."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote as url_quote
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiohttp import web

from slamon.access import Actor, Role
from slamon.billing.periods import parse_month
from slamon.errors import AccessDenied, StatementError
from slamon.issuing import Outcome, Override, issued_revision, statement, verify
from slamon.model import ContractId, Exclusion, Fleet, from_micros
from slamon.service.api import json_response
from slamon.service.auth import ACTOR, problem
from slamon.service.keys import CLOCK, MONITOR, READER
from slamon.store import Store
from slamon.store.digests import Tampered
from slamon.units import quote_short

T = TypeVar("T")
MAX_STATEMENT = 64 * 1024 * 1024  # a statement to verify (a city's month lists every device)
MEDIA = {
    "json": "application/json",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "text": "text/plain",
}
TEXTUAL = ("json", "csv", "text")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # a statement's hash and inputs_sha256
ISSUERS = (Role.CONTRACT_MANAGER, Role.ADMIN)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/statements", list_statements)
    app.router.add_post("/api/v1/statements/verify", verify_statement)
    app.router.add_get("/api/v1/statements/{contract}/{month}", current_statement)
    app.router.add_get("/api/v1/statements/{contract}/{month}/revisions/{revision}", revision_of)
    app.router.add_post("/api/v1/statements/{contract}/{month}/issue", issue_statement)


async def list_statements(request: web.Request) -> web.StreamResponse:
    """The issued revisions, oldest first per month: `contract`, `month` filter (each once)."""
    query = _query(request, ("contract", "month"))
    if isinstance(query, web.StreamResponse):
        return query
    actor, contract, month = request[ACTOR], query.get("contract"), query.get("month")
    if month is not None:
        month = _month(month)
    if contract is not None:
        actor.require_reach([ContractId(contract)], "read statements")
    store, fleet = request.app[MONITOR].store, request.app[MONITOR].whole
    rows = await _run(request, lambda: _issued_rows(store, contract, month))
    listed = [_row_json(r, fleet) for r in rows if actor.sees([ContractId(r.contract)])]
    return json_response({"statements": listed, "count": len(listed)})


async def current_statement(request: web.Request) -> web.StreamResponse:
    """The month's statement computed now, as `slamon statement` gives it: the issued revision when
    its inputs are unchanged, else a draft of the next one. `format`: json (default), csv, xlsx,
    pdf, text."""
    fmt = _format(request)
    contract, month = _subject(request)
    store, fleet, now = request.app[MONITOR].store, request.app[MONITOR].whole, request.app[CLOCK].now()

    def run() -> tuple[bytes, str]:
        _known(store, contract)
        try:
            outcome = statement(store, contract, month, issue=False, now=now)
        except StatementError as exc:  # a month outside the contract's term
            raise web.HTTPNotFound(text=str(exc)) from None
        return _render(outcome, fmt, fleet, store, contract), _filename(outcome, fmt)

    body, name = await _run(request, run)
    return _document(body, fmt, name)


async def revision_of(request: web.Request) -> web.StreamResponse:
    """An issued revision as it was stored (its JSON byte for byte), in any format."""
    fmt = _format(request)
    contract, month = _subject(request)
    text = request.match_info["revision"]
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 1_000_000:
        raise web.HTTPBadRequest(text=f"revision: {text!r} is not a revision number (1, 2, …)")
    revision = int(text)
    store, fleet = request.app[MONITOR].store, request.app[MONITOR].whole

    def run() -> tuple[bytes, str]:
        try:
            outcome = issued_revision(store, contract, month, revision)
        except StatementError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        return _render(outcome, fmt, fleet, store, contract), _filename(outcome, fmt)

    body, name = await _run(request, run)
    return _document(body, fmt, name)


async def issue_statement(request: web.Request) -> web.StreamResponse:
    """Issue the month (`contract_manager`, `admin`): 201 with the issued JSON and its revision in
    Location; 200 with the revision already issued when its inputs are unchanged. Body (optional):
    `{"accept_low_coverage": "why"}` to issue a month below the contract's minimum coverage."""
    actor: Actor = request[ACTOR]
    if actor.role not in ISSUERS:
        raise AccessDenied(f"{actor.describe()} may not issue statements")
    contract, month = _subject(request)
    actor.require_reach([ContractId(contract)], "issue statements")
    body: Any = {}
    if request.can_read_body:
        try:
            body = json.loads(await request.read() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise web.HTTPBadRequest(text=f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict) or set(body) - {"accept_low_coverage"}:
        raise web.HTTPUnprocessableEntity(text="request body: expected {} or {accept_low_coverage: REASON}")
    reason = body.get("accept_low_coverage")
    if reason is not None and (not isinstance(reason, str) or not reason.strip()):
        raise web.HTTPUnprocessableEntity(text="request body: accept_low_coverage: give the reason (text)")
    override = None if reason is None else Override(reason.strip(), actor.name)
    store, fleet, now = request.app[MONITOR].store, request.app[MONITOR].whole, request.app[CLOCK].now()

    def run() -> tuple[Outcome, bool]:
        from slamon.cli import _labels

        _known(store, contract)
        with store.read() as tx:
            before = {s.revision for s in tx.statements.issued(contract, month)}
            exclusions = tx.versions.exclusions()
        try:
            outcome = statement(
                store,
                contract,
                month,
                issue=True,
                now=now,
                override=override,
                context=lambda doc: _labels(doc, fleet, contract, exclusions),
                by=_who(actor),
            )
        except StatementError as exc:  # the month has not ended, its coverage is short
            raise web.HTTPConflict(text=str(exc)) from None
        return outcome, outcome.document["revision"] not in before

    outcome, new = await _run(request, run)
    text = outcome.text if outcome.text is not None else json.dumps(outcome.document, ensure_ascii=False)
    response = web.Response(body=(text + "\n").encode(), status=201 if new else 200)
    response.content_type, response.charset = "application/json", "utf-8"
    path = f"/api/v1/statements/{url_quote(contract)}/{month}/revisions/{outcome.document['revision']}"
    response.headers["Location"] = path
    return response


async def verify_statement(request: web.Request) -> web.StreamResponse:
    """A statement JSON (as downloaded, or as `slamon statement` wrote it) checked against the
    store, as `slamon statement verify FILE`: `{"ok", "findings": […]}` (200 either way)."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send the statement as application/json")
    raw = await request.clone(client_max_size=MAX_STATEMENT).read()
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise web.HTTPUnprocessableEntity(text="request body: expected a statement (a JSON object)")
    contract = doc.get("contract")
    if isinstance(contract, str):
        request[ACTOR].require_reach([ContractId(contract)], "verify statements")
    for key in ("contract", "month", "hash", "inputs_sha256"):
        if key in doc and not isinstance(doc[key], str):
            raise web.HTTPUnprocessableEntity(text=f"request body: {key}: expected text")
    month = doc.get("month")
    try:
        if month is not None:
            parse_month(month)
    except ValueError as exc:
        raise web.HTTPUnprocessableEntity(text=f"request body: month: {exc}") from None
    for key in ("hash", "inputs_sha256"):  # as slamon writes them: no statement has another form
        if key in doc and not DIGEST.fullmatch(doc[key]):
            raise web.HTTPUnprocessableEntity(
                text=f"request body: {key}: {quote_short(doc[key])} is not sha256:<64 hex digits>"
            )
    store = request.app[MONITOR].store

    def run() -> dict[str, Any]:
        try:
            verdict = verify(store, doc)
        except StatementError as exc:
            raise web.HTTPUnprocessableEntity(text=f"request body: {exc}") from None
        return {"ok": verdict.ok, "findings": verdict.lines}

    return json_response(await _run(request, run))


# --- helpers ------------------------------------------------------------------------------------


def _query(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str] | web.Response:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        return problem(
            400, f"unknown query parameter {unknown[0]!r} (use {', '.join(allowed)})", code="invalid"
        )
    out: dict[str, str] = {}
    for name in allowed:
        values = request.query.getall(name, [])
        if len(values) > 1:
            return problem(400, f"{name}: give it once", code="invalid")
        if values:
            out[name] = values[0]
    return out


def _format(request: web.Request) -> str:
    bad = sorted(set(request.query) - {"format"})
    if bad:
        raise web.HTTPBadRequest(text=f"unknown query parameter {bad[0]!r} (use format)")
    values = request.query.getall("format", ["json"])
    if len(values) != 1 or values[0] not in MEDIA:
        raise web.HTTPBadRequest(text=f"format: {values[-1]!r} is not one of {', '.join(MEDIA)}")
    return values[0]


def _month(text: str) -> str:
    try:
        parse_month(text)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"month: {exc}") from None
    return text


def _subject(request: web.Request) -> tuple[str, str]:
    """The path's contract (which the token must reach) and month (YYYY-MM)."""
    contract = request.match_info["contract"]
    request[ACTOR].require_reach([ContractId(contract)], "read statements")
    return contract, _month(request.match_info["month"])


def _known(store: Store, contract: str) -> None:
    with store.read() as tx:
        if tx.versions.contract_as_of(contract, 1 << 62) is None:
            raise web.HTTPNotFound(text=f"no contract {contract!r}")


def _issued_rows(store: Store, contract: str | None, month: str | None) -> list[Any]:
    """The issued revisions' facts (not their bodies: a download reads and checks those)."""
    from slamon.store import schema as t

    st = t.statements
    query = sa.select(
        st.c.contract,
        st.c.month,
        st.c.revision,
        st.c.hash,
        st.c.replaces,
        st.c.issued_at,
        st.c.override_by,
        st.c.override_reason,
    ).order_by(st.c.contract, st.c.month, st.c.revision)
    if contract is not None:
        query = query.where(st.c.contract == contract)
    if month is not None:
        query = query.where(st.c.month == month)
    with store.read() as tx:
        return list(tx.statements.conn.execute(query))


def _row_json(r: Any, fleet: Fleet) -> dict[str, Any]:
    terms = fleet.contracts.get(ContractId(r.contract))
    zone = ZoneInfo(terms.timezone) if terms is not None else ZoneInfo("UTC")
    override = None if r.override_reason is None else {"reason": r.override_reason, "by": r.override_by}
    return {
        "contract": r.contract,
        "month": r.month,
        "revision": r.revision,
        "status": "issued",
        "issued_at": from_micros(r.issued_at).astimezone(zone).isoformat(timespec="seconds"),
        "hash": r.hash,
        "replaces": r.replaces,
        "coverage_override": override,
        "href": f"/api/v1/statements/{url_quote(r.contract)}/{r.month}/revisions/{r.revision}",
    }


def _render(outcome: Outcome, fmt: str, fleet: Fleet, store: Store, contract: str) -> bytes:
    """The statement in `fmt`, as `slamon statement --format fmt` writes it."""
    doc: Mapping[str, Any] = outcome.document
    if fmt == "json":
        text = outcome.text if outcome.text is not None else json.dumps(doc, ensure_ascii=False, indent=2)
        return (text + "\n").encode()
    from slamon.billing.render.context import Context

    def exclusions() -> tuple[Exclusion, ...]:
        with store.read() as tx:
            return tx.versions.exclusions()

    def context() -> Context:  # the buyer, the targets, the sites' and scopes' labels
        terms = fleet.contracts.get(ContractId(contract))
        return Context.for_statement(outcome.context, terms, fleet.inventory, exclusions)

    if fmt in ("csv", "text"):
        out = io.StringIO(newline="")
        if fmt == "csv":
            from slamon.billing.render.csv import render_csv

            render_csv(doc, out)
        else:
            from slamon.billing.render.text import render_text

            render_text(doc, out, context())
        return out.getvalue().encode()
    data = io.BytesIO()
    if fmt == "xlsx":
        from slamon.billing.render.xlsx import render_xlsx

        render_xlsx(doc, data)
        return data.getvalue()
    from slamon.billing.render.fonts import cjk_fonts
    from slamon.billing.render.pdf import render_pdf

    try:
        cjk_fonts()
    except StatementError as exc:  # no CJK font on this machine: the message names the package
        raise web.HTTPServiceUnavailable(text=str(exc)) from None
    render_pdf(doc, data, context())
    return data.getvalue()


def _filename(outcome: Outcome, fmt: str) -> str:
    doc = outcome.document
    kind = "r" if doc.get("status") == "issued" else "draft-r"
    return f"{doc.get('contract')}-{doc.get('month')}-{kind}{doc.get('revision')}.{fmt}"


def _document(body: bytes, fmt: str, name: str) -> web.Response:
    response = web.Response(body=body)
    response.content_type = MEDIA[fmt]
    if fmt in TEXTUAL:
        response.charset = "utf-8"
    response.headers["Content-Disposition"] = f"inline; filename*=UTF-8''{url_quote(name)}"
    return response


def _who(actor: Actor) -> str:
    """Who issues, as the audit log records it: the token's name and id."""
    return actor.name if actor.token is None else f"{actor.name} (token {actor.token})"


async def _run(request: web.Request, fn: Callable[[], T]) -> T:
    """`fn` on a reader thread; a stored statement whose bytes were changed is a 500 naming it."""
    try:
        return await asyncio.get_running_loop().run_in_executor(request.app[READER], fn)
    except Tampered as exc:
        raise web.HTTPInternalServerError(text=str(exc)) from None
