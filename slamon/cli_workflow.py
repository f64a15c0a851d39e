"""The workflow's commands (docs/formats.md): `slamon exclusions …`, `slamon token …`, `slamon audit …`.

Wiring only, over slamon/workflow.py, store/tokens.py and store/audit.py. The command line acts
as the local administrator, recorded under `--as NAME` (else the login name). Each command first
brings the store in step with the files (as every command does), in the same transaction.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from slamon.cli import UsageError, _count, _output, opened, out
from slamon.clock import Clock
from slamon.errors import SlamonError

if TYPE_CHECKING:
    from slamon.access import Actor
    from slamon.model import Fleet
    from slamon.store import StoreTx
    from slamon.store.exclusions import ExclusionRecord
    from slamon.workflow import Evidence

CATEGORIES = ("maintenance", "power", "fiber_cut", "force_majeure", "customer")
STATUSES = ("proposed", "approved", "rejected")
ROLES = ("viewer", "ops", "contract_manager", "admin")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`exclusions`, `token` and `audit`, on the main parser's subcommands."""
    ex = sub.add_parser(
        "exclusions",
        help="the exclusions workflow: list, show, propose, amend, approve, reject, export, evidence",
    )
    ex_sub = ex.add_subparsers(dest="action", required=True, metavar="ACTION")

    ls = ex_sub.add_parser("list", help="the exclusions in force, by start")
    ls.add_argument("--proposed", action="store_true", help="only those awaiting a decision")
    ls.add_argument("--status", action="append", choices=STATUSES, help="only these statuses (repeatable)")
    ls.add_argument("--contract", metavar="ID", help="only those reaching this contract")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=cmd_list)

    show = ex_sub.add_parser("show", help="every version of one exclusion, with its evidence")
    show.add_argument("id", metavar="ID")
    show.add_argument("--json", action="store_true", help="one JSON object per version")
    show.set_defaults(func=cmd_show)

    prop = ex_sub.add_parser("propose", help="propose an exclusion (status proposed)")
    prop.add_argument("--id", help="its id (default: EX-<month of start>-<nn>)")
    _fields(prop, required=True)
    prop.set_defaults(func=cmd_propose)

    amend = ex_sub.add_parser("amend", help="change an exclusion: a new version, proposed again")
    amend.add_argument("id", metavar="ID")
    _fields(amend, required=False)
    amend.add_argument("--note", help="why it changes (recorded)")
    amend.set_defaults(func=cmd_amend)

    for verb, text in (("approve", "approve an exclusion"), ("reject", "reject an exclusion")):
        decide = ex_sub.add_parser(verb, help=f"{text} (contract manager), with a reason")
        decide.add_argument("id", metavar="ID")
        decide.add_argument("--reason", required=True, help="why (recorded and audited)")
        _as(decide)
        decide.set_defaults(func=cmd_decide, verb=verb)

    export = ex_sub.add_parser("export", help="the exclusions in force as an exclusions.yaml")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)

    ev = ex_sub.add_parser("evidence", help="write one of an exclusion's evidence files back out")
    ev.add_argument("id", metavar="ID")
    ev.add_argument("sha256", metavar="SHA256", help="the file's SHA-256 (as `exclusions show` lists it)")
    ev.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    ev.set_defaults(func=cmd_evidence)

    tok = sub.add_parser("token", help="bearer tokens for the HTTP API: create, list, revoke")
    tok_sub = tok.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = tok_sub.add_parser("create", help="make a token (shown once) for a role")
    create.add_argument("--name", required=True, help="who holds it, e.g. vendor-acme")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--contract",
        action="append",
        metavar="ID",
        help="limit it to this contract (repeatable; a viewer's must be)",
    )
    _as(create)
    create.set_defaults(func=cmd_token_create)
    tls = tok_sub.add_parser("list", help="every token: id, name, role, contracts, made, revoked")
    tls.add_argument("--json", action="store_true", help="one JSON object per line")
    tls.set_defaults(func=cmd_token_list)
    rev = tok_sub.add_parser("revoke", help="revoke a token: it is refused from then on")
    rev.add_argument("id", metavar="ID")
    _as(rev)
    rev.set_defaults(func=cmd_token_revoke)

    audit = sub.add_parser("audit", help="the audit log: list, verify its hash chain")
    audit_sub = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = audit_sub.add_parser(
        "verify", help="walk the log: an edited, deleted or reordered entry is named"
    )
    verify.add_argument(
        "--head", metavar="SEQ:SHA256", help="also check that this entry, noted earlier, is there"
    )
    verify.set_defaults(func=cmd_audit_verify)
    als = audit_sub.add_parser("list", help="the entries, oldest first")
    als.add_argument("--after", type=int, default=0, metavar="SEQ", help="only entries after this one")
    als.add_argument("--subject", help="only entries about this (an exclusion or token id)")
    als.add_argument("--json", action="store_true", help="one JSON object per line")
    als.set_defaults(func=cmd_audit_list)


