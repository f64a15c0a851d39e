"""The typed keys the HTTP app keeps its parts under (aiohttp's AppKey: no globals)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from aiohttp import web
from prometheus_client import CollectorRegistry

from slamon.clock import Clock
from slamon.model import ProbeKind
from slamon.service.metrics import Figures
from slamon.service.monitor import Monitor

MONITOR = web.AppKey("monitor", Monitor)
CLOCK = web.AppKey("clock", Clock)
REGISTRY = web.AppKey("registry", CollectorRegistry)
FIGURES = web.AppKey("figures", Figures)
INTERVALS: web.AppKey[dict[ProbeKind, timedelta]] = web.AppKey("intervals", dict)  # for /healthz
READER = web.AppKey("reader", ThreadPoolExecutor)  # threads for store reads and heavy answers
