"""The exclusions workflow, tokens and the audit log from the command line, end to end: a statement's
figures change only after approval, a late approval after issuing makes revision n+1 naming the one
it replaces, the filing deadline, export and import, token revocation, `audit verify` on tampering."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from slamon.cli import main
from slamon.clock import FakeClock
from slamon.loaders.config import load_config
from slamon.loaders.exclusions import load_exclusions
from slamon.loaders.fleet import load_fleet
from tests.billing.harness import CONTRACT, write_case
from tests.test_cli import INVENTORY, history

CAM2_DOWN = ("2025-07-10T08:00:00+08:00", "2025-07-10T14:00:00+08:00")


@pytest.fixture
def case(tmp_path: Path) -> Path:
    contract = CONTRACT + "  filing_deadline: 10d\n"
    return write_case(tmp_path, INVENTORY, history(cam2_down=CAM2_DOWN), contract=contract)


Run = tuple[int, str, str]


def slamon(capsys: pytest.CaptureFixture[str], case: Path, when: str, *args: str) -> Run:
    """`slamon -c CASE ARGS…` at `when` (an instant with its offset)."""
    code = main(["-c", str(case), *args], clock=FakeClock(datetime.fromisoformat(when)))
    out, err = capsys.readouterr()
    return code, out, err


def july(
    capsys: pytest.CaptureFixture[str], case: Path, when: str, *extra: str
) -> tuple[dict[str, Any], str]:
    code, out, err = slamon(capsys, case, when, "statement", "--contract", "C1", "--month", "2025-07", *extra)
    assert code == 0, err
    return json.loads(out), err


def figures(doc: dict[str, Any]) -> tuple[object, ...]:
    return (doc["payable"], doc["deductions"], doc["rates"], doc["devices"])


def propose(capsys: pytest.CaptureFixture[str], case: Path, when: str, *fields: str) -> Run:
    return slamon(capsys, case, when, "exclusions", "propose", *fields, "--as", "ops-张")


POWER_CAM2 = ("--category", "power", "--device", "CAM2", "--start", CAM2_DOWN[0], "--end", CAM2_DOWN[1])
POWER_CAM2 += ("--reason", "供电局停电")


def test_the_figures_change_only_after_approval_and_a_late_approval_makes_a_revision(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        slamon(capsys, case, "2025-08-02T09:00:00+08:00", "import", str(case.parent / "probes.csv"))[0] == 0
    )
    before, _ = july(capsys, case, "2025-08-02T09:00:00+08:00")
    assert [d["rule"] for d in before["deductions"]] == ["repair_overrun", "cap"]

    code, out, err = propose(capsys, case, "2025-08-02T10:00:00+08:00", *POWER_CAM2)
    assert (code, out) == (0, "EX-2025-07-01\n")
    assert err == "proposed EX-2025-07-01 (version 1): it counts once a contract manager approves it\n"
    proposed, _ = july(capsys, case, "2025-08-02T10:00:00+08:00")
    assert figures(proposed) == figures(before), "a proposal changes no figure"
    [shown] = proposed["exclusions"]
    assert (shown["id"], shown["status"], shown["honoured"]) == ("EX-2025-07-01", "proposed", False)

    code, _, err = slamon(
        capsys, case, "2025-08-05T10:00:00+08:00", "exclusions", "approve", "EX-2025-07-01",
        "--reason", "供电局停电通知属实", "--as", "王经理",
    )  # fmt: skip
    assert (code, err) == (0, "approved EX-2025-07-01 (version 2)\n")
    approved, _ = july(capsys, case, "2025-08-05T10:00:00+08:00")
    assert approved["deductions"] == [], "CAM2's six hours are excluded: no overrun"
    assert approved["exclusions"][0]["honoured"] is True

    # a second claim, filed in time, still pending when the month is issued after the deadline
    code, out, _ = propose(
        capsys, case, "2025-08-08T10:00:00+08:00", "--category", "maintenance", "--site", "S1",
        "--start", "2025-07-20T01:00:00+08:00", "--end", "2025-07-20T03:00:00+08:00", "--reason", "交换机升级",
    )  # fmt: skip
    assert (code, out) == (0, "EX-2025-07-02\n")
    issued, err = july(capsys, case, "2025-08-12T09:00:00+08:00", "--issue", "--as", "王经理")
    assert (issued["revision"], err) == (1, "issued revision 1\n")

    code, _, err = slamon(
        capsys, case, "2025-08-15T10:00:00+08:00", "exclusions", "approve", "EX-2025-07-02",
        "--reason", "计划检修已报备", "--as", "王经理",
    )  # fmt: skip
    assert code == 0
    assert err == (
        "approved EX-2025-07-02 (version 2)\n"
        "C1 2025-07 was issued (revision 1): if this changes its figures, its next statement is draft "
        "revision 2 (issue it with `slamon statement --issue`)\n"
    )
    draft, err = july(capsys, case, "2025-08-15T10:00:00+08:00")
    assert (draft["status"], draft["revision"], draft["replaces"]) == ("draft", 2, issued["hash"])
    assert (
        err
        == "inputs changed since revision 1 was issued: this is draft revision 2; use --issue to issue it\n"
    )
    assert {d["id"]: d["excluded_s"] for d in draft["devices"]} == {
        "CAM1": 7200,
        "CAM2": 7200 + 21600,
        "SW1": 7200,
    }
    revised, err = july(capsys, case, "2025-08-15T11:00:00+08:00", "--issue", "--as", "王经理")
    assert (revised["revision"], revised["replaces"], err) == (
        2,
        issued["hash"],
        "issued revision 2, replacing revision 1\n",
    )

    code, out, _ = slamon(capsys, case, "2025-08-15T12:00:00+08:00", "audit", "list", "--json")
    assert [(e["actor"], e["action"], e["subject"]) for e in map(json.loads, out.splitlines())] == [
        ("ops-张", "exclusion.propose", "EX-2025-07-01"),
        ("王经理", "exclusion.approve", "EX-2025-07-01"),
        ("ops-张", "exclusion.propose", "EX-2025-07-02"),
        ("王经理", "statement.issue", "C1 2025-07 revision 1"),
        ("王经理", "exclusion.approve", "EX-2025-07-02"),
        ("王经理", "statement.issue", "C1 2025-07 revision 2"),
    ]
    last = json.loads(out.splitlines()[-1])["body"]
    assert (last["hash"], last["replaces"], last["revision"]) == (revised["hash"], issued["hash"], 2)


def test_proposals_close_at_the_contracts_filing_deadline(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = propose(capsys, case, "2025-08-10T23:59:59+08:00", *POWER_CAM2)
    assert (code, out) == (0, "EX-2025-07-01\n"), "the last second of the tenth day after July"
    code, out, err = propose(capsys, case, "2025-08-11T00:00:00+08:00", *POWER_CAM2, "--id", "EX-LATE")
    assert (code, out) == (1, "")
    assert err == (
        "slamon: error: too late: exclusions for 2025-07 under contract C1 could be proposed until "
        "2025-08-11T00:00:00+08:00 (sla.filing_deadline: 10d after the month); it is 2025-08-11T00:00:00+08:00\n"
    )
    # an amendment is a proposal too; a decision is not bound by the deadline
    code, _, err = slamon(
        capsys, case, "2025-09-01T00:00:00+08:00", "exclusions", "amend", "EX-2025-07-01",
        "--end", "2025-07-10T13:00:00+08:00",
    )  # fmt: skip
    assert code == 1
    assert err.startswith("slamon: error: too late: exclusions for 2025-07 under contract C1 ")
    code, _, err = slamon(
        capsys,
        case,
        "2025-09-01T00:00:00+08:00",
        "exclusions",
        "reject",
        "EX-2025-07-01",
        "--reason",
        "无证明",
    )
    assert (code, err) == (0, "rejected EX-2025-07-01 (version 2)\n")
    code, _, err = slamon(
        capsys,
        case,
        "2025-09-01T00:00:00+08:00",
        "exclusions",
        "reject",
        "EX-2025-07-01",
        "--reason",
        "again",
    )
    assert code == 1
    assert err.startswith("slamon: error: exclusion EX-2025-07-01 is already rejected (version 2, by ")


def test_a_decision_needs_a_reason_and_an_unknown_exclusion_is_named(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        slamon(capsys, case, "2025-08-02T00:00:00+08:00", "exclusions", "approve", "EX-1")
    assert exc.value.code == 2
    assert "the following arguments are required: --reason" in capsys.readouterr().err
    code, _, err = slamon(
        capsys, case, "2025-08-02T00:00:00+08:00", "exclusions", "approve", "EX-9", "--reason", "ok"
    )
    assert (code, err) == (1, "slamon: error: no exclusion 'EX-9'\n")
    code, _, err = propose(
        capsys, case, "2025-08-02T00:00:00+08:00", *POWER_CAM2[:3], "CAM9", *POWER_CAM2[4:]
    )
    assert (code, err) == (1, "slamon: error: proposal: scope.devices[0]: unknown device 'CAM9'\n")
    code, _, err = propose(
        capsys, case, "2025-08-02T00:00:00+08:00", *POWER_CAM2[:5], "2025-07-10T08:00:00", *POWER_CAM2[6:]
    )
    assert (code, err) == (
        1,
        "slamon: error: proposal: start: '2025-07-10T08:00:00' has no UTC offset (add one, e.g. +08:00)\n",
    )


def test_evidence_is_kept_by_its_sha256_and_given_back(
    case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    notice = tmp_path / "停电通知.jpg"
    notice.write_bytes(b"\xff\xd8\xff\xe0 a photo of the notice")
    propose(capsys, case, "2025-08-02T00:00:00+08:00", *POWER_CAM2, "--evidence", str(notice))
    code, out, _ = slamon(
        capsys, case, "2025-08-02T00:00:00+08:00", "exclusions", "show", "EX-2025-07-01", "--json"
    )
    [version] = [json.loads(line) for line in out.splitlines()]
    [ev] = version["evidence"]
    assert (ev["name"], ev["size"]) == ("停电通知.jpg", 26)
    back = tmp_path / "back.jpg"
    code, _, err = slamon(
        capsys,
        case,
        "2025-08-02T00:00:00+08:00",
        "exclusions",
        "evidence",
        "EX-2025-07-01",
        ev["sha256"],
        "-o",
        str(back),
    )
    assert (code, back.read_bytes()) == (0, notice.read_bytes())
    assert err == f"停电通知.jpg: 26 bytes, sha256:{ev['sha256']}\n"
    # more evidence alone leaves the status (and any decision) as it is
    code, _, err = slamon(
        capsys,
        case,
        "2025-08-03T00:00:00+08:00",
        "exclusions",
        "amend",
        "EX-2025-07-01",
        "--evidence",
        str(back),
    )
    assert (code, err) == (0, "amended EX-2025-07-01 (version 2): proposed\n")


def test_export_writes_an_exclusions_file_that_imports_as_nothing_new(
    case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    propose(capsys, case, "2025-08-02T00:00:00+08:00", *POWER_CAM2)
    slamon(
        capsys,
        case,
        "2025-08-03T00:00:00+08:00",
        "exclusions",
        "approve",
        "EX-2025-07-01",
        "--reason",
        "ok",
        "--as",
        "王经理",
    )
    exported = case.parent / "exclusions.yaml"
    code, _, err = slamon(
        capsys, case, "2025-08-04T00:00:00+08:00", "exclusions", "export", "-o", str(exported)
    )
    assert (code, err) == (0, "exported 1 exclusion\n")
    assert yaml.safe_load(exported.read_text(encoding="utf-8")) == [
        {
            "id": "EX-2025-07-01",
            "category": "power",
            "scope": {"devices": ["CAM2"]},
            "start": "2025-07-10T08:00:00+08:00",
            "end": "2025-07-10T14:00:00+08:00",
            "reason": "供电局停电",
            "status": "approved",
            "approved_by": "王经理",
        }
    ]
    case.write_text(case.read_text() + "exclusions: exclusions.yaml\n", encoding="utf-8")
    fleet = load_fleet(load_config(case))
    assert load_exclusions(exported, fleet.inventory, fleet.contracts)[0].approved_by == "王经理"
    slamon(capsys, case, "2025-08-05T00:00:00+08:00", "exclusions", "list")
    code, out, _ = slamon(
        capsys, case, "2025-08-05T00:00:00+08:00", "exclusions", "show", "EX-2025-07-01", "--json"
    )
    assert len(out.splitlines()) == 2, "the file says what is in force: no version imported"
    # a later decision in the store stands while the file is unchanged
    slamon(
        capsys, case, "2025-08-06T00:00:00+08:00", "exclusions", "reject", "EX-2025-07-01", "--reason", "错"
    )
    code, out, _ = slamon(capsys, case, "2025-08-07T00:00:00+08:00", "exclusions", "list", "--json")
    assert json.loads(out)["status"] == "rejected"
    # and an edit of the file supersedes it, as a version by `file`
    exported.write_text(
        exported.read_text(encoding="utf-8").replace("供电局停电", "供电局计划停电"), encoding="utf-8"
    )
    code, out, _ = slamon(capsys, case, "2025-08-08T00:00:00+08:00", "exclusions", "list", "--json")
    row = json.loads(out)
    assert (row["status"], row["reason"], row["version"], row["source"], row["updated_by"]) == (
        "approved", "供电局计划停电", 4, "file", "file"
    )  # fmt: skip


def test_tokens_are_made_listed_and_revoked(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from slamon.access import Role, authenticate
    from slamon.store import Store

    at = "2025-08-02T00:00:00+08:00"
    code, _, err = slamon(capsys, case, at, "token", "create", "--name", "vendor-acme", "--role", "viewer")
    assert (code, err) == (
        1,
        "slamon: error: a viewer token must name its contracts (--contract ID): a vendor sees only its own\n",
    )
    code, _, err = slamon(
        capsys, case, at, "token", "create", "--name", "x", "--role", "ops", "--contract", "C9"
    )
    assert (code, err) == (1, "slamon: error: contract: unknown contract 'C9' (known: C1)\n")
    code, token, err = slamon(
        capsys,
        case,
        at,
        "token",
        "create",
        "--name",
        "vendor-acme",
        "--role",
        "viewer",
        "--contract",
        "C1",
        "--as",
        "root-admin",
    )
    token = token.strip()
    ident = token.split("_")[1]
    assert code == 0
    assert err.startswith(f"token {ident} for vendor-acme (viewer, contracts C1): shown once")
    store = Store(load_config(case).database)
    with store.read() as tx:
        actor = authenticate(tx, token)
    assert not isinstance(actor, str)
    assert (actor.name, actor.role, actor.contracts, actor.token) == (
        "vendor-acme",
        Role.VIEWER,
        {"C1"},
        ident,
    )

    code, _, err = slamon(
        capsys, case, "2025-08-03T00:00:00+08:00", "token", "revoke", ident, "--as", "root-admin"
    )
    assert (code, err) == (0, f"revoked token {ident} (vendor-acme)\n")
    with store.read() as tx:
        assert authenticate(tx, token) == f"token {ident} was revoked at 2025-08-02T16:00:00+00:00"
    store.close()
    code, _, err = slamon(capsys, case, "2025-08-04T00:00:00+08:00", "token", "revoke", ident)
    assert (code, err) == (
        1,
        f"slamon: error: token {ident} was revoked already (2025-08-02T16:00:00+00:00, by root-admin)\n",
    )
    code, out, _ = slamon(capsys, case, at, "token", "list", "--json")
    [row] = map(json.loads, out.splitlines())
    assert (row["revoked_at"], row["revoked_by"], row["created_by"]) == (
        "2025-08-03T00:00:00+08:00",
        "root-admin",
        "root-admin",
    )
    code, out, _ = slamon(capsys, case, at, "audit", "list", "--json")
    assert [(e["action"], e["subject"]) for e in map(json.loads, out.splitlines())] == [
        ("token.create", ident),
        ("token.revoke", ident),
    ]


def tamper(case: Path, *statements: str) -> None:
    db = sqlite3.connect(case.parent / "slamon.db")
    with db:
        for s in statements:
            db.execute(s)
    db.close()


def test_audit_verify_names_an_edited_a_deleted_and_a_reordered_row(
    case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    at = "2025-08-02T00:00:00+08:00"
    for n in range(4):
        slamon(capsys, case, at, "token", "create", "--name", f"ops-{n}", "--role", "ops")
    code, out, err = slamon(capsys, case, at, "audit", "verify")
    assert (code, err) == (0, "")
    assert out.startswith("audit log verified: 4 entries, head 4:")
    head = out.split("head ")[1].strip()
    assert slamon(capsys, case, at, "audit", "verify", "--head", head)[0] == 0
    pristine = (case.parent / "slamon.db").read_bytes()

    tamper(case, "UPDATE audit_log SET actor = 'nobody' WHERE seq = 3")
    assert slamon(capsys, case, at, "audit", "verify") == (
        1, "", "audit log: entry 3 was edited: its hash does not match its contents\n"
    )  # fmt: skip

    (case.parent / "slamon.db").write_bytes(pristine)
    tamper(case, "DELETE FROM audit_log WHERE seq = 2")
    assert slamon(capsys, case, at, "audit", "verify") == (1, "", "audit log: entry 2 is missing (deleted)\n")

    (case.parent / "slamon.db").write_bytes(pristine)
    tamper(
        case,
        "UPDATE audit_log SET seq = 100 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = 100",
    )
    assert slamon(capsys, case, at, "audit", "verify") == (
        1,
        "",
        "audit log: entry 3 is out of order: it was written after entry 4, not after entry 2 (rows were reordered)\n"
        "audit log: entry 4 is out of order: it was written after entry 2, not after entry 3 (rows were reordered)\n"
        f"audit log: entry 4 is not the one written last (sha256:{head.split(':')[1]}; the log has sha256:"
        + slamon_hash_of(case, 4)
        + ")\n",
    )

    (case.parent / "slamon.db").write_bytes(pristine)
    tamper(case, "DELETE FROM audit_log WHERE seq = 4", "DELETE FROM store_meta WHERE key = 'audit_head'")
    assert slamon(capsys, case, at, "audit", "verify", "--head", head) == (
        1, "", f"audit log: the head given, entry 4 sha256:{head.split(':')[1]}, is not in the log: there is no entry 4\n"
    )  # fmt: skip
    with pytest.raises(SystemExit):
        slamon(capsys, case, at, "audit", "verify", "--head", "4:abc")


def slamon_hash_of(case: Path, seq: int) -> str:
    db = sqlite3.connect(case.parent / "slamon.db")
    try:
        return str(db.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0])
    finally:
        db.close()
