"""Probe-history import and export against a real store: idempotent, order-free, all or nothing."""

from __future__ import annotations

import gzip
import io
import random
import re
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slamon.errors import HistoryError
from slamon.history import export_history, import_history
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.model import Fleet, to_micros
from slamon.store import Store
from slamon.store import schema as t
from slamon.store.upkeep import let_go_before

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HEADER = "device,time,probe,ok,rtt_ms,defects\n"
INVENTORY = """\
sites:
  - {id: S1, name: 城东路口, district: 右江区, area: urban}
devices:
  - {id: LINK, kind: link, address: 127.0.10.1, site: S1, contract: C1}
  - {id: SW, kind: switch, address: 127.0.20.1, site: S1, contract: C1, parent: LINK}
  - {id: CAM1, kind: camera, address: 127.0.30.1, site: S1, contract: C1, parent: SW}
  - {id: CAM2, kind: camera, address: 127.0.30.2, site: S1, contract: C1, parent: SW}
"""
CONTRACT = """\
id: C1
vendor: v
term: {start: 2025-01-01, months: 36}
fees: {camera: "10.00", switch: "0", link: "0"}
"""


@pytest.fixture
def fleet_dir(tmp_path: Path, store_url: str) -> Path:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "c1.yaml").write_text(CONTRACT, encoding="utf-8")
    (tmp_path / "inventory.yaml").write_text(INVENTORY, encoding="utf-8")
    (tmp_path / "slamon.yaml").write_text(
        f"database: {store_url}\ninventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n", encoding="utf-8"
    )
    return tmp_path


def open_fleet(root: Path) -> tuple[Fleet, Store]:
    config = load_config(root / "slamon.yaml")
    return load_fleet(config), Store(config.database)


def rows(seed: int, minutes: int = 600) -> list[str]:
    """A few hours of one-minute history with outages, flaps, a gap and video samples."""
    rnd = random.Random(seed)
    start = datetime(2025, 7, 1, tzinfo=UTC)
    out = []
    for dev in ("LINK", "SW", "CAM1", "CAM2"):
        down_from = rnd.randrange(minutes)
        down_len = rnd.choice([1, 2, 5, 30, 120])
        gap_from = rnd.randrange(minutes)
        for m in range(minutes):
            if gap_from <= m < gap_from + 12:
                continue
            ok = not (down_from <= m < down_from + down_len) and rnd.random() > 0.03
            at = (start + timedelta(minutes=m)).astimezone(
                UTC if m % 2 else datetime.now().astimezone().tzinfo
            )
            out.append(
                f"{dev},{at.isoformat()},{'snmp' if dev == 'SW' and m % 3 == 0 else 'icmp'},"
                f"{int(ok)},{'0.42' if ok else ''},"
            )
            if dev.startswith("CAM") and m % 15 == 0:
                bad = rnd.random() < 0.3
                out.append(f"{dev},{at.isoformat()},video,{int(not bad)},,{'black;frozen' if bad else ''}")
    return out


def write(path: Path, lines: list[str]) -> Path:
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def ledger(store: Store) -> tuple[list[tuple[object, ...]], ...]:
    """Everything the import writes, for comparing stores."""
    with store.begin() as tx:
        c = tx.conn
        return (
            [tuple(r) for r in c.execute(sa.select(t.result_blocks).order_by(*t.result_blocks.primary_key))],
            [
                tuple(r)
                for r in c.execute(
                    sa.select(t.transitions).order_by(t.transitions.c.device, t.transitions.c.at)
                )
            ],
            [
                tuple(r)
                for r in c.execute(sa.select(t.outages).order_by(t.outages.c.device, t.outages.c.start_at))
            ],
        )


def test_import_twice_changes_nothing(fleet_dir: Path) -> None:
    fleet, store = open_fleet(fleet_dir)
    csv = write(fleet_dir / "h.csv", rows(1))
    first = import_history(csv, store, fleet, NOW)
    before = ledger(store)
    again = import_history(csv, store, fleet, NOW)
    assert (first.added, first.repeated) == (first.rows, 0)
    assert (again.added, again.repeated) == (0, first.rows)
    assert ledger(store) == before
    assert before[1], "the history has transitions"
    assert before[2], "and outages"
    store.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), parts=st.integers(2, 5), shuffle=st.randoms(use_true_random=False))
