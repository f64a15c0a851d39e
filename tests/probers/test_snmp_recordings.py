"""slamon's SNMP v2c prober against recorded switches: the `network/switch` dumps of the PyPI package
snmpsim-data (27 recordings: Cisco, D-Link, HPE, Huawei, H3C, ZTE, Brocade, …), served by snmpsim on
loopback and polled once each. What slamon reports must be what the dump holds: a port for every
ifIndex with an ifName, ifAdminStatus or ifOperStatus row, its status in IF-MIB's words, the dump's
counters, and the name FORMATS.md promises (the ifName when it is unique and not digits, else the
ifIndex). docs/snmp-recordings.md has the table of what each recording gives.

What it costs (measured, docs/snmp-recordings.md): snmpsim seeks in a .bz2 dump for every GETNEXT
and GETBULK, which decompresses it again and again (seconds a request on the big ones), so the dumps
are decompressed into its data folder; it indexes them at start (~17 µs a line: the 2.9 M lines of
all 27 take ~50 s and a 1.8 GB cache) and opens a recording's index at its first request (~9 µs a
line); after that a poll takes milliseconds. The tests serve all but the HEAVY recordings (or all of
them with SLAMON_SNMP_RECORDINGS=all); the doc's table is made from all 27:

    .venv/bin/python -m tests.probers.test_snmp_recordings docs/snmp-recordings.md
"""

from __future__ import annotations

import asyncio
import bz2
import codecs
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slamon.clock import FakeClock
from slamon.model import ContractId, Device, DeviceId, DeviceKind, ProbeResult, SiteId, SnmpTarget
from slamon.probers import snmp_mib
from slamon.probers.snmp import SnmpProber, SnmpSettings
from slamon.probers.snmp_wire import parse_oid
from tests.harness.snmp import SNMPSIM, Agent, answers, free_udp_port


def _switches() -> Path | None:
    spec = importlib.util.find_spec("snmpsim_data")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "data" / "network" / "switch"


SWITCHES = _switches()
ALL = sorted(p.name.split(".snmprec")[0] for p in SWITCHES.glob("*.snmprec*")) if SWITCHES else []
# 1.5 M of the 2.9 M lines: about 25 s of snmpsim's indexing and 13 s of its first answers. Their
# vendors are in the others (h3c-e528-1 is h3c-e528-2's E528 recorded again); the case only they have,
# 2509p61's 1,317-row walk, passes in the doc's run and with SLAMON_SNMP_RECORDINGS=all
HEAVY = frozenset(
    {
        "h3c-comware-lsq1wcmd0-2509p61",  # 628 k lines, 1,317 ports (133 requests a poll)
        "zte-zxr10-5250",  # 390 k
        "h3c-wx6103",  # 173 k
        "h3c-comware-7-1-075",  # 170 k
        "h3c-e528-1",  # 115 k
    }
)
SELECTED = ALL if os.environ.get("SLAMON_SNMP_RECORDINGS") == "all" else [n for n in ALL if n not in HEAVY]
NO_IF_MIB = "h3c-comware-lsq1wcmd0"  # an H3C wireless-controller card recorded without any IF-MIB row

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SWITCHES is None, reason="snmpsim-data is not installed (pip install snmpsim-data)"),
]

AT = datetime(2025, 7, 1, tzinfo=UTC)
TIMEOUT = timedelta(seconds=5)  # snmpsim answers a warmed-up recording's GETBULK in milliseconds

# --- the dumps -----------------------------------------------------------------------------------

Oid = tuple[int, ...]
VARIED = object()  # a value a variation module makes up as snmpsim runs (`67:numeric|rate=100`)
KEPT = ("1.3.6.1.2.1.1.", "1.3.6.1.2.1.2.2.1.", "1.3.6.1.2.1.31.1.1.1.", "1.3.6.1.2.1.105.")
STRING_TAGS = frozenset({4, 64, 68})  # OCTET STRING, IpAddress, Opaque
IF_TYPE = parse_oid("1.3.6.1.2.1.2.2.1.3")
ETHERNET = frozenset({6, 62, 69, 117})  # ethernetCsmacd, fastEther, fastEtherFX, gigabitEthernet
# IF-MIB's words (ifOperStatus; ifAdminStatus uses the first three), written out here, not slamon's
IF_STATUS = {
    1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown",
}  # fmt: skip


