"""Drive a Prometheus blackbox_exporter through a file of ICMP targets, as Prometheus would.

    python benchmarks/blackbox_client.py --targets targets.txt --url http://127.0.0.1:19115 \
        [--module icmp] [--concurrency 50]

One GET /probe?module=icmp&target=ADDRESS per line of --targets, at most --concurrency at a time
(aiohttp, one keep-alive connection per worker), each read to the end and its `probe_success`
taken. Prints one JSON line: requests, successes, HTTP errors and the in-process wall and CPU
seconds. bench_icmp.py runs it under /usr/bin/time -v for the client's share of the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

REQUEST_TIMEOUT = 30.0  # seconds for one /probe (the module's own timeout is shorter)


async def drive(url: str, module: str, targets: list[str], concurrency: int) -> dict[str, int]:
    counts = {"requests": 0, "success": 0, "failed": 0, "http_errors": 0}
    queue = iter(targets)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for target in queue:  # a shared iterator: each target once, no lock needed on one loop
                counts["requests"] += 1
                try:
                    async with session.get(
                        f"{url}/probe", params={"module": module, "target": target}
                    ) as resp:
                        body = await resp.text()
                except (aiohttp.ClientError, TimeoutError):
                    counts["http_errors"] += 1
                    continue
                if resp.status != 200:
                    counts["http_errors"] += 1
                elif "\nprobe_success 1" in body:
                    counts["success"] += 1
                else:
                    counts["failed"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", type=Path, required=True)
    p.add_argument("--url", default="http://127.0.0.1:19115")
    p.add_argument("--module", default="icmp")
    p.add_argument("--concurrency", type=int, default=50)
    args = p.parse_args(argv)
    targets = [t.strip() for t in args.targets.read_text(encoding="ascii").splitlines() if t.strip()]
    w0, c0 = time.perf_counter(), time.process_time()
    counts = asyncio.run(drive(args.url.rstrip("/"), args.module, targets, args.concurrency))
    counts_out: dict[str, float] = dict(counts)
    counts_out["wall_s"] = round(time.perf_counter() - w0, 3)
    counts_out["cpu_s"] = round(time.process_time() - c0, 3)
    print(json.dumps(counts_out))
    return 0 if counts["requests"] == len(targets) and not counts["http_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
