"""Grafana dashboards for slamon's metrics, built in code, and their push to a Grafana server.

Three dashboards, each from metrics that slamon exports today (docs/dashboards.md lists the panels
that wait for a metric):

* fleet overview: online and month-to-date rates by contract and district, devices down now by
  cause, which devices are down;
* device drill-down: a device's state timeline, cause, round-trip time and loss, and, for a switch
  polled over SNMP, its ports, traffic, PoE and reboots;
* contract month: a contract's month-to-date online and intact rates, overall and by district.

They are built with Grafana's own typed builders (grafana-foundation-sdk) and written as JSON into
`dashboards/` (`python -m slamon.dashboards dashboards`, or `python dashboards/generate.py`); the
committed JSON is what a fresh build gives, byte for byte (tests/dashboards check it). `push` sends
them to a Grafana server with grafana-client. Both libraries are imported only by the functions
that need them: importing this module costs nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from slamon.errors import SlamonError

if TYPE_CHECKING:
    from grafana_foundation_sdk.builders import bargauge, prometheus, stat, statetimeline, table, timeseries
    from grafana_foundation_sdk.builders import dashboard as gd
    from grafana_foundation_sdk.models import dashboard as gm

logger = logging.getLogger(__name__)

Dashboard = dict[str, Any]  # a dashboard's JSON model, as Grafana stores it

DATASOURCE = "${datasource}"  # every panel and variable queries the data source the viewer picks
TAGS = ["slamon"]
REFRESH = "30s"
# uid and title of the Grafana folder, as push and dashboards/provisioning/slamon.yaml use it
FOLDER = "slamon"
TABLE_HIDDEN = ("Time", "Value", "__name__", "job", "instance")  # columns of an instant-series table

# One down device per series; the cause's class (device, upstream, excluded) as `cause`.
DOWN = 'slamon_device_cause{contract=~"$contract",district=~"$district"}'
CAUSE_CLASS = f'label_replace({DOWN}, "cause", "$1", "cause", "([a-z]+).*")'
# The device's state as one number (the state timeline maps it back to a word and a colour).
STATE_CODES = (("up", 0, "green"), ("degraded", 1, "orange"), ("down", 2, "red"), ("unknown", 3, "text"))
DEVICE_STATE = "max without (state) (\n  {}\n)".format(
    "\n  or ".join(f'slamon_device_state{{device="$device",state="{s}"}} * {n}' for s, n, _ in STATE_CODES)
)


def _port_faults(switch: str) -> str:
    """A switch's ports in a fault now, one series per port and fault (as the label `fault`)."""
    return "\nor ".join(
        f'label_replace(slamon_switch_port_{metric}{{{switch}}} == {value}, "fault", "{fault}", "", "")'
        for metric, value, fault in (
            ("up", 0, "down"),
            ("admin_up", 0, "shut"),
            ("poe_fault", 1, "PoE fault"),
        )
    )


class DashboardPushError(SlamonError):
    """Grafana refused a push, or could not be reached: the message says which call and why."""


# --- building blocks --------------------------------------------------------------------------


class _Ids:
    """Panel ids in the order panels are made: the same code gives the same ids."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        self._last += 1
        return self._last


def _ds() -> gm.DataSourceRef:
    from grafana_foundation_sdk.models.dashboard import DataSourceRef

    return DataSourceRef(type_val="prometheus", uid=DATASOURCE)


def _query(
    expr: str, legend: str | None = None, *, instant: bool = False, ref: str = "A"
) -> prometheus.Dataquery:
    from grafana_foundation_sdk.builders import prometheus

    q = prometheus.Dataquery().expr(expr).ref_id(ref)
    if legend is not None:
        q = q.legend_format(legend)
    if instant:
        from grafana_foundation_sdk.models.prometheus import PromQueryFormat

        q = q.instant().format(PromQueryFormat.TABLE)
    return q


def _datasource_variable() -> gd.DatasourceVariable:
    from grafana_foundation_sdk.builders import dashboard as gd

    return gd.DatasourceVariable("datasource").label("Data source").type("prometheus")


def _label_variable(name: str, label: str, query: str, *, multi: bool, description: str) -> gd.QueryVariable:
    """A variable whose values are a label's values (label_values), refreshed with the time range."""
    from grafana_foundation_sdk.builders import dashboard as gd
    from grafana_foundation_sdk.models.dashboard import VariableRefresh, VariableSort

    v = (
        gd.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(_ds())
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        v = v.all_value(".*")
    return v


def _contract_variable(*, multi: bool = True, metric: str = "slamon_device_state") -> gd.QueryVariable:
    return _label_variable(
        "contract",
        "Contract",
        f"label_values({metric}, contract)",
        multi=multi,
        description="Contracts with devices (or figures) in the data source.",
    )


def _district_variable(
    metric: str = "slamon_device_state", contract: str = 'contract=~"$contract"'
) -> gd.QueryVariable:
    return _label_variable(
        "district",
        "District",
        f"label_values({metric}{{{contract}}}, district)",
        multi=True,
        description="Districts of the chosen contracts (the site's district in the inventory).",
    )


def _thresholds(*steps: tuple[float | None, str]) -> gd.ThresholdsConfig:
    from grafana_foundation_sdk.builders import dashboard as gd
    from grafana_foundation_sdk.models.dashboard import Threshold, ThresholdsMode

    return (
        gd.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in steps])
    )