def dump_bytes(name: str) -> bytes:
    assert SWITCHES is not None
    plain = SWITCHES / f"{name}.snmprec"
    if plain.exists():
        return plain.read_bytes()
    return bz2.decompress((SWITCHES / f"{name}.snmprec.bz2").read_bytes())


def parse_snmprec(data: bytes) -> dict[Oid, tuple[int, object]]:
    """The system group, ifTable, ifXTable and POWER-ETHERNET-MIB rows of a dump: OID → (tag, value),
    each line read as snmpsim reads it (stripped: some dumps have CRLF line ends)."""
    values: dict[Oid, tuple[int, object]] = {}
    for raw in data.decode("iso-8859-1").split("\n"):
        line = raw.strip()
        if not line.startswith(KEPT):
            continue
        oid, tag, text = line.split("|", 2)
        values[parse_oid(oid)] = _value(tag, text)
    return values


def _value(tag: str, text: str) -> tuple[int, object]:
    tag, _, variation = tag.partition(":")
    number = int(tag.rstrip("xe"))
    if variation:
        return number, VARIED
    if tag.endswith("x"):
        raw = bytes.fromhex(text)
    elif tag.endswith("e"):
        raw = codecs.escape_decode(text.encode("iso-8859-1"))[0]
    else:
        raw = text.encode("iso-8859-1")
    if number in STRING_TAGS:
        return number, raw
    if number == 6:
        return number, raw.decode("ascii")
    if number == 5:
        return number, None
    return number, int(raw)


@dataclass(frozen=True)
class Recording:
    """One dump, and what slamon must make of it."""

    name: str
    lines: int
    descr: str  # sysDescr.0, whitespace folded
    uptime_ticks: int | object | None  # VARIED when a variation module makes it up
    columns: Mapping[str, Mapping[int, tuple[int, object]]]  # column key → ifIndex → (tag, value)
    poe_rows: int
    if_types: Mapping[int, object]  # ifIndex → ifType (not read by slamon: for the doc's table)

    @classmethod
    def of(cls, name: str, data: bytes) -> Recording:
        values = parse_snmprec(data)
        columns: dict[str, dict[int, tuple[int, object]]] = {}
        for column in snmp_mib.COLUMNS:
            prefix = parse_oid(column.oid)
            columns[column.key] = {oid[-1]: v for oid, v in values.items() if oid[:-1] == prefix}
        descr = values.get(parse_oid("1.3.6.1.2.1.1.1.0"), (4, b""))[1]
        uptime = values.get(parse_oid("1.3.6.1.2.1.1.3.0"))
        return cls(
            name,
            data.count(b"\n"),
            " ".join(descr.decode("utf-8", "replace").split()) if isinstance(descr, bytes) else "",
            None if uptime is None else uptime[1],
            columns,
            sum(1 for oid in values if oid[:7] == (1, 3, 6, 1, 2, 1, 105)),
            {oid[-1]: v for oid, (_, v) in values.items() if oid[:-1] == IF_TYPE},
        )

    def value(self, key: str, index: int) -> object:
        got = self.columns[key].get(index)
        return None if got is None else got[1]

    @property
    def indexes(self) -> list[int]:
        return sorted({i for key in ("name", "admin", "oper") for i in self.columns[key]})

    def ports(self) -> dict[str, dict[str, object]]:
        """The `ports` of slamon's result for this dump (FORMATS.md)."""
        labels = _labels({i: self.value("name", i) for i in self.indexes})
        ports: dict[str, dict[str, object]] = {}
        for index in self.indexes:
            port: dict[str, object] = {"index": index}
            for key in ("oper", "admin"):
                status = self.value(key, index)
                if isinstance(status, int):
                    port[key] = IF_STATUS.get(status, str(status))
            for key in ("in_octets", "out_octets", "in_errors"):
                count = self.value(key, index)
                if isinstance(count, int):
                    port[key] = count
            ports[labels[index]] = port
        return ports

    def hc_tags(self) -> set[int]:
        return {tag for key in ("in_octets", "out_octets") for tag, _ in self.columns[key].values()}


