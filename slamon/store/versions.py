"""Versioned inputs: the inventory and contracts as they were from each instant on (so a past month
recomputes against the fleet as it was then), the exclusions, the missed inspections, and the cache
of validated fleets."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa

from slamon.canonical import (
    canonical_json,
    contract_from_dict,
    contract_to_dict,
    exclusion_from_dict,
    inspection_from_dict,
    inspection_to_dict,
    inventory_from_dict,
    inventory_to_dict,
    sha256_hex,
)
from slamon.model import Contract, ContractId, Exclusion, Fleet, Inventory, Micros, MissedInspection
from slamon.store import schema as t
from slamon.store.digests import check
from slamon.store.exclusions import ExclusionLedger
from slamon.store.sql import Part


class Versions(Part):
    def record(self, fleet: Fleet, at: Micros) -> list[str]:
        """Store what changed since the last versions, effective from `at`. Returns what changed."""
        changes: list[str] = []
        body: bytes | None = None
        sha = fleet.inventory_sha256
        if sha is None:
            body = canonical_json(inventory_to_dict(fleet.inventory))
            sha = sha256_hex(body)
        latest = self.conn.execute(
            sa.select(t.inventory_versions.c.sha256).order_by(t.inventory_versions.c.id.desc()).limit(1)
        ).scalar()
        if latest != sha:
            if body is None:
                body = canonical_json(inventory_to_dict(fleet.inventory))
            # values as parameters, never in the statement: SQLAlchemy caches compiled statements,
            # and a 20 MB inventory held by the cache for good is 20 MB of RSS
            self.conn.execute(
                t.inventory_versions.insert(), {"effective_from": at, "sha256": sha, "body": body.decode()}
            )
            changes.append("inventory")
        for cid, contract in sorted(fleet.contracts.items()):
            body = canonical_json(contract_to_dict(contract))
            sha = sha256_hex(body)
            latest = self.conn.execute(
                sa.select(t.contract_versions.c.sha256)
                .where(t.contract_versions.c.contract == cid)
                .order_by(t.contract_versions.c.id.desc())
                .limit(1)
            ).scalar()
            if latest != sha:
                self.conn.execute(
                    t.contract_versions.insert(),
                    {"contract": cid, "effective_from": at, "sha256": sha, "body": body.decode()},
                )
                changes.append(f"contract {cid}")
        changes += self._mirror_exclusions(fleet.exclusions, at)
        changes += self._mirror_inspections(fleet.inspections, at)
        return changes

    def _mirror_inspections(self, inspections: Sequence[MissedInspection], at: Micros) -> list[str]:
        """The inspections table as the file says now: rows written, replaced and removed."""
        table = t.inspections
        stored = {r.id: r for r in self.conn.execute(sa.select(table.c.id, table.c.sha256, table.c.position))}
        changes: list[str] = []
        for position, inspection in enumerate(inspections):
            body = canonical_json(inspection_to_dict(inspection))
            sha = sha256_hex(body)
            old = stored.pop(inspection.id, None)
            if old is not None and old.sha256 == sha and old.position == position:
                continue
            row = {"position": position, "sha256": sha, "body": body.decode(), "updated_at": at}
            if old is None:
                self.conn.execute(table.insert().values(id=inspection.id, **row))
            else:
                self.conn.execute(table.update().where(table.c.id == inspection.id).values(**row))
            if old is None or old.sha256 != sha:
                changes.append(f"inspection {inspection.id}")
        if stored:
            gone = sorted(stored)
            self.conn.execute(table.delete().where(table.c.id.in_(gone)))
            changes += [f"inspection {i} removed" for i in gone]
        return changes

    def _mirror_exclusions(self, exclusions: Sequence[Exclusion], at: Micros) -> list[str]:
        """The exclusions file's entries as versions of the store's exclusions (store/exclusions.py)."""
        return ExclusionLedger(self.conn, self._insert).mirror_file(exclusions, at)

    def inventory_as_of(self, at: Micros) -> Inventory | None:
        """The inventory in effect at `at`: the newest version from before it, else the oldest one."""
        v = t.inventory_versions
        body = self.conn.execute(
            sa.select(v.c.body)
            .where(v.c.effective_from <= at)
            .order_by(v.c.effective_from.desc(), v.c.id.desc())
            .limit(1)
        ).scalar()
        if body is None:
            body = self.conn.execute(sa.select(v.c.body).order_by(v.c.id).limit(1)).scalar()
        return None if body is None else inventory_from_dict(json.loads(body))

    def contract_as_of(self, contract: str, at: Micros) -> Contract | None:
        v = t.contract_versions
        where = v.c.contract == contract
        body = self.conn.execute(
            sa.select(v.c.body)
            .where(where, v.c.effective_from <= at)
            .order_by(v.c.effective_from.desc(), v.c.id.desc())
            .limit(1)
        ).scalar()
        if body is None:
            body = self.conn.execute(sa.select(v.c.body).where(where).order_by(v.c.id).limit(1)).scalar()
        return None if body is None else contract_from_dict(json.loads(body))

    def contracts_as_of(self, at: Micros) -> dict[ContractId, Contract]:
        ids = self.conn.execute(sa.select(t.contract_versions.c.contract).distinct()).scalars().all()
        found = {cid: self.contract_as_of(cid, at) for cid in ids}
        return {ContractId(k): c for k, c in found.items() if c is not None}

    def propose(self, exclusion: Exclusion, at: Micros) -> None:
        """An exclusion slamon proposes (source `detected`, after the files' own): written, or
        updated as it grows (its end), while nobody has decided on it and the file does not hold it."""
        ExclusionLedger(self.conn, self._insert).detected(exclusion, at)

    def exclusions(self) -> tuple[Exclusion, ...]:
        rows = self.conn.execute(
            sa.select(t.exclusions.c.body).order_by(t.exclusions.c.position, t.exclusions.c.id)
        )
        return tuple(exclusion_from_dict(json.loads(r.body)) for r in rows)

    def exclusions_stamp(self) -> tuple[int, int]:
        """What changes whenever the exclusions in force do (every change appends a numbered
        version, store/exclusions.py): the newest version's number and how many are in force. A
        service reads this each round, and the exclusions only when it moved."""
        newest = self.conn.execute(sa.select(sa.func.max(t.exclusion_records.c.seq))).scalar()
        count = self.conn.execute(sa.select(sa.func.count()).select_from(t.exclusions)).scalar()
        return int(newest or 0), int(count or 0)

    def inspections(self) -> tuple[MissedInspection, ...]:
        """The missed inspections, in the file's order."""
        rows = self.conn.execute(
            sa.select(t.inspections.c.body).order_by(t.inspections.c.position, t.inspections.c.id)
        )
        return tuple(inspection_from_dict(json.loads(r.body)) for r in rows)

    def cached_fleet(self, key: str) -> str | None:
        """The cache entry of these files, checked against its digest (Tampered names it: an entry
        edited in the database would otherwise stand in for the files); None on a miss."""
        fc = t.fleet_cache
        row = self.conn.execute(sa.select(fc.c.body, fc.c.sha256).where(fc.c.key == key)).first()
        if row is None:
            return None
        check(f"cached fleet {key}", row.body, row.sha256)
        return str(row.body)

    def cache_fleet(self, key: str, body: str, at: Micros, keep: int = 4) -> None:
        """Remember a validated fleet; only the newest few are kept."""
        fc = t.fleet_cache
        stmt = self._insert(fc)  # a damaged entry under the same key is replaced
        self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["key"], set_={"body": stmt.excluded.body, "sha256": stmt.excluded.sha256}
            ),
            {"key": key, "body": body, "created_at": at, "sha256": sha256_hex(body.encode("utf-8"))},
        )
        old = self.conn.execute(
            sa.select(fc.c.key).order_by(fc.c.created_at.desc(), fc.c.key).offset(keep)
        ).scalars()
        stale = list(old)
        if stale:
            self.conn.execute(fc.delete().where(fc.c.key.in_(stale)))
