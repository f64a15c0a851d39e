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

from slamon.billing.to_date import MonthToDate
from slamon.model import Micros


async def compute_in_child(database: str, now: Micros) -> MonthToDate:
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
    return MonthToDate.from_json(json.loads(out))


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
    sys.stdout.write(json.dumps(figures.to_json()))
    return 0


if __name__ == "__main__":  # pragma: no cover  (run as a child by compute_in_child)
    sys.exit(main())
