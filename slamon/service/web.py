"""The HTTP side of `slamon run`: /metrics, /healthz, and the read API (/api/v1, in api.py).

An app factory with typed AppKeys (no globals). Nothing here makes the event loop wait: /metrics
serves the body rendered after the last round, the device API reads the same view, and anything
that reads the store or computes much runs on the app's reader threads, on the store's read-only
connections (a reader never waits for the writer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from aiohttp import web
from prometheus_client import CollectorRegistry

from slamon.clock import Clock
from slamon.loaders.config import ApiConfig
from slamon.model import ProbeKind
from slamon.service import api, auth, statements_api, workflow
from slamon.service.health import assess
from slamon.service.keys import CLOCK, FIGURES, INTERVALS, MONITOR, READER, REGISTRY
from slamon.service.metrics import Figures, SelfCollector, SiteCollector, TargetCollector, exposition
from slamon.service.monitor import Monitor

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READERS = 2  # threads for store reads and heavy answers


def create_app(
    monitor: Monitor,
    clock: Clock,
    intervals: Mapping[ProbeKind, timedelta],
    figures: Figures | None = None,
    access: ApiConfig | None = None,
) -> web.Application:
    app = web.Application(client_max_size=api.MAX_JSON)
    auth.install(app, access or ApiConfig())  # bearer tokens beyond the open paths (service/auth.py)
    registry = CollectorRegistry()
    registry.register(
        SelfCollector(monitor.stats, monitor.state, monitor.writer.status, lambda: monitor.state.late)
    )
    registry.register(SiteCollector(lambda: list(monitor.power.open), lambda: monitor.trap_counts))
    registry.register(TargetCollector(lambda: monitor.fleet.contracts))
    app[MONITOR] = monitor
    app[CLOCK] = clock
    app[REGISTRY] = registry
    app[FIGURES] = figures or Figures()
    app[INTERVALS] = dict(intervals)
    app.cleanup_ctx.append(_reader_threads)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/devices", api.devices)
    app.router.add_get("/api/v1/devices/{id}", api.device)
    app.router.add_get("/api/v1/outages", api.outages)
    app.router.add_get("/api/v1/sla", api.sla)
    workflow.add_routes(app)  # /api/v1/exclusions, /api/v1/audit
    statements_api.add_routes(app)  # /api/v1/statements
    app.router.add_get("/", index)
    return app


async def _reader_threads(app: web.Application) -> AsyncIterator[None]:
    pool = ThreadPoolExecutor(READERS, thread_name_prefix="slamon-read")
    app[READER] = pool
    yield
    pool.shutdown(wait=False, cancel_futures=True)


async def index(request: web.Request) -> web.Response:
    return web.Response(
        text="slamon: /metrics /healthz /api/v1/devices /api/v1/outages /api/v1/sla /api/v1/exclusions /api/v1/statements /api/v1/audit\n"
    )


async def metrics(request: web.Request) -> web.Response:
    """The body rendered after the last round, gzipped when the client takes gzip."""
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    args = (request.app[MONITOR].exposition, request.app[FIGURES], request.app[REGISTRY])
    if gzipped:
        body = exposition(*args, gzipped=True)
    else:  # a decompression of the cached body: off the loop
        body = await asyncio.get_running_loop().run_in_executor(
            request.app[READER], lambda: exposition(*args, gzipped=False)
        )
    headers = {"Content-Type": CONTENT_TYPE}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


async def healthz(request: web.Request) -> web.Response:
    """200 while every probe kind runs its rounds and the store takes the evidence; else 503 with
    the reasons (a round kind late, the store refusing writes, a backlog that waits too long)."""
    monitor = request.app[MONITOR]
    intervals: dict[ProbeKind, timedelta] = request.app[INTERVALS]
    health = assess(monitor.stats, intervals, monitor.writer.status(), len(monitor.state), time.time())
    return api.json_response(health.body, status=200 if health.healthy else 503)