def test_any_order_and_any_split_gives_the_same_ledger(
    fleet_dir: Path, seed: int, parts: int, shuffle: random.Random
) -> None:
    lines = rows(seed, minutes=240)
    whole_dir = fleet_dir / f"whole-{seed}-{parts}"
    split_dir = fleet_dir / f"split-{seed}-{parts}"
    results = []
    for root, pieces in ((whole_dir, [lines]), (split_dir, None)):
        root.mkdir()
        for name in ("inventory.yaml", "slamon.yaml"):
            (root / name).write_text((fleet_dir / name).read_text())
        (root / "contracts").mkdir()
        (root / "contracts" / "c1.yaml").write_text(CONTRACT)
        sqlite = f"sqlite:///{root / 'db.sqlite'}"
        (root / "slamon.yaml").write_text(
            re.sub(r"database: .*", f"database: {sqlite}", (root / "slamon.yaml").read_text())
        )
        if pieces is None:
            shuffled = lines[:]
            shuffle.shuffle(shuffled)
            cut = sorted(shuffle.sample(range(1, len(shuffled)), parts - 1))
            pieces = [shuffled[a:b] for a, b in zip([0, *cut], [*cut, len(shuffled)], strict=True)]
        fleet, store = open_fleet(root)
        for i, piece in enumerate(pieces):
            import_history(write(root / f"part{i}.csv", piece), store, fleet, NOW)
        results.append(ledger(store))
        store.close()
    assert results[0] == results[1]


BAD = [
    (
        "device,time,probe,ok,rtt_ms,defects,extra\n",
        "line 1: unknown column 'extra' (columns: device, time, probe, ok, rtt_ms, defects)",
    ),
    (
        "device,time,ok\n",
        "line 1: missing column 'probe' (columns: device, time, probe, ok, rtt_ms, defects)",
    ),
    ("", "line 1: empty file (expected the header device,time,probe,ok,rtt_ms,defects)"),
    (
        HEADER + "CAM1,2025-07-01T00:00:00+08:00,icmp,1,0.4,\nCAM9,2025-07-01T00:00:00+08:00,icmp,1,0.4,\n",
        "line 3, column device: unknown device 'CAM9' (not in the inventory)",
    ),
    (
        HEADER + "CAM1,2025-07-01 00:00,icmp,1,0.4,\n",
        "line 2, column time: '2025-07-01 00:00' has no UTC offset (write it as 2025-07-01T00:00:00+08:00)",
    ),
    (
        HEADER + "CAM1,yesterday,icmp,1,0.4,\n",
        "line 2, column time: 'yesterday' is not an ISO-8601 instant such as 2025-07-01T00:00:00+08:00",
    ),
    (
        HEADER + "CAM1,2025-07-01T00:00:00+08:00,ping,1,0.4,\n",
        "line 2, column probe: 'ping' is not a probe kind (icmp, snmp, video)",
    ),
    (HEADER + "CAM1,2025-07-01T00:00:00+08:00,icmp,yes,0.4,\n", "line 2, column ok: 'yes' is not 1 or 0"),
    (
        HEADER + "CAM1,2025-07-01T00:00:00+08:00,icmp,1,fast,\n",
        "line 2, column rtt_ms: 'fast' is not a number of milliseconds",
    ),
    (
        HEADER + "CAM1,2025-07-01T00:00:00+08:00,icmp,1,-1,\n",
        "line 2, column rtt_ms: '-1' is not a round-trip time in milliseconds",
    ),
    (
        HEADER + "CAM1,2025-07-01T00:00:00+08:00,video,0,,purple\n",
        "line 2, column defects: unknown defect 'purple' (known: no_signal, low_resolution, black, frozen, blur, too_dark, too_bright, color_cast, noise, occluded, stripe, jitter, scene_change, low_contrast, mosaic)",
    ),
    (
        HEADER + "CAM1,2025-07-01T00:00:00+08:00,icmp,0,,black\n",
        "line 2, column defects: defects are only for video results",
    ),
    (
        HEADER + "CAM1,2025-07-01T00:00:00+08:00,video,1,,black\n",
        "line 2, column defects: ok is 1 but defects are listed",
    ),
    (
        HEADER + "SW,2025-07-01T00:00:00+08:00,video,0,,black\n",
        "line 2, column probe: device SW is not a camera: video results are only for cameras",
    ),
    (HEADER + "CAM1,2025-07-01T00:00:00+08:00,icmp,1\n", "line 2: expected 6 fields, found 4"),
    (
        HEADER
        + 'CAM1,"2025-07-01T00:00:00+08:00",icmp,1,0.4,\n\nCAM1,2025-07-01T00:01:00+08:00,icmp,1,0.4\n',
        "line 4: expected 6 fields, found 5",
    ),
    (
        HEADER + "CAM1,2025-07-01T00:00:00+08:00,icmp,1,0.4,\nCAM1,2025-07-01T00:00:00+08:00,icmp,0,,\n",
        "line 3: conflicting result for CAM1 icmp at 2025-06-30T16:00:00+00:00 (line 2 says otherwise)",
    ),
    # evidence that cannot be true: from the future (beyond now + 5m), from before the term
    (
        HEADER + "CAM1,2025-07-01T00:00:00+08:00,icmp,1,0.4,\nCAM1,2031-07-01T00:00:00+08:00,icmp,1,0.4,\n",
        (
            "line 3, column time: 2031-06-30T16:00:00+00:00 is later than now + 5m (2026-01-01T00:05:00+00:00): "
            "a result from the future"
        ),
    ),
    (
        HEADER + "SW,2026-01-01T00:05:00.000001Z,snmp,0,,\n",
        (
            "line 2, column time: 2026-01-01T00:05:00.000001+00:00 is later than now + 5m "
            "(2026-01-01T00:05:00+00:00): a result from the future"
        ),
    ),
    (
        HEADER + "CAM1,2025-07-01T00:00:00+08:00,icmp,1,0.4,\nLINK,2024-12-31T23:59:59+08:00,icmp,1,0.4,\n",
        (
            "line 3, column time: 2024-12-31T15:59:59+00:00 is before the term of contract C1 "
            "(from 2025-01-01 in Asia/Shanghai)"
        ),
    ),
]


