"""The command line as users and scripts meet it: exit codes, messages, the statement lifecycle."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slamon.cli import main
from slamon.clock import FakeClock
from tests.billing.harness import every, write_case

INVENTORY = """\
sites:
  - {id: S1, name: 城东路口, district: 右江区, area: urban}
devices:
  - {id: SW1, kind: switch, address: 127.0.20.1, site: S1, contract: C1}
  - {id: CAM1, kind: camera, address: 127.0.30.1, site: S1, contract: C1, parent: SW1}
  - {id: CAM2, kind: camera, address: 127.0.30.2, site: S1, contract: C1, parent: SW1}
"""
JULY = ("2025-07-01T00:00:00+08:00", "2025-08-01T00:00:00+08:00")


def history(*, cam2_down: tuple[str, str] | None = None) -> str:
    text = "device,time,probe,ok,rtt_ms,defects\n"
    text += every(300, *JULY, "SW1") + every(300, *JULY, "CAM1")
    if cam2_down is None:
        return text + every(300, *JULY, "CAM2")
    return (
        text
        + every(300, JULY[0], cam2_down[0], "CAM2")
        + every(300, *cam2_down, "CAM2", ok=0)
        + every(300, cam2_down[1], JULY[1], "CAM2")
    )


@pytest.fixture
def case(tmp_path: Path) -> Path:
    return write_case(
        tmp_path, INVENTORY, history(cam2_down=("2025-07-10T08:00:00+08:00", "2025-07-10T14:00:00+08:00"))
    )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args), clock=FakeClock(datetime(2025, 8, 2, tzinfo=UTC)))
    out, err = capsys.readouterr()
    return code, out, err


def july(capsys: pytest.CaptureFixture[str], case: Path, *extra: str) -> tuple[int, str, str]:
    """`slamon statement --contract C1 --month 2025-07 …` on the case."""
    return run(capsys, "-c", str(case), "statement", "--contract", "C1", "--month", "2025-07", *extra)


def test_check_says_what_it_loaded(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-c", str(case), "check")
    assert code == 0
    assert out == f"ok: {case}: 1 contract, 1 site, 3 devices (2 cameras, 1 switch, 0 links), 0 exclusions\n"


def test_check_rejects_bad_input_with_exit_1(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = case.parent / "inventory.yaml"
    inv.write_text(inv.read_text().replace("parent: SW1}", "parent: SW9}", 1))
    code, out, err = run(capsys, "-c", str(case), "check")
    assert (code, out) == (1, "")
    assert err == f"slamon: error: {inv}: devices[1].parent: unknown device 'SW9'\n"


def test_usage_errors_exit_2(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(capsys, "-c", str(case), "statement", "--contract", "C1")
    assert exc.value.code == 2
    assert "statement needs --contract and --month" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        run(capsys, "-c", str(case), "frobnicate")
    assert exc.value.code == 2


def test_statement_lifecycle_draft_issue_revise_verify(
    case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "-c", str(case), "import", str(case.parent / "probes.csv"))[0] == 0
    code, out, err = july(capsys, case)
    draft = json.loads(out)
    assert (code, draft["status"], draft["revision"], err) == (0, "draft", 1, "")
    assert draft["deductions"][0]["reason"] == "6h > 4h (urban): 2 started hours"

    issued_file = tmp_path / "issued.json"
    code, _, err = july(
        capsys,
        case,
        "--issue",
        "-o",
        str(issued_file),
    )
    issued = json.loads(issued_file.read_text())
    assert (code, issued["status"], issued["revision"], issued["hash"]) == (0, "issued", 1, draft["hash"])
    assert err == "issued revision 1\n"

    code, out, err = july(capsys, case, "--issue")
    assert json.loads(out)["hash"] == issued["hash"]
    assert "revision 1 was issued at" in err, "issuing again with the same inputs changes nothing"

    code, out, err = run(capsys, "-c", str(case), "statement", "verify", str(issued_file))
    assert (code, out) == (0, f"verified: C1 2025-07 revision 1 recomputes to {issued['hash']}\n")

    # late evidence for July: CAM1 was down for 2 hours, which the first import did not know
    late = case.parent / "late.csv"
    late.write_text(
        "device,time,probe,ok,rtt_ms,defects\n"
        + every(60, "2025-07-20T08:00:00+08:00", "2025-07-20T10:00:00+08:00", "CAM1", ok=0, probe="snmp")
    )
    assert run(capsys, "-c", str(case), "import", str(late))[0] == 0
    code, out, err = july(capsys, case)
    revised = json.loads(out)
    assert (revised["status"], revised["revision"], revised["replaces"]) == ("draft", 2, issued["hash"])
    assert "inputs changed since revision 1 was issued" in err

    code, out, err = run(capsys, "-c", str(case), "statement", "verify", str(issued_file))
    assert code == 1
    assert "the inputs differ from those the statement was computed from" in err
    assert "device CAM1: down_s file 0 recomputed 7200" in err

    code, out, err = july(capsys, case, "--issue")
    assert (json.loads(out)["revision"], err) == (2, "issued revision 2, replacing revision 1\n")


def test_verify_detects_an_edited_file(
    case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "-c", str(case), "import", str(case.parent / "probes.csv"))
    _, out, _ = july(capsys, case)
    doc = json.loads(out)
    doc["payable"] = "999999.00"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    code, _, err = run(capsys, "-c", str(case), "statement", "verify", str(edited))
    assert code == 1
    assert "the file's figures do not match its own hash: it was changed after slamon wrote it" in err
    assert "payable: file '999999.00', recomputed" in err


def test_statement_csv_has_one_section_per_table(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "-c", str(case), "import", str(case.parent / "probes.csv"))
    code, out, _ = july(capsys, case, "--format", "csv")
    assert code == 0
    assert out.startswith("\ufeff栏目,合同编号,乙方（服务商）,考核月份,")  # a BOM: Excel reads UTF-8
    sections = [line.split(",")[0] for line in out.removeprefix("\ufeff").splitlines() if line]
    assert sections.count("section") == 5
    assert sections.count("栏目") == 5  # each block's Chinese headings, above its keys
    assert "栏目,扣款规则,设备编号,考核指标,故障开始,扣款原因,金额\nsection,rule,device," in out
    assert sections.count("device") == 3
    assert sections.count("outage") == 1
    assert (
        "deduction,repair_overrun,CAM2,,2025-07-10T08:00:00+08:00,6h > 4h (urban): 2 started hours,100.00"
        in out
    )


def test_statement_errors_name_the_problem(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "-c", str(case), "import", str(case.parent / "probes.csv"))
    assert run(capsys, "-c", str(case), "statement", "--contract", "C9", "--month", "2025-07")[2] == (
        "slamon: error: no contract 'C9' in the database (known: C1)\n"
    )
    assert run(capsys, "-c", str(case), "statement", "--contract", "C1", "--month", "2031-07")[2] == (
        "slamon: error: 2031-07 is outside contract C1's term (2025-01 to 2027-12)\n"
    )
    assert run(capsys, "-c", str(case), "statement", "--contract", "C1", "--month", "July")[2] == (
        "slamon: error: --month: 'July' is not a month (use YYYY-MM, e.g. 2025-07)\n"
    )
    # parse_month is the one rule for the command line and the API: year 0 and 9999-12 have no
    # start or end to compute (they were tracebacks); other digits and a final newline are refused
    for month, why in (
        ("0000-01", "is out of range (1970 to 2199)"),
        ("9999-12", "is out of range (1970 to 2199)"),
        ("２０２５-07", "is not a month (use YYYY-MM, e.g. 2025-07)"),
        ("2025-07\n", "is not a month (use YYYY-MM, e.g. 2025-07)"),
    ):
        code, _, err = run(capsys, "-c", str(case), "statement", "--contract", "C1", "--month", month)
        assert (code, err) == (1, f"slamon: error: --month: {month!r} {why}\n")


def test_export_round_trips_through_the_cli(
    case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "-c", str(case), "import", str(case.parent / "probes.csv"))
    out_file = tmp_path / "out.csv"
    code, _, err = run(
        capsys,
        "-c",
        str(case),
        "export",
        "probes",
        "--from",
        "2025-07-10",
        "--to",
        "2025-07-11",
        "-o",
        str(out_file),
    )
    lines = out_file.read_text().splitlines()
    assert (code, err) == (0, f"exported {len(lines) - 1:,} results\n")
    assert len(lines) - 1 == 3 * 24 * 12
    assert lines[1].startswith("CAM1,2025-07-10T00:00:00+08:00,icmp,1,0.5,")


def test_the_console_script_runs(case: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "slamon.cli", "-c", str(case), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ")


def test_a_pdf_without_a_chinese_font_is_refused_naming_the_package(case: Path, tmp_path: Path) -> None:
    """fontconfig that knows no font at all: exit 1 with the Debian package to install, and no file."""
    empty = tmp_path / "fonts.conf"
    empty.write_text('<?xml version="1.0"?>\n<fontconfig></fontconfig>\n', encoding="utf-8")
    pdf = tmp_path / "july.pdf"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "slamon.cli", "-c", str(case), "statement"),
            *("--contract", "C1", "--month", "2025-07", "-o", str(pdf)),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "FONTCONFIG_FILE": str(empty)},
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.endswith(
        "slamon: error: no Chinese TrueType font for the PDF: install one, e.g. Debian's fonts-wqy-microhei "
        "(apt-get install fonts-wqy-microhei; fonts-arphic-uming also works)\n"
    )
    assert not pdf.exists()


def at(day: str) -> FakeClock:
    return FakeClock(datetime.fromisoformat(day).replace(tzinfo=UTC))


def test_a_past_month_recomputes_against_the_fleet_as_it_was(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fee(month: str, clock: FakeClock) -> str:
        assert main(["-c", str(case), "statement", "--contract", "C1", "--month", month], clock=clock) == 0
        doc = json.loads(capsys.readouterr().out)
        return next(d["fee"] for d in doc["devices"] if d["id"] == "CAM1")

    assert main(["-c", str(case), "import", str(case.parent / "probes.csv")], clock=at("2025-08-02")) == 0
    assert fee("2025-07", at("2025-08-02")) == "100.00"
    inv = case.parent / "inventory.yaml"
    inv.write_text(
        inv.read_text().replace("contract: C1, parent: SW1}", "contract: C1, parent: SW1, channels: 2}", 1)
    )
    # the new inventory takes effect when slamon first sees it, 15 August
    assert fee("2025-08", at("2025-08-15")) == "200.00"
    assert fee("2025-07", at("2025-08-15")) == "100.00", "July keeps the fleet it had"


def test_changing_how_the_contract_judges_state_rebuilds_the_timelines(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "-c", str(case), "import", str(case.parent / "probes.csv"))
    _, out, _ = july(capsys, case)
    assert len(json.loads(out)["outages"]) == 1  # CAM2: 72 failed probes in a row
    contract = case.parent / "contracts" / "c1.yaml"
    contract.write_text(contract.read_text().replace("down_after: 3", "down_after: 100"))
    _, out, _ = july(capsys, case)
    assert json.loads(out)["outages"] == [], "72 failures are a blip when down_after is 100"


def test_prune_lets_raw_results_go_and_keeps_the_statement(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probes = str(case.parent / "probes.csv")
    run(capsys, "-c", str(case), "import", probes)
    _, before, _ = july(capsys, case)
    code, _, err = run(capsys, "-c", str(case), "prune", "--before", "2025-07-20")
    assert code == 0
    assert err.startswith("let go of ")
    assert "hourly blocks of raw results of 3 devices before 2025-07-20T00:00:00+08:00" in err
    _, after, _ = july(capsys, case)
    assert json.loads(after)["hash"] == json.loads(before)["hash"]
    code, _, err = run(capsys, "-c", str(case), "import", probes)
    assert code == 1
    assert "have been let go (retention); older history cannot be added" in err


def test_an_exclusion_of_another_month_leaves_an_issued_month_alone(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "-c", str(case), "import", str(case.parent / "probes.csv"))
    _, out, _ = july(capsys, case, "--issue")
    issued = json.loads(out)
    (case.parent / "exclusions.yaml").write_text(
        '- {id: EX-9, category: power, scope: {devices: [CAM2]}, start: "2025-09-02T08:00:00+08:00",\n'
        '   end: "2025-09-02T12:00:00+08:00", reason: 停电, status: proposed}\n',
        encoding="utf-8",
    )
    case.write_text(case.read_text() + "exclusions: exclusions.yaml\n", encoding="utf-8")
    _, out, err = july(capsys, case)
    assert (json.loads(out)["status"], json.loads(out)["hash"], err) == ("issued", issued["hash"], "")


def test_statement_as_xlsx_and_pdf(case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from openpyxl import load_workbook

    run(capsys, "-c", str(case), "import", str(case.parent / "probes.csv"))
    xlsx, pdf = tmp_path / "july.xlsx", tmp_path / "july.pdf"
    for path in (xlsx, pdf):
        assert (
            july(
                capsys,
                case,
                "-o",
                str(path),
            )[0]
            == 0
        )
    _, out, _ = july(capsys, case)
    doc = json.loads(out)
    wb = load_workbook(xlsx)
    assert wb.sheetnames == [
        "结算单 Statement",
        "设备 Devices",
        "故障 Outages",
        "免责 Exclusions",
        "扣款 Deductions",
    ]
    summary = {
        row[1].value: (row[0].value, row[2].value) for row in wb["结算单 Statement"].iter_rows(min_row=3)
    }
    assert summary["payable"] == ("应付金额", float(doc["payable"]))
    assert summary["hash"] == ("结算单哈希", doc["hash"])
    deductions = wb["扣款 Deductions"]
    assert [c.value for c in deductions[1]] == [
        "扣款规则",
        "设备编号",
        "考核指标",
        "故障开始",
        "扣款原因",
        "金额",
    ]
    assert [c.value for c in deductions[2]] == ["rule", "device", "kpi", "outage_start", "reason", "amount"]
    assert deductions.max_row == 2 + len(doc["deductions"])
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") >= 1


def test_the_fleet_is_parsed_once_and_reparsed_when_a_file_changes(
    case: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import slamon.loaders.fleet

    parses = []
    real = slamon.loaders.fleet.load_fleet
    monkeypatch.setattr(slamon.loaders.fleet, "load_fleet", lambda config: parses.append(1) or real(config))
    run(capsys, "-c", str(case), "import", str(case.parent / "probes.csv"))
    july(capsys, case)
    assert len(parses) == 1
    inv = case.parent / "inventory.yaml"
    inv.write_text(inv.read_text() + "\n")  # any change of bytes
    _, out, _ = july(capsys, case)
    assert len(parses) == 2
    assert json.loads(out)["fee_total"] == "200.00"


# --- probe --once: the fleet cache and the JSON lines ---------------------------------------------

ROOT = Path(__file__).parent.parent


def probe_usage(capsys: pytest.CaptureFixture[str], config: Path) -> str:
    """`probe --once --device NOPE`: the fleet is loaded (cache or parse), then the usage error
    stops it before any socket is opened (no privilege needed); returns stderr."""
    with pytest.raises(SystemExit) as done:
        run(capsys, "-c", str(config), "probe", "--once", "--device", "NOPE")
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--device: not in the inventory: NOPE" in err
    return err


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import slamon.loaders.fleet

    parses: list[int] = []
    real = slamon.loaders.fleet.load_fleet
    monkeypatch.setattr(slamon.loaders.fleet, "load_fleet", lambda config: parses.append(1) or real(config))
    return parses


def test_probe_goes_through_the_fleet_cache(
    case: Path, store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsed once per change of bytes; on SQLite the entry is read without the Store (SQLAlchemy)."""
    from slamon.store import Store

    case.write_text(case.read_text().replace("sqlite:///slamon.db", store_url), encoding="utf-8")
    Store(store_url).close()  # a database, as `slamon run` leaves it
    parses = count_parses(monkeypatch)
    probe_usage(capsys, case)
    assert len(parses) == 1, "cold: parsed, and the entry written"
    if store_url.startswith("sqlite"):

        def no_store(*args: object, **kw: object) -> None:
            raise AssertionError("a warm probe on SQLite does not open the Store")

        monkeypatch.setattr(Store, "__init__", no_store)
    probe_usage(capsys, case)
    assert len(parses) == 1, "warm: read back"
    inventory = case.parent / "inventory.yaml"
    inventory.write_text(inventory.read_text() + "# a comment is a change of bytes\n", encoding="utf-8")
    monkeypatch.undo()
    parses = count_parses(monkeypatch)
    probe_usage(capsys, case)
    probe_usage(capsys, case)
    assert len(parses) == 1