def _fields(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--category", required=required, choices=CATEGORIES)
    p.add_argument("--device", action="append", metavar="ID", help="in scope (repeatable)")
    p.add_argument("--site", action="append", metavar="ID", help="in scope (repeatable)")
    p.add_argument("--contract", action="append", metavar="ID", help="in scope (repeatable)")
    p.add_argument(
        "--start", required=required, help="an instant with its offset, e.g. 2025-07-12T02:00:00+08:00"
    )
    p.add_argument("--end", required=required, help="the same, exclusive")
    p.add_argument("--reason", required=required, help="what happened")
    p.add_argument(
        "--evidence", action="append", type=Path, metavar="FILE", help="attach a file (repeatable)"
    )
    _as(p)


def _as(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--as", dest="actor", metavar="NAME", help="who acts, as recorded (default: the login name)"
    )


# --- exclusions ---------------------------------------------------------------------------------


@contextmanager
def _synced(args: argparse.Namespace, clock: Clock) -> Iterator[tuple[Fleet, StoreTx]]:
    """The fleet and a write transaction, the store in step with the files."""
    from slamon.model import to_micros
    from slamon.store.upkeep import sync_fleet

    with opened(args, clock) as (_config, fleet, store), store.begin() as tx:
        sync_fleet(tx, fleet, to_micros(clock.now()))
        yield fleet, tx


def _actor(args: argparse.Namespace) -> Actor:
    from slamon.access import cli_actor

    return cli_actor(getattr(args, "actor", None))


def cmd_list(args: argparse.Namespace, clock: Clock) -> int:
    """The exclusions in force: the file's, those proposed through the workflow and those slamon
    proposed itself (a suspected power cut)."""
    from slamon.model import ExclusionStatus
    from slamon.workflow import listing, zone_of_fleet

    statuses = {ExclusionStatus(s) for s in args.status or ()}
    if args.proposed:
        statuses.add(ExclusionStatus.PROPOSED)
    with _synced(args, clock) as (fleet, tx):
        found = listing(tx, fleet, _actor(args), statuses=statuses, contract=args.contract)
    zone = zone_of_fleet(fleet)
    if args.json:
        out("".join(json.dumps(f.to_dict(zone), ensure_ascii=False) + "\n" for f in found))
        return 0
    for f in found:
        e = f.exclusion
        when = f"{e.start.astimezone(zone).isoformat(timespec='seconds')} – {e.end.astimezone(zone).isoformat(timespec='seconds')}"
        out(
            f"{e.id}  {e.status.value:<8} {e.category.value:<13} {_scope_text(e.scope)}  {when}\n    {e.reason}\n"
        )
        files = f"; {_count(len(f.evidence), 'evidence file')}" if f.evidence else ""
        note = f": {f.note}" if f.note else ""
        out(
            f"    version {f.version} by {f.updated_by} ({f.source}) at "
            f"{f.updated_at.astimezone(zone).isoformat(timespec='seconds')}{note}{files}\n"
        )
    what = "proposed exclusion" if args.proposed and not args.status else "exclusion"
    sys.stderr.write(f"{_count(len(found), what)}\n")
    return 0


def cmd_show(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.workflow import history, record_to_dict, zone_of_fleet

    with _synced(args, clock) as (fleet, tx):
        records = history(tx, fleet, _actor(args), args.id)
    zone = zone_of_fleet(fleet)
    if args.json:
        out("".join(json.dumps(record_to_dict(r, zone), ensure_ascii=False) + "\n" for r in records))
        return 0
    for r in records:
        e = r.exclusion
        out(
            f"{e.id}  version {r.version}  {_when(r.at, zone)}  {r.action} by {r.actor} ({r.source})  {r.status}"
            + (f": {r.note}" if r.note else "")
            + "\n"
        )
        out(
            f"    {e.category.value}  {_scope_text(e.scope)}  {e.start.astimezone(zone).isoformat(timespec='seconds')} – "
            f"{e.end.astimezone(zone).isoformat(timespec='seconds')}  {e.reason}\n"
        )
        for a in r.evidence:
            out(f"    evidence {a.name}  sha256:{a.sha256}  {a.size:,} bytes\n")
    return 0


def cmd_propose(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.workflow import propose

    fields = _given(args)
    if args.id:
        fields["id"] = args.id
    evidence = _read_evidence(args.evidence)
    with _synced(args, clock) as (fleet, tx):
        rec = propose(tx, fleet, _actor(args), fields, evidence, clock.now())
        notes = _issued_notes(tx, fleet, rec)
    out(f"{rec.exclusion.id}\n")
    sys.stderr.write(
        f"proposed {rec.exclusion.id} (version {rec.version}): it counts once a contract manager approves it\n"
        + notes
    )
    return 0


def cmd_amend(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.workflow import amend

    fields = _given(args)
    evidence = _read_evidence(args.evidence)
    if not fields and not evidence:
        raise UsageError("amend: give the fields to change (--category, --start, …) or --evidence FILE")
    with _synced(args, clock) as (fleet, tx):
        rec = amend(tx, fleet, _actor(args), args.id, fields, evidence, clock.now(), note=args.note)
        notes = _issued_notes(tx, fleet, rec)
    sys.stderr.write(f"amended {rec.exclusion.id} (version {rec.version}): {rec.status}\n" + notes)
    return 0


def cmd_decide(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.workflow import approve, reject

    decide = approve if args.verb == "approve" else reject
    with _synced(args, clock) as (fleet, tx):
        rec = decide(tx, fleet, _actor(args), args.id, args.reason, clock.now())
        notes = _issued_notes(tx, fleet, rec)
    sys.stderr.write(f"{rec.status} {rec.exclusion.id} (version {rec.version})\n" + notes)
    return 0


def cmd_export(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.workflow import export_yaml, listing, zone_of_fleet

    with _synced(args, clock) as (fleet, tx):
        found = listing(tx, fleet, _actor(args))
    found.sort(key=lambda f: f.exclusion.id)
    zone = zone_of_fleet(fleet)
    header = (
        f"exported by slamon at {clock.now().astimezone(zone).isoformat(timespec='seconds')}: "
        "the exclusions in force in the store.\nStatements are computed from the store; this file is a copy."
    )
    with _output(args.output, binary=False) as stream:
        stream.write(export_yaml([f.exclusion for f in found], zone, header))
    sys.stderr.write(f"exported {_count(len(found), 'exclusion')}\n")
    return 0


def cmd_evidence(args: argparse.Namespace, clock: Clock) -> int:
    import hashlib

    from slamon.workflow import evidence_file

    with _synced(args, clock) as (fleet, tx):
        attachment, content = evidence_file(
            tx, fleet, _actor(args), args.id, args.sha256.removeprefix("sha256:")
        )
    if hashlib.sha256(content).hexdigest() != attachment.sha256:
        raise SlamonError(f"evidence {attachment.name} sha256:{attachment.sha256} is damaged in the store")
    with _output(args.output, binary=True) as stream:
        stream.write(content)
    sys.stderr.write(f"{attachment.name}: {attachment.size:,} bytes, sha256:{attachment.sha256}\n")
    return 0


def _given(args: argparse.Namespace) -> dict[str, object]:
    """The exclusion fields given on the command line, as a proposal's mapping."""
    fields: dict[str, object] = {}
    for key in ("category", "start", "end", "reason"):
        value = getattr(args, key)
        if value is not None:
            fields[key] = value
    scope = {
        k: v for k, v in (("devices", args.device), ("sites", args.site), ("contracts", args.contract)) if v
    }
    if scope:
        fields["scope"] = scope
    elif "category" in fields and args.func is cmd_propose:
        raise UsageError("propose: give the scope with --device, --site and/or --contract")
    return fields


def _read_evidence(paths: list[Path] | None) -> list[Evidence]:
    from slamon.workflow import Evidence

    found: list[Evidence] = []
    for path in paths or ():
        try:
            found.append(Evidence(path.name, path.read_bytes()))
        except OSError as exc:
            raise SlamonError(f"{path}: cannot read the evidence file ({exc.strerror or exc})") from None
    return found


def _issued_notes(tx: StoreTx, fleet: Fleet, rec: ExclusionRecord) -> str:
    """For each issued month the exclusion reaches: its next statement is a draft revision."""
    from slamon.workflow import issued_months

    lines = []
    for contract, month, revision in issued_months(tx, fleet, rec.exclusion):
        lines.append(
            f"{contract} {month} was issued (revision {revision}): if this changes its figures, its next "
            f"statement is draft revision {revision + 1} (issue it with `slamon statement --issue`)\n"
        )
    return "".join(lines)


def _scope_text(scope: object) -> str:
    return ", ".join(
        f"{name} {' '.join(sorted(ids))}"
        for name in ("devices", "sites", "contracts")
        if (ids := getattr(scope, name))
    )


def _when(at: int, zone: object) -> str:
    from datetime import tzinfo

    from slamon.model import from_micros

    assert isinstance(zone, tzinfo)
    return from_micros(at).astimezone(zone).isoformat(timespec="seconds")


# --- tokens -------------------------------------------------------------------------------------


def cmd_token_create(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.access import create_token

    with _synced(args, clock) as (fleet, tx):
        info, token = create_token(tx, fleet, _actor(args), args.name, args.role, args.contract, clock.now())
    out(f"{token}\n")
    limited = f", contracts {', '.join(sorted(info.contracts))}" if info.contracts else ""
    sys.stderr.write(
        f"token {info.id} for {info.name} ({info.role}{limited}): shown once, keep it now "
        f"(send it as `Authorization: Bearer …`)\n"
    )
    return 0


def cmd_token_list(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.access import Permission
    from slamon.workflow import zone_of_fleet

    actor = _actor(args)
    actor.require(Permission.TOKENS)
    with _synced(args, clock) as (fleet, tx):
        tokens = tx.tokens.all()
    zone = zone_of_fleet(fleet)
    for t in tokens:
        row = {
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "contracts": None if t.contracts is None else sorted(t.contracts),
            "created_at": _when(t.created_at, zone),
            "created_by": t.created_by,
            "revoked_at": None if t.revoked_at is None else _when(t.revoked_at, zone),
            "revoked_by": t.revoked_by,
        }
        if args.json:
            out(json.dumps(row, ensure_ascii=False) + "\n")
            continue
        contracts = ",".join(sorted(t.contracts)) if t.contracts else "all"
        revoked = f"  revoked {row['revoked_at']} by {t.revoked_by}" if t.revoked_at is not None else ""
        out(
            f"{t.id}  {t.name:<20} {t.role:<16} {contracts:<12} made {row['created_at']} by {t.created_by}{revoked}\n"
        )
    if not args.json:
        sys.stderr.write(
            f"{_count(len(tokens), 'token')}, {sum(t.revoked_at is None for t in tokens)} in use\n"
        )
    return 0


def cmd_token_revoke(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.access import revoke_token

    with _synced(args, clock) as (_fleet, tx):
        info = revoke_token(tx, _actor(args), args.id, clock.now())
    sys.stderr.write(f"revoked token {info.id} ({info.name})\n")
    return 0


# --- audit --------------------------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace, clock: Clock) -> int:
    """Exit 0 with the head when the chain holds; else each problem on stderr and exit 1."""
    from slamon.access import Permission

    head = _head(args.head) if args.head else None
    _actor(args).require(Permission.AUDIT)
    with opened(args, clock) as (_config, _fleet, store), store.read() as tx:
        report = tx.audit.verify(head)
    if not report.ok:
        sys.stderr.write("".join(f"audit log: {p}\n" for p in report.problems))
        return 1
    if report.head is None:
        out("audit log verified: no entries yet\n")
    else:
        seq, digest = report.head
        entries = "1 entry" if report.entries == 1 else f"{report.entries:,} entries"
        out(f"audit log verified: {entries}, head {seq}:{digest}\n")
    return 0


def _head(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    digest = digest.removeprefix("sha256:")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageError(f"--head: {text!r} is not SEQ:SHA256 (as `audit verify` prints it)")
    return int(seq), digest


def cmd_audit_list(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.access import Permission
    from slamon.workflow import zone_of_fleet

    _actor(args).require(Permission.AUDIT)
    with opened(args, clock) as (_config, fleet, store), store.read() as tx:
        entries = tx.audit.entries(after=args.after, subject=args.subject)
    zone = zone_of_fleet(fleet)
    for e in entries:
        if args.json:
            row = e.to_dict()
            row["at"] = _when(e.at, zone)
            out(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            out(f"{e.seq:>6}  {_when(e.at, zone)}  {e.actor:<16} {e.action:<20} {e.subject}  {e.body}\n")
    return 0
