"""Video quality sampling (issue 10): cameras sampled per 15 minutes on this machine by slamon's
VideoProber, with FFmpeg and its detection filters side by side on the same RTSP streams.

    python benchmarks/bench_video.py [--mounts 240] [--concurrency 16,24,32,48,64] [--duration 120] \
        [--warmup 20] [--frames 8] [--sample 2] [--peers full@16,640,nokey] [--peer-concurrency 16,32] \
        [--runs 1] [--profile 40]

1. The streams: every calibration clip (slamon.video.calibration.make_all: 3 s of 1080p H.264 at
   6 Mb/s, a keyframe a second) served by one gst-rtsp-server on 127.0.0.1 (tests/harness/rtsp.py,
   pre-encoded files, a pipeline per session) as --mounts mounts cam000, cam001, …: 60 % clean
   scenes (clean, static, testsrc2, bars in turn), 40 % spread evenly over the 12 defect clips
   (lowres_360p, black, no_signal, dark, bright, blur_mild, blur_strong, color_cast, snow_partial,
   snow_full, frozen, occluded). The server's own CPU (/proc/PID/stat) is recorded over every
   measuring window and reported apart: it is not slamon's, though it runs on the same 2 cores.
2. slamon, per --concurrency C: a child process of this script (the "service") runs
   `VideoProber(SystemClock(), VideoProbeConfig(sample=--sample s, frames=--frames, concurrency=C),
   every_camera=True)` over enough cameras (camNNNNN, their streams cycling over the mounts in a
   seeded order) to stay busy for --warmup + --duration s, and stops at the end of the window.
   The prober runs as in `slamon run`: its worker processes (slamon/video/worker.py, one per core,
   C ÷ cores threads each) do the samples. Over the window (after --warmup) it counts the samples
   completed, and reads from /proc the CPU (utime + stime) of the service process and of each
   worker, the RTSP server's, and the whole machine's (/proc/stat, so other work running at the same
   time shows). Peak RSS is VmHWM of the service process plus each worker's, read before they stop.
   Every verdict is checked against its clip's expected defects (calibration.CLIPS), warm-up and
   window alike; a wrong one is listed with its reason.
3. The peer, per variant and --peer-concurrency C (or the variant's own, `full@16`; interleaved
   with slamon's runs at the same C): C threads each
   running one FFmpeg process per sample, back to back, on the same mounts in the same order:
   `ffmpeg -nostdin -hide_banner -nostats [-skip_frame nokey] -rtsp_transport tcp -timeout 5000000
   -i URL -t 2 -vf VF -f null -` where VF is
   `blackdetect=d=0.5:pix_th=0.1,freezedetect=n=-50dB:d=0.5,blurdetect,signalstats` on the full
   1080p picture (`full`, the issue's command), blurdetect and signalstats after `scale=640:-2`
   (`640`: slamon analyses at 640 pixels wide; black and freeze stay on the full picture, where the
   sensor's noise tells a still scene from a frozen one), or the 640 chain on keyframes only
   (`nokey`, `-skip_frame nokey`: cheaper, and blind to a frozen picture). CPU per sample is each process's own rusage (os.wait4: user + sys, whole
   process, start-up included), peak RSS its ru_maxrss; samples per second are the processes that
   finished inside the window. FFmpeg's black and freeze findings are checked against the clips.
4. --profile N: N samples one after the other in this process under cProfile (thread CPU time),
   the clips in turn: where a sample's CPU goes (open, demux, decode, scale, the metrics).

Figures: samples per second × 900 = cameras per 15 minutes; CPU-s per sample (the window's CPU ÷
its samples) and per decoded frame (÷ --frames); the CPU ceiling, cameras per 15 minutes if both
cores did nothing else: cores × 900 s ÷ CPU per sample; slamon ÷ FFmpeg ratios. Goal (issue 10):
≥ 10,000 cameras per 15-minute cycle with every defect kind detected, frozen included.

Results: OUT/bench_video.json and OUT/bench_video.md; OUT defaults to benchmarks/out/video-<date>/
(git-ignored). Loopback only; every process started is stopped by its PID; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import itertools
import json
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CYCLE_S = 900.0  # 15 minutes
GOAL = 10_000  # cameras per 15-minute cycle, every defect kind detected (issue 10)
CLEAN = ("clean", "static", "testsrc2", "bars")
DEFECTS = (
    "lowres_360p", "black", "no_signal", "dark", "bright", "blur_mild", "blur_strong", "color_cast",
    "snow_partial", "snow_full", "frozen", "occluded",
)  # fmt: skip
DETECT = "blackdetect=d=0.5:pix_th=0.1,freezedetect=n=-50dB:d=0.5"
FILTERS = f"{DETECT},blurdetect,signalstats"
AT_640 = f"{DETECT},scale=640:-2,blurdetect,signalstats"  # black and freeze on the full picture
PEERS: dict[str, tuple[tuple[str, ...], str]] = {  # variant: (input options, filter chain)
    "full": ((), FILTERS),
    "640": ((), AT_640),
    "nokey": (("-skip_frame", "nokey"), AT_640),
}
TICK = os.sysconf("SC_CLK_TCK")


def log(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", file=sys.stderr, flush=True)


# --- /proc --------------------------------------------------------------------------------------


def proc_cpu(pid: int | str, children: bool = True) -> float:
    """CPU seconds of a process (utime + stime, and its reaped children's), 0 if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    rest = text[text.rfind(")") + 2 :].split()
    return sum(int(v) for v in rest[11 : 15 if children else 13]) / TICK


def proc_status(pid: int | str, key: str) -> int:
    """A kB figure of /proc/PID/status (VmHWM, VmRSS), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat's first line)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # guest time is already inside user
    return (total - idle) / TICK, total / TICK


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- the streams --------------------------------------------------------------------------------


def mount_plan(count: int) -> dict[str, str]:
    """camNNN → clip name: 60 % clean scenes, 40 % the defect clips, each evenly."""
    clean = round(count * 0.6)
    names = [CLEAN[i % len(CLEAN)] for i in range(clean)]
    names += [DEFECTS[i % len(DEFECTS)] for i in range(count - clean)]
    return {f"cam{i:03d}": name for i, name in enumerate(names)}


def order(plan: dict[str, str], seed: int = 10) -> list[str]:
    """The mounts in the seeded order every tool walks them."""
    mounts = sorted(plan)
    random.Random(seed).shuffle(mounts)
    return mounts


# --- slamon: the child process ------------------------------------------------------------------


def child_slamon(spec: dict[str, Any]) -> dict[str, Any]:
    """One measuring run of VideoProber in this (child) process; its figures as a dict."""
    from slamon.clock import SystemClock
    from slamon.loaders.video_config import VideoProbeConfig
    from slamon.model import ContractId, Device, DeviceId, DeviceKind, SiteId
    from slamon.probers.video import VideoProber
    from slamon.video.calibration import CLIPS

    streams: list[tuple[str, str]] = spec["streams"]  # (clip, url) in walking order
    concurrency, warmup, duration = spec["concurrency"], spec["warmup"], spec["duration"]
    # enough cameras to stay busy: at most one sample per camera, about 2.1 s each
    n = int(concurrency / max(0.5, spec["sample"]) * (warmup + duration + 30) * 1.5) + concurrency
    devices, clip_of = [], {}
    for i in range(n):
        clip, url = streams[i % len(streams)]
        did = DeviceId(f"cam{i:05d}")
        clip_of[did] = clip
        devices.append(
            Device(
                did, DeviceKind.CAMERA, f"127.0.0.{i % 250 + 1}", SiteId("S1"), ContractId("C1"), stream=url
            )
        )
    config = VideoProbeConfig(
        sample=timedelta(seconds=spec["sample"]), frames=spec["frames"], concurrency=concurrency
    )
    prober = VideoProber(SystemClock(), config, every_camera=True)
    server = spec["server_pid"]
    done: list[tuple[float, str, list[str], str | None]] = []  # (at, device, defects, reason)
    marks: dict[str, dict[str, Any]] = {}

    def snapshot() -> dict[str, Any]:
        workers = [p.pid for p in prober.workers._procs if p is not None and p.returncode is None]
        busy, total = machine_cpu()
        return {
            "t": time.monotonic(),
            "service_cpu": proc_cpu("self", children=False),
            "workers_cpu": {str(w): proc_cpu(w) for w in workers},
            "server_cpu": proc_cpu(server),
            "machine_busy": busy,
            "machine_total": total,
            "done": len(done),
            "loadavg": loadavg(),
        }

    async def consume() -> None:
        async with contextlib.aclosing(prober.round(devices)) as rounds:
            async for batch in rounds:
                now = time.monotonic()
                for r in batch:
                    done.append((now, r.device, sorted(d.value for d in r.defects), r.error))

    async def main() -> None:
        began = time.monotonic()
        task = asyncio.ensure_future(consume())
        try:
            await asyncio.sleep(warmup)
            marks["start"] = snapshot()
            await asyncio.sleep(max(0.0, began + warmup + duration - time.monotonic()))
            marks["end"] = snapshot()
            workers = [p.pid for p in prober.workers._procs if p is not None]
            marks["rss_kb"] = {
                "service": proc_status("self", "VmHWM"),
                "workers": [proc_status(w, "VmHWM") for w in workers],
                "service_now": proc_status("self", "VmRSS"),
                "workers_now": [proc_status(w, "VmRSS") for w in workers],
            }
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await prober.aclose()

    asyncio.run(main())
    start, end = marks["start"], marks["end"]
    window = end["t"] - start["t"]
    samples = sum(1 for at, *_ in done if start["t"] <= at < end["t"])
    service = end["service_cpu"] - start["service_cpu"]
    workers = sum(v - start["workers_cpu"].get(k, 0.0) for k, v in end["workers_cpu"].items())
    wrong: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    by_clip: Counter[str] = Counter()
    for _, device, defects, reason in done:
        clip = clip_of[device]
        by_clip[clip] += 1
        expected = sorted(d.value for d in CLIPS[clip].expected)
        if defects != expected:
            wrong[clip] += 1
            if len(examples) < 20:
                examples.append({"clip": clip, "defects": defects, "expected": expected, "reason": reason})
    rss = marks["rss_kb"]
    return {
        "concurrency": concurrency,
        "processes": prober.workers.processes,
        "threads": prober.workers.threads,
        "window_s": window,
        "samples": samples,
        "samples_per_s": samples / window,
        "cameras_per_15min": samples / window * CYCLE_S,
        "service_cpu_s": service,
        "workers_cpu_s": workers,
        "cpu_per_sample_s": (service + workers) / samples if samples else None,
        "server_cpu_s": end["server_cpu"] - start["server_cpu"],
        "machine_busy_s": end["machine_busy"] - start["machine_busy"],
        "machine_cores_busy": (end["machine_busy"] - start["machine_busy"]) / window,
        "other_cores_busy": (
            end["machine_busy"]
            - start["machine_busy"]
            - service
            - workers
            - (end["server_cpu"] - start["server_cpu"])
        )
        / window,
        "loadavg": [start["loadavg"], end["loadavg"]],
        "rss_peak_mb": (rss["service"] + sum(rss["workers"])) / 1024,
        "rss_kb": rss,
        "verdicts": len(done),
        "verdicts_by_clip": dict(by_clip),
        "wrong": dict(wrong),
        "wrong_examples": examples,
    }


def run_slamon(
    args: argparse.Namespace, streams: list[tuple[str, str]], server_pid: int, c: int
) -> dict[str, Any]:
    spec = {
        "streams": streams,
        "concurrency": c,
        "warmup": args.warmup,
        "duration": args.duration,
        "sample": args.sample,
        "frames": args.frames,
        "server_pid": server_pid,
    }
    log(f"slamon, concurrency {c}: {args.warmup:g} s warm-up, {args.duration:g} s measured")
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child-slamon", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=args.warmup + args.duration + 120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the slamon child exited {done.returncode}:\n{done.stderr[-3000:]}")
    res = json.loads(done.stdout.strip().splitlines()[-1])
    res["frames"] = args.frames
    if res["cpu_per_sample_s"]:
        res["cpu_per_frame_ms"] = res["cpu_per_sample_s"] / args.frames * 1000
        res["ceiling_per_15min"] = (os.cpu_count() or 1) * CYCLE_S / res["cpu_per_sample_s"]
    log(
        f"  {res['samples']} samples in {res['window_s']:.0f} s: {res['cameras_per_15min']:,.0f} per 15 min, "
        f"{res['cpu_per_sample_s'] or 0:.3f} CPU-s a sample, server {res['server_cpu_s']:.1f} CPU-s, "
        f"others {res['other_cores_busy']:.2f} cores, {res['rss_peak_mb']:.0f} MB, "
        f"wrong {sum(res['wrong'].values())} of {res['verdicts']}"
    )
    return res


# --- the peer: FFmpeg, a process per sample -----------------------------------------------------

FRAME = re.compile(r"frame=\s*(\d+)")
BLUR = re.compile(r"blur mean: ([0-9.]+)")


def ffmpeg_cmd(variant: str, url: str, seconds: float) -> list[str]:
    before, vf = PEERS[variant]
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-nostats", *before, "-rtsp_transport", "tcp",
        "-timeout", "5000000", "-i", url, "-t", f"{seconds:g}", "-vf", vf, "-f", "null", "-",
    ]  # fmt: skip


def run_peer(
    args: argparse.Namespace, streams: list[tuple[str, str]], server_pid: int, variant: str, c: int
) -> dict[str, Any]:
    log(f"ffmpeg {variant}, concurrency {c}: {args.warmup:g} s warm-up, {args.peer_duration:g} s measured")
    stop = threading.Event()
    lock = threading.Lock()
    walk = itertools.cycle(streams)
    live: dict[int, subprocess.Popen[bytes]] = {}
    results: list[dict[str, Any]] = []

    def one_thread() -> None:
        while not stop.is_set():
            with lock:
                clip, url = next(walk)
            t0 = time.monotonic()
            proc = subprocess.Popen(
                ffmpeg_cmd(variant, url, args.sample),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            with lock:
                live[proc.pid] = proc
            assert proc.stderr is not None
            err = proc.stderr.read().decode("utf-8", "replace")
            proc.stderr.close()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            with lock:
                live.pop(proc.pid, None)
            frames = FRAME.findall(err)
            blur = BLUR.findall(err)
            results.append(
                {
                    "clip": clip,
                    "t0": t0,
                    "t1": time.monotonic(),
                    "cpu_s": usage.ru_utime + usage.ru_stime,
                    "rss_kb": usage.ru_maxrss,
                    "rc": proc.returncode,
                    "frames": int(frames[-1]) if frames else 0,
                    "black": "black_start" in err,
                    "freeze": "freeze_start" in err,
                    "blur": float(blur[-1]) if blur else None,
                    "error": err.strip().splitlines()[-1][-300:] if proc.returncode and err.strip() else None,
                }
            )

    threads = [threading.Thread(target=one_thread, daemon=True) for _ in range(c)]
    began = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.warmup)
    s_server, s_machine, s_load, t_start = proc_cpu(server_pid), machine_cpu()[0], loadavg(), time.monotonic()
    time.sleep(max(0.0, began + args.warmup + args.peer_duration - time.monotonic()))
    e_server, e_machine, e_load, t_end = proc_cpu(server_pid), machine_cpu()[0], loadavg(), time.monotonic()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    with lock:
        stragglers = list(live.values())
    for proc in stragglers:  # still running 30 s after the window: stopped by PID
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, 9)
    for t in threads:
        t.join(timeout=10)
    window = t_end - t_start
    inside = [r for r in results if t_start <= r["t1"] < t_end]
    cpu = sorted(r["cpu_s"] for r in inside if r["rc"] == 0)
    walls = sorted(r["t1"] - r["t0"] for r in inside if r["rc"] == 0)
    frames = sorted(r["frames"] for r in inside if r["rc"] == 0)

    def med(xs: Sequence[float]) -> float | None:
        return xs[len(xs) // 2] if xs else None

    findings: dict[str, dict[str, int]] = {}
    for r in results:
        f = findings.setdefault(r["clip"], {"samples": 0, "black": 0, "freeze": 0, "failed": 0})
        f["samples"] += 1
        f["black"] += r["black"]
        f["freeze"] += r["freeze"]
        f["failed"] += r["rc"] != 0
    res = {
        "variant": variant,
        "concurrency": c,
        "command": " ".join(ffmpeg_cmd(variant, "URL", args.sample)),
        "window_s": window,
        "samples": len(inside),
        "failed": sum(1 for r in inside if r["rc"] != 0),
        "samples_per_s": len(inside) / window,
        "cameras_per_15min": len(inside) / window * CYCLE_S,
        "cpu_per_sample_s": med(cpu),
        "cpu_per_sample_range": [cpu[0], cpu[-1]] if cpu else None,
        "cpu_in_window_s": sum(cpu),
        "wall_per_sample_s": med(walls),
        "frames_per_sample": med(frames),
        "rss_mb": max((r["rss_kb"] for r in inside), default=0) / 1024,
        "server_cpu_s": e_server - s_server,
        "machine_cores_busy": (e_machine - s_machine) / window,
        "loadavg": [s_load, e_load],
        "findings": findings,
        "stopped": len(stragglers),
        "errors": [r["error"] for r in results if r["error"]][:5],
    }
    if res["cpu_per_sample_s"]:
        res["ceiling_per_15min"] = (os.cpu_count() or 1) * CYCLE_S / res["cpu_per_sample_s"]
        if res["frames_per_sample"]:
            res["cpu_per_frame_ms"] = res["cpu_per_sample_s"] / res["frames_per_sample"] * 1000
    log(
        f"  {res['samples']} samples in {window:.0f} s: {res['cameras_per_15min']:,.0f} per 15 min, "
        f"{res['cpu_per_sample_s'] or 0:.3f} CPU-s a sample, {res['frames_per_sample']} frames, "
        f"{res['rss_mb']:.0f} MB a process, machine {res['machine_cores_busy']:.2f} cores busy"
    )
    return res


# --- where a sample's CPU goes ------------------------------------------------------------------


def profile(streams: list[tuple[str, str]], count: int, frames: int, seconds: float) -> dict[str, Any]:
    """`count` samples one after the other under cProfile, counting this thread's CPU time."""
    from slamon.video.sampling import Request, sample

    log(f"profile: {count} samples one at a time")
    prof = cProfile.Profile(time.thread_time)
    c0, w0 = time.process_time(), time.perf_counter()
    t0 = time.thread_time()
    for _clip, url in itertools.islice(itertools.cycle(streams), count):
        prof.enable()
        sample(Request(url, seconds=seconds, frames=frames))
        prof.disable()
    thread = time.thread_time() - t0
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    return {
        "samples": count,
        "thread_cpu_per_sample_s": thread / count,
        "process_cpu_per_sample_s": (time.process_time() - c0) / count,
        "wall_per_sample_s": (time.perf_counter() - w0) / count,
        "text": out.getvalue(),
    }


# --- the report ---------------------------------------------------------------------------------


def median_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = sorted(r[key] for r in rows if r.get(key) is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def report(res: dict[str, Any]) -> str:
    sys.path.insert(0, str(HERE))
    from common import describe

    lines = [f"# Video quality sampling ({res['args']['mounts']} mounts, {res['args']['runs']} run(s))", ""]
    lines.append(describe(res["machine"]))
    lines += ["", f"Command: `{res['command']}`", ""]
    lines.append(
        "| tool | concurrency | cameras per 15 min | CPU-s per sample | CPU-ms per decoded frame | "
        "CPU ceiling per 15 min | peak RSS MB | RTSP server CPU-s per sample | other work, cores | "
        "wrong verdicts |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in res["slamon"]:
        groups.setdefault(("slamon", r["concurrency"]), []).append(r)
    for r in res["peers"]:
        groups.setdefault((f"ffmpeg {r['variant']}", r["concurrency"]), []).append(r)
    for (tool, c), rows in groups.items():
        per_15 = [r["cameras_per_15min"] for r in rows]
        cps = median_of(rows, "cpu_per_sample_s")
        frame = median_of(rows, "cpu_per_frame_ms")
        ceiling = median_of(rows, "ceiling_per_15min")
        rss = median_of(rows, "rss_peak_mb") if tool == "slamon" else median_of(rows, "rss_mb")
        server = [r["server_cpu_s"] / r["samples"] for r in rows if r["samples"]]
        # slamon's only: a process per sample counts its CPU when it ends, not inside the window
        busy = median_of(rows, "other_cores_busy") if tool == "slamon" else None
        if tool == "slamon":
            wrong = f"{sum(sum(r['wrong'].values()) for r in rows)} of {sum(r['verdicts'] for r in rows)}"
            rss_text = f"{rss:.0f} (all processes)" if rss else "–"
        else:
            wrong = f"{sum(r['failed'] for r in rows)} failed"
            rss_text = f"{rss:.0f} (each; × {c} at once)" if rss else "–"
        lines.append(
            f"| {tool} | {c} | {_spread(per_15, '{:,.0f}')} | {_f(cps, '{:.3f}')} | {_f(frame, '{:.1f}')} | "
            f"{_f(ceiling, '{:,.0f}')} | {rss_text} | {_f(median_of([{'x': s} for s in server], 'x'), '{:.3f}')} | "
            f"{_f(busy, '{:.2f}')} | {wrong} |"
        )
    best = max(res["slamon"], key=lambda r: r["cameras_per_15min"], default=None)
    if best:
        lines += [
            "",
            (
                f"Best slamon setting: concurrency {best['concurrency']}, "
                f"{best['cameras_per_15min']:,.0f} cameras per 15 min measured (goal {GOAL:,}: "
                f"{'met' if best['cameras_per_15min'] >= GOAL else 'not met'}); CPU ceiling "
                f"{best.get('ceiling_per_15min', 0):,.0f}."
            ),
        ]
    wrong_rows = [(r["concurrency"], e) for r in res["slamon"] for e in r["wrong_examples"]]
    if wrong_rows:
        lines += ["", "Wrong slamon verdicts (first ones):", ""]
        lines += [
            f"- concurrency {c}: {e['clip']}: {e['defects']} (expected {e['expected']}), {e['reason']}"
            for c, e in wrong_rows[:20]
        ]
    for r in res["peers"]:
        f = r["findings"]
        lines.append(
            f"- ffmpeg {r['variant']} at {r['concurrency']}: black found on "
            f"{f.get('black', {}).get('black', 0)}/{f.get('black', {}).get('samples', 0)} black samples, "
            f"freeze on {f.get('frozen', {}).get('freeze', 0)}/{f.get('frozen', {}).get('samples', 0)} frozen ones; "
            f"freeze on clean scenes {sum(f.get(k, {}).get('freeze', 0) for k in CLEAN)}/"
            f"{sum(f.get(k, {}).get('samples', 0) for k in CLEAN)}, on other clips "
            f"{sum(v['freeze'] for k, v in f.items() if k not in (*CLEAN, 'frozen', 'no_signal', 'black'))}/"
            f"{sum(v['samples'] for k, v in f.items() if k not in (*CLEAN, 'frozen', 'no_signal', 'black'))}; "
            f"{r['frames_per_sample']} frames a sample, {_f(r['wall_per_sample_s'], '{:.1f}')} s wall a sample"
        )
    ratios = []
    for (tool, c), rows in groups.items():
        mine = groups.get(("slamon", c))
        if tool == "slamon" or not mine:
            continue
        cps, per_15 = median_of(rows, "cpu_per_sample_s"), median_of(rows, "cameras_per_15min")
        if cps and per_15:
            ratios.append(
                f"- at {c}: slamon ÷ {tool}: CPU per sample "
                f"{median_of(mine, 'cpu_per_sample_s') / cps:.2f}×, cameras per 15 min "
                f"{median_of(mine, 'cameras_per_15min') / per_15:.2f}×"
            )
    if ratios:
        lines += ["", "Ratios (same run, same streams):", "", *ratios]
    if res.get("profile"):
        p = res["profile"]
        lines += [
            "",
            (
                f"Profile: {p['samples']} samples one at a time, {p['thread_cpu_per_sample_s']:.3f} CPU-s "
                f"of the sampling thread each ({p['process_cpu_per_sample_s']:.3f} of the process, decoder "
                f"threads included), {p['wall_per_sample_s']:.2f} s wall; the profile is in "
                "bench_video-profile.txt."
            ),
        ]
    return "\n".join(lines)


def _f(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def _spread(values: list[float], fmt: str) -> str:
    values = sorted(values)
    mid = median_of([{"x": v} for v in values], "x")
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(mid)} ({fmt.format(values[0])}–{fmt.format(values[-1])})"


# --- main ---------------------------------------------------------------------------------------


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mounts", type=int, default=240, help="RTSP mounts (cameras' streams)")
    p.add_argument("--concurrency", type=ints, default=[16, 24, 32, 48, 64], help="slamon: samples at once")
    p.add_argument("--duration", type=float, default=120.0, help="seconds measured per slamon setting")
    p.add_argument("--warmup", type=float, default=20.0, help="seconds before each window")
    p.add_argument("--frames", type=int, default=8, help="probes.video.frames")
    p.add_argument("--sample", type=float, default=2.0, help="probes.video.sample, seconds")
    p.add_argument(
        "--peers",
        default="full@16,640,nokey",
        help=f"FFmpeg variants ({', '.join(PEERS)}), each at --peer-concurrency or at its own "
        "(VARIANT@C1/C2); none for no peer",
    )
    p.add_argument("--peer-concurrency", type=ints, default=[16, 32], help="FFmpeg processes at once")
    p.add_argument("--peer-duration", type=float, default=90.0, help="seconds measured per FFmpeg setting")
    p.add_argument("--runs", type=int, default=1, help="times the whole sequence is run")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="N samples under cProfile")
    p.add_argument("--out", type=Path, help="default benchmarks/out/video-<date>")
    p.add_argument("--json", type=Path, help="default OUT/bench_video.json")
    p.add_argument("--report", type=Path, help="print the report of figures saved with --json; run nothing")
    p.add_argument("--child-slamon", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.child_slamon:
        print(json.dumps(child_slamon(json.loads(args.child_slamon))), flush=True)
        return 0
    if args.report is not None:
        print(report(json.loads(args.report.read_text(encoding="utf-8"))))
        return 0
    peers: dict[str, list[int]] = {}  # variant: the concurrencies it runs at
    for spec in args.peers.split(","):
        variant, _, at = spec.partition("@")
        if variant and variant != "none":
            peers[variant] = ints(at.replace("/", ",")) if at else args.peer_concurrency
    if unknown := set(peers) - set(PEERS):
        p.error(f"unknown --peers {sorted(unknown)}")
    if shutil.which("ffmpeg") is None:
        p.error("ffmpeg missing: apt-get install -y --no-install-recommends ffmpeg")
    filters = subprocess.run(
        ["ffmpeg", "-hide_banner", "-filters"], capture_output=True, text=True, check=True
    )
    for name in ("blackdetect", "freezedetect", "blurdetect", "signalstats"):
        if f" {name} " not in filters.stdout:
            p.error(f"this ffmpeg has no {name} filter")
    from tests.harness.rtsp import RtspServer, unavailable

    if reason := unavailable():
        p.error(reason)
    sys.path.insert(0, str(HERE))
    from common import finish, machine, save

    from slamon.video.calibration import make_all

    out = args.out or HERE / "out" / f"video-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=False)
    info["ffmpeg"] = version.stdout.split("\n")[0]
    import av

    info["pyav"] = av.__version__
    log(f"clips: {len(make_all())} made or found")
    clips = make_all()
    plan = mount_plan(args.mounts)
    res: dict[str, Any] = {
        "machine": info,
        "args": {k: v for k, v in vars(args).items() if k != "child_slamon"},
        "command": " ".join(["benchmarks/bench_video.py", *(sys.argv[1:] if argv is None else argv)]),
        "mounts": Counter(plan.values()),
        "slamon": [],
        "peers": [],
    }
    with RtspServer({m: clips[c] for m, c in plan.items()}) as server:
        server_pid = server.proc.pid
        streams = [(plan[m], server.url(m)) for m in order(plan)]
        log(f"RTSP server pid {server_pid} on port {server.port}, {len(plan)} mounts")
        for run in range(args.runs):
            for c in args.concurrency:
                res["slamon"].append({**run_slamon(args, streams, server_pid, c), "run": run})
                for variant, at in peers.items():
                    if c in at:
                        res["peers"].append({**run_peer(args, streams, server_pid, variant, c), "run": run})
            for variant, at in peers.items():  # peers at settings slamon was not run at
                for c in at:
                    if c not in args.concurrency:
                        res["peers"].append({**run_peer(args, streams, server_pid, variant, c), "run": run})
            save(out / "bench_video.json", res)
        if args.profile:
            res["profile"] = profile(streams, args.profile, args.frames, args.sample)
            (out / "bench_video-profile.txt").write_text(res["profile"]["text"], encoding="utf-8")
        res["server_rss_mb"] = proc_status(server_pid, "VmHWM") / 1024
    finish(info)
    text = report(res)
    print(text)
    path = args.json or out / "bench_video.json"
    save(path, res)
    path.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    log(f"written {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