def test_probe_never_creates_a_database(
    case: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = count_parses(monkeypatch)
    probe_usage(capsys, case)
    probe_usage(capsys, case)
    assert len(parses) == 2, "no database: nowhere to remember the fleet, so parsed each time"
    assert not (case.parent / "slamon.db").exists()


def test_probe_with_a_damaged_cache_entry_parses_and_says_so(
    case: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import sqlite3

    run(capsys, "-c", str(case), "statement", "--contract", "C1", "--month", "2025-07")  # caches the fleet
    with sqlite3.connect(case.parent / "slamon.db") as conn:  # damaged, with a digest to match
        digest = hashlib.sha256(b"{").hexdigest()
        assert conn.execute("UPDATE fleet_cache SET body = '{', sha256 = ?", (digest,)).rowcount == 1
    parses = count_parses(monkeypatch)
    probe_usage(capsys, case)
    assert len(parses) == 1
    assert "fleet cache entry sha256:" in caplog.text
    assert "unreadable, parsing the files instead" in caplog.text


def test_probe_never_uses_a_cache_entry_edited_in_the_database(
    case: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An address edited in the cached fleet would send probes elsewhere: the entry no longer
    matches its digest, so the files are parsed (and the entry written again)."""
    import sqlite3

    run(capsys, "-c", str(case), "statement", "--contract", "C1", "--month", "2025-07")  # caches the fleet
    with sqlite3.connect(case.parent / "slamon.db") as conn:
        edit = "UPDATE fleet_cache SET body = replace(body, '127.0.30.2', '127.0.30.9')"
        assert conn.execute(edit).rowcount == 1
    parses = count_parses(monkeypatch)
    probe_usage(capsys, case)
    assert len(parses) == 1
    assert "the stored bytes do not match their SHA-256" in caplog.text
    assert "parsing the files instead" in caplog.text
    caplog.clear()
    probe_usage(capsys, case)
    assert len(parses) == 1, "the entry was written again from the files"
    assert "do not match" not in caplog.text


def test_probe_loads_neither_the_store_nor_the_service_libraries(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a warm cache `probe` needs none of SQLAlchemy, aiohttp, Alembic (numpy comes with the ICMP
    engine, which this run stops before)."""
    from slamon.store import Store

    Store(f"sqlite:///{case.parent / 'slamon.db'}").close()
    probe_usage(capsys, case)  # cold: the entry is written through the Store
    script = (
        "import sys\nfrom slamon.cli import main\ntry:\n"
        f"    main(['-c', {str(case)!r}, 'probe', '--once', '--device', 'NOPE'])\n"
        "except SystemExit as done:\n    assert done.code == 2\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'aiohttp', 'alembic', 'numpy'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_probe_json_lines_are_what_json_dumps_writes() -> None:
    """The fast lines are byte for byte json.dumps(probe_json(...)), whatever the result holds."""
    from zoneinfo import ZoneInfo

    from slamon.cli import probe_json, probe_json_lines
    from slamon.model import Defect, DeviceId, ProbeKind, ProbeResult

    at = datetime(2025, 7, 1, 1, 2, 3, 456789, tzinfo=UTC)
    later = datetime(2025, 7, 1, 1, 2, 33, tzinfo=UTC)
    results = [
        ProbeResult(DeviceId("CAM1"), ProbeKind.ICMP, at, True, 0.0512345, 0.0),
        ProbeResult(DeviceId("CAM2"), ProbeKind.ICMP, at, False, None, 1.0, error="no echo reply"),
        ProbeResult(DeviceId("CAM3"), ProbeKind.ICMP, at, True, 12.3456, 1 / 3),
        ProbeResult(DeviceId('引号"\\\n'), ProbeKind.ICMP, at, True, 1e-9, 0.5),
        ProbeResult(DeviceId("CAM5"), ProbeKind.ICMP, later, False, None, None, error='socket "refused"'),
        ProbeResult(DeviceId("CAM6"), ProbeKind.ICMP, at, True, float("nan"), 0.0),
        ProbeResult(DeviceId("CAM7"), ProbeKind.ICMP, at, True, 1.0, 0),
        ProbeResult(DeviceId("CAM8"), ProbeKind.VIDEO, at, True, defects=frozenset({Defect("black")})),
        ProbeResult(DeviceId("CAM9"), ProbeKind.SNMP, at, True, 2.0, 0.0, detail={"ports": [1, 2]}),
        ProbeResult(DeviceId("CAM1"), ProbeKind.SNMP, at, True, 0.0004999, 0.0),
    ]
    zones = {r.device: ZoneInfo("Asia/Shanghai") for r in results}
    zones[DeviceId("CAM3")] = ZoneInfo("UTC")
    expected = [json.dumps(probe_json(r, zones[r.device]), ensure_ascii=False) + "\n" for r in results]
    assert probe_json_lines(results, zones) == expected


@pytest.mark.parametrize(
    ("count", "received", "rtt_ns", "cut_from"),
    [
        (1, [1, 1, 0, 1], [51_234, 1_000_500, 0, 2_500], 4),  # x500 ns: a tie round() settles
        (1, [0, 0, 0, 0], [0, 0, 0, 0], 1),  # refused from the second on
        (1, [1, 0, 1, 0], [7, 0, 999_999_999, 0], 2),
        (3, [3, 2, 0, 1], [150_000, 41_001, 0, 12_345_678], 3),
        (2, [2, 1, 0, 0], [1_001, 500, 0, 0], 4),
    ],
)
@pytest.mark.parametrize("ids", [["CAM1", "CAM2", "SW-1.a", "X_9"], ["CAM1", '引号"\\\n', "C\t", "D"]])
@pytest.mark.parametrize("zones", [["Asia/Shanghai"] * 4, ["Asia/Shanghai", "UTC", "UTC", "America/Caracas"]])
def test_probe_once_icmp_lines_are_probe_json_lines(
    count: int, received: list[int], rtt_ns: list[int], cut_from: int, ids: list[str], zones: list[str]
) -> None:
    """probe --once's plain ICMP round prints, from its columns, the very bytes probe_json_lines
    writes for the results the prober would give (and so json.dumps writes: the test above)."""
    from zoneinfo import ZoneInfo

    from slamon.cli import LINES, icmp_errors, icmp_json_lines, icmp_results, probe_json_lines
    from slamon.model import DeviceId

    at = datetime(2025, 7, 1, 1, 2, 3, 456789, tzinfo=UTC)
    refused = "the socket refused sends for 1s"
    errors = icmp_errors(received, cut_from, refused)
    results = icmp_results(ids, at, received, rtt_ns, count, errors)
    zone_of = {DeviceId(d): ZoneInfo(z) for d, z in zip(ids, zones, strict=True)}
    times = [at.astimezone(ZoneInfo(z)).isoformat() for z in zones]
    expected = "".join(probe_json_lines(results, zone_of))
    assert "".join(icmp_json_lines(ids, times, received, rtt_ns, count, cut_from, refused)) == expected
    many = [f"C{i:05d}" for i in range(LINES + 3)]  # more than one piece
    received, rtt_ns = [1, 0] * (len(many) // 2) + [1], list(range(len(many)))
    results = icmp_results(many, at, received, rtt_ns, 1, icmp_errors(received, len(many), refused))
    pieces = list(icmp_json_lines(many, [times[0]] * len(many), received, rtt_ns, 1, len(many), refused))
    assert len(pieces) == 2
    assert "".join(pieces) == "".join(
        probe_json_lines(results, dict.fromkeys(map(DeviceId, many), zone_of[DeviceId(ids[0])]))
    )


def test_probe_rtt_texts_are_round_trips_of_round() -> None:
    """One echo's RTT printed from its whole microseconds is repr(round(ms, 3)), ties included."""
    from slamon.cli import _rtt_texts

    rtt_ns = [*range(0, 3_000_000, 1_237), *range(499, 2_000_000_000, 9_999_991), 1_500, 2_500, 1_000_500]
    expected = [repr(round(t / 1e6, 3)) for t in rtt_ns]
    assert _rtt_texts([1] * len(rtt_ns), rtt_ns) == expected
    assert _rtt_texts([True, False], [40_000, 0]) == ["0.04", "null"]


@pytest.mark.parametrize(
    "config",
    [
        "examples/july-2025/slamon.yaml",
        "examples/quickstart/slamon.yaml",
        "tests/testdata/config/good/slamon.yaml",
    ],
)
def test_probe_reads_from_the_cache_entry_alone_what_it_needs(config: str) -> None:
    """The entry's probe section, read without decoding the fleet, is the fleet's view: ids in
    order, packed IPv4 addresses, contract zones, and every device another probe kind watches
    (which sends probe --once to the service's engines)."""
    from slamon.loaders.config import load_config
    from slamon.loaders.fleet import encode_fleet, load_fleet, view_of
    from slamon.loaders.fleet_cache import ipv4_packed, probe_view
    from slamon.model import ProbeKind
    from slamon.probers import devices_for

    fleet = load_fleet(load_config(ROOT / config))
    view = probe_view(encode_fleet(fleet))
    assert view == view_of(fleet)
    devices = [fleet.inventory.devices[d] for d in sorted(fleet.inventory.devices)]
    assert view.ids == [d.id for d in devices]
    assert view.ipv4 == ipv4_packed([d.address for d in devices])
    zones = [z for z, k in view.zones for _ in range(k)]
    assert zones == [fleet.contracts[d.contract].timezone for d in devices]
    for kind in ProbeKind:
        if kind is not ProbeKind.ICMP:
            assert {d.id for d in devices_for(fleet, kind)} <= view.others


def test_probe_view_of_a_damaged_section_is_refused() -> None:
    from slamon.loaders.config import load_config
    from slamon.loaders.fleet import encode_fleet, load_fleet
    from slamon.loaders.fleet_cache import probe_view

    body = encode_fleet(load_fleet(load_config(ROOT / "examples/quickstart/slamon.yaml")))
    for damaged in (
        body.replace('"n":', '"n":1', 1),
        body.replace('"ipv4":"', '"ipv4":"00', 1),
        body.replace(',"inventory_sha256"', ' ,"inventory_sha256"', 1),
        body[:200],  # (a section read whole stands whatever follows it: decode_fleet checks that)
        "{" + body[1:].replace('"format"', '"formats"', 1),
    ):
        with pytest.raises((ValueError, KeyError, TypeError)):
            probe_view(damaged)


@pytest.mark.parametrize(
    "config",
    [
        "examples/july-2025/slamon.yaml",
        "examples/quickstart/slamon.yaml",
        "tests/testdata/config/good/slamon.yaml",
    ],
)
def test_probe_reads_back_from_the_cache_exactly_the_fleet_the_files_give(config: str) -> None:
    """Every field of every device, site, contract and exclusion survives the cache's form."""
    from slamon.canonical import canonical_json, inventory_to_dict, sha256_hex
    from slamon.loaders.config import load_config
    from slamon.loaders.fleet import decode_fleet, encode_fleet, load_fleet

    fleet = load_fleet(load_config(ROOT / config))
    again = decode_fleet(encode_fleet(fleet))
    assert again == fleet
    assert list(again.inventory.devices) == sorted(fleet.inventory.devices)
    # the inventory's fingerprint comes along, as the store versions it (so a start need not hash)
    assert again.inventory_sha256 == sha256_hex(canonical_json(inventory_to_dict(fleet.inventory)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--shard", "3/3"], "slamon: error: --shard: '3/3': I must be 0 to N-1, and N at least 1\n"),
        (["run", "--shard", "x"], "slamon: error: --shard: 'x' is not I/N (e.g. 0/3: the first of three shards)\n"),
        (["serve", "--listen", "nowhere"], "slamon: error: --listen: 'nowhere' is not host:port (use HOST:PORT, e.g. 127.0.0.1:9108 or [::1]:9108)\n"),
    ],
)  # fmt: skip
def test_bad_shard_or_listen_flags_stop_before_anything_starts(
    case: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "-c", str(case), *args)
    assert (code, out, err) == (1, "", message)