def _labels(names: Mapping[int, object]) -> dict[int, str]:
    """The ifName (decoded, blanks and a C string's ending NUL stripped) when it is unique and not digits, else the
    ifIndex as text."""
    text = {
        i: n.decode("utf-8", "replace").strip().strip("\x00").strip() if isinstance(n, bytes) else ""
        for i, n in names.items()
    }
    seen = Counter(text.values())
    return {i: n if n and seen[n] == 1 and not n.isdigit() else str(i) for i, n in text.items()}


# --- snmpsim serving them ------------------------------------------------------------------------


@dataclass
class Served:
    port: int
    recordings: dict[str, Recording]
    started_s: float  # from the process's start to its first answer (indexing every dump)
    first_answer_s: dict[str, float]  # a recording's first GET (snmpsim opens its index)


@contextmanager
def serve(names: Sequence[str], where: Path) -> Iterator[Served]:
    """One snmpsim on 127.0.0.1 for all of `names`, each its own community, decompressed into
    where/data; answering every one of them. Its data and index cache are deleted at the end."""
    data, cache = where / "data", where / "cache"
    data.mkdir(parents=True, exist_ok=True)
    recordings: dict[str, Recording] = {}
    for name in names:
        text = dump_bytes(name)
        (data / f"{name}.snmprec").write_bytes(text)
        recordings[name] = Recording.of(name, text)
    lines = sum(r.lines for r in recordings.values())
    within = 60 + lines * 60e-6  # three times the indexing measured here, and a minute
    agent: Agent | None = None
    try:
        # snmpsim binds only once it has indexed everything, and a bind that fails then fails silently
        # (pysnmp's transport binds in a future nobody awaits): seen once here, with no UDP socket
        # after "Listening at"; the port may have been taken in the meantime. Then on another port.
        for attempt in range(2):
            started = time.monotonic()
            agent = _start(data, cache, where / f"snmpsim-{attempt}.log", names[0])
            if _answered(agent, within):
                break
            agent.stop()
        else:
            log = (where / "snmpsim-1.log").read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"snmpsim did not answer within {within:.0f} s twice: {log[-2000:]}")
        started_s = time.monotonic() - started
        first: dict[str, float] = {}
        for name in names:
            t = time.monotonic()
            if not answers(agent.port, name, within=60):
                raise RuntimeError(f"snmpsim does not answer for {name}")
            first[name] = time.monotonic() - t
        yield Served(agent.port, recordings, started_s, first)
    finally:
        if agent is not None:
            agent.stop()
        for folder in (cache, data):  # ~0.6 KB of index a line, and the dumps themselves
            shutil.rmtree(folder, ignore_errors=True)


def _start(data: Path, cache: Path, log: Path, community: str) -> Agent:
    port = free_udp_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(SNMPSIM),
                f"--data-dir={data}",
                f"--cache-dir={cache}",
                f"--agent-udpv4-endpoint=127.0.0.1:{port}",
                "--log-level=error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=dict(os.environ, SNMPSIM_ALLOW_ROOT="true"),
        )
    return Agent(port, community, process, data)


