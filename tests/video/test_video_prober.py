"""The video prober against a real RTSP server (gst-rtsp-server on loopback): each sample's verdict,
the cameras that fail without a picture (a refused port, a silent server, a stream that stops),
and the whole way through the service: a mount switched to a black picture makes its camera
`degraded` after `degrade_after` samples and `up` after one clean one, and the month's statement
counts those seconds against the intact rate."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from slamon.billing.statement import compute
from slamon.clock import FakeClock
from slamon.issuing import gather
from slamon.loaders.video_config import VideoGroup, VideoProbeConfig
from slamon.model import (
    Defect,
    DeviceId,
    DeviceState,
    Fleet,
    Inventory,
    Kpi,
    ProbeKind,
    ProbeResult,
    SlaTerms,
)
from slamon.probers.scripted import ScriptedProber
from slamon.probers.video import VideoProber
from slamon.service.journal import Journal
from slamon.service.monitor import Monitor
from slamon.service.web import create_app
from slamon.service.writer import Writer
from slamon.store import Store
from slamon.video.calibration import make_all
from tests.harness.fleets import T0, fleet_of
from tests.harness.rtsp import RtspServer, refused_port, require_rtsp_server, silent_listener
from tests.harness.scenarios import AddressPlan

pytestmark = pytest.mark.slow  # real streams, in real time

CLIPS = ("clean", "black", "frozen", "blur_strong", "lowres_360p")
SECOND_ = timedelta(seconds=1)
CONFIG = VideoProbeConfig(
    interval=SECOND_, sample=SECOND_, timeout=timedelta(seconds=2), frames=6, concurrency=4
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_rtsp_server()
    made = make_all(list(CLIPS))
    short = tmp_path_factory.mktemp("clips") / "short.mp4"  # half a second: it stops mid-sample
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(made["clean"]), "-t", "0.4", "-c", "copy", str(short)],
        check=True,
    )
    return {**made, "short": short}


@pytest.fixture(scope="module")
def server(clips: dict[str, Path]) -> Iterator[RtspServer]:
    with RtspServer({**clips, "cam": clips["clean"]}) as s:
        yield s


def cameras(streams: dict[str, str]) -> Fleet:
    """One switch and a camera per stream (SIM-S1W1C1, C2, …), under contract C1."""
    fleet = fleet_of(AddressPlan.grid(sites=1, switches=1, cameras=len(streams)), SlaTerms(degrade_after=2))
    devices = dict(fleet.inventory.devices)
    for i, url in enumerate(streams.values(), start=1):
        cid = DeviceId(f"SIM-S1W1C{i}")
        devices[cid] = replace(devices[cid], stream=url)
    return replace(fleet, inventory=Inventory(fleet.inventory.sites, devices))


async def one_round(prober: VideoProber, fleet: Fleet) -> dict[str, ProbeResult]:
    devices = [d for d in fleet.inventory.devices.values() if d.stream]
    out: dict[str, ProbeResult] = {}
    async for batch in prober.round(devices):
        out.update((r.device, r) for r in batch)
    return out


async def test_each_sample_says_what_the_picture_is_wrong_with(server: RtspServer) -> None:
    streams = {name: server.url(name) for name in ("clean", "black", "frozen", "blur_strong", "lowres_360p")}
    fleet = cameras(streams)
    prober = VideoProber(FakeClock(T0), CONFIG, tick=SECOND_)
    try:
        found = await one_round(prober, fleet)
    finally:
        await prober.aclose()
    by_clip = {name: found[f"SIM-S1W1C{i}"] for i, name in enumerate(streams, start=1)}
    assert {name: sorted(r.defects) for name, r in by_clip.items()} == {
        "clean": [],
        "black": [Defect.BLACK],
        "frozen": [Defect.FROZEN],
        "blur_strong": [Defect.BLUR],
        "lowres_360p": [Defect.LOW_RESOLUTION],
    }
    clean = by_clip["clean"]
    assert clean.ok
    assert clean.kind is ProbeKind.VIDEO
    assert (clean.detail["width"], clean.detail["height"]) == (1920, 1080)
    assert set(clean.detail["metrics"]) >= {"mean_luma", "sharpness", "still_share", "change", "packet_bytes"}  # type: ignore[arg-type]
    assert by_clip["lowres_360p"].detail["width"] == 640


async def test_no_picture_is_no_signal_with_the_reason_within_the_deadline(server: RtspServer) -> None:
    with silent_listener() as silent:
        streams = {
            "refused": f"rtsp://127.0.0.1:{refused_port()}/cam",
            "silent": f"rtsp://127.0.0.1:{silent}/cam",
            "short": server.url("short"),
            "missing": server.url("no-such-mount"),
        }
        fleet = cameras(streams)
        prober = VideoProber(FakeClock(T0), CONFIG, tick=SECOND_)
        started = time.monotonic()
        try:
            found = await one_round(prober, fleet)
        finally:
            await prober.aclose()
        took = time.monotonic() - started
    reasons = {name: found[f"SIM-S1W1C{i}"] for i, name in enumerate(streams, start=1)}
    for name, r in reasons.items():
        assert r.defects == {Defect.NO_SIGNAL}, name
        assert not r.ok
    assert reasons["refused"].error.startswith("cannot open the stream: ConnectionRefusedError")  # type: ignore[union-attr]
    assert reasons["silent"].error.startswith("cannot open the stream:")  # type: ignore[union-attr]
    assert reasons["short"].error.startswith("the stream stopped after 0.")  # type: ignore[union-attr]
    assert "404" in reasons["missing"].error or "Not Found" in reasons["missing"].error  # type: ignore[operator]
    assert took < 2 * 2 + 1 + 3, "every sample is bounded by its timeouts"


async def test_credentials_go_to_the_stream_and_nowhere_else(
    server: RtspServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLAMON_RTSP_USER", "viewer")
    monkeypatch.setenv("SLAMON_RTSP_PASSWORD", "s3cr3t-pw")
    with silent_listener() as silent:
        fleet = cameras({"silent": f"rtsp://127.0.0.1:{silent}/cam", "clean": server.url("clean")})
        prober = VideoProber(FakeClock(T0), CONFIG, tick=SECOND_)
        try:
            found = await one_round(prober, fleet)
        finally:
            await prober.aclose()
    text = repr(found)
    assert "s3cr3t" not in text
    assert "viewer" not in text
    assert found["SIM-S1W1C2"].ok, "a server that asks for no password takes the sample anyway"


async def test_a_group_of_cameras_has_its_own_thresholds_and_baseline(server: RtspServer) -> None:
    """A camera whose scene is dark by nature: its baseline moves too_dark's threshold, and a
    group's thresholds accept the 640x360 camera."""
    fleet = cameras({"lowres": server.url("lowres_360p"), "black": server.url("black")})
    config = replace(
        CONFIG,
        groups=(
            VideoGroup(devices=frozenset({"SIM-S1W1C1"}), thresholds={"min_width": 640, "min_height": 360}),
        ),
    )
    prober = VideoProber(FakeClock(T0), config, tick=SECOND_)
    try:
        found = await one_round(prober, fleet)
    finally:
        await prober.aclose()
    assert found["SIM-S1W1C1"].ok
    assert found["SIM-S1W1C2"].defects == {Defect.BLACK}


