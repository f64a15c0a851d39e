"""alerts/alertmanager.yml in a real Alertmanager on loopback: alerts posted to it as Prometheus
would post them are routed to their contract's receivers, and the inhibitions hold back what a
site outage or a switch down already covers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.harness.fixtures import require_tool
from tests.ops.stack import (
    Webhook,
    alertmanager_argv,
    alertmanager_config,
    alerts_of,
    free_port,
    http_json,
    http_status,
    process,
    tail,
    wait_for,
)

QUIET_S = 2.5  # after the expected notifications: more than two group_intervals (1 s) of nothing


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, Webhook, Path]]:
    """(Alertmanager's URL, the webhook its receivers post to, its log)."""
    binary = require_tool("prometheus-alertmanager", "prometheus-alertmanager")
    with socket.create_server(("127.0.0.1", 0)) as sock, Webhook(sock) as hook:
        config = alertmanager_config(tmp_path / "alertmanager.yml", hook.url)
        listen = f"127.0.0.1:{free_port()}"
        log = tmp_path / "alertmanager.log"
        with process(alertmanager_argv(binary, config, tmp_path / "am", listen), log) as proc:
            url = f"http://{listen}"
            wait_for(
                lambda: proc.poll() is None and http_status(f"{url}/-/ready") == 200,
                "Alertmanager to be ready",
                15,
                detail=lambda: tail(log),
            )
            yield url, hook, log


def alert(name: str, severity: str, **labels: str) -> dict[str, object]:
    return {
        "labels": {"alertname": name, "severity": severity, "job": "slamon", **labels},
        "annotations": {"summary": f"{name} {labels}"},
        "startsAt": datetime.now(UTC).isoformat(),
    }


def test_routes_by_contract_and_inhibits_what_a_site_outage_or_a_switch_covers(
    stack: tuple[str, Webhook, Path],
) -> None:
    url, hook, log = stack
    qs = {"contract": "QS-2026", "district": "右江区"}
    http_json(
        f"{url}/api/v2/alerts",
        [
            # QS-S2 is dark: the site pages, its switch and camera do not
            alert("SlamonSiteOutage", "page", site="QS-S2", **qs),
            alert(
                "SlamonSwitchDown", "page", device="QS-SW2", kind="switch", site="QS-S2", cause="device", **qs
            ),
            alert(
                "SlamonDeviceDown",
                "page",
                device="QS-C0041",
                kind="camera",
                site="QS-S2",
                cause="device",
                **qs,
            ),
            # QS-SW1 is down: it pages, a camera of its site judged down a round early does not
            alert(
                "SlamonSwitchDown", "page", device="QS-SW1", kind="switch", site="QS-S1", cause="device", **qs
            ),
            alert(
                "SlamonDeviceDown",
                "page",
                device="QS-C0001",
                kind="camera",
                site="QS-S1",
                cause="device",
                **qs,
            ),
            # elsewhere: a ticket of the same contract, a page of another, slamon's own health
            alert("SlamonVideoDegraded", "ticket", device="QS-C0009", kind="camera", site="QS-S3", **qs),
            alert(
                "SlamonDeviceDown",
                "page",
                device="YJ-C0001",
                kind="camera",
                site="YJ-S001",
                contract="YJ-2025",
            ),
            alert("SlamonProberStale", "page", probe="icmp", instance="127.0.0.1:9108"),
        ],
    )
    expected = {
        ("/qs-2026-pager", ("SlamonSiteOutage", "QS-S2")),
        ("/qs-2026-pager", ("SlamonSwitchDown", "QS-SW1")),
        ("/qs-2026-tickets", ("SlamonVideoDegraded", "QS-C0009")),
        ("/yj-2025-pager", ("SlamonDeviceDown", "YJ-C0001")),
        ("/slamon-ops", ("SlamonProberStale", "")),
    }

    def delivered() -> set[tuple[str, tuple[str, str]]]:
        return {(path, a) for path, n in hook.received() for a in alerts_of(n)}

    wait_for(
        lambda: delivered() >= expected,
        "the five notifications",
        20,
        detail=lambda: f"got {sorted(delivered())}\n{tail(log)}",
    )
    quiet_until = time.monotonic() + QUIET_S
    while time.monotonic() < quiet_until:  # nothing more comes: the inhibited alerts stay held back
        assert delivered() == expected, sorted(delivered())
        time.sleep(0.1)
    assert len(hook.received()) == len(expected), "one notification each"
    held = {
        a["labels"]["device"]: a["status"]
        for a in http_json(f"{url}/api/v2/alerts")
        if a["status"]["inhibitedBy"]
    }
    assert set(held) == {"QS-SW2", "QS-C0041", "QS-C0001"}
    assert all(s["state"] == "suppressed" for s in held.values())
