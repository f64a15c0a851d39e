"""Bearer tokens on the HTTP API: who is asking, what a token limited to contracts may read, and
errors as application/problem+json (RFC 9457).

The open paths (`api.open`, default /metrics and /healthz) are served to anyone. Elsewhere a
request carries `Authorization: Bearer slamon_<id>_<secret>`, checked against the store's tokens
(a revoked one is refused at once); without one, `api.auth` decides: `tokens` refuses (401), `off`
serves it as `anonymous` (a viewer of every contract: reads, never writes), `auto` does as `off`
until the store holds a token and as `tokens` from then on. A token limited to contracts reads the
device, outage and SLA lists of those contracts only (the `contract` filter is added, or checked),
and a device of another contract is not found. Every refusal is logged (WARNING), with the
method, the path, the client, the token's id when there is one and the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from slamon.access import Actor, Role, authenticate
from slamon.errors import AccessDenied, ExclusionError, InputError, StoreError, WorkflowError
from slamon.loaders.config import ApiAuth, ApiConfig
from slamon.model import ContractId, DeviceId
from slamon.service.keys import MONITOR, READER
from slamon.store import Store

logger = logging.getLogger(__name__)

ACTOR = web.RequestKey("actor", Actor)
API = web.AppKey("api", ApiConfig)
ANONYMOUS = Actor("anonymous", Role.VIEWER, None, channel="api")
PROBLEM = "application/problem+json"
TOKENS_RECHECK_S = 5.0  # `auto`: how often "does the store hold a token yet?" is asked again
LIMITED_LISTS = ("/api/v1/devices", "/api/v1/outages", "/api/v1/sla")  # take a `contract` filter
WORKFLOW_KINDS = {"not_found": 404, "conflict": 409, "late": 422, "invalid": 422}
# the `code` of an error a handler raises as aiohttp's HTTPException (turned into problem+json)
CODES = {400: "invalid", 404: "not_found", 405: "invalid", 409: "conflict", 413: "too_large", 415: "invalid"}
CODES.update({422: "invalid", 500: "tampered", 503: "unavailable"})  # 500: a stored record changed
KEPT_HEADERS = ("Retry-After", "Allow")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, detail: str, *, code: str | None = None, **headers: str) -> web.Response:
    """An application/problem+json response: `type` about:blank, `title` the status's phrase, the
    `detail`, and slamon's `code` (unauthorized, forbidden, not_found, conflict, late, invalid …)."""
    from http import HTTPStatus

    from slamon.service.api import json_response

    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    body["detail"] = detail
    if code is not None:
        body["code"] = code
    response = json_response(body, status=status)
    response.content_type = PROBLEM
    response.headers.update(headers)
    return response


class TokensSeen:
    """Whether the store holds a token (for `api.auth: auto`): once it does, for good (tokens are
    never deleted); until then it is asked again every few seconds."""

    def __init__(self) -> None:
        self.seen = False
        self._asked = -1e9

    def due(self) -> bool:
        return not self.seen and time.monotonic() - self._asked >= TOKENS_RECHECK_S

    def record(self, found: bool) -> None:
        self._asked = time.monotonic()
        self.seen = self.seen or found


TOKENS_SEEN = web.AppKey("tokens_seen", TokensSeen)