@pytest.mark.parametrize(
    ("content", "message"), BAD, ids=[m.split(":")[1] if ":" in m else m for _, m in BAD]
)
def test_bad_rows_are_named_and_change_nothing(fleet_dir: Path, content: str, message: str) -> None:
    fleet, store = open_fleet(fleet_dir)
    import_history(write(fleet_dir / "good.csv", rows(3, minutes=90)), store, fleet, NOW)
    before = ledger(store)
    bad = fleet_dir / "bad.csv"
    # a long good prefix first, so the bad row sits in a later block than the first one
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(HistoryError, match=re.escape(f"{bad}: {message}")):
        import_history(bad, store, fleet, NOW)
    assert ledger(store) == before
    store.close()


def test_a_row_disagreeing_with_stored_history_is_refused(fleet_dir: Path) -> None:
    fleet, store = open_fleet(fleet_dir)
    import_history(
        write(fleet_dir / "a.csv", ["CAM1,2025-07-01T00:00:00+08:00,icmp,1,0.4,"]), store, fleet, NOW
    )
    before = ledger(store)
    other = write(
        fleet_dir / "b.csv",
        ["CAM2,2025-07-01T00:00:00+08:00,icmp,1,0.4,", "CAM1,2025-07-01T00:00:00+08:00,icmp,0,,"],
    )
    with pytest.raises(
        HistoryError,
        match=re.escape(
            f"{other}: line 3: conflicting result for CAM1 icmp at 2025-06-30T16:00:00+00:00 "
            "(a stored result says otherwise)"
        ),
    ):
        import_history(other, store, fleet, NOW)
    assert ledger(store) == before
    store.close()


