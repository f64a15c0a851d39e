"""A prober whose answers are scripted: the service end to end without root, sockets or a network.

Each round it reports every device as answering, except those the script has silenced (a failed
probe, "no echo reply", as the ICMP prober says it), stamped with the clock's now. A round can be
made to take time (`round_time`, on the event loop's clock), to hang (`hang`), or to stop part way,
so deadlines and stops are tested for real. It is the prober protocol's own implementation, not a
mock: the monitor cannot tell it from the ICMP prober.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from typing import ClassVar

from slamon.clock import Clock
from slamon.model import Device, ProbeKind, ProbeResult


class ScriptedProber:
    kind: ClassVar[ProbeKind] = ProbeKind.ICMP

    def __init__(
        self,
        clock: Clock,
        *,
        silent_if: Callable[[Device], bool] | None = None,
        rtt_ms: float = 0.5,
        batch: int = 1000,
    ) -> None:
        self.clock = clock
        self.silent_if = silent_if  # another way to script: silent when this says so
        self.rtt_ms = rtt_ms
        self.batch = batch
        self.silent: set[str] = set()
        self.round_time = 0.0  # seconds a round takes (spread over its batches)
        self.hang = False  # a round sends its first batch, then never ends (until cancelled)
        self.rounds = 0
        self.closed = False
        self.hanging = asyncio.Event()  # set once a round hangs

    def silence(self, *devices: str) -> None:
        self.silent.update(devices)

    def restore(self, *devices: str) -> None:
        self.silent.difference_update(devices)

    def check(self, devices: Iterable[Device] = ()) -> str:
        return "scripted answers"

    async def round(self, devices: Sequence[Device]) -> AsyncIterator[list[ProbeResult]]:
        self.rounds += 1
        now = self.clock.now()
        batches = [devices[i : i + self.batch] for i in range(0, len(devices), self.batch)] or [[]]
        pause = self.round_time / len(batches)
        for n, chunk in enumerate(batches):
            if pause:
                await asyncio.sleep(pause)
            yield [self._result(d, now) for d in chunk]
            if self.hang and n == 0:
                self.hanging.set()
                await asyncio.Event().wait()

    def _result(self, device: Device, now: datetime) -> ProbeResult:
        if device.id in self.silent or (self.silent_if is not None and self.silent_if(device)):
            return ProbeResult(device.id, self.kind, now, ok=False, loss=1.0, error="no echo reply")
        return ProbeResult(device.id, self.kind, now, ok=True, rtt_ms=self.rtt_ms, loss=0.0)

    async def aclose(self) -> None:
        self.closed = True