def install(app: web.Application, config: ApiConfig) -> None:
    """Put the settings and the middleware on an app (before it starts)."""
    app[API] = config
    app[TOKENS_SEEN] = TokensSeen()
    app.middlewares.append(middleware)
    if config.auth is ApiAuth.OFF:
        logger.warning(
            "api.auth off: anyone who can reach the API reads every contract (writes need a token)"
        )


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    config = request.app[API]
    if request.path in config.open:
        return await handler(request)
    try:
        actor = await _actor(request, config)
    except StoreError as exc:
        return _unavailable(exc)
    if isinstance(actor, web.StreamResponse):
        return actor
    request[ACTOR] = actor
    try:
        limited = _limited(request, actor)
        if isinstance(limited, web.StreamResponse):
            return limited
        if limited is not request:
            limited[ACTOR] = actor
        return await handler(limited)
    except AccessDenied as exc:
        if actor is ANONYMOUS:
            return _refuse(request, None, 401, "this needs a bearer token", "unauthorized")
        return _refuse(request, actor, 403, str(exc), "forbidden")
    except WorkflowError as exc:
        status = WORKFLOW_KINDS.get(exc.kind, 422)
        logger.info("%s %s by %s: %s", request.method, request.path, actor.name, exc)
        return problem(status, str(exc), code=exc.kind)
    except (ExclusionError, InputError) as exc:
        logger.info("%s %s by %s: %s", request.method, request.path, actor.name, exc)
        return problem(422, str(exc), code="invalid")
    except StoreError as exc:
        return _unavailable(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http(exc)


def _from_http(exc: web.HTTPException) -> web.Response:
    """A handler's (or aiohttp's: no route, a method not allowed, a body too large) HTTP error as
    application/problem+json, its plain-text message as the detail."""
    detail = (exc.text or exc.reason).strip()
    headers = {k: exc.headers[k] for k in KEPT_HEADERS if k in exc.headers}
    return problem(exc.status, detail, code=CODES.get(exc.status), **headers)


def _unavailable(exc: StoreError) -> web.Response:
    return problem(
        503, f"the store is unavailable, retry later: {exc}", code="unavailable", **{"Retry-After": "10"}
    )


async def _actor(request: web.Request, config: ApiConfig) -> Actor | web.StreamResponse:
    header = request.headers.get("Authorization")
    store = request.app[MONITOR].store
    if header is None:
        if config.auth is ApiAuth.OFF:
            return ANONYMOUS
        if config.auth is ApiAuth.AUTO:
            seen = request.app[TOKENS_SEEN]
            if seen.due():
                try:
                    seen.record(await _off_loop(request, lambda: _any_token(store)))
                except StoreError:  # keep the last answer; the handler says the store is away
                    logger.debug("auto: cannot tell whether the store holds a token yet", exc_info=True)
            if not seen.seen:
                return ANONYMOUS
        return _refuse(
            request, None, 401, "this needs a bearer token (Authorization: Bearer …)", "unauthorized"
        )
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refuse(request, None, 401, "the Authorization header is not `Bearer <token>`", "unauthorized")
    found: Actor | str = await _off_loop(request, lambda: _authenticate(store, token.strip()))
    if isinstance(found, str):
        return _refuse(request, None, 401, found, "unauthorized", token=token.strip())
    return found


def _limited(request: web.Request, actor: Actor) -> web.Request | web.StreamResponse:
    """For a token limited to contracts, the lists it may read filtered to them; a device of
    another contract is not found."""
    if actor.contracts is None or request.method != "GET":
        return request
    if request.path in LIMITED_LISTS:
        given = request.query.getall("contract", [])
        outside = sorted(set(given) - actor.contracts)
        if outside:
            return _refuse(
                request, actor, 403, f"{actor.describe()} may not read contract {outside[0]}", "forbidden"
            )
        if given:
            return request
        wanted = [*request.rel_url.query.items(), *(("contract", c) for c in sorted(actor.contracts))]
        return request.clone(rel_url=request.rel_url.with_query(wanted))
    route = request.match_info.route.resource
    if route is not None and route.canonical == "/api/v1/devices/{id}":
        device = request.app[MONITOR].whole.inventory.devices.get(DeviceId(request.match_info["id"]))
        if device is not None and ContractId(device.contract) not in actor.contracts:
            return _refuse(request, actor, 404, f"no device {device.id!r}", "not_found")
    return request


def _refuse(
    request: web.Request, actor: Actor | None, status: int, reason: str, code: str, token: str | None = None
) -> web.Response:
    who = actor.describe() if actor is not None else _token_hint(token)
    logger.warning(
        "refused %s %s from %s (%s): %s", request.method, request.path, request.remote, who, reason
    )
    headers = {"WWW-Authenticate": 'Bearer realm="slamon"'} if status == 401 else {}
    return problem(status, reason, code=code, **headers)


def _token_hint(token: str | None) -> str:
    """A token's id for the log, never its secret."""
    from slamon.store.tokens import token_id

    if token is None:
        return "no token"
    ident = token_id(token)
    return f"token {ident}" if ident else "a token not made by slamon"


def _any_token(store: Store) -> bool:
    with store.read() as tx:
        return tx.tokens.any()


def _authenticate(store: Store, token: str) -> Actor | str:
    with store.read() as tx:
        return authenticate(tx, token)


async def _off_loop(request: web.Request, fn: Callable[[], Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(request.app[READER], fn)
