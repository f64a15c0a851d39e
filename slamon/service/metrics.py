"""What Prometheus sees: every device's current state, the fleet's rates, and slamon's own health.

The collector reads memory only (the live state and figures a background job computed): its
output is produced on the event loop at every scrape. At 100,000 devices the per-device series
are half a million lines, so they are written by a dedicated renderer that caches each device's
label set, rather than through prometheus_client's generic objects; slamon's own metrics go
through a normal CollectorRegistry. `promtool check metrics` passes on the joined output.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from slamon.billing.causes import DEVICE, covers_for, upstream_cause
from slamon.clock import Clock
from slamon.engine.live import DeviceLive, FleetState
from slamon.model import SECOND, DeviceId, DeviceState, Fleet, Kpi, Micros, ProbeKind, to_micros

LABELS = ("device", "kind", "site", "district", "contract")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def current_cause(fleet: Fleet, state: FleetState, live: DeviceLive, now: Micros) -> str | None:
    """Why a device is down now: an approved exclusion, the nearest ancestor that is down (or
    came back less than upstream_grace ago), else the device itself. None when it is not down."""
    if live.state_at(now) is not DeviceState.DOWN:
        return None
    device = live.device
    contract = fleet.contracts[device.contract]
    for cover in covers_for(device, fleet.exclusions, contract):
        if any(start <= now < end for start, end in cover.intervals):
            return f"excluded:{cover.exclusion.category.value}"
    grace = to_micros(contract.sla.upstream_grace)
    for ancestor in fleet.inventory.ancestors(device.id):
        parent = state.get(ancestor.id)
        if parent is None:
            continue
        if parent.state_at(now) is DeviceState.DOWN:
            return upstream_cause(ancestor.id)
        last = parent.tail.outages[-1] if parent.tail.outages else None
        if last is not None and not last.open and last.end <= now < last.end + grace:
            return upstream_cause(ancestor.id)
    return DEVICE


@dataclass(slots=True)
class Figures:
    """Month-to-date figures a background job computes from the store, read at scrape time."""

    computed_at: float = 0.0  # wall-clock seconds; 0: not yet
    contract: dict[str, dict[Kpi, float]] = field(default_factory=dict)
    district: dict[tuple[str, str], dict[Kpi, float]] = field(default_factory=dict)


class FleetRenderer:
    """The per-device and per-group series, as exposition text, from memory."""

    def __init__(self, state: FleetState, figures: Figures, clock: Clock) -> None:
        self.state = state
        self.figures = figures
        self._clock = clock
        self._label_cache: dict[DeviceId, tuple[object, str]] = {}

    def _device_labels(self, live: DeviceLive) -> str:
        d = live.device
        cached = self._label_cache.get(d.id)
        if cached is not None and cached[0] is d:
            return cached[1]
        site = self.state.fleet.inventory.sites.get(d.site)
        text = _labels(LABELS, (d.id, d.kind.value, d.site, site.district if site else "", d.contract))
        self._label_cache[d.id] = (d, text)
        return text

    def render(self) -> str:
        fleet = self.state.fleet
        now = to_micros(self._clock.now())
        up: list[str] = []
        state_lines: list[str] = []
        cause_lines: list[str] = []
        rtt: list[str] = []
        loss: list[str] = []
        last: list[str] = []
        online: dict[tuple[str, str], list[int]] = {}
        for live in self.state:
            labels = self._device_labels(live)
            state = live.state_at(now)
            if state is not DeviceState.UNKNOWN:
                up.append(f"slamon_device_up{{{labels}}} {0 if state is DeviceState.DOWN else 1}")
            state_lines.append(f'slamon_device_state{{{labels},state="{state.value}"}} 1')
            if state is DeviceState.DOWN:
                cause = current_cause(fleet, self.state, live, now) or DEVICE
                cause_lines.append(f'slamon_device_cause{{{labels},cause="{_escape(cause)}"}} 1')
            if live.rtt_ms is not None and live.rtt_ms == live.rtt_ms:
                rtt.append(f"slamon_device_rtt_seconds{{{labels}}} {live.rtt_ms / 1000:.6f}")
            if live.loss is not None:
                loss.append(f"slamon_device_loss_ratio{{{labels}}} {live.loss:.4f}")
            if live.last_probe is not None:
                last.append(
                    f"slamon_device_last_probe_timestamp_seconds{{{labels}}} {live.last_probe / SECOND:.3f}"
                )
            d = live.device
            contract = fleet.contracts.get(d.contract)
            if (
                contract is not None
                and d.kind in contract.sla.fleet_kinds
                and state is not DeviceState.UNKNOWN
            ):
                site = fleet.inventory.sites.get(d.site)
                counts = online.setdefault((d.contract, site.district if site else ""), [0, 0])
                counts[0] += state is not DeviceState.DOWN
                counts[1] += 1
        out = [
            "# HELP slamon_device_up 1 when the device answers (up or degraded), 0 when down; absent while unknown.",
            "# TYPE slamon_device_up gauge",
            *up,
            "# HELP slamon_device_state The device's current state: up, degraded, down or unknown.",
            "# TYPE slamon_device_state gauge",
            *state_lines,
            "# HELP slamon_device_cause Why a down device is down: device, upstream:<id> or excluded:<category>.",
            "# TYPE slamon_device_cause gauge",
            *cause_lines,
            "# HELP slamon_device_rtt_seconds Round-trip time of the latest reachability probe.",
            "# TYPE slamon_device_rtt_seconds gauge",
            *rtt,
            "# HELP slamon_device_loss_ratio Share of the latest probe's echoes that got no reply.",
            "# TYPE slamon_device_loss_ratio gauge",
            *loss,
            "# HELP slamon_device_last_probe_timestamp_seconds When the latest reachability result was taken.",
            "# TYPE slamon_device_last_probe_timestamp_seconds gauge",
            *last,
        ]
        out += self._groups(online)
        return "\n".join(out) + "\n"

    def _groups(self, online: Mapping[tuple[str, str], list[int]]) -> list[str]:
        by_contract: dict[str, list[int]] = {}
        for (contract, _district), (good, known) in online.items():
            counts = by_contract.setdefault(contract, [0, 0])
            counts[0] += good
            counts[1] += known
        out = [
            (
                "# HELP slamon_online_ratio Share of the fleet kinds' devices with a known state that are up or "
                "degraded now, per contract and district."
            ),
            "# TYPE slamon_online_ratio gauge",
        ]
        for (contract, district), (good, known) in sorted(online.items()):
            out.append(
                f"slamon_online_ratio{{{_labels(('contract', 'district'), (contract, district))}}} "
                f"{good / known if known else 1:.6f}"
            )
        out += [
            "# HELP slamon_contract_online_ratio Share of the contract's fleet kinds up or degraded now.",
            "# TYPE slamon_contract_online_ratio gauge",
        ]
        for contract, (good, known) in sorted(by_contract.items()):
            out.append(
                f'slamon_contract_online_ratio{{contract="{_escape(contract)}"}} '
                f"{good / known if known else 1:.6f}"
            )
        figures = self.figures
        if figures.computed_at:
            out += [
                (
                    "# HELP slamon_mtd_rate Month-to-date SLA rate of the contract (online_rate, intact_rate), as a "
                    "statement computes it."
                ),
                "# TYPE slamon_mtd_rate gauge",
            ]
            for contract, rates in sorted(figures.contract.items()):
                for kpi, value in sorted(rates.items()):
                    out.append(
                        f'slamon_mtd_rate{{contract="{_escape(contract)}",kpi="{kpi.value}"}} {value:.6f}'
                    )
            out += [
                "# HELP slamon_mtd_district_rate Month-to-date SLA rate per contract and district.",
                "# TYPE slamon_mtd_district_rate gauge",
            ]
            for (contract, district), rates in sorted(figures.district.items()):
                for kpi, value in sorted(rates.items()):
                    labels = _labels(("contract", "district", "kpi"), (contract, district, kpi.value))
                    out.append(f"slamon_mtd_district_rate{{{labels}}} {value:.6f}")
            out += [
                "# HELP slamon_mtd_computed_timestamp_seconds When the month-to-date figures were computed.",
                "# TYPE slamon_mtd_computed_timestamp_seconds gauge",
                f"slamon_mtd_computed_timestamp_seconds {figures.computed_at:.3f}",
            ]
        return out


class SelfCollector(Collector):
    """slamon's own health: rounds, probes, errors. Reads the monitor's counters only."""

    def __init__(self, stats: Mapping[ProbeKind, object], state: FleetState) -> None:
        self.stats = stats
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        duration = GaugeMetricFamily(
            "slamon_round_duration_seconds", "How long the latest round took.", labels=["probe"]
        )
        started = GaugeMetricFamily(
            "slamon_round_last_start_timestamp_seconds", "When the latest round began.", labels=["probe"]
        )
        rounds = CounterMetricFamily("slamon_rounds", "Rounds run.", labels=["probe"])
        overruns = CounterMetricFamily(
            "slamon_round_overruns", "Rounds that took longer than their interval.", labels=["probe"]
        )
        errors = CounterMetricFamily(
            "slamon_round_errors", "Rounds that failed with an error (a bug; logged).", labels=["probe"]
        )
        probes = CounterMetricFamily("slamon_probes", "Probe results taken.", labels=["probe"])
        failed = CounterMetricFamily("slamon_probes_failed", "Probe results that failed.", labels=["probe"])
        for kind, s in self.stats.items():
            k = [kind.value]
            duration.add_metric(k, getattr(s, "last_duration", math.nan))
            started.add_metric(k, getattr(s, "last_started", 0.0))
            rounds.add_metric(k, getattr(s, "rounds", 0))
            overruns.add_metric(k, getattr(s, "overruns", 0))
            errors.add_metric(k, getattr(s, "errors", 0))
            probes.add_metric(k, getattr(s, "probes", 0))
            failed.add_metric(k, getattr(s, "failed", 0))
        late = CounterMetricFamily(
            "slamon_late_results",
            "Results older than their device's firm point: stored, not placed live.",
            value=self.state.late,
        )
        devices = GaugeMetricFamily("slamon_devices", "Devices monitored.", value=len(self.state))
        yield from (duration, started, rounds, overruns, errors, probes, failed, late, devices)


def exposition(renderer: FleetRenderer, registry: CollectorRegistry) -> bytes:
    """The whole /metrics body: the fleet's series and the registry's."""
    return renderer.render().encode() + generate_latest(registry)
