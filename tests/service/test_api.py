"""The HTTP side without root: every filter of /api/v1, its 400s, 404s and 503s, /healthz's reasons,
and slamon's own metrics as Prometheus parses them — against the real monitor, store and app."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from slamon.model import ProbeKind
from slamon.service.web import create_app
from tests.harness.flaky import FlakyStore
from tests.harness.scenarios import camera_fails_and_recovers, switch_down
from tests.service.drive import INTERVAL, PLAN, T0, Run, make_run, play


@pytest.fixture
async def served(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[tuple[Run, Any]]:
    """Round 6 of a story: camera SIM-S1W1C2 down since round 1 (its own fault), switch SIM-S2W1 down
    since round 2 with its three cameras behind it."""
    store = FlakyStore(f"sqlite:///{tmp_path / 'api.db'}")
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    story = [
        camera_fails_and_recovers(PLAN, "SIM-S1W1C2", fail_at=1, down_rounds=20),
        switch_down(PLAN, "SIM-S2W1", fail_at=2, down_rounds=20),
    ]
    await play(run, range(7), story)
    await run.monitor.flush()
    client = await aiohttp_client(create_app(run.monitor, run.clock, {ProbeKind.ICMP: INTERVAL}))
    yield run, client
    await run.monitor.close()
    store.close()


async def get_json(client: Any, path: str, **params: Any) -> tuple[int, Any]:
    resp = await client.get(path, params=params)
    if resp.content_type == "application/json":
        return resp.status, await resp.json()
    if resp.content_type == "application/problem+json":  # an error: its detail
        body = await resp.json(content_type=None)
        assert body["status"] == resp.status
        return resp.status, body["detail"] + "\n"
    return resp.status, await resp.text()


async def ids(client: Any, query: list[tuple[str, str]]) -> list[str]:
    resp = await client.get("/api/v1/devices", params=query)
    assert resp.status == 200, await resp.text()
    return sorted(d["id"] for d in (await resp.json())["devices"])


BEHIND = ["SIM-S2W1C1", "SIM-S2W1C2", "SIM-S2W1C3"]


async def test_device_filters(served: tuple[Run, Any]) -> None:
    _, client = served
    assert len(await ids(client, [])) == 18
    assert await ids(client, [("state", "down")]) == sorted(["SIM-S1W1C2", "SIM-S2W1", *BEHIND])
    assert await ids(client, [("state", "down"), ("kind", "switch")]) == ["SIM-S2W1"]
    assert await ids(client, [("cause", "device")]) == ["SIM-S1W1C2", "SIM-S2W1"]
    assert await ids(client, [("cause", "upstream")]) == BEHIND
    assert await ids(client, [("cause", "upstream:SIM-S2W1")]) == BEHIND
    assert await ids(client, [("cause", "upstream:SIM-S1W1")]) == []
    assert await ids(client, [("site", "SIM-S1"), ("state", "down")]) == ["SIM-S1W1C2"]
    assert await ids(client, [("district", "D2"), ("kind", "link")]) == ["SIM-S2L"]
    assert await ids(client, [("contract", "C1"), ("kind", "link")]) == ["SIM-S1L", "SIM-S2L"]
    assert await ids(client, [("contract", "C2")]) == []
    # a filter given twice is either
    assert await ids(client, [("kind", "link"), ("kind", "switch"), ("site", "SIM-S1")]) == [
        "SIM-S1L",
        "SIM-S1W1",
        "SIM-S1W2",
    ]


async def test_a_device_tells_its_state_cause_and_since(served: tuple[Run, Any]) -> None:
    run, client = served
    _, body = await get_json(client, "/api/v1/devices", state="down", kind="camera", site="SIM-S2")
    cam = next(d for d in body["devices"] if d["id"] == "SIM-S2W1C1")
    assert cam["cause"] == "upstream:SIM-S2W1"
    assert cam["since"] == (T0 + 2 * INTERVAL).astimezone(_cst()).isoformat()
    assert cam["error"] == "no echo reply"
    assert body["as_of"] == run.clock.now().isoformat()
    assert body["count"] == len(body["devices"]) == 3


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        (
            {"colour": "red"},
            400,
            "unknown query parameter 'colour' (use contract, site, district, kind, state, cause)",
        ),
        ({"kind": "router"}, 400, "kind: 'router' is not one of camera, switch, link"),
        ({"state": "broken"}, 400, "state: 'broken' is not one of up, degraded, down, unknown"),
        ({"cause": "weather"}, 400, "cause: 'weather' is not device, upstream[:ID] or excluded[:CATEGORY]"),
    ],
)
async def test_device_list_rejects(
    served: tuple[Run, Any], query: dict[str, str], status: int, message: str
) -> None:
    _, client = served
    got = await get_json(client, "/api/v1/devices", **query)
    assert got == (status, message + "\n")


async def test_outage_filters(served: tuple[Run, Any]) -> None:
    _, client = served
    window = {"from": T0.isoformat(), "to": (T0 + 7 * INTERVAL).isoformat()}
    _, every = await get_json(client, "/api/v1/outages", **window)
    assert sorted(o["device"] for o in every["outages"]) == sorted(["SIM-S1W1C2", "SIM-S2W1", *BEHIND])
    assert all(o["open"] and o["end"] is None for o in every["outages"])
    _, upstream = await get_json(client, "/api/v1/outages", cause="upstream", **window)
    assert [o["device"] for o in upstream["outages"]] == BEHIND
    assert upstream["outages"][0]["causes"] == {"upstream:SIM-S2W1": 5 * 60.0}
    _, one = await get_json(client, "/api/v1/outages", device="SIM-S1W1C2", **window)
    assert [o["device"] for o in one["outages"]] == ["SIM-S1W1C2"]
    assert one["outages"][0]["evidence"]["first_failure"] == (T0 + INTERVAL).astimezone(_cst()).isoformat()
    # a device that exists but is not in the site asked for: nothing, not a 404
    assert await get_json(client, "/api/v1/outages", device="SIM-S1W1C2", site="SIM-S2", **window) == (
        200,
        {**one, "outages": [], "count": 0},
    )
    _, site = await get_json(client, "/api/v1/outages", site="SIM-S2", **window)
    assert sorted(o["device"] for o in site["outages"]) == sorted(["SIM-S2W1", *BEHIND])
    district = run_district(served, "SIM-S2")
    _, by_district = await get_json(client, "/api/v1/outages", district=district, **window)
    in_district = [o for o in every["outages"] if o["site"] in sites_of(served, district)]
    assert in_district
    assert by_district["outages"] == in_district
    _, nowhere = await get_json(client, "/api/v1/outages", district="nowhere", **window)
    assert nowhere["outages"] == []


def run_district(served: tuple[Run, Any], site: str) -> str:
    return served[0].monitor.whole.inventory.sites[site].district  # type: ignore[index]


def sites_of(served: tuple[Run, Any], district: str) -> set[str]:
    return {s.id for s in served[0].monitor.whole.inventory.sites.values() if s.district == district}


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"device": "NOPE"}, 404, "no device 'NOPE'"),
        ({"from": "yesterday"}, 400, "from: 'yesterday' is not an ISO-8601 instant"),
        ({"from": "2025-07-10T08:00:00"}, 400, "from: '2025-07-10T08:00:00' has no UTC offset"),
        (
            {"from": "0001-01-01T00:00:00+14:00"},
            400,
            "from: '0001-01-01T00:00:00+14:00' is out of range (1970 to 2199)",
        ),
        (
            {"to": "9999-12-31T23:59:59-14:00"},
            400,
            "to: '9999-12-31T23:59:59-14:00' is out of range (1970 to 2199)",
        ),
        (
            {"from": "2025-07-10T09:00:00+00:00", "to": "2025-07-10T08:00:00+00:00"},
            400,
            "to must be after from",
        ),
        ({"cause": "weather"}, 400, "cause: 'weather' is not device, upstream[:ID] or excluded[:CATEGORY]"),
        (
            {"since": "x"},
            400,
            "unknown query parameter 'since' (use contract, site, district, device, cause, from, to)",
        ),
    ],
)
async def test_outage_list_rejects(
    served: tuple[Run, Any], query: dict[str, str], status: int, message: str
) -> None:
    _, client = served
    assert await get_json(client, "/api/v1/outages", **query) == (status, message + "\n")


async def test_a_store_that_is_away_is_a_503_to_retry(served: tuple[Run, Any]) -> None:
    run, client = served
    run.store.reads_fail = True  # type: ignore[attr-defined]
    resp = await client.get("/api/v1/outages")
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "10"
    assert resp.content_type == "application/problem+json"
    assert (await resp.json(content_type=None))["detail"].startswith(
        "the store is unavailable, retry later: "
    )
    assert (await client.get("/api/v1/devices")).status == 200, "the live view needs no store"


async def test_healthz_says_why_it_is_degraded(served: tuple[Run, Any]) -> None:
    run, client = served
    run.monitor.stats[ProbeKind.ICMP].last_started = __import__("time").time()
    status, body = await get_json(client, "/healthz")
    assert (status, body["status"], body["reasons"]) == (200, "ok", [])
    assert body["store"]["backlog"]["writes"] == 0

    run.store.fail("read_only")  # type: ignore[attr-defined]
    await play(run, [7], [])
    await _until_refused(run)
    status, body = await get_json(client, "/healthz")
    assert status == 503
    assert body["status"] == "degraded"
    assert body["reasons"][0].startswith("the store refuses writes: database ")
    assert body["store"]["writable"] is False
    assert body["store"]["backlog"]["writes"] >= 1

    run.store.heal()  # type: ignore[attr-defined]
    await run.monitor.flush()
    status, body = await get_json(client, "/healthz")
    assert (status, body["reasons"]) == (200, [])

    run.monitor.stats[ProbeKind.ICMP].last_started -= 4 * INTERVAL.total_seconds()
    status, body = await get_json(client, "/healthz")
    assert (status, body["reasons"]) == (503, ["no icmp round started in the last 3 intervals"])


async def _until_refused(run: Run) -> None:
    import asyncio

    for _ in range(2000):
        if run.writer.status().failing:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the writer never tried")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_self_metrics_count_rounds_failures_and_the_backlog(served: tuple[Run, Any]) -> None:
    run, client = served
    got = samples(await (await client.get("/metrics")).text())
    assert got[("slamon_rounds_total", (("probe", "icmp"),))] == 7
    assert got[("slamon_probes_total", (("probe", "icmp"),))] == 7 * 18
    assert got[("slamon_backlog_writes", ())] == 0
    assert got[("slamon_store_writable", ())] == 1
    assert got[("slamon_store_write_failures_total", (("reason", "locked"),))] == 0
    assert got[("slamon_round_timeouts_total", (("probe", "icmp"),))] == 0
    assert got[("slamon_devices", ())] == 18
    assert (
        got[
            (
                "slamon_device_cause",
                (
                    ("cause", "upstream:SIM-S2W1"),
                    ("contract", "C1"),
                    ("device", "SIM-S2W1C3"),
                    ("district", "D2"),
                    ("kind", "camera"),
                    ("site", "SIM-S2"),
                ),
            )
        ]
        == 1
    )

    run.store.fail_next(2, "locked")  # type: ignore[attr-defined]
    await play(run, [7], [])
    await run.monitor.flush()
    got = samples(await (await client.get("/metrics")).text())
    assert got[("slamon_store_write_failures_total", (("reason", "locked"),))] == 2
    assert got[("slamon_store_replays_total", ())] >= 1
    assert got[("slamon_backlog_writes", ())] == 0
    assert got[("slamon_store_writes_total", ())] == run.writer.status().written


async def test_metrics_are_gzipped_when_asked(served: tuple[Run, Any]) -> None:
    _, client = served
    plain = await (await client.get("/metrics", headers={"Accept-Encoding": "identity"})).read()
    resp = await client.get("/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    packed = await resp.read()
    assert len(packed) < len(plain) / 3
    assert _without_timing(gzip.decompress(packed)) == _without_timing(plain)


def _without_timing(body: bytes) -> list[str]:
    """The exposition without slamon's own gauges that move between two scrapes."""
    moving = ("slamon_backlog_oldest_age_seconds", "python_", "process_")
    return [line for line in body.decode().splitlines() if not line.startswith(moving)]


def _cst() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")
