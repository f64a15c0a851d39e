"""The video prober: samples cameras' RTSP streams in worker processes and reports each sample's
defects (no_signal, black, frozen, blur, …) as a video ProbeResult, with the metrics as evidence.

A round is a tick of the service (a minute): it samples the cameras due in it (video/schedule.py:
each camera once per `probes.video.interval`, spread evenly, sooner after a defect), starting them
spread over most of the tick, at most `concurrency` at once. The samples run in a few worker
processes (video/worker.py, about one per core), so decoding never holds the service's event loop.
Each sample has a deadline of its own (connect, read, decode); a camera that does not answer in
time is `no_signal` with the reason. The streams' user and password come from the environment or a
file and go to the workers only: never into a log, a metric or a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from slamon.clock import Clock
from slamon.errors import ConfigError, SlamonError
from slamon.loaders.video_config import VideoGroup, VideoProbeConfig
from slamon.model import Defect, Device, ProbeKind, ProbeResult, to_micros
from slamon.video.schedule import VideoSchedule

logger = logging.getLogger(__name__)

TICK = timedelta(minutes=1)  # how often a video round runs (probes.video.interval spaces each camera)


def tick_of(config: VideoProbeConfig) -> timedelta:
    """A round a minute, or every interval when that is shorter."""
    return min(TICK, config.interval)


SPREAD = 0.75  # share of the tick over which a round starts its samples (they end within it)
MARGIN_S = 2.0  # beyond a sample's own bounds before the caller gives up on it


class VideoUnavailable(SlamonError):
    """The streams' credentials cannot be read."""


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str | None
    password: str | None

    @classmethod
    def of(cls, config: VideoProbeConfig) -> Credentials:
        user = os.environ.get(config.user_env) or None
        password = os.environ.get(config.password_env) or None
        if config.password_file is not None:
            try:
                password = config.password_file.read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                raise VideoUnavailable(
                    f"probes.video.password_file: cannot read it: {exc.strerror}"
                ) from None
        return cls(user, password)


def settings_for(
    device: Device, config: VideoProbeConfig
) -> tuple[dict[str, float], dict[str, float] | None]:
    """The thresholds (over the defaults) and baseline of a camera: the fleet's, then the first
    group that names it, by device id or site."""
    group = next((g for g in config.groups if device.id in g.devices or device.site in g.sites), None)
    if group is None:
        return dict(config.thresholds), None
    return {**config.thresholds, **group.thresholds}, dict(group.baseline) if group.baseline else None


def check_groups(groups: Sequence[VideoGroup], devices: Iterable[Device]) -> None:
    """Every device and site a group names exists: a misspelt id would leave a camera unjudged by
    the thresholds meant for it."""
    listed = list(devices)
    ids, sites = {d.id for d in listed}, {d.site for d in listed}
    for i, group in enumerate(groups):
        for name, known, noun in ((group.devices, ids, "camera"), (group.sites, sites, "site with cameras")):
            unknown = sorted(set(name) - known)
            if unknown:
                raise ConfigError(
                    "slamon.yaml", f"probes.video.groups[{i}]", f"no {noun} {unknown[0]!r} in the inventory"
                )


class Workers:
    """Worker processes (video/worker.py), started on first use, each given samples while it has
    fewer than its share in flight; one that dies is started again, its samples answered as lost."""

    def __init__(self, processes: int, threads: int) -> None:
        self.processes, self.threads = processes, threads
        self._procs: list[asyncio.subprocess.Process | None] = [None] * processes
        self._readers: list[asyncio.Task[None] | None] = [None] * processes
        self._waiting: list[dict[int, asyncio.Future[dict[str, Any]]]] = [{} for _ in range(processes)]
        self._ids = itertools.count()
        self._lock = asyncio.Lock()

    async def _proc(self, i: int) -> asyncio.subprocess.Process:
        async with self._lock:
            proc = self._procs[i]
            if proc is None or proc.returncode is not None:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "slamon.video.worker", str(self.threads),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                self._procs[i] = proc
                self._readers[i] = asyncio.get_running_loop().create_task(self._read(i, proc))
            return proc

    async def _read(self, i: int, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        waiting = self._waiting[i]
        while line := await proc.stdout.readline():
            doc = json.loads(line)
            future = waiting.pop(doc.get("id"), None)
            if future is not None and not future.done():
                future.set_result(doc)
        for future in waiting.values():  # the worker is gone
            if not future.done():
                future.set_result({"error": "the video worker stopped"})
        waiting.clear()

    async def sample(self, request: dict[str, Any], within: float) -> dict[str, Any]:
        i = min(range(self.processes), key=lambda k: len(self._waiting[k]))
        proc = await self._proc(i)
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[i][ident] = future
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({**request, "id": ident}).encode() + b"\n")
        try:
            await proc.stdin.drain()
            async with asyncio.timeout(within):
                return await future
        except TimeoutError:
            return {
                "defects": [Defect.NO_SIGNAL.value],
                "reason": f"no answer within {within:.0f} s",
                "detail": {},
            }
        except (ConnectionError, BrokenPipeError):
            return {"error": "the video worker stopped"}
        finally:
            self._waiting[i].pop(ident, None)

    async def aclose(self) -> None:
        for i, proc in enumerate(self._procs):
            if proc is None:
                continue
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            reader = self._readers[i]
            if reader is not None:
                await asyncio.gather(reader, return_exceptions=True)
        self._procs = [None] * self.processes


