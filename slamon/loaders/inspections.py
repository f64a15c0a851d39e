"""The inspections file: inspection rounds (巡检) the vendor missed, as operations enter them.

A contract's score card takes points off for each one dated in the month (docs/sla.md §6.6).
Every id must name something that exists, and the date must fall in the contract's term: a
missed inspection moves money, so nothing about it is guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

from slamon.billing.periods import months_of_term
from slamon.errors import InspectionError
from slamon.loaders.yamlio import Source, key_path, load_yaml
from slamon.model import Contract, ContractId, InspectionId, Inventory, MissedInspection, SiteId
from slamon.units import quote

_FIELDS = ("id", "contract", "date", "site", "reason", "entered_by")
_REQUIRED = ("id", "contract", "date", "reason", "entered_by")


def load_inspections(
    path: str | PathLike[str], inventory: Inventory, contracts: Mapping[ContractId, Contract]
) -> tuple[MissedInspection, ...]:
    """Read the missed inspections, in file order; an empty file is an empty list."""
    src = Source(path, InspectionError)
    doc = load_yaml(path, InspectionError)
    if doc is None:
        return ()
    if not isinstance(doc, list):
        src.fail(None, f"expected a list of missed inspections, got {quote(doc)}")
    found: list[MissedInspection] = []
    first: dict[InspectionId, str] = {}
    sites_of: dict[ContractId, set[SiteId]] = {}
    for d in inventory.devices.values():
        sites_of.setdefault(d.contract, set()).add(d.site)
    for i, item in enumerate(doc):
        where = key_path("", i)
        fields = src.mapping(where, item, _FIELDS, required=_REQUIRED)
        inspection_id = InspectionId(src.ident(key_path(where, "id"), fields["id"]))
        if inspection_id in first:
            src.fail(
                key_path(where, "id"),
                f"duplicate inspection id {quote(inspection_id)} (first at {first[inspection_id]})",
            )
        first[inspection_id] = where
        contract_id = ContractId(src.ident(key_path(where, "contract"), fields["contract"]))
        contract = contracts.get(contract_id)
        if contract is None:
            src.fail(key_path(where, "contract"), f"unknown contract {quote(contract_id)}")
        day = src.calendar_date(key_path(where, "date"), fields["date"])
        first_month, last_month = months_of_term(contract)
        if not first_month <= f"{day.year:04d}-{day.month:02d}" <= last_month:
            src.fail(
                key_path(where, "date"),
                f"{day.isoformat()} is outside contract {contract_id}'s term ({first_month} to {last_month})",
            )
        site: SiteId | None = None
        if "site" in fields:
            site = SiteId(src.ident(key_path(where, "site"), fields["site"]))
            if site not in inventory.sites:
                src.fail(key_path(where, "site"), f"unknown site {quote(site)}")
            if site not in sites_of.get(contract_id, set()):
                src.fail(
                    key_path(where, "site"), f"site {quote(site)} has no device of contract {contract_id}"
                )
        found.append(
            MissedInspection(
                id=inspection_id,
                contract=contract_id,
                date=day,
                reason=src.text(key_path(where, "reason"), fields["reason"]),
                entered_by=src.text(key_path(where, "entered_by"), fields["entered_by"]),
                site=site,
            )
        )
    return tuple(found)
