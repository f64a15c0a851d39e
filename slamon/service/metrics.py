"""What Prometheus sees: every device's current state and cause, the fleet's rates, and slamon's own
health (rounds, the store's backlog and failures).

At 100,000 devices the per-device series are half a million lines. They are rendered once per
round from the round's FleetView (service/views.py), in a thread, a metric family at a time
straight into gzip (each device's label set cached), and kept gzipped only: a scrape sends them as
they are (decompressed for a client that does not take gzip) and adds only slamon's own metrics (a
normal CollectorRegistry) and the month-to-date figures. The gzipped body is several gzip members,
which HTTP clients (Prometheus among them) read as one stream.
`promtool check metrics` passes on the joined output.
"""

from __future__ import annotations

import gzip
import itertools
import math
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from slamon.billing.to_date import MonthToDate
from slamon.model import SECOND, Contract, ContractId, DeviceId, DeviceState, ProbeKind
from slamon.service.memory import give_back
from slamon.service.ports import SwitchPorts, port_families
from slamon.service.video import VideoSamples, video_families
from slamon.service.views import DeviceView, FleetView
from slamon.service.writer import WriterStatus

LABELS = ("device", "kind", "site", "district", "contract")
GZIP_LEVEL = 5
CHUNK_LINES = 5_000


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


@dataclass(slots=True)
class Figures:
    """Month-to-date figures a background job computes from the store, read at scrape time."""

    computed_at: float = 0.0  # wall-clock seconds; 0: not yet (or not this process's job)
    mtd: MonthToDate | None = None


class FleetExposition:
    """The per-device and per-group series of the latest view, as exposition bytes."""

    def __init__(self) -> None:
        self._label_cache: dict[DeviceId, tuple[object, str]] = {}
        self._lock = threading.Lock()
        self.gzipped = gzip.compress(b"", GZIP_LEVEL)  # kept gzipped only: a tenth of the memory
        self.at = 0  # the view's instant (µs); 0: none yet

    def update(
        self, view: FleetView, ports: SwitchPorts | None = None, video: VideoSamples | None = None
    ) -> None:
        """Render a view and the switches' ports (a snapshot; call it off the event loop: it is the
        expensive part of a scrape), a metric family at a time straight into gzip: the text of
        100,000 devices is never whole."""
        packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: the gzip format
        texts = self.families(view)
        if ports is not None:
            texts = itertools.chain(texts, port_text(ports))
        if video is not None and video.latest:
            texts = itertools.chain(texts, video_text(video))
        with self._lock:
            parts = [packer.compress(text.encode()) for text in texts]
            parts.append(packer.flush())
            self.gzipped, self.at = b"".join(parts), view.at
        give_back()  # the render's transient megabytes

    def body(self) -> bytes:
        """The series uncompressed, for a client that does not take gzip (off the loop: 0.1 s at
        100,000 devices)."""
        return gzip.decompress(self.gzipped)

    def _device_labels(self, v: DeviceView) -> str:
        d = v.device
        cached = self._label_cache.get(d.id)
        if cached is not None and cached[0] is d:
            return cached[1]
        text = _labels(LABELS, (d.id, d.kind.value, d.site, v.district, d.contract))
        self._label_cache[d.id] = (d, text)
        return text

    def render(self, view: FleetView) -> str:
        return "".join(self.families(view))

    def families(self, view: FleetView) -> Iterator[str]:
        """The exposition text of each metric family in turn (one pass over the devices each), in
        pieces."""
        devices = view.devices
        labels = [self._device_labels(v) for v in devices]
        yield from _family(
            "slamon_device_up",
            "1 when the device answers (up or degraded), 0 when down; absent while unknown.",
            (
                f"slamon_device_up{{{lb}}} {0 if v.state is DeviceState.DOWN else 1}"
                for lb, v in zip(labels, devices, strict=True)
                if v.state is not DeviceState.UNKNOWN
            ),
        )
        yield from _family(
            "slamon_device_state",
            "The device's current state: up, degraded, down or unknown.",
            (
                f'slamon_device_state{{{lb},state="{v.state.value}"}} 1'
                for lb, v in zip(labels, devices, strict=True)
            ),
        )
        yield from _family(
            "slamon_device_cause",
            "Why a down device is down: device, upstream:<id> or excluded:<category>.",
            (
                f'slamon_device_cause{{{lb},cause="{_escape(v.cause)}"}} 1'
                for lb, v in zip(labels, devices, strict=True)
                if v.cause is not None
            ),
        )
        yield from _family(
            "slamon_device_down_since_timestamp_seconds",
            "When a down device's outage began (back-dated to its first failure, as SLA.md says).",
            (
                f"slamon_device_down_since_timestamp_seconds{{{lb}}} {v.since / SECOND:.3f}"
                for lb, v in zip(labels, devices, strict=True)
                if v.state is DeviceState.DOWN and v.since is not None
            ),
        )
        yield from _family(
            "slamon_device_rtt_seconds",
            "Round-trip time of the latest reachability probe.",
            (
                f"slamon_device_rtt_seconds{{{lb}}} {v.rtt_ms / 1000:.6f}"
                for lb, v in zip(labels, devices, strict=True)
                if v.rtt_ms is not None and v.rtt_ms == v.rtt_ms
            ),
        )
        yield from _family(
            "slamon_device_loss_ratio",
            "Share of the latest probe's echoes that got no reply.",
            (
                f"slamon_device_loss_ratio{{{lb}}} {v.loss:.4f}"
                for lb, v in zip(labels, devices, strict=True)
                if v.loss is not None
            ),
        )
        yield from _family(
            "slamon_device_last_probe_timestamp_seconds",
            "When the latest reachability result was taken.",
            (
                f"slamon_device_last_probe_timestamp_seconds{{{lb}}} {v.last_probe / SECOND:.3f}"
                for lb, v in zip(labels, devices, strict=True)
                if v.last_probe is not None
            ),
        )
        yield "\n".join([*_online_lines(_online_counts(view)), *_view_lines(view)]) + "\n"


