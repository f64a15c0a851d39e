"""Month-to-date figures in a process of their own: `python -m slamon.service.mtd` reads
{"database": URL, "now": MICROS} on stdin and writes the figures as JSON on stdout.

A month-to-date statement of a city-sized contract is seconds of CPU and hundreds of megabytes:
in the service's own process it would hold the interpreter's lock against the event loop, the
writer and the API for as long, and leave its memory behind. A child process computes it from
the store's read-only side and exits; a stop simply kills it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from slamon.model import Kpi, Micros

# the rates by KPI per contract, and per (contract, district)
Rates = tuple[dict[str, dict[Kpi, float]], dict[tuple[str, str], dict[Kpi, float]]]


async def compute_in_child(database: str, now: Micros) -> Rates:
    """Run the child; its figures, or StoreError/RuntimeError with what it said when it failed.
    Cancelling this kills the child."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "slamon.service.mtd",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate(json.dumps({"database": database, "now": now}).encode())
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        from slamon.errors import StoreError

        raise StoreError(f"month-to-date figures: {err.decode(errors='replace').strip() or proc.returncode}")
    return _decode(json.loads(out))


def _encode(figures: Rates) -> dict[str, Any]:
    per_contract, per_district = figures
    return {
        "contract": {cid: {k.value: v for k, v in rates.items()} for cid, rates in per_contract.items()},
        "district": [
            [cid, district, {k.value: v for k, v in rates.items()}]
            for (cid, district), rates in per_district.items()
        ],
    }


def _decode(doc: dict[str, Any]) -> Rates:
    per_contract = {
        cid: {Kpi(k): float(v) for k, v in rates.items()} for cid, rates in doc["contract"].items()
    }
    per_district = {
        (cid, district): {Kpi(k): float(v) for k, v in rates.items()}
        for cid, district, rates in doc["district"]
    }
    return per_contract, per_district


def main() -> int:
    from slamon.errors import SlamonError
    from slamon.issuing import month_to_date
    from slamon.store import Store

    request = json.loads(sys.stdin.read())
    try:
        store = Store(request["database"], upgrade=False)
        try:
            with store.read() as tx:
                figures = month_to_date(tx, int(request["now"]))
        finally:
            store.close()
    except SlamonError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(json.dumps(_encode(figures)))
    return 0


if __name__ == "__main__":  # pragma: no cover  (run as a child by compute_in_child)
    sys.exit(main())