def _value_map(words: Sequence[tuple[str, int, str]]) -> list[gm.ValueMapping]:
    from grafana_foundation_sdk.models.dashboard import ValueMap, ValueMappingResult

    return [
        ValueMap(
            options={
                str(n): ValueMappingResult(text=word, color=color, index=i)
                for i, (word, n, color) in enumerate(words)
            }
        )
    ]


def _stat(
    ids: _Ids,
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    unit: str = "none",
    span: int = 6,
    height: int = 4,
    decimals: float | None = None,
    thresholds: gd.ThresholdsConfig | None = None,
    mappings: list[gm.ValueMapping] | None = None,
) -> stat.Panel:
    from grafana_foundation_sdk.builders import common as gc
    from grafana_foundation_sdk.builders import stat
    from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode, BigValueTextMode

    p = (
        stat.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(_ds())
        .span(span)
        .height(height)
        .unit(unit)
        .color_mode(BigValueColorMode.VALUE)
        .graph_mode(BigValueGraphMode.NONE)
        .text_mode(BigValueTextMode.AUTO)
        .reduce_options(gc.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .targets(list(targets))
    )
    if decimals is not None:
        p = p.decimals(decimals)
    if thresholds is not None:
        p = p.thresholds(thresholds)
    if mappings is not None:
        p = p.mappings(mappings)
    return p


def _timeseries(
    ids: _Ids,
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    unit: str = "none",
    span: int = 12,
    height: int = 8,
    min_val: float | None = None,
    max_val: float | None = None,
    stacked: bool = False,
) -> timeseries.Panel:
    from grafana_foundation_sdk.builders import common as gc
    from grafana_foundation_sdk.builders import timeseries
    from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement, StackingMode

    p = (
        timeseries.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(_ds())
        .span(span)
        .height(height)
        .unit(unit)
        .legend(
            gc.VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .targets(list(targets))
    )
    if min_val is not None:
        p = p.min(min_val)
    if max_val is not None:
        p = p.max(max_val)
    if stacked:
        p = p.stacking(gc.StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(30)
    return p


def _state_timeline(
    ids: _Ids,
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    mappings: list[gm.ValueMapping] | None = None,
    span: int = 24,
    height: int = 5,
) -> statetimeline.Panel:
    """Each series as a band over time; with `mappings`, coloured by the mapped value."""
    from grafana_foundation_sdk.builders import dashboard as gd
    from grafana_foundation_sdk.builders import statetimeline
    from grafana_foundation_sdk.models.common import VisibilityMode
    from grafana_foundation_sdk.models.dashboard import FieldColorModeId

    p = (
        statetimeline.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(_ds())
        .span(span)
        .height(height)
        .show_value(VisibilityMode.NEVER)
        .merge_values(True)
        .targets(list(targets))
    )
    if mappings is not None:
        p = p.mappings(mappings).color_scheme(gd.FieldColor().mode(FieldColorModeId.THRESHOLDS))
    return p


def _table(
    ids: _Ids,
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    span: int = 24,
    height: int = 8,
) -> table.Panel:
    """A table of instant series: one row per series, its labels as columns."""
    from grafana_foundation_sdk.builders import table
    from grafana_foundation_sdk.models.dashboard import DataTransformerConfig

    return (
        table.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(_ds())
        .span(span)
        .height(height)
        .show_header(True)
        .targets(list(targets))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": dict.fromkeys(TABLE_HIDDEN, True),
                    "indexByName": {},
                    "renameByName": {},
                },
            )
        )
    )