def _family(name: str, help_text: str, lines: Iterable[str]) -> Iterator[str]:
    """A family's text in pieces of CHUNK_LINES lines: the whole of one at 100,000 devices (a list of
    its lines, their join and its encoding) was some 50 MB for a moment, beside the round's write."""
    yield f"# HELP {name} {help_text}\n# TYPE {name} gauge\n"
    rest = iter(lines)
    while chunk := list(itertools.islice(rest, CHUNK_LINES)):
        yield "\n".join(chunk) + "\n"


def port_text(ports: SwitchPorts) -> Iterator[str]:
    """The port and switch families (service/ports.py), in pieces; counters' samples end in _total."""
    for name, kind, help_text, names, samples in port_families(ports):
        sample = f"{name}_total" if kind == "counter" else name
        yield f"# HELP {sample} {help_text}\n# TYPE {sample} {kind}\n"  # as client_python writes it
        rest = iter(samples)
        while chunk := list(itertools.islice(rest, CHUNK_LINES)):
            yield "\n".join(f"{sample}{{{_labels(names, values)}}} {value}" for values, value in chunk) + "\n"


def video_text(video: VideoSamples) -> Iterator[str]:
    """The cameras' latest video samples (service/video.py)."""
    for name, help_text, names, samples in video_families(video):
        yield from _family(
            name, help_text, (f"{name}{{{_labels(names, values)}}} {value}" for values, value in samples)
        )


def _online_counts(view: FleetView) -> dict[tuple[str, str], list[int]]:
    """(contract, district) -> [devices of the fleet kinds up or degraded, known]."""
    online: dict[tuple[str, str], list[int]] = {}
    contracts = view.fleet.contracts
    for v in view.devices:
        d = v.device
        contract = contracts.get(d.contract)
        if contract is not None and d.kind in contract.sla.fleet_kinds and v.state is not DeviceState.UNKNOWN:
            counts = online.setdefault((d.contract, v.district), [0, 0])
            counts[0] += v.state is not DeviceState.DOWN
            counts[1] += 1
    return online


def _view_lines(view: FleetView) -> list[str]:
    return [
        "# HELP slamon_view_timestamp_seconds When the device series above were taken (after each round).",
        "# TYPE slamon_view_timestamp_seconds gauge",
        f"slamon_view_timestamp_seconds {view.at / SECOND:.3f}",
    ]


def _online_lines(online: Mapping[tuple[str, str], list[int]]) -> list[str]:
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
            f'slamon_contract_online_ratio{{contract="{_escape(contract)}"}} {good / known if known else 1:.6f}'
        )
    return out