def _answered(agent: Agent, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if agent.process.poll() is not None:
            return False
        if answers(agent.port, agent.community, within=1):
            return True
    return False


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not SNMPSIM.exists():
        pytest.skip("snmpsim is not installed (pip install -e '.[test]')")
    with serve(SELECTED, tmp_path_factory.mktemp("recordings")) as agent:
        yield agent


# --- polling -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Poll:
    result: ProbeResult
    seconds: float
    requests: int
    varbinds: int


async def poll_once(port: int, name: str) -> Poll:
    """One poll of one recording (its name is its community) by a prober of its own."""
    prober = SnmpProber(
        FakeClock(AT), SnmpSettings(community=name.encode(), timeout=TIMEOUT, retries=1, concurrency=4)
    )
    device = Device(
        DeviceId(name),
        DeviceKind.SWITCH,
        "127.0.0.1",
        SiteId("S"),
        ContractId("C"),
        snmp=SnmpTarget("2c", port),
    )
    started = time.perf_counter()
    try:
        results = [r async for batch in prober.round([device]) for r in batch]
    finally:
        await prober.aclose()
    assert len(results) == 1
    return Poll(results[0], time.perf_counter() - started, prober.requests, prober.varbinds)


@dataclass(frozen=True)
class Summary:
    ports: int
    named: int  # ports slamon names by their ifName (the others by their ifIndex)
    oper: Mapping[str, int]  # ports by ifOperStatus word
    admin_down: int
    counters: int  # ports with ifHCInOctets and ifHCOutOctets

    @classmethod
    def of(cls, ports: Mapping[str, Mapping[str, object]]) -> Summary:
        return cls(
            len(ports),
            sum(1 for label, port in ports.items() if label != str(port["index"])),
            dict(Counter(str(port["oper"]) for port in ports.values() if "oper" in port)),
            sum(1 for port in ports.values() if port.get("admin") == "down"),
            sum(1 for port in ports.values() if "in_octets" in port and "out_octets" in port),
        )

    @classmethod
    def expected(cls, recording: Recording) -> Summary:
        """Counted from the dump's columns, not from the ports it makes."""
        cols = recording.columns
        indexes = recording.indexes
        names = {i: v for i, (_, v) in cols["name"].items()}
        labels = _labels({i: names.get(i) for i in indexes})
        return cls(
            len(indexes),
            sum(1 for i in indexes if labels[i] != str(i)),
            dict(Counter(IF_STATUS.get(v, str(v)) for _, v in cols["oper"].values() if isinstance(v, int))),
            sum(1 for _, v in cols["admin"].values() if v == 2),
            len(cols["in_octets"].keys() & cols["out_octets"].keys()),
        )


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SELECTED)
async def test_a_recorded_switch_gives_what_its_dump_holds(name: str, served: Served) -> None:
    recording = served.recordings[name]
    got = await poll_once(served.port, name)
    r = got.result
    assert r.ok, r.error
    assert r.error is None
    assert r.rtt_ms is not None
    assert r.loss is not None
    uptime = r.detail["uptime_s"]
    assert isinstance(uptime, int)
    if recording.uptime_ticks is not VARIED:  # every switch dump has sysUpTime.0
        assert isinstance(recording.uptime_ticks, int)
        assert uptime == recording.uptime_ticks // 100
    ports = r.detail["ports"]
    assert isinstance(ports, dict)
    assert all(isinstance(port["index"], int) for port in ports.values())
    assert ports == recording.ports()
    assert Summary.of(ports) == Summary.expected(recording)
    assert recording.poe_rows == 0  # no POWER-ETHERNET-MIB in any of them: no PoE in the result
    assert "poe" not in r.detail
    assert not any("poe" in port for port in ports.values())
    assert "warnings" not in r.detail  # one poll: nothing to compare with
    assert "reboot" not in r.detail
    assert got.requests >= 2  # the GET, and a GETBULK at least


