"""Probers: one module per probe kind, one shared protocol, a registry by kind.

A prober works on a whole round of devices at once (at fleet scale a batch beats a probe per
device) and never raises for a failed target: a failure is a ProbeResult(ok=False, error=...),
which is evidence. The caller (monitor) owns the schedule and what happens to the results.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import ClassVar, Protocol

from slamon.model import Device, ProbeKind, ProbeResult


class Prober(Protocol):
    kind: ClassVar[ProbeKind]

    def round(self, devices: Sequence[Device]) -> AsyncIterator[ProbeResult]:
        """One result per device, as they come; bounded by the prober's own timeouts."""
        ...

    async def aclose(self) -> None:
        """Release shared resources (sockets, engines, worker pools)."""
        ...