def figures_text(figures: Figures) -> str:
    """The month-to-date series (absent until the first computation): rates, money, and what is
    at risk (billing/to_date.py). They are as old as slamon_mtd_computed_timestamp_seconds says
    (every 5 minutes): an alert on a time left subtracts the age."""
    m = figures.mtd
    if not figures.computed_at or m is None:
        return ""
    out: list[str] = []

    def family(name: str, help_text: str, rows: Iterable[tuple[Sequence[str], Sequence[str], str]]) -> None:
        out.extend((f"# HELP {name} {help_text}", f"# TYPE {name} gauge"))
        out.extend(f"{name}{{{_labels(names, values)}}} {value}" for names, values, value in rows)

    per_kpi = ("contract", "kpi")
    family(
        "slamon_mtd_rate",
        "Month-to-date SLA rate of the contract (online_rate, intact_rate), as a statement computes it.",
        (
            (per_kpi, (c, k.value), f"{v:.6f}")
            for c, r in sorted(m.rates.items())
            for k, v in sorted(r.items())
        ),
    )
    family(
        "slamon_mtd_district_rate",
        "Month-to-date SLA rate per contract and district.",
        (
            (("contract", "district", "kpi"), (c, d, k.value), f"{v:.6f}")
            for (c, d), r in sorted(m.districts.items())
            for k, v in sorted(r.items())
        ),
    )
    family(
        "slamon_sla_kpi_margin",
        "Month-to-date rate minus the contract's target (negative: the KPI's deduction applies now).",
        (
            (per_kpi, (c, k.value), f"{v:.6f}")
            for c, r in sorted(m.kpi_margins.items())
            for k, v in sorted(r.items())
        ),
    )
    money = ("contract", "currency")
    for name, what in (("fee_total", "Fee total"), ("deductions", "Deductions"), ("payable", "Payable")):
        family(
            f"slamon_mtd_{name}",
            f"{what} of the month's statement if the month ended now (the contract's currency).",
            ((money, (c, x.currency), getattr(x, name)) for c, x in sorted(m.money.items())),
        )
    family(
        "slamon_device_mtd_availability_ratio",
        "The device's availability this month so far (1 - D / (S - X)), as its statement computes it.",
        (
            (("device", "contract", "district"), (d, c, dist), f"{a:.6f}")
            for d, c, dist, a in sorted(m.availability)
        ),
    )
    family(
        "slamon_sla_tier_margin_seconds",
        "Counted downtime the device can still have this month before the next availability tier deducts more.",
        (
            (("device", "contract", "below"), (d, c, below), f"{left:.0f}")
            for d, c, left, below in sorted(m.tier_margins)
        ),
    )
    family(
        "slamon_repair_deadline_seconds",
        "Seconds of counted downtime left before an open outage's repair deadline (negative: overrun).",
        (
            (("device", "contract", "area"), (d, c, area), f"{left:.0f}")
            for d, c, left, area in sorted(m.repair_left)
        ),
    )
    out += [
        "# HELP slamon_mtd_computed_timestamp_seconds When the month-to-date figures were computed.",
        "# TYPE slamon_mtd_computed_timestamp_seconds gauge",
        f"slamon_mtd_computed_timestamp_seconds {figures.computed_at:.3f}",
    ]
    return "\n".join(out) + "\n"


class RoundCounters(Protocol):
    rounds: int
    overruns: int
    timeouts: int
    errors: int
    probes: int
    failed: int
    last_duration: float
    last_started: float


WriterStatusSource = Callable[[], WriterStatus]
LateCount = Callable[[], int]