@pytest.mark.skipif(NO_IF_MIB not in ALL, reason=f"no {NO_IF_MIB} in this snmpsim-data")
async def test_a_recording_without_if_mib_is_ok_with_no_ports(served: Served) -> None:
    recording = served.recordings[NO_IF_MIB]
    assert not any(recording.columns.values())
    assert isinstance(recording.uptime_ticks, int)
    got = await poll_once(served.port, NO_IF_MIB)
    assert got.result.ok, got.result.error
    assert got.result.detail == {"uptime_s": recording.uptime_ticks // 100, "ports": {}}
    assert got.requests == 2  # the GET, and one GETBULK whose every column ends at once


@pytest.mark.skipif("cts-media-converter" not in ALL, reason="no cts-media-converter in this snmpsim-data")
async def test_a_nul_terminated_ifname_is_the_name_without_the_nul(served: Served) -> None:
    assert served.recordings["cts-media-converter"].value("name", 1) == b"port0\x00"
    got = await poll_once(served.port, "cts-media-converter")
    assert got.result.ok, got.result.error
    assert list(got.result.detail["ports"]) == ["port0", "port1", "port2"]  # type: ignore[call-overload]


# --- the table of docs/snmp-recordings.md --------------------------------------------------------

BEGIN, END = "<!-- recordings:begin -->", "<!-- recordings:end -->"
HEADER = (
    "| recording | sysDescr | result | ports | Ethernet | by ifName | oper up / down | admin down | HC octets "
    "| PoE | uptime s | poll ms | requests / varbinds | first answer s |"
)


def _cell(text: str, width: int = 64) -> str:
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("|", "\\|")


def _row(recording: Recording, got: Poll, served: Served) -> str:
    r = got.result
    mark = "" if recording.name not in HEAVY else " †"
    if not r.ok:
        return f"| `{recording.name}`{mark} | {_cell(recording.descr)} | {_cell(r.error or '')} |" + " |" * 10
    ports = r.detail["ports"]
    assert isinstance(ports, dict)
    s = Summary.of(ports)
    others = ", ".join(f"{n} {word}" for word, n in sorted(s.oper.items()) if word not in ("up", "down"))
    oper = f"{s.oper.get('up', 0)} / {s.oper.get('down', 0)}" + (f" ({others})" if others else "")
    hc = f"{s.counters}/{s.ports}" if s.ports else "–"
    if 0x41 in recording.hc_tags():
        hc += " (Counter32)"
    poe = "yes" if "poe" in r.detail or any("poe" in p for p in ports.values()) else "no"
    ok = "ok" if ports or recording.indexes else "ok, no IF-MIB"
    if r.loss:
        ok += f", {r.loss:.0%} of requests sent again"
    ethernet = sum(1 for p in ports.values() if recording.if_types.get(int(p["index"])) in ETHERNET)
    first = served.first_answer_s[recording.name]
    opened = f"{first:.2f}" if recording.name != next(iter(served.first_answer_s)) else "(start)"
    return (
        f"| `{recording.name}`{mark} | {_cell(recording.descr)} | {ok} | {s.ports} | {ethernet} | {s.named} "
        f"| {oper} "
        f"| {s.admin_down} | {hc} | {poe} | {r.detail['uptime_s']} "
        f"| {got.seconds * 1000:.0f} | {got.requests} / {got.varbinds} "
        f"| {opened} |"
    )


def table(served: Served, polls: Mapping[str, Poll]) -> str:
    versions = {p: importlib.metadata.version(p) for p in ("snmpsim", "snmpsim-data", "pysnmp")}
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    lines = [
        f"Made {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.system()} {platform.release()} "
        f"{platform.machine()}, {os.cpu_count()} × {cpu}, Python {platform.python_version()}, "
        + ", ".join(f"{p} {v}" for p, v in versions.items())
        + f"; {len(polls)} recordings ({sum(r.lines for r in served.recordings.values()):,} lines) "
        f"decompressed and served by one snmpsim: {served.started_s:.0f} s from its start to its first "
        f"answer, {sum(served.first_answer_s.values()):.0f} s for the first answer of each; then one poll "
        "each, one after another (5 s timeout, 1 retry).",
        "",
        HEADER,
        "|---|---|---|--:|--:|--:|---|--:|---|---|--:|--:|--:|--:|",
    ]
    lines += [_row(served.recordings[name], got, served) for name, got in polls.items()]
    return "\n".join(lines) + "\n"


async def _poll_all(served: Served) -> dict[str, Poll]:
    return {name: await poll_once(served.port, name) for name in served.recordings}


def main(argv: Sequence[str]) -> int:
    if SWITCHES is None or not SNMPSIM.exists():
        print(
            "needs snmpsim and snmpsim-data in this Python (pip install snmpsim snmpsim-data)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="snmp-recordings-") as tmp, serve(ALL, Path(tmp)) as served:
        polls = asyncio.run(_poll_all(served))
    text = table(served, polls)
    if not argv:
        print(text, end="")
        return 0
    doc = Path(argv[0])
    before, begin, rest = doc.read_text(encoding="utf-8").partition(BEGIN)
    _, end, after = rest.partition(END)
    if not begin or not end:
        print(f"{doc}: no {BEGIN} … {END} to put the table between", file=sys.stderr)
        return 2
    doc.write_text(f"{before}{BEGIN}\n{text}{END}{after}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
