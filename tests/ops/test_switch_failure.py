"""End to end, one page for a switch failure, not forty: a real `slamon run` on a small fleet, a real
Prometheus (scraping it every second, with the shipped rules) and a real Alertmanager (with the
shipped routes and inhibitions) delivering to a local aiohttp webhook, all inside a network
namespace. The switch and its 40 cameras go silent; exactly one notification arrives, naming the
switch, and exactly one "resolved" when they answer again.

The rules' `for:` of the fleet alerts is shortened to 3 s and Alertmanager's group_wait and
group_interval to 1 s (stack.py): the test checks what pages, not how long the shipped settings wait.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from tests.harness.fixtures import require_tool
from tests.harness.netns import FleetNamespace
from tests.ops.stack import (
    ROOT,
    Webhook,
    alertmanager_argv,
    alertmanager_config,
    alerts_of,
    http_json,
    http_status,
    prometheus_argv,
    prometheus_config,
    query,
    shipped_rule_files,
    tail,
)
from tests.ops.stack import wait_for as wait_until

logger = logging.getLogger(__name__)
pytestmark = pytest.mark.slow  # four real processes, in real time (about 20 s)

# inside the test's own network namespace: nothing else can hold these ports
SLAMON, PROMETHEUS, ALERTMANAGER, WEBHOOK = (f"127.0.0.1:{p}" for p in (19108, 19090, 19093, 19080))
CAMERAS = 40
FOR = "3s"
QUIET_S = 3.0  # after a notification: three group_intervals (1 s) and three evaluations of nothing


def inventory() -> str:
    """The quickstart's link and two switches; 40 cameras behind QS-SW1, 3 behind QS-SW2. The link
    shares QS-S1 with QS-SW1 and answers throughout, so the site is not dark (no power suspicion)."""
    lines = [
        "sites:",
        "  - {id: QS-S1, name: 城东路口, district: 右江区, area: urban}",
        "  - {id: QS-S2, name: 四塘镇, district: 右江区, area: rural}",
        "devices:",
        "  - {id: QS-LINK1, kind: link, address: 127.0.40.1, site: QS-S1, contract: QS-2026}",
        "  - {id: QS-SW1, kind: switch, address: 127.0.40.11, site: QS-S1, contract: QS-2026, parent: QS-LINK1}",
        "  - {id: QS-SW2, kind: switch, address: 127.0.40.12, site: QS-S2, contract: QS-2026, parent: QS-LINK1}",
    ]
    lines += [
        f"  - {{id: QS-C{i:04d}, kind: camera, address: 127.0.41.{i}, site: QS-S1, contract: QS-2026, parent: QS-SW1}}"
        for i in range(1, CAMERAS + 1)
    ]
    lines += [
        f"  - {{id: QS-C{i:04d}, kind: camera, address: 127.0.42.{i - CAMERAS}, site: QS-S2, contract: QS-2026,"
        " parent: QS-SW2}"
        for i in range(CAMERAS + 1, CAMERAS + 4)
    ]
    return "\n".join(lines) + "\n"


SILENT = ("127.0.40.11", "127.0.41.0/26")  # QS-SW1 and its cameras 127.0.41.1-40
DEVICES = 3 + CAMERAS + 3


def fleet_files(here: Path) -> Path:
    """slamon.yaml, the inventory and the quickstart's contract QS-2026 (whose KPI target is in
    alerts/sla-targets.rules.yml)."""
    (here / "contracts").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "quickstart" / "contracts" / "qs-2026.yaml", here / "contracts")
    (here / "inventory.yaml").write_text(inventory(), encoding="utf-8")
    config = here / "slamon.yaml"
    config.write_text(
        "database: sqlite:///slamon.db\ninventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n"
        f"listen: {SLAMON}\nprobes: {{icmp: {{interval: 1s, timeout: 500ms}}}}\n",
        encoding="utf-8",
    )
    return config


def test_a_switch_and_its_40_cameras_going_silent_page_once_naming_the_switch(
    fleet_ns: FleetNamespace, tmp_path: Path
) -> None:
    prometheus = require_tool("prometheus", "prometheus")
    alertmanager = require_tool("prometheus-alertmanager", "prometheus-alertmanager")
    config = fleet_files(tmp_path / "fleet")
    logs = {name: tmp_path / f"{name}.log" for name in ("slamon", "prometheus", "alertmanager")}
    prom_url, am_url, slamon_url = (f"http://{a}" for a in (PROMETHEUS, ALERTMANAGER, SLAMON))

    def inside(check: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with fleet_ns.inside():
                return check()

        return run

    def wait_for(check: Callable[[], Any], what: str, limit: float) -> Any:
        return wait_until(
            inside(check), what, limit, detail=lambda: "\n".join(tail(log) for log in logs.values())
        )

    with fleet_ns.inside():
        sock = socket.create_server(("127.0.0.1", int(WEBHOOK.rsplit(":", 1)[1])))
    with sock, Webhook(sock) as hook:
        started = time.monotonic()
        outputs = [log.open("wb") for log in logs.values()]
        try:
            fleet_ns.popen(
                [sys.executable, "-m", "slamon.cli", "-c", str(config), "run"],
                stdout=outputs[0],
                stderr=outputs[0],
            )
            rules = shipped_rule_files(tmp_path, FOR)
            prom_config = prometheus_config(
                tmp_path / "prometheus.yml", slamon=SLAMON, alertmanager=ALERTMANAGER, rule_files=rules
            )
            fleet_ns.popen(
                prometheus_argv(prometheus, prom_config, tmp_path / "tsdb", PROMETHEUS),
                stdout=outputs[1],
                stderr=outputs[1],
                cwd=tmp_path,
            )
            am_config = alertmanager_config(tmp_path / "alertmanager.yml", hook.url)
            fleet_ns.popen(
                alertmanager_argv(alertmanager, am_config, tmp_path / "am", ALERTMANAGER),
                stdout=outputs[2],
                stderr=outputs[2],
                cwd=tmp_path,
            )
        finally:
            for out in outputs:
                out.close()

        def devices() -> dict[str, dict[str, Any]]:
            return {d["id"]: d for d in http_json(f"{slamon_url}/api/v1/devices")["devices"]}

        wait_for(lambda: http_status(f"{am_url}/-/ready") == 200, "Alertmanager to be ready", 15)
        wait_for(lambda: {d["state"] for d in devices().values()} == {"up"}, "every device up", 20)
        wait_for(
            lambda: (
                [r["value"][1] for r in query(prom_url, 'count(slamon_device_up{job="slamon"} == 1)')]
                == [str(DEVICES)]
            ),
            "Prometheus to scrape every device up",
            20,
        )
        ready = time.monotonic()

        fleet_ns.silence(*SILENT)
        wait_for(
            lambda: (
                len(query(prom_url, 'slamon_device_cause{cause="upstream:QS-SW1"}')) == CAMERAS
                and [r["metric"]["device"] for r in query(prom_url, 'slamon_device_cause{cause="device"}')]
                == ["QS-SW1"]
            ),
            "Prometheus to see QS-SW1 down and its 40 cameras down behind it",
            20,
        )
        wait_for(hook.received, "a notification", 20)
        paged = time.monotonic()
        quiet_until = time.monotonic() + QUIET_S
        while time.monotonic() < quiet_until:
            assert len(hook.received()) == 1, json.dumps(hook.received(), ensure_ascii=False, indent=1)
            time.sleep(0.1)

        [(path, page)] = hook.received()
        assert (path, page["status"], alerts_of(page)) == (
            "/qs-2026-pager",
            "firing",
            [("SlamonSwitchDown", "QS-SW1")],
        ), page
        [switch] = page["alerts"]
        assert (switch["labels"]["contract"], switch["labels"]["site"]) == ("QS-2026", "QS-S1")
        assert switch["annotations"]["description"].endswith(
            "(cause upstream:QS-SW1, and the devices behind those): 40."
        )
        with fleet_ns.inside():
            # Prometheus sent Alertmanager that one alert and no other, and no camera's alert was
            # ever even pending (SlamonServiceDown is pending until the first scrape, and no more)
            assert [a["labels"]["alertname"] for a in http_json(f"{am_url}/api/v2/alerts")] == [
                "SlamonSwitchDown"
            ]
            others = 'ALERTS{alertname!="SlamonSwitchDown", alertname!="SlamonServiceDown"}'
            assert query(prom_url, f"count_over_time({others}[10m])") == []
            assert query(prom_url, 'count_over_time(ALERTS{alertstate="firing"}[10m])') == [
                {
                    "metric": {
                        "alertname": "SlamonSwitchDown",
                        **{k: v for k, v in switch["labels"].items() if k != "alertname"},
                        "alertstate": "firing",
                    },
                    "value": ANY,
                }
            ]
            assert len([d for d in devices().values() if d["state"] == "down"]) == 1 + CAMERAS

        restored = time.monotonic()
        fleet_ns.restore_all()
        wait_for(lambda: len(hook.received()) > 1, "the resolved notification", 20)
        resolved = time.monotonic()
        quiet_until = time.monotonic() + QUIET_S
        while time.monotonic() < quiet_until:
            assert len(hook.received()) == 2, json.dumps(hook.received(), ensure_ascii=False, indent=1)
            time.sleep(0.1)
        [_, (path, done)] = hook.received()
        assert (path, done["status"], alerts_of(done)) == (
            "/qs-2026-pager",
            "resolved",
            [("SlamonSwitchDown", "QS-SW1")],
        )

    logger.info(
        "stack ready in %.1f s; silence to page %.1f s; restore to resolved %.1f s",
        ready - started,
        paged - ready,
        resolved - restored,
    )