async def test_a_black_picture_degrades_the_camera_and_the_statement_counts_it(
    server: RtspServer, clips: dict[str, Path], tmp_path: Path, aiohttp_client: Any
) -> None:
    fleet = cameras({"cam": server.url("cam")})
    clock = FakeClock(T0)
    store = Store(f"sqlite:///{tmp_path / 'slamon.db'}")
    icmp = ScriptedProber(clock)
    video = VideoProber(clock, CONFIG, recheck=2, tick=SECOND_)
    writer = Writer(store, Journal(tmp_path / "journal"))
    intervals = {ProbeKind.ICMP: timedelta(seconds=30), ProbeKind.VIDEO: timedelta(seconds=30)}
    monitor = Monitor(
        fleet, store, clock, {ProbeKind.ICMP: icmp, ProbeKind.VIDEO: video}, intervals, writer=writer
    )
    await monitor.start()
    client = await aiohttp_client(create_app(monitor, clock, intervals))
    camera = DeviceId("SIM-S1W1C1")
    states: list[DeviceState] = []
    try:
        for i, picture in enumerate(["clean", "clean", "black", "black", "black", "clean", "clean"]):
            server.switch("cam", clips[picture])
            clock.set(T0 + i * timedelta(seconds=30))
            await monitor.run_round(ProbeKind.ICMP)
            await monitor.run_round(ProbeKind.VIDEO)
            states.append(monitor.state.get(camera).state_at(monitor.view.at))  # type: ignore[union-attr]
            if i == 3:
                body = await (await client.get("/metrics")).text()
                assert f'slamon_video_defect{{device="{camera}",defect="black"}} 1' in body
                assert f'slamon_video_mean_luma{{device="{camera}"}}' in body
                detail = await (await client.get(f"/api/v1/devices/{camera}")).json()
                assert detail["state"] == "degraded"
                assert detail["video"]["defects"] == ["black"]
                assert detail["video"]["width"] == 1920
                assert detail["video"]["metrics"]["black_share"] > 0.98
        await monitor.flush()
    finally:
        await monitor.close()
        store.close()
    # up while clean; one black sample is not enough; degraded from the first of two; up at once
    assert states == [DeviceState.UP, DeviceState.UP, DeviceState.UP, DeviceState.DEGRADED,
                      DeviceState.DEGRADED, DeviceState.UP, DeviceState.UP]  # fmt: skip

    store = Store(f"sqlite:///{tmp_path / 'slamon.db'}")
    try:
        with store.read() as tx:
            statement = compute(
                gather(tx, "C1", "2025-07", until=int((T0 + timedelta(minutes=5)).timestamp() * 1e6))
            )
    finally:
        store.close()
    figures = next(f for f in statement.devices if f.device.id == camera)
    assert figures.degraded == 90 * 1_000_000, "from the first black sample (i=2) to the clean one (i=5)"
    assert statement.rates[Kpi.INTACT_RATE] < statement.rates[Kpi.ONLINE_RATE]


