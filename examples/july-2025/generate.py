"""Write probes.csv.gz: one-minute ICMP, five-minute SNMP and fifteen-minute video evidence for the
example district from 2025-06-25 to the end of July 2025, telling the story in README.md.

Deterministic: the same file every time. Usage: python generate.py [OUT]
"""

from __future__ import annotations

import gzip
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

CST = timezone(timedelta(hours=8))
START = datetime(2025, 6, 25, tzinfo=CST)
END = datetime(2025, 8, 1, tzinfo=CST)
MINUTE = timedelta(minutes=1)

LINKS = ["YJ-LINK01", "YJ-LINK02"]
SWITCHES = [f"YJ-SW00{i}" for i in range(1, 6)]
CAMERAS = [f"YJ-C{i:04d}" for i in range(1, 21)]
STREAMS = {"YJ-C0003", "YJ-C0007", "YJ-C0011", "YJ-C0015"}
FIRST_RESULT = {"YJ-C0020": datetime(2025, 7, 14, 16, 0, tzinfo=CST)}  # tested the day before commissioning


def at(day: int, hour: int, minute: int = 0, month: int = 7) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=CST)


# Failed reachability probes: [start, end) per device.
DOWN: dict[str, list[tuple[datetime, datetime]]] = {d: [] for d in [*LINKS, *SWITCHES, *CAMERAS]}


def down(devices: list[str], start: datetime, end: datetime) -> None:
    for d in devices:
        DOWN[d].append((start, end))


# 1. A camera outage across the month boundary (5h30m, 3h30m of it in July).
down(["YJ-C0003"], at(30, 22, month=6), at(1, 3, 30))
# 2. Planned maintenance at site S003 (approved window 01:00-03:00).
down(["YJ-SW003"], at(3, 1, 10), at(3, 1, 40))
down(["YJ-C0009", "YJ-C0010", "YJ-C0011", "YJ-C0012"], at(3, 1, 10), at(3, 1, 42))
# 3. Road works cut the rural fibre (approved fiber_cut exclusion on the link): everything behind it
#    goes down; cameras come back 2 to 8 minutes after their switch.
down(["YJ-LINK02", "YJ-SW004", "YJ-SW005"], at(8, 9), at(8, 15))
down(["YJ-C0013", "YJ-C0015", "YJ-C0016"], at(8, 9), at(8, 15, 3))
down(["YJ-C0014"], at(8, 9), at(8, 15, 8))  # 3 minutes past the 5-minute grace: its own fault
down(["YJ-C0017", "YJ-C0018", "YJ-C0019"], at(8, 9), at(8, 15, 2))
# 4. A power cut at site S002; the vendor's claim is still only proposed.
down(["YJ-SW002"], at(12, 2), at(12, 5, 30))
down(["YJ-C0005", "YJ-C0006", "YJ-C0007", "YJ-C0008"], at(12, 2), at(12, 5, 32))
# 5. A long urban camera outage: 30h20m against a 4h deadline (the customer claim was rejected).
down(["YJ-C0007"], at(20, 10), at(21, 16, 20))
# 6. Rural outages: 7h (inside the 8h deadline) and 10h (typhoon; force majeure is not honoured).
down(["YJ-C0016"], at(25, 8), at(25, 15))
down(["YJ-C0017"], at(28, 6), at(28, 16))
# 7. Down at the end of the month: still open when July closes.
down(["YJ-C0018"], at(31, 20), END)

# 8. Video defects: six hours of a black, frozen picture on C0011, and one defective sample (a blip).
DEFECTS: dict[str, list[tuple[datetime, datetime, str]]] = {
    "YJ-C0011": [(at(14, 8), at(14, 14), "black;frozen"), (at(16, 10), at(16, 10, 1), "blur")],
}
# 9. The monitoring server was down for 40 minutes: no evidence at all.
GAP = (at(18, 3), at(18, 3, 40))


def flapping(device: str, t: datetime) -> bool:
    """C0010 drops two probes in a row every 37 minutes for five days: never three, so never down."""
    if device != "YJ-C0010" or not at(5, 0) <= t < at(10, 0):
        return False
    m = int((t - START) / MINUTE)
    return m % 37 in (0, 1)


def blip(index: int, t: datetime) -> bool:
    """A rare single lost probe anywhere in the fleet."""
    m = int((t - START) / MINUTE)
    return (m * 7919 + index * 104729) % 1499 == 0


def failed(device: str, index: int, t: datetime) -> bool:
    return any(a <= t < b for a, b in DOWN[device]) or flapping(device, t) or blip(index, t)


def defects(device: str, t: datetime) -> str:
    return next((d for a, b, d in DEFECTS.get(device, []) if a <= t < b), "")


def rows() -> list[str]:
    devices = [*LINKS, *SWITCHES, *CAMERAS]
    out = ["device,time,probe,ok,rtt_ms,defects"]
    t = START
    while t < END:
        if not GAP[0] <= t < GAP[1]:
            stamp = t.isoformat()
            m = int((t - START) / MINUTE)
            for i, dev in enumerate(devices):
                if t < FIRST_RESULT.get(dev, START):
                    continue
                bad = failed(dev, i, t)
                rtt = "" if bad else f"{0.3 + ((m * 13 + i * 7) % 50) / 100:.2f}"
                out.append(f"{dev},{stamp},icmp,{0 if bad else 1},{rtt},")
                if dev in SWITCHES and m % 5 == 0:
                    out.append(f"{dev},{stamp},snmp,{0 if bad else 1},{'' if bad else '2.1'},")
                if dev in STREAMS and m % 15 == 0 and not bad:
                    d = defects(dev, t)
                    out.append(f"{dev},{stamp},video,{0 if d else 1},,{d}")
        t += MINUTE
    return out


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "probes.csv.gz"
    lines = rows()
    with gzip.GzipFile(target, "wb", mtime=0) as f:
        f.write(("\n".join(lines) + "\n").encode())
    sys.stdout.write(f"wrote {target} ({len(lines) - 1:,} results)\n")


if __name__ == "__main__":
    main()