def test_gzip_crlf_bom_and_quotes_are_read(fleet_dir: Path) -> None:
    fleet, store = open_fleet(fleet_dir)
    lines = rows(5, minutes=60)
    plain = write(fleet_dir / "plain.csv", lines)
    import_history(plain, store, fleet, NOW)
    expected = ledger(store)
    store.close()

    for name, data in [
        ("h.csv.gz", gzip.compress(plain.read_bytes())),
        ("crlf.csv", b"\xef\xbb\xbf" + plain.read_bytes().replace(b"\n", b"\r\n")),
        ("quoted.csv", plain.read_bytes().replace(b",icmp,", b',"icmp",')),
    ]:
        (fleet_dir / "db2").mkdir(exist_ok=True)
        url = f"sqlite:///{fleet_dir / 'db2' / (name + '.db')}"
        store2 = Store(url)
        (fleet_dir / name).write_bytes(data)
        report = import_history(fleet_dir / name, store2, fleet, NOW)
        assert report.rows == len(lines), name
        assert ledger(store2) == expected, name
        store2.close()


def test_export_writes_what_import_read(fleet_dir: Path) -> None:
    fleet, store = open_fleet(fleet_dir)
    lines = rows(7, minutes=120)
    import_history(write(fleet_dir / "h.csv", lines), store, fleet, NOW)
    out = io.StringIO()
    start = to_micros(datetime(2025, 7, 1, tzinfo=UTC))
    count = export_history(store, start, start + 3_600_000_000 * 24, out)
    assert count == len(lines)
    exported = out.getvalue().splitlines()
    assert exported[0] == HEADER.strip()

    def norm(line: str) -> tuple[str, ...]:
        dev, at, probe, ok, rtt, defects = line.split(",")
        return dev, datetime.fromisoformat(at).astimezone(UTC).isoformat(), probe, ok, rtt, defects

    assert sorted(map(norm, exported[1:])) == sorted(map(norm, lines))
    # and it imports back to the same ledger
    again = fleet_dir / "again"
    again.mkdir()
    store2 = Store(f"sqlite:///{again / 'db.sqlite'}")
    (again / "h.csv").write_text(out.getvalue(), encoding="utf-8")
    import_history(again / "h.csv", store2, fleet, NOW)
    assert ledger(store2) == ledger(store)
    store.close()
    store2.close()