class VideoProber:
    kind: ClassVar[ProbeKind] = ProbeKind.VIDEO

    def __init__(
        self,
        clock: Clock,
        config: VideoProbeConfig,
        *,
        recheck: int = 2,
        tick: timedelta | None = None,
        every_camera: bool = False,
    ) -> None:
        """`every_camera`: each round samples every camera it is given, at once (`probe --once`),
        not those the schedule says are due."""
        self.clock, self.config, self.every_camera = clock, config, every_camera
        self.tick = tick or tick_of(config)
        self.credentials = Credentials.of(config)
        self.schedule = VideoSchedule(to_micros(config.interval), to_micros(self.tick), recheck=recheck)
        cores = os.cpu_count() or 1
        at_once = config.samples_at_once
        processes = max(1, min(cores, at_once))
        self.workers = Workers(processes, -(-at_once // processes))
        self.at_once = at_once
        self.sampled = 0  # samples taken since the start, for slamon's own metrics

    def check(self, devices: Iterable[Device] = ()) -> str:
        check_groups(self.config.groups, devices)
        return f"RTSP over TCP, {self.at_once} samples at once in {self.workers.processes} worker processes"

    async def round(self, devices: Sequence[Device]) -> AsyncIterator[list[ProbeResult]]:
        now = to_micros(self.clock.now())
        if self.every_camera:
            due = [(now, d) for d in devices]
        else:
            start, end = self.schedule.window(now)
            due = self.schedule.due([(d.id, d) for d in devices], start, end)
            self.schedule.forget(d.id for d in devices)
        if not due:
            return
        loop = asyncio.get_running_loop()
        began = loop.time()
        spread = 0.0 if self.every_camera else self.tick.total_seconds() * SPREAD
        gate = asyncio.Semaphore(self.at_once)
        done: asyncio.Queue[ProbeResult | None] = asyncio.Queue()  # None: a sample lost to a bug

        async def one(k: int, device: Device) -> None:
            await asyncio.sleep(max(0.0, began + spread * k / len(due) - loop.time()))
            async with gate:
                result = await self._sample(device)
            if result is not None:
                self.schedule.took(device.id, not result.ok, to_micros(result.time))
            await done.put(result)

        tasks = [asyncio.ensure_future(one(k, d)) for k, (_, d) in enumerate(due)]
        try:
            for _ in tasks:
                result = await done.get()
                if result is not None:
                    yield [result]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _sample(self, device: Device) -> ProbeResult | None:
        thresholds, baseline = settings_for(device, self.config)
        c = self.config
        request = {
            "url": device.stream,
            "seconds": c.sample.total_seconds(),
            "frames": c.frames,
            "open_timeout": c.timeout.total_seconds(),
            "read_timeout": c.timeout.total_seconds(),
            "user": self.credentials.user,
            "password": self.credentials.password,
            "thresholds": thresholds,
            "baseline": baseline,
        }
        within = 2 * c.timeout.total_seconds() + c.sample.total_seconds() + MARGIN_S
        answer = await self.workers.sample(request, within)
        if "error" in answer:
            logger.error("video sample of %s failed: %s", device.id, answer["error"])
            return None
        self.sampled += 1
        defects = frozenset(Defect(d) for d in answer["defects"])
        return ProbeResult(
            device.id,
            ProbeKind.VIDEO,
            self.clock.now(),
            ok=not defects,
            defects=defects,
            error=answer.get("reason"),
            detail=answer.get("detail") or {},
        )

    async def aclose(self) -> None:
        await self.workers.aclose()
