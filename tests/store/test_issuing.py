"""Issue, freeze, revise, verify, hardened (docs/sla.md §7), through the command line against SQLite
and PostgreSQL: each finding of issue 11 item 5 is a test, the database edited with SQL as someone
with access to it would edit it.

- `statement verify` compares a file's status, revision, replaces and issued_at with the store;
- a month is issued only once it has ended;
- coverage is on every statement, and a month below the contract's minimum is issued only with
  `--accept-low-coverage REASON`, kept with the statement;
- an issued body, a raw result block or a cached fleet edited in the database is an error naming it;
- `--revision N` prints any issued revision byte for byte, and an issued statement's files come out
  the same bytes later.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from slamon.cli import main
from slamon.clock import FakeClock
from slamon.store.blocks import RECORD
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
DOWN = ("2025-07-10T08:00:00+08:00", "2025-07-10T14:00:00+08:00")  # CAM2: 6 hours, 2 overrun hours
AUGUST_2 = datetime(2025, 8, 2, tzinfo=UTC)
EXCLUSIONS = """\
- {id: EX-1, category: power, scope: {devices: [CAM1]}, start: "2025-07-20T08:00:00+08:00",
   end: "2025-07-20T10:00:00+08:00", reason: 停电, status: approved, approved_by: 王经理}
"""


def history() -> str:
    return (
        "device,time,probe,ok,rtt_ms,defects\n"
        + every(300, *JULY, "SW1")
        + every(300, *JULY, "CAM1")
        + every(300, JULY[0], DOWN[0], "CAM2")
        + every(300, *DOWN, "CAM2", ok=0)
        + every(300, DOWN[1], JULY[1], "CAM2")
    )


@pytest.fixture
def case(tmp_path: Path, store_url: str) -> Path:
    """The case's files, their database the parametrised store (SQLite or PostgreSQL)."""
    config = write_case(tmp_path / "case", INVENTORY, history(), exclusions=EXCLUSIONS)
    config.write_text(config.read_text().replace("sqlite:///slamon.db", store_url), encoding="utf-8")
    return config


@pytest.fixture
def db(store_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(store_url)
    yield engine
    engine.dispose()


def run(
    capsys: pytest.CaptureFixture[str], case: Path, *args: str, at: datetime = AUGUST_2
) -> tuple[int, str, str]:
    code = main(["-c", str(case), *args], clock=FakeClock(at))
    out, err = capsys.readouterr()
    return code, out, err


def july(
    capsys: pytest.CaptureFixture[str], case: Path, *args: str, at: datetime = AUGUST_2
) -> tuple[int, str, str]:
    return run(capsys, case, "statement", "--contract", "C1", "--month", "2025-07", *args, at=at)


def imported(capsys: pytest.CaptureFixture[str], case: Path, name: str = "probes.csv") -> None:
    code, _, err = run(capsys, case, "import", str(case.parent / name))
    assert code == 0, err


def issue_july(
    capsys: pytest.CaptureFixture[str], case: Path, tmp_path: Path
) -> tuple[Path, dict[str, object]]:
    imported(capsys, case)
    path = tmp_path / "issued.json"
    code, _, err = july(capsys, case, "--issue", "-o", str(path))
    assert (code, err) == (0, "issued revision 1\n")
    return path, json.loads(path.read_text(encoding="utf-8"))


def verify(capsys: pytest.CaptureFixture[str], case: Path, path: Path) -> tuple[int, str, str]:
    return run(capsys, case, "statement", "verify", str(path))


# --- verify compares what a file says of itself with the store ----------------------------------


@pytest.mark.parametrize(
    ("key", "value", "finding"),
    [
        ("revision", 2, "revision 2 of C1 2025-07 was never issued (issued revisions: 1)"),
        ("status", "draft", "issued_at: a draft has none, the file says '2025-08-02T08:00:00+08:00'"),
        ("status", "final", "status: 'final' is neither 'draft' nor 'issued'"),
        (
            "issued_at",
            "2025-08-01T09:00:00+08:00",
            "issued_at: file '2025-08-01T09:00:00+08:00', issued revision 1 '2025-08-02T08:00:00+08:00'",
        ),
        ("replaces", "sha256:" + "0" * 64, f"replaces: file 'sha256:{'0' * 64}', issued revision 1 None"),
        (
            "coverage_override",
            {"reason": "none needed", "by": "x"},
            "coverage_override: file {'reason': 'none needed', 'by': 'x'}, issued revision 1 None",
        ),
    ],
)
def test_verify_compares_status_revision_issued_at_and_replaces_with_the_store(
    case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, key: str, value: object, finding: str
) -> None:
    """Finding: `statement verify` accepted a file whose revision, status or issued_at was edited
    (none of them is in the hash: a draft and its issued copy share it)."""
    path, issued = issue_july(capsys, case, tmp_path)
    assert verify(capsys, case, path)[:2] == (
        0,
        f"verified: C1 2025-07 revision 1 recomputes to {issued['hash']}\n",
    )
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({**issued, key: value}, ensure_ascii=False, indent=2), encoding="utf-8")
    code, out, err = verify(capsys, case, edited)
    assert (code, out) == (1, "")
    assert finding in err.splitlines()