def _bars(
    ids: _Ids,
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    unit: str = "percentunit",
    span: int = 12,
    height: int = 8,
    decimals: float | None = None,
    min_val: float | None = None,
    max_val: float | None = None,
) -> bargauge.Panel:
    from grafana_foundation_sdk.builders import bargauge
    from grafana_foundation_sdk.builders import common as gc
    from grafana_foundation_sdk.models.common import BarGaugeDisplayMode, VizOrientation

    p = (
        bargauge.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(_ds())
        .span(span)
        .height(height)
        .unit(unit)
        .orientation(VizOrientation.HORIZONTAL)
        .display_mode(BarGaugeDisplayMode.BASIC)
        .reduce_options(gc.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .targets(list(targets))
    )
    if decimals is not None:
        p = p.decimals(decimals)
    if min_val is not None:
        p = p.min(min_val)
    if max_val is not None:
        p = p.max(max_val)
    return p


def _row(ids: _Ids, title: str) -> gd.Row:
    from grafana_foundation_sdk.builders import dashboard as gd

    return gd.Row(title).id(ids())


def _dashboard(uid: str, title: str, description: str, time_from: str) -> gd.Dashboard:
    from grafana_foundation_sdk.builders import dashboard as gd
    from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

    return (
        gd.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh(REFRESH)
        .time(time_from, "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
        .with_variable(_datasource_variable())
    )


# --- the dashboards ---------------------------------------------------------------------------


def fleet_overview() -> gm.Dashboard:
    """The whole fleet now and this month: rates by contract and district, what is down and why."""
    ids = _Ids()
    scope = 'contract=~"$contract",district=~"$district"'
    return (
        _dashboard(
            "slamon-fleet-overview",
            "slamon: fleet overview",
            "Online and month-to-date rates by contract and district, devices down now by cause.",
            "now-6h",
        )
        .with_variable(_contract_variable())
        .with_variable(_district_variable())
        .with_row(_row(ids, "Now"))
        .with_panel(
            _stat(
                ids,
                "Devices down now",
                "Devices whose state is down, whatever the cause.",
                [_query(f'count(slamon_device_state{{{scope},state="down"}}) or vector(0)', instant=True)],
                thresholds=_thresholds((None, "green"), (1, "red")),
                span=4,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Down by their own fault",
                "Down devices whose cause is `device`: the ones that need a technician and cost the vendor.",
                [_query(f'count(slamon_device_cause{{{scope},cause="device"}}) or vector(0)', instant=True)],
                thresholds=_thresholds((None, "green"), (1, "red")),
                span=4,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Unknown",
                "Devices without a result for longer than their contract's stale_after.",
                [_query(f'count(slamon_device_state{{{scope},state="unknown"}}) or vector(0)', instant=True)],
                thresholds=_thresholds((None, "green"), (1, "orange")),
                span=4,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Devices monitored",
                "Devices of the chosen contracts and districts in slamon's inventory.",
                [_query(f"count(slamon_device_state{{{scope}}})", instant=True)],
                thresholds=_thresholds((None, "blue")),
                span=4,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Online now, by contract",
                "Share of each contract's fleet kinds (cameras by default) with a known state that are up "
                "or degraded now. Every down device counts, whatever its cause.",
                [_query('slamon_contract_online_ratio{contract=~"$contract"}', "{{contract}}", instant=True)],
                unit="percentunit",
                decimals=2,
                thresholds=_thresholds((None, "text")),
                span=4,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Age of the view",
                "Seconds since slamon took the per-device series (after each round). Large values mean "
                "slamon or its scrape is stuck, and the panels above are stale.",
                [_query("time() - max(slamon_view_timestamp_seconds)", instant=True)],
                unit="s",
                decimals=0,
                thresholds=_thresholds((None, "green"), (120, "orange"), (600, "red")),
                span=4,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Online ratio now, by contract and district",
                "slamon_online_ratio: of the fleet kinds' devices with a known state, the share up or "
                "degraded, per contract and district.",
                [_query(f"slamon_online_ratio{{{scope}}}", "{{contract}} {{district}}")],
                unit="percentunit",
                max_val=1,
                span=12,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Devices down, by cause",
                "Down devices by the class of their cause: device (own fault), upstream (behind a down "
                "device), excluded (an approved exclusion covers it).",
                [_query(f"count by (cause) ({CAUSE_CLASS})", "{{cause}}")],
                stacked=True,
                min_val=0,
                span=12,
            )
        )
        .with_row(_row(ids, "Month to date"))
        .with_panel(
            _bars(
                ids,
                "Month to date, by contract",
                "Online and intact rates of the current month so far, as the statement computes them "
                "(causes, exclusions and unknown time included). Recomputed every 5 minutes.",
                [_query('slamon_mtd_rate{contract=~"$contract"}', "{{contract}} {{kpi}}", instant=True)],
                decimals=3,
                max_val=1,
            )
        )
        .with_panel(
            _bars(
                ids,
                "Month to date, by district",
                "The same rates per contract and district.",
                [
                    _query(
                        f"slamon_mtd_district_rate{{{scope}}}",
                        "{{contract}} {{district}} {{kpi}}",
                        instant=True,
                    )
                ],
                decimals=3,
                max_val=1,
            )
        )
        .with_row(_row(ids, "Down now"))
        .with_panel(
            _bars(
                ids,
                "Down now, by cause",
                "Down devices by the class of their cause.",
                [_query(f"count by (cause) ({CAUSE_CLASS})", "{{cause}}", instant=True)],
                unit="none",
                decimals=0,
                min_val=0,
                span=8,
            )
        )
        .with_panel(
            _table(
                ids,
                "Down devices and their cause",
                "Every down device with its cause: device, upstream:<the down ancestor>, or "
                "excluded:<category>. How long each has been down is in slamon's API "
                "(`since` in /api/v1/devices?state=down).",
                [_query(DOWN, instant=True)],
                span=16,
            )
        )
        .with_panel(
            _table(
                ids,
                "Longest open outages",
                "The ten devices down the longest, with how long (seconds, since their outage began: "
                "back-dated to the first failure).",
                [
                    _query(
                        f"topk(10, time() - slamon_device_down_since_timestamp_seconds{{{scope}}})",
                        instant=True,
                    )
                ],
            )
        )
        .with_row(_row(ids, "SLA at risk (the month in progress)"))
        .with_panel(
            _bars(
                ids,
                "KPI margin to target",
                "Each contract's month-to-date rate minus its target: below zero the KPI's deduction "
                "applies at the month's end (SlamonSlaAtRisk pages near zero).",
                [
                    _query(
                        'slamon_sla_kpi_margin{contract=~"$contract"}', "{{contract}} {{kpi}}", instant=True
                    )
                ],
                decimals=3,
                span=8,
            )
        )
        .with_panel(
            _table(
                ids,
                "Repair deadlines closest",
                "Open outages with the least counted downtime left before their repair deadline, in "
                "seconds (negative: past it; each started hour past it is charged).",
                [_query('bottomk(10, slamon_repair_deadline_seconds{contract=~"$contract"})', instant=True)],
                span=8,
            )
        )
        .with_panel(
            _table(
                ids,
                "Devices closest to their next tier",
                "Seconds of counted downtime each device can still have this month before its "
                "availability falls below `below`, where a larger tier deduction applies.",
                [_query('bottomk(10, slamon_sla_tier_margin_seconds{contract=~"$contract"})', instant=True)],
                span=8,
            )
        )
        .build()
    )


def device_drilldown() -> gm.Dashboard:
    """One device: its states over time, why it was down, its ping figures, and a switch's ports."""
    ids = _Ids()
    switch = 'switch="$device"'
    port_up = (("down", 0, "red"), ("up", 1, "green"))
    return (
        _dashboard(
            "slamon-device",
            "slamon: device",
            "One device: state timeline, cause while down, round-trip time and loss; the ports of a "
            "switch polled over SNMP.",
            "now-24h",
        )
        .with_variable(_contract_variable())
        .with_variable(_district_variable())
        .with_variable(
            _label_variable(
                "device",
                "Device",
                'label_values(slamon_device_state{contract=~"$contract",district=~"$district"}, device)',
                multi=False,
                description="The device to show (ids from the inventory).",
            )
        )
        .with_row(_row(ids, "State"))
        .with_panel(
            _state_timeline(
                ids,
                "State",
                "up, degraded, down or unknown, as slamon judged it after each round.",
                [_query(DEVICE_STATE, "state")],
                mappings=_value_map(STATE_CODES),
                height=4,
            )
        )
        .with_panel(
            _state_timeline(
                ids,
                "Cause while down",
                "device (its own fault), upstream:<the down ancestor> or excluded:<category>.",
                [_query('slamon_device_cause{device="$device"}', "{{cause}}")],
                height=4,
            )
        )
        .with_row(_row(ids, "Video (a camera with a stream)"))
        .with_panel(
            _state_timeline(
                ids,
                "Video defects",
                "The defects of the camera's latest video sample over time (black, frozen, blur, "
                "no_signal…); nothing while the picture is clean.",
                [_query('slamon_video_defect{device="$device"}', "{{defect}}")],
                height=4,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Brightness",
                "Mean luma of the latest sample (16 black, 235 white): too_dark below 55, too_bright above 190.",
                [_query('slamon_video_mean_luma{device="$device"}', "mean luma")],
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Sharpness",
                "Fine detail of the latest sample (a sharp picture about 0.5; blur below 0.4).",
                [_query('slamon_video_sharpness{device="$device"}', "sharpness")],
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Motion",
                "Share of still pairs of frames (frozen from 0.5 with nearly empty packets) and the "
                "frame-to-frame change of the quieter half (snow above 1).",
                [
                    _query('slamon_video_still_share{device="$device"}', "still share", ref="A"),
                    _query('slamon_video_change{device="$device"}', "change", ref="B"),
                ],
                span=8,
            )
        )
        .with_row(_row(ids, "Reachability"))
        .with_panel(
            _timeseries(
                ids,
                "Round-trip time",
                "Mean round-trip time of the latest ping's echoes; a gap when no echo came back.",
                [_query('slamon_device_rtt_seconds{device="$device"}', "rtt")],
                unit="s",
                min_val=0,
                span=10,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Echo loss",
                "Share of the latest ping's echoes that got no reply.",
                [_query('slamon_device_loss_ratio{device="$device"}', "loss")],
                unit="percentunit",
                min_val=0,
                max_val=1,
                span=10,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Latest probe",
                "Seconds since the latest ping of this device was taken.",
                [
                    _query(
                        'time() - slamon_device_last_probe_timestamp_seconds{device="$device"}', instant=True
                    )
                ],
                unit="s",
                decimals=0,
                thresholds=_thresholds((None, "green"), (300, "orange")),
                span=4,
                height=8,
            )
        )
        .with_panel(
            _state_timeline(
                ids,
                "Uplink port",
                "The switch port this device hangs off (its inventory `uplink`), as the switch's polls see it.",
                [
                    _query(
                        "slamon_switch_port_up * on (switch, port) group_left (device) "
                        'slamon_device_uplink_info{device="$device"}',
                        "{{switch}} {{port}}",
                    )
                ],
                mappings=_value_map(port_up),
                height=4,
            )
        )
        .with_row(_row(ids, "Ports (a switch polled over SNMP)"))
        .with_panel(
            _state_timeline(
                ids,
                "Port status (ifOperStatus)",
                "Each port of the switch: up, or down (down, lowerLayerDown, notPresent…).",
                [_query(f"slamon_switch_port_up{{{switch}}}", "{{port}}")],
                mappings=_value_map(port_up),
                height=8,
            )
        )
        .with_panel(
            _stat(
                ids,
                "SNMP poll",
                "Whether the latest SNMP poll of the switch succeeded.",
                [_query(f"slamon_switch_snmp_up{{{switch}}}", instant=True)],
                mappings=_value_map((("failing", 0, "red"), ("ok", 1, "green"))),
                span=8,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Uptime",
                "sysUpTime of the latest good poll.",
                [_query(f"slamon_switch_uptime_seconds{{{switch}}}", instant=True)],
                unit="s",
                span=8,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Reboots seen",
                "Reboots seen since slamon started (sysUpTime went back between two polls).",
                [_query(f"slamon_switch_reboots_total{{{switch}}}", instant=True)],
                thresholds=_thresholds((None, "green"), (1, "orange")),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Traffic",
                "Bits per second in and out of each port (ifHCInOctets, ifHCOutOctets).",
                [
                    _query(
                        f"rate(slamon_switch_port_receive_bytes_total{{{switch}}}[$__rate_interval]) * 8",
                        "{{port}} in",
                        ref="A",
                    ),
                    _query(
                        f"rate(slamon_switch_port_transmit_bytes_total{{{switch}}}[$__rate_interval]) * 8",
                        "{{port}} out",
                        ref="B",
                    ),
                ],
                unit="bps",
                min_val=0,
                span=12,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Receive errors",
                "ifInErrors per second: a failing cable or optic.",
                [
                    _query(
                        f"rate(slamon_switch_port_receive_errors_total{{{switch}}}[$__rate_interval])",
                        "{{port}}",
                    )
                ],
                unit="short",
                min_val=0,
                span=12,
            )
        )
        .with_panel(
            _table(
                ids,
                "Ports with a fault now",
                "Ports down (ifOperStatus not up), shut (ifAdminStatus down) or with a PoE fault, as the "
                "latest poll saw them; a shut port is also down.",
                [_query(_port_faults(switch), instant=True)],
                span=12,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "PoE power",
                "The switch's PoE budget and the power in use.",
                [
                    _query(f"slamon_switch_poe_budget_watts{{{switch}}}", "budget", ref="A"),
                    _query(f"slamon_switch_poe_used_watts{{{switch}}}", "in use", ref="B"),
                ],
                unit="watt",
                min_val=0,
                span=12,
            )
        )
        .build()
    )


def contract_month() -> gm.Dashboard:
    """One contract's month so far: the KPI rates the statement will judge, overall and by district."""
    ids = _Ids()
    contract = 'contract="$contract"'  # a single-value variable: Grafana does not regex-escape it
    return (
        _dashboard(
            "slamon-contract-month",
            "slamon: contract month",
            "A contract's month-to-date online and intact rates, overall and by district.",
            "now/M",
        )
        .with_variable(_contract_variable(multi=False, metric="slamon_mtd_rate"))
        .with_variable(_district_variable("slamon_mtd_district_rate", contract))
        .with_row(_row(ids, "Month to date"))
        .with_panel(
            _stat(
                ids,
                "Online rate",
                "Month-to-date online_rate, as the statement of the current month computes it so far.",
                [_query(f'slamon_mtd_rate{{{contract},kpi="online_rate"}}', instant=True)],
                unit="percentunit",
                decimals=3,
                thresholds=_thresholds((None, "text")),
                span=8,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Intact rate",
                "Month-to-date intact_rate (devices up and not degraded), as the statement computes it.",
                [_query(f'slamon_mtd_rate{{{contract},kpi="intact_rate"}}', instant=True)],
                unit="percentunit",
                decimals=3,
                thresholds=_thresholds((None, "text")),
                span=8,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Figures computed",
                "Seconds since slamon computed the month-to-date figures (every 5 minutes).",
                [_query("time() - max(slamon_mtd_computed_timestamp_seconds)", instant=True)],
                unit="s",
                decimals=0,
                thresholds=_thresholds((None, "green"), (900, "orange")),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Month-to-date rates through the month",
                "How the month-to-date rates moved as the month went on.",
                [_query(f"slamon_mtd_rate{{{contract}}}", "{{kpi}}")],
                unit="percentunit",
                max_val=1,
                span=12,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Online now",
                "The contract's fleet kinds up or degraded at each moment (every down device counts, "
                "whatever its cause; the month-to-date rate only counts what the contract charges).",
                [_query(f"slamon_contract_online_ratio{{{contract}}}", "online now")],
                unit="percentunit",
                max_val=1,
                span=12,
            )
        )
        .with_row(_row(ids, "Money and devices"))
        .with_panel(
            _stat(
                ids,
                "Fee total",
                "The month's fee total so far (prorated devices included), in the contract's currency.",
                [_query(f"slamon_mtd_fee_total{{{contract}}}", "{{currency}}", instant=True)],
                decimals=2,
                thresholds=_thresholds((None, "text")),
                span=6,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Deductions so far",
                "What the statement would deduct if the month ended now: tiers, repair overruns, KPIs, "
                "capped.",
                [_query(f"slamon_mtd_deductions{{{contract}}}", "{{currency}}", instant=True)],
                decimals=2,
                thresholds=_thresholds((None, "green"), (0.01, "orange")),
                span=6,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Payable so far",
                "Fee total less the deductions so far.",
                [_query(f"slamon_mtd_payable{{{contract}}}", "{{currency}}", instant=True)],
                decimals=2,
                thresholds=_thresholds((None, "text")),
                span=6,
            )
        )
        .with_panel(
            _bars(
                ids,
                "Availability distribution",
                "Devices by their availability this month so far (1 - D / (S - X)).",
                [
                    _query(
                        f"count(slamon_device_mtd_availability_ratio{{{contract}}} >= 0.999) or vector(0)",
                        "≥ 99.9 %",
                        ref="A",
                        instant=True,
                    ),
                    _query(
                        f"count(slamon_device_mtd_availability_ratio{{{contract}}} < 0.999 >= 0.99) or vector(0)",
                        "99–99.9 %",
                        ref="B",
                        instant=True,
                    ),
                    _query(
                        f"count(slamon_device_mtd_availability_ratio{{{contract}}} < 0.99 >= 0.95) or vector(0)",
                        "95–99 %",
                        ref="C",
                        instant=True,
                    ),
                    _query(
                        f"count(slamon_device_mtd_availability_ratio{{{contract}}} < 0.95) or vector(0)",
                        "< 95 %",
                        ref="D",
                        instant=True,
                    ),
                ],
                unit="none",
                decimals=0,
                min_val=0,
                span=6,
            )
        )
        .with_row(_row(ids, "By district"))
        .with_panel(
            _bars(
                ids,
                "Online rate by district",
                "Month-to-date online_rate of each district of the contract.",
                [
                    _query(
                        f'slamon_mtd_district_rate{{{contract},district=~"$district",kpi="online_rate"}}',
                        "{{district}}",
                        instant=True,
                    )
                ],
                decimals=3,
                max_val=1,
            )
        )
        .with_panel(
            _bars(
                ids,
                "Intact rate by district",
                "Month-to-date intact_rate of each district of the contract.",
                [
                    _query(
                        f'slamon_mtd_district_rate{{{contract},district=~"$district",kpi="intact_rate"}}',
                        "{{district}}",
                        instant=True,
                    )
                ],
                decimals=3,
                max_val=1,
            )
        )
        .build()
    )


# file name (without .json) -> builder
BUILDERS: Mapping[str, Callable[[], gm.Dashboard]] = {
    "fleet-overview": fleet_overview,
    "device": device_drilldown,
    "contract-month": contract_month,
}

# Fields the foundation SDK writes on every variable that Grafana's dashboard schema defines only
# for interval variables.
_INTERVAL_ONLY = ("auto", "auto_count", "auto_min")


def to_json(model: gm.Dashboard) -> Dashboard:
    """A built dashboard as Grafana's JSON model (plain dicts and lists).

    Two defaults of the SDK (built for Grafana 11.6) that the current schema no longer has are
    dropped, so the JSON validates against it and means the same to Grafana 11 and 12: the
    interval-variable fields on other variables, and the table panel's hidden footer option (Grafana
    12.2 moved the footer into the field config)."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    doc: Dashboard = json.loads(json.dumps(model, cls=JSONEncoder))
    for variable in doc.get("templating", {}).get("list", []):
        if variable.get("type") != "interval":
            for key in _INTERVAL_ONLY:
                variable.pop(key, None)
    for panel in panels(doc):
        options = panel.get("options") or {}
        if panel.get("type") == "table" and not options.get("footer", {}).get("show", True):
            del options["footer"]
    return doc


def build_all() -> dict[str, Dashboard]:
    """Every dashboard, by file name (without .json)."""
    return {name: to_json(build()) for name, build in BUILDERS.items()}


def render(doc: Dashboard) -> str:
    """The committed text of a dashboard: sorted keys, two-space indent, UTF-8 as is, a final newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path) -> list[Path]:
    """Write every dashboard as `<name>.json` into `directory` (created if need be); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in build_all().items():
        path = directory / f"{name}.json"
        path.write_text(render(doc), encoding="utf-8")
        written.append(path)
    return written


def load_dir(directory: Path) -> dict[str, Dashboard]:
    """The dashboards of a folder of `*.json` files, by file name."""
    found: dict[str, Dashboard] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SlamonError(f"{path}: not a dashboard JSON file ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("uid"), str):
            raise SlamonError(f"{path}: not a dashboard JSON file (no uid)")
        found[path.stem] = doc
    if not found:
        raise SlamonError(f"{directory}: no *.json dashboards in it")
    return found


def panels(doc: Dashboard) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, those inside collapsed rows included (rows themselves excluded)."""
    for panel in doc.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


# --- push -------------------------------------------------------------------------------------


def push(
    url: str,
    token: str | None,
    folder: str,
    dashboards: Mapping[str, Dashboard],
    *,
    folder_title: str = FOLDER,
    timeout: float = 10.0,
) -> list[str]:
    """Create or replace each dashboard in Grafana's folder `folder` (its uid; created with
    `folder_title` when missing), through /api/dashboards/db with overwrite. `token` is a service
    account token (None: the credentials of a user:password@host URL, or none). Returns the URLs
    Grafana gives the dashboards. Grafana's refusals and network errors raise DashboardPushError."""
    try:
        import niquests
        from grafana_client.api import GrafanaApi
        from grafana_client.client import GrafanaClientError, GrafanaException
    except ImportError:
        raise SlamonError(
            "slamon dashboards push needs grafana-client: pip install 'slamon[dashboards]'"
        ) from None

    where = _without_credentials(url)
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    try:
        try:
            api.folder.get_folder(folder)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.folder.create_folder(folder_title, uid=folder)
            logger.info("created folder uid=%s title=%r in Grafana at %s", folder, folder_title, where)
        urls = []
        for name, doc in dashboards.items():
            body = {
                "dashboard": {**doc, "id": None},  # Grafana matches on the uid; an id would pin one server
                "folderUid": folder,
                "overwrite": True,
                "message": "slamon dashboards push",
            }
            reply = api.dashboard.update_dashboard(body)
            got = str(reply.get("url", "")) if isinstance(reply, dict) else ""
            logger.info("pushed dashboard=%s uid=%s to Grafana at %s: %s", name, doc.get("uid"), where, got)
            urls.append(got)
        return urls
    except GrafanaException as exc:
        raise DashboardPushError(f"Grafana at {where}: {exc.message}") from None
    except niquests.exceptions.RequestException as exc:  # not connected, refused, TLS…
        raise DashboardPushError(f"Grafana at {where}: {_reason(exc)}") from None
    finally:
        api.client.s.close()


def push_command(
    url: str | None,
    token_env: str,
    folder: str = FOLDER,
    folder_title: str = FOLDER,
    directory: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """`slamon dashboards push`: the dashboards built from this slamon (or the `*.json` of
    `directory`) pushed to Grafana at `url` (else $GRAFANA_URL), with the service account token in
    the environment variable `token_env`. The secret is never an argument, so it stays out of shell
    history and `ps`."""
    env = os.environ if environ is None else environ
    url = url or env.get("GRAFANA_URL")
    if not url:
        raise SlamonError("no Grafana URL: give --url or set GRAFANA_URL")
    token = env.get(token_env) or None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SlamonError(f"{_without_credentials(url)}: not a Grafana URL (http[s]://host[:port][/path])")
    if token is None and parts.password is None:
        raise SlamonError(
            f"{token_env} is not set: set it to a Grafana service account token (role Editor), "
            "or give the user and password in the URL (http://user:password@host:3000)"
        )
    if directory is not None:
        dashboards = load_dir(directory)
    else:
        try:
            dashboards = build_all()
        except ImportError:
            raise SlamonError(
                "building the dashboards needs grafana-foundation-sdk: pip install 'slamon[dashboards]', "
                "or push the committed JSON with --from dashboards/"
            ) from None
    return push(url, token, folder, dashboards, folder_title=folder_title)


def _without_credentials(url: str) -> str:
    """The URL as it may be logged: no user:password@."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _reason(exc: BaseException) -> str:
    """The innermost cause of a network error (`[Errno 111] Connection refused`), not the library's
    nested reprs."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return str(exc) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m slamon.dashboards [DIR]`: regenerate the committed JSON (default ./dashboards)."""
    parser = argparse.ArgumentParser(prog="python -m slamon.dashboards", description=main.__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=Path("dashboards"))
    args = parser.parse_args(argv)
    for path in write_all(args.directory):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