def test_retention_keeps_the_timeline_and_later_history_resumes_it(fleet_dir: Path) -> None:
    fleet, store = open_fleet(fleet_dir)
    lines = rows(11, minutes=600)
    by_time = sorted(lines, key=lambda r: datetime.fromisoformat(r.split(",")[1]))
    first, second = by_time[: len(by_time) // 2], by_time[len(by_time) // 2 :]
    import_history(write(fleet_dir / "1.csv", first), store, fleet, NOW)
    cutoff = datetime.fromisoformat(second[0].split(",")[1])
    with store.begin() as tx:
        report = let_go_before(tx, fleet.inventory, fleet.contracts, to_micros(cutoff), to_micros(NOW))
    assert report.blocks > 0
    with store.begin() as tx:
        gone = tx.conn.execute(sa.select(sa.func.count()).where(t.result_blocks.c.data.is_(None))).scalar()
        assert gone == report.blocks, "rollups stay, raw bytes go"
    import_history(write(fleet_dir / "2.csv", second), store, fleet, NOW)
    _, transitions, outages = ledger(store)

    fresh = Store(f"sqlite:///{fleet_dir / 'fresh.db'}")
    import_history(write(fleet_dir / "all.csv", lines), fresh, fleet, NOW)
    _, want_transitions, want_outages = ledger(fresh)
    assert transitions == want_transitions
    assert outages == want_outages

    with pytest.raises(HistoryError, match="have been let go \\(retention\\); older history cannot be added"):
        import_history(write(fleet_dir / "old.csv", first[:5]), store, fleet, NOW)
    store.close()
    fresh.close()


def test_a_missing_file_is_named(fleet_dir: Path) -> None:
    fleet, store = open_fleet(fleet_dir)
    with pytest.raises(HistoryError, match=re.escape(f"{fleet_dir / 'nope.csv'}: file not found")):
        import_history(fleet_dir / "nope.csv", store, fleet, NOW)
    store.close()


def test_results_at_the_edges_of_now_and_the_term_are_taken(fleet_dir: Path) -> None:
    """now + 5m exactly, and 00:00 of term.start in the contract's zone, are both fine."""
    fleet, store = open_fleet(fleet_dir)
    csv = write(
        fleet_dir / "edges.csv",
        ["CAM1,2026-01-01T00:05:00Z,icmp,1,0.4,", "CAM1,2025-01-01T00:00:00+08:00,icmp,1,0.4,"],
    )
    assert import_history(csv, store, fleet, NOW).added == 2
    store.close()


GOOD_ROWS = "".join(f"CAM1,2025-07-01T00:{m:02d}:00+08:00,icmp,1,0.4,\n" for m in range(60))
BIG = (HEADER + "".join(f"CAM{1 + d % 2},2025-07-{1 + h // 24:02d}T{h % 24:02d}:{m:02d}:00+08:00,icmp,1,0.4,\n"
                        for h in range(48) for m in range(60) for d in range(2))).encode()  # fmt: skip
BIG_GZ = gzip.compress(BIG, mtime=0)


def cut_gzip(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


def bad_crc(data: bytes) -> bytes:
    return data[:-8] + bytes(4) + data[-4:]


BAD_BYTES = [
    ("not-utf8.csv", (HEADER + GOOD_ROWS).encode() + "CAM1,2025-07-01T01:00:00+08:00,icmp,1,0.4,é\n".encode("latin-1"),
     "line 62: not UTF-8 text (save the file as UTF-8)"),
    ("not-utf8-header.csv", b"device,ti\xffme,probe,ok\n" + GOOD_ROWS.encode(), "line 1: not UTF-8 text (save the file as UTF-8)"),
    ("nul.csv", (HEADER + GOOD_ROWS).encode() + b"CAM1,2025-07-01T01:00:00+08:00,icmp,1,0.4,\0\n",
     "line 62: holds a NUL byte (is it a CSV file?)"),
    ("nul-quoted.csv", (HEADER + GOOD_ROWS).encode() + b'CAM1,"2025-07-01T01:00:00+08:00",icmp,1,0.4,\0\n',
     "line 62: holds a NUL byte (is it a CSV file?)"),
    ("nul-header.csv", b"device,time,probe\0,ok\n", "line 1: holds a NUL byte (is it a CSV file?)"),
    ("cut.csv.gz", cut_gzip(BIG_GZ, 0.5), "line {cut}: the gzip file is cut short (it ends before its end-of-stream marker)"),
    ("cut-in-header.csv.gz", cut_gzip(BIG_GZ, 0.001), "line 1: the gzip file is cut short (it ends before its end-of-stream marker)"),
    ("crc.csv.gz", bad_crc(BIG_GZ), "line 5762: the gzip data is corrupt (CRC check failed 0x0 != {crc})"),
    ("corrupt.csv.gz", BIG_GZ[:10] + b"\xff" * 16 + BIG_GZ[26:], "line 1: the gzip data is corrupt ({zlib})"),
    ("plain.csv.gz", BIG, "line 1: not gzip data, though the name ends in .gz"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data", "message"), BAD_BYTES, ids=[name for name, _, _ in BAD_BYTES])
def test_unreadable_files_are_named_with_their_line_and_change_nothing(
    fleet_dir: Path, name: str, data: bytes, message: str
) -> None:
    fleet, store = open_fleet(fleet_dir)
    import_history(write(fleet_dir / "good.csv", rows(3, minutes=90)), store, fleet, NOW)
    before = ledger(store)
    bad = fleet_dir / name
    bad.write_bytes(data)
    if "{cut}" in message:  # the first line the cut file does not hold whole
        whole = _readable(data).count(b"\n")
        message = message.format(cut=whole + 1)
    if "{crc}" in message:
        message = message.format(crc=hex(zlib.crc32(BIG)))
    if "{zlib}" in message:
        with pytest.raises(zlib.error) as caught:
            gzip.decompress(data)
        message = message.format(zlib=caught.value)
    with pytest.raises(HistoryError, match=f"^{re.escape(f'{bad}: {message}')}$"):
        import_history(bad, store, fleet, NOW)
    assert ledger(store) == before
    store.close()


def _readable(data: bytes) -> bytes:
    """What can be decompressed of a cut gzip stream."""
    inflate = zlib.decompressobj(wbits=31)
    return inflate.decompress(data)