def test_probe_once_samples_every_camera_with_a_stream(
    server: RtspServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`slamon probe --once` takes one video sample of each camera, whatever its phase."""
    from slamon.cli import main

    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "c1.yaml").write_text(
        "id: C1\nvendor: v\nterm: {start: 2025-01-01, months: 60}\nfees: {camera: '10'}\n", encoding="utf-8"
    )
    (tmp_path / "inventory.yaml").write_text(
        "sites:\n  - {id: S1, name: n, district: d, area: urban}\ndevices:\n"
        f"  - {{id: CAM1, kind: camera, address: 127.0.0.1, site: S1, contract: C1, stream: '{server.url('black')}'}}\n"
        f"  - {{id: CAM2, kind: camera, address: 127.0.0.2, site: S1, contract: C1, stream: '{server.url('clean')}'}}\n",
        encoding="utf-8",
    )
    (tmp_path / "slamon.yaml").write_text(
        "inventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n"
        "probes: {icmp: {timeout: 500ms}, video: {sample: 1s, timeout: 2s, frames: 4}}\n",
        encoding="utf-8",
    )
    try:
        code = main(["-c", str(tmp_path / "slamon.yaml"), "probe", "--once", "--json"])
    except SystemExit as exc:  # pragma: no cover  (no ICMP privilege here)
        pytest.skip(f"probe --once could not run: {exc}")
    printed = capsys.readouterr()
    assert code == 0, printed.err
    out = [json.loads(line) for line in printed.out.splitlines()]
    video = {r["device"]: r["defects"] for r in out if r["probe"] == "video"}
    assert video == {"CAM1": ["black"], "CAM2": []}