class SelfCollector(Collector):
    """slamon's own health: rounds, probes, errors, the store's backlog. Reads counters only."""

    def __init__(
        self,
        stats: Mapping[ProbeKind, RoundCounters],
        devices: Sized,
        writer_status: WriterStatusSource,
        late: LateCount,
    ) -> None:
        self.stats = stats
        self.devices = devices
        self.writer_status = writer_status
        self.late = late

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from self._rounds()
        yield from self._store(self.writer_status())
        yield CounterMetricFamily(
            "slamon_late_results",
            "Results older than their device's firm point: stored, not placed live.",
            value=self.late(),
        )
        yield GaugeMetricFamily("slamon_devices", "Devices monitored.", value=len(self.devices))

    def _rounds(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "duration": GaugeMetricFamily(
                "slamon_round_duration_seconds", "How long the latest round took.", labels=["probe"]
            ),
            "started": GaugeMetricFamily(
                "slamon_round_last_start_timestamp_seconds", "When the latest round began.", labels=["probe"]
            ),
            "rounds": CounterMetricFamily("slamon_rounds", "Rounds run.", labels=["probe"]),
            "overruns": CounterMetricFamily(
                "slamon_round_overruns", "Rounds that took longer than their interval.", labels=["probe"]
            ),
            "timeouts": CounterMetricFamily(
                "slamon_round_timeouts",
                "Rounds cut at their deadline (the interval); what they got is stored.",
                labels=["probe"],
            ),
            "errors": CounterMetricFamily(
                "slamon_round_errors", "Rounds that failed with an error (a bug; logged).", labels=["probe"]
            ),
            "probes": CounterMetricFamily("slamon_probes", "Probe results taken.", labels=["probe"]),
            "failed": CounterMetricFamily(
                "slamon_probes_failed", "Probe results that failed.", labels=["probe"]
            ),
        }
        for kind, s in self.stats.items():
            k = [kind.value]
            families["duration"].add_metric(k, s.last_duration if s.rounds else math.nan)
            families["started"].add_metric(k, s.last_started)
            for name in ("rounds", "overruns", "timeouts", "errors", "probes", "failed"):
                families[name].add_metric(k, getattr(s, name))
        yield from families.values()

    def _store(self, w: WriterStatus) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily(
            "slamon_backlog_writes", "Writes of evidence waiting for the store, in order.", value=w.writes
        )
        yield GaugeMetricFamily(
            "slamon_backlog_rows", "Results and timeline changes in the waiting writes.", value=w.rows
        )
        yield GaugeMetricFamily(
            "slamon_backlog_journaled_writes",
            "Waiting writes kept on local disk (the journal).",
            value=w.journaled,
        )
        yield GaugeMetricFamily(
            "slamon_backlog_memory_bytes", "Memory the waiting writes hold.", value=w.memory_bytes
        )
        yield GaugeMetricFamily(
            "slamon_backlog_oldest_age_seconds",
            "How long the oldest waiting write has waited (0 when none waits).",
            value=w.oldest_age_s or 0.0,
        )
        yield GaugeMetricFamily(
            "slamon_store_writable",
            "1 when the store took the latest write, 0 while it refuses them.",
            value=0 if w.failing else 1,
        )
        failures = CounterMetricFamily(
            "slamon_store_write_failures",
            "Write attempts the store refused, by reason (locked, unreachable, read_only, disk, moved, bug, other).",
            labels=["reason"],
        )
        for reason in ("locked", "unreachable", "read_only", "disk", "moved", "bug", "other"):
            failures.add_metric([reason], w.failures.get(reason, 0))
        yield failures
        yield CounterMetricFamily("slamon_store_writes", "Writes of evidence stored.", value=w.written)
        yield CounterMetricFamily(
            "slamon_store_replays",
            "Writes stored after they had waited: retried after a failure, or replayed from the journal.",
            value=w.replayed,
        )
        yield CounterMetricFamily(
            "slamon_store_writes_set_aside",
            "Writes that kept failing with a bug: kept in the journal as *.failed, not stored.",
            value=w.set_aside,
        )


class SiteCollector(Collector):
    """Suspected power cuts (engine/power.py) and the SNMP trap listener's counts: few series,
    read from memory at scrape time."""

    def __init__(
        self, open_sites: Callable[[], Iterable[str]], traps: Callable[[], Mapping[str, int]]
    ) -> None:
        self.open_sites = open_sites
        self.traps = traps

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        power = GaugeMetricFamily(
            "slamon_site_power_suspected",
            "1 while every device of the site is down and its upstream answers: a power exclusion is proposed.",
            labels=["site"],
        )
        for site in sorted(self.open_sites()):
            power.add_metric([site], 1)
        yield power
        traps = CounterMetricFamily(
            "slamon_snmp_traps",
            "SNMP traps received, by outcome (accepted, unknown_source, bad_community, bad_credentials, malformed).",
            labels=["outcome"],
        )
        for outcome, n in sorted(self.traps().items()):
            traps.add_metric([outcome], n)
        yield traps


class TargetCollector(Collector):
    """Each contract's fleet KPI targets (`sla.fleet_kpis`), so that alert rules compare the
    month-to-date rates with the contract itself, not with a copy of it."""

    def __init__(self, contracts: Callable[[], Mapping[ContractId, Contract]]) -> None:
        self.contracts = contracts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        targets = GaugeMetricFamily(
            "slamon_sla_target",
            "A contract's fleet KPI target (online_rate, intact_rate): below it, a deduction.",
            labels=["contract", "kpi"],
        )
        for cid, contract in sorted(self.contracts().items()):
            for kpi, target in sorted(contract.sla.fleet_kpis.items()):
                targets.add_metric([cid, kpi.value], float(target.target))
        yield targets


def exposition(
    fleet: FleetExposition, figures: Figures, registry: CollectorRegistry, *, gzipped: bool
) -> bytes:
    """The whole /metrics body: the cached fleet series, the month-to-date figures and the registry's.
    Without gzip the fleet part is decompressed: call it off the loop then."""
    rest = figures_text(figures).encode() + generate_latest(registry)
    if gzipped:
        return fleet.gzipped + gzip.compress(rest, GZIP_LEVEL)
    return fleet.body() + rest
