"""One ICMP round of slamon's IcmpProber over a file of addresses: the unit bench_icmp.py times.

    python benchmarks/icmp_round.py --targets targets.txt [--rate 200000] [--timeout 1.0] \
        [--count 1] [--mode auto|raw|dgram] [--rounds 1]

Builds one Device per line of --targets (cameras with made-up ids, as the inventory loader would
give them), opens the prober (raw socket as root, else ICMP datagram sockets) and runs one
`prober.round(devices)` to the end, as `slamon run` does every interval. With --rounds N it runs N
rounds back to back on the same prober: from the second on, the prober's address cache is warm,
as in a running service. Prints one JSON line: results, how many answered, the drops counted on
the namespace's raw sockets, and the in-process figures (import, set-up, first round, later
rounds: wall and CPU seconds of this process), so the whole-process figures of /usr/bin/time can
be split into start-up and the rounds.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()
_C0 = time.process_time()

import argparse
import asyncio
import json
import resource
import sys
from datetime import timedelta
from pathlib import Path

from slamon.clock import SystemClock
from slamon.model import ContractId, Device, DeviceId, DeviceKind, SiteId
from slamon.probers.icmp import IcmpProber


def devices_from(path: Path) -> list[Device]:
    addresses = [line.strip() for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
    return [
        Device(DeviceId(f"D{i:06d}"), DeviceKind.CAMERA, a, SiteId("S1"), ContractId("C1"))
        for i, a in enumerate(addresses)
    ]


async def one_round(prober: IcmpProber, devices: list[Device]) -> tuple[int, int, float]:
    """(results, answered, max RTT ms) of one round."""
    results = answered = 0
    worst = 0.0
    async for batch in prober.round(devices):
        results += len(batch)
        for r in batch:
            if r.ok:
                answered += 1
                worst = max(worst, r.rtt_ms or 0.0)
    return results, answered, worst


def raw_socket_drops() -> int:
    """Packets the kernel dropped on this network namespace's ICMP sockets (full receive buffer):
    the last column of /proc/net/raw, raw6 (raw sockets), icmp and icmp6 (datagram sockets). In
    bench_icmp's namespace only this process has one."""
    total = 0
    for name in ("/proc/net/raw", "/proc/net/raw6", "/proc/net/icmp", "/proc/net/icmp6"):
        try:
            rows = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        total += sum(int(row.split()[-1]) for row in rows if row.split())
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", type=Path, required=True, help="one IPv4/IPv6 address per line")
    p.add_argument("--rate", type=int, default=200_000, help="echo requests per second at most")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for a reply")
    p.add_argument("--count", type=int, default=1, help="echo requests per target")
    p.add_argument("--mode", choices=("auto", "raw", "dgram"), default="auto")
    p.add_argument("--rounds", type=int, default=1, help="rounds back to back (the later ones are steady)")
    p.add_argument("--profile", type=Path, help="run the round(s) under cProfile, stats to this file")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")

    imported_wall, imported_cpu = time.perf_counter() - _T0, time.process_time() - _C0
    devices = devices_from(args.targets)
    prober = IcmpProber(
        SystemClock(),
        timeout=timedelta(seconds=args.timeout),
        count=args.count,
        rate=args.rate,
        mode=args.mode,
    )
    socket_kind = prober.check()
    setup_wall, setup_cpu = time.perf_counter() - _T0, time.process_time() - _C0

    drops: list[int] = []
    rounds: list[dict[str, float]] = []  # every round after the first: wall, CPU, answered

    async def run() -> tuple[int, int, float]:
        try:
            first = await one_round(prober, devices)
            for _ in range(args.rounds - 1):  # steady rounds: the prober's address cache is warm
                w, c = time.perf_counter(), time.process_time()
                _, got, _ = await one_round(prober, devices)
                rounds.append(
                    {
                        "wall_s": round(time.perf_counter() - w, 4),
                        "cpu_s": round(time.process_time() - c, 4),
                        "answered": got,
                    }
                )
            return first
        finally:
            drops.append(raw_socket_drops())  # before the socket closes
            await prober.aclose()

    w0, c0 = time.perf_counter(), time.process_time()
    if args.profile is not None:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        results, answered, worst = prof.runcall(asyncio.run, run())
        with args.profile.open("w", encoding="utf-8") as f:
            pstats.Stats(prof, stream=f).sort_stats("cumulative").print_stats(40)
            pstats.Stats(prof, stream=f).sort_stats("tottime").print_stats(30)
    else:
        results, answered, worst = asyncio.run(run())
    round_wall = time.perf_counter() - w0 - sum(r["wall_s"] for r in rounds)
    round_cpu = time.process_time() - c0 - sum(r["cpu_s"] for r in rounds)
    print(
        json.dumps(
            {
                "targets": len(devices),
                "results": results,
                "answered": answered,
                "socket": socket_kind,
                "max_rtt_ms": round(worst, 3),
                "raw_socket_drops": drops[0] if drops else None,
                "import_wall_s": round(imported_wall, 4),
                "import_cpu_s": round(imported_cpu, 4),
                "setup_wall_s": round(setup_wall - imported_wall, 4),
                "setup_cpu_s": round(setup_cpu - imported_cpu, 4),
                "round_wall_s": round(round_wall, 4),
                "round_cpu_s": round(round_cpu, 4),
                "later_rounds": rounds,
                "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )
    return 0 if results == len(devices) else 1


if __name__ == "__main__":
    sys.exit(main())