def test_a_draft_verifies_against_the_revisions_issued_before_it(
    case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    imported(capsys, case)
    draft = tmp_path / "draft.json"
    assert july(capsys, case, "-o", str(draft))[0] == 0
    assert verify(capsys, case, draft)[0] == 0
    assert july(capsys, case, "--issue")[0] == 0
    assert verify(capsys, case, draft)[0] == 0, "issued as it was: the draft still describes revision 1"
    doc = json.loads(draft.read_text(encoding="utf-8"))
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({**doc, "revision": 2}), encoding="utf-8")
    code, _, err = verify(capsys, case, edited)
    assert code == 1
    assert f"replaces: file None, revision 1 was issued as {doc['hash']!r}" in err


# --- a month is issued only once it has ended ------------------------------------------------------


def test_a_month_is_issued_only_once_it_has_ended(
    case: Path, capsys: pytest.CaptureFixture[str], db: sa.Engine
) -> None:
    """Finding: `--issue` issued a month that had not started. A draft can be computed at any time."""
    imported(capsys, case)
    mid_july = datetime(2025, 7, 15, tzinfo=UTC)
    code, _, err = run(
        capsys, case, "statement", "--contract", "C1", "--month", "2025-08", "--issue", at=mid_july
    )
    assert (code, err) == (
        1,
        (
            "slamon: error: C1 2025-08 cannot be issued before the month has ended "
            "(2025-09-01T00:00:00+08:00): compute a draft instead (without --issue)\n"
        ),
    )
    last_second = datetime(2025, 7, 31, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
    code, _, err = july(capsys, case, "--issue", at=last_second)
    assert (code, err) == (
        1,
        (
            "slamon: error: C1 2025-07 cannot be issued before the month has ended "
            "(2025-08-01T00:00:00+08:00): compute a draft instead (without --issue)\n"
        ),
    )
    code, out, err = july(capsys, case, at=mid_july)
    assert (code, json.loads(out)["status"], err) == (0, "draft", "")
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM statements")).scalar() == 0
    midnight = datetime(2025, 7, 31, 16, 0, tzinfo=UTC)
    assert july(capsys, case, "--issue", at=midnight)[:3:2] == (0, "issued revision 1\n")


# --- coverage ---------------------------------------------------------------------------------------


def test_coverage_is_on_every_statement(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, case)
    code, out, _ = july(capsys, case)
    assert (code, json.loads(out)["coverage"]) == (0, 1.0)
    assert list(json.loads(out))[list(json.loads(out)).index("rates") + 1] == "coverage"
    code, out, _ = july(capsys, case, "--format", "text")
    assert "  coverage          100.0000 %    (scheduled time with evidence)\n" in out


def test_a_month_without_evidence_is_not_issued_without_an_audited_override(
    case: Path, capsys: pytest.CaptureFixture[str], db: sa.Engine, tmp_path: Path
) -> None:
    """Finding: a store with no evidence for the month issued revision 1 as 100 % available, fully
    payable, with no warning."""
    code, out, err = july(capsys, case)  # nothing imported
    draft = json.loads(out)
    assert (code, draft["coverage"], draft["payable"], draft["fee_total"]) == (0, 0.0, "200.00", "200.00")
    short = (
        "coverage 0.0000 % is below the contract's minimum of 99.0000 % (sla.min_coverage): "
        "8,035,200 of the devices' 8,035,200 scheduled seconds have no evidence"
    )
    assert err == f"{short}: this month cannot be issued without --accept-low-coverage\n"

    code, _, err = july(capsys, case, "--issue")
    assert (code, err) == (
        1,
        (
            f"slamon: error: C1 2025-07 cannot be issued: {short}. Import the missing evidence, or issue it "
            "anyway with --accept-low-coverage REASON (kept with the statement)\n"
        ),
    )
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM statements")).scalar() == 0

    with pytest.raises(SystemExit) as exc:
        july(capsys, case, "--accept-low-coverage", "why")
    assert exc.value.code == 2, "the override goes with --issue"
    assert "--accept-low-coverage goes with --issue" in capsys.readouterr().err

    reason = "monitoring server lost in July; the vendor's own logs were checked by hand"
    path = tmp_path / "issued.json"
    code, _, err = july(
        capsys, case, "--issue", "--accept-low-coverage", reason, "--as", "王经理", "-o", str(path)
    )
    who = "王经理"
    assert (code, err) == (0, f"issued revision 1 below the minimum coverage, accepted by {who}: {reason}\n")
    issued = json.loads(path.read_text(encoding="utf-8"))
    assert issued["coverage_override"] == {"reason": reason, "by": who}
    assert issued["hash"] == draft["hash"], "the override is not part of the figures"
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT override_by, override_reason FROM statements")).one()
        audited = conn.execute(
            sa.text("SELECT actor, body FROM audit_log WHERE action = 'statement.issue'")
        ).one()
    assert tuple(row) == (who, reason)
    assert audited.actor == who
    assert json.loads(audited.body)["coverage_override"] == {"reason": reason, "by": who}
    assert verify(capsys, case, path)[0] == 0
    code, out, _ = july(capsys, case, "--format", "text")
    assert "  coverage            0.0000 %    (scheduled time with evidence)\n" in out
    assert f"  issued below the minimum coverage, accepted by {who}: {reason}\n" in out


def test_the_contract_sets_the_minimum_coverage(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contract = case.parent / "contracts" / "c1.yaml"
    contract.write_text(contract.read_text() + "  min_coverage: 0\n", encoding="utf-8")
    code, _, err = july(capsys, case, "--issue", "--accept-low-coverage", "not needed")
    assert (code, err) == (0, "issued revision 1 (coverage 0.0000 % meets the minimum: nothing to accept)\n")


def test_the_override_defaults_to_the_login_name(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = july(capsys, case, "--issue", "--accept-low-coverage", "lost")
    assert (code, json.loads(out)["coverage_override"]) == (0, {"reason": "lost", "by": getpass.getuser()})


# --- tamper evidence: issued bodies, raw results, the cached fleet ----------------------------------


def test_an_issued_body_edited_in_the_database_is_refused(
    case: Path, capsys: pytest.CaptureFixture[str], db: sa.Engine, tmp_path: Path
) -> None:
    """Finding: an issued statement's body edited in the database (payable changed) was printed as
    issued, with the genuine hash."""
    path, issued = issue_july(capsys, case, tmp_path)
    with db.begin() as conn:
        body = conn.execute(sa.text("SELECT body FROM statements")).scalar_one()
        forged = body.replace(f'"payable": "{issued["payable"]}"', '"payable": "1500.00"')
        assert forged != body
        conn.execute(sa.text("UPDATE statements SET body = :body"), {"body": forged})
    code, out, err = july(capsys, case)
    assert (code, out) == (1, "")
    assert err.startswith(
        "slamon: error: issued statement C1 2025-07 revision 1: the stored bytes do not match their SHA-256 "
    )
    assert err.endswith("they were changed in the database after slamon wrote them\n")
    assert run(capsys, case, "statement", "--contract", "C1", "--month", "2025-07", "--revision", "1")[0] == 1
    code, _, err = verify(capsys, case, path)
    assert code == 1
    assert "issued statement C1 2025-07 revision 1: the stored bytes do not match their SHA-256" in err

    # the same edit with a digest to match: the body no longer gives the hash it carries
    with db.begin() as conn:
        conn.execute(
            sa.text("UPDATE statements SET sha256 = :sha"),
            {"sha": hashlib.sha256(forged.encode()).hexdigest()},
        )
    code, _, err = july(capsys, case)
    assert (code, err) == (
        1,
        (
            "slamon: error: issued statement C1 2025-07 revision 1 in the database is not the statement that "
            "was issued (its figures do not give its hash): it was changed after it was issued\n"
        ),
    )


def _set_ok(data: bytes) -> bytes:
    """The block's results, every failure made a success."""
    records = np.frombuffer(data, RECORD).copy()
    records["ok"] = 1
    return records.tobytes()


def _edit_cam2_outage(db: sa.Engine, *, rehash: bool) -> int:
    """CAM2's failures of 10 July (hours 00:00–06:00 UTC) set to ok in the database; how many blocks."""
    first = int(datetime(2025, 7, 10, tzinfo=UTC).timestamp()) // 3600
    with db.begin() as conn:
        key = conn.execute(sa.text("SELECT key FROM device_keys WHERE device = 'CAM2'")).scalar_one()
        rows = conn.execute(
            sa.text(
                "SELECT kind, hour, part, data FROM result_blocks WHERE device = :d AND hour >= :a AND hour < :b"
            ),
            {"d": key, "a": first, "b": first + 6},
        ).all()
        for r in rows:
            data = _set_ok(bytes(r.data))
            sets = "data = :data" + (", sha256 = :sha" if rehash else "")
            conn.execute(
                sa.text(
                    f"UPDATE result_blocks SET {sets} WHERE device = :d AND kind = :k AND hour = :h AND part = :p"
                ),
                {
                    "data": data,
                    "sha": hashlib.sha256(data).hexdigest(),
                    "d": key,
                    "k": r.kind,
                    "h": r.hour,
                    "p": r.part,
                },
            )
    return len(rows)


BLOCK = "raw icmp results of CAM2, hour from 2025-07-10T00:00:00+00:00 (block part 0)"


def test_raw_results_edited_in_the_database_fail_verify_and_stop_a_rebuild(
    case: Path, capsys: pytest.CaptureFixture[str], db: sa.Engine, tmp_path: Path
) -> None:
    """Finding: raw results edited in the database (failures set to ok) passed `verify`, and the next
    rebuild of the timelines silently dropped the outage."""
    path, _ = issue_july(capsys, case, tmp_path)
    assert _edit_cam2_outage(db, rehash=False) == 6
    code, out, err = verify(capsys, case, path)
    assert (code, out) == (1, "")
    assert f"{BLOCK}: the stored bytes do not match their SHA-256" in err
    code, _, err = july(capsys, case, "--issue")
    assert code == 1
    assert err.startswith(f"slamon: error: {BLOCK}: the stored bytes do not match their SHA-256")

    # a rebuild (a state setting changed) reads the raw results: it stops rather than drop the outage
    contract = case.parent / "contracts" / "c1.yaml"
    contract.write_text(contract.read_text().replace("down_after: 3", "down_after: 4"), encoding="utf-8")
    code, out, err = july(capsys, case)
    assert (code, out) == (1, "")
    assert err.startswith(f"slamon: error: {BLOCK}: the stored bytes do not match their SHA-256")


def test_raw_results_edited_with_digests_to_match_change_the_evidence_digest(
    case: Path, capsys: pytest.CaptureFixture[str], db: sa.Engine, tmp_path: Path
) -> None:
    """The edit rewrites each block's digest too: the month's evidence digest, among the statement's
    hashed inputs, changes, so verify names the inputs and the month is a draft revision."""
    path, _ = issue_july(capsys, case, tmp_path)
    _edit_cam2_outage(db, rehash=True)
    code, _, err = verify(capsys, case, path)
    assert code == 1
    assert "the inputs differ from those the statement was computed from" in err
    code, out, err = july(capsys, case)
    assert (json.loads(out)["status"], json.loads(out)["revision"]) == ("draft", 2)
    assert (
        err
        == "inputs changed since revision 1 was issued: this is draft revision 2; use --issue to issue it\n"
    )


def test_an_edited_cached_fleet_is_refused(
    case: Path, capsys: pytest.CaptureFixture[str], db: sa.Engine
) -> None:
    """Finding: an edited cached fleet changed an exclusion's category without any file changing."""
    imported(capsys, case)
    code, out, _ = july(capsys, case)
    assert [(e["id"], e["category"], e["honoured"]) for e in json.loads(out)["exclusions"]] == [
        ("EX-1", "power", True)
    ]
    with db.begin() as conn:
        done = conn.execute(
            sa.text(
                'UPDATE fleet_cache SET body = replace(body, \'"category":"power"\', \'"category":"force_majeure"\')'
            )
        )
        assert done.rowcount == 1
        key = conn.execute(sa.text("SELECT key FROM fleet_cache")).scalar_one()
    code, out, err = july(capsys, case)
    assert (code, out) == (1, "")
    assert err.startswith(f"slamon: error: cached fleet {key}: the stored bytes do not match their SHA-256 ")


# --- any issued revision, byte for byte; an issued statement's files, the same bytes later ----------


def test_any_revision_is_fetched_byte_for_byte_and_its_files_come_out_the_same(
    case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    imported(capsys, case)
    first = tmp_path / "first"
    first.mkdir()
    code, _, err = july(capsys, case, "--issue", "-o", str(first / "r1.json"))
    assert (code, err) == (0, "issued revision 1\n")
    formats = ["csv", "xlsx", "text", *(["pdf"] if _pdf_font() else [])]
    for fmt in formats:
        assert july(capsys, case, "-o", str(first / f"r1.{fmt}"))[0] == 0

    # later: a new clock, the site renamed in the inventory (the PDF's label), late evidence for July
    inventory = case.parent / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace("城东路口", "城西路口"), encoding="utf-8")
    later = datetime(2025, 8, 20, tzinfo=UTC)
    again = tmp_path / "again"
    again.mkdir()
    for fmt in ["json", *formats]:
        assert july(capsys, case, "-o", str(again / f"r1.{fmt}"), at=later)[0] == 0
        assert (again / f"r1.{fmt}").read_bytes() == (first / f"r1.{fmt}").read_bytes(), fmt

    (case.parent / "late.csv").write_text(
        "device,time,probe,ok,rtt_ms,defects\n"
        + every(60, "2025-07-20T08:00:00+08:00", "2025-07-20T10:00:00+08:00", "CAM1", ok=0, probe="snmp"),
        encoding="utf-8",
    )
    imported(capsys, case, "late.csv")
    code, _, err = july(capsys, case, "--issue", "-o", str(tmp_path / "r2.json"), at=later)
    assert (code, err) == (0, "issued revision 2, replacing revision 1\n")
    for n, want in ((1, first / "r1.json"), (2, tmp_path / "r2.json")):
        code, out, _ = july(capsys, case, "--revision", str(n), at=later)
        assert (code, out.encode()) == (0, want.read_bytes())
    code, out, _ = july(capsys, case, "--revision", "1", "--format", "csv", at=later)
    assert out.encode() == (first / "r1.csv").read_bytes()
    code, _, err = july(capsys, case, "--revision", "3")
    assert (code, err) == (1, "slamon: error: no issued revision 3 of C1 2025-07 (issued revisions: 1, 2)\n")
    with pytest.raises(SystemExit):
        july(capsys, case, "--revision", "1", "--issue")


def _pdf_font() -> bool:
    from slamon.billing.render.fonts import cjk_fonts
    from slamon.errors import SlamonError

    try:
        cjk_fonts()
    except SlamonError:
        return False
    return True
