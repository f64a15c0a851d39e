"""The exclusions file: maintenance windows and after-the-fact exclusions (SLA.md §4).

Every id a scope names must exist, and every instant must carry its UTC offset: an exclusion
moves money, so nothing about its reach or its hours is guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

from slamon.errors import ExclusionError
from slamon.loaders.yamlio import Source, key_path, load_yaml
from slamon.model import (
    Contract,
    ContractId,
    DeviceId,
    Exclusion,
    ExclusionCategory,
    ExclusionId,
    ExclusionStatus,
    Inventory,
    Scope,
    SiteId,
)
from slamon.units import quote

_FIELDS = ("id", "category", "scope", "start", "end", "reason", "status", "approved_by")
_REQUIRED = ("id", "category", "scope", "start", "end", "reason", "status")
_SCOPE_KEYS = ("devices", "sites", "contracts")


def load_exclusions(
    path: str | PathLike[str], inventory: Inventory, contracts: Mapping[ContractId, Contract]
) -> tuple[Exclusion, ...]:
    """Read the exclusions list, in file order; an empty file is an empty list."""
    src = Source(path, ExclusionError)
    doc = load_yaml(path, ExclusionError)
    if doc is None:
        return ()
    if not isinstance(doc, list):
        src.fail(None, f"expected a list of exclusions, got {quote(doc)}")
    exclusions: list[Exclusion] = []
    first: dict[ExclusionId, str] = {}
    for i, item in enumerate(doc):
        where = key_path("", i)
        fields = src.mapping(where, item, _FIELDS, required=_REQUIRED)
        exclusion_id = ExclusionId(src.ident(key_path(where, "id"), fields["id"]))
        if exclusion_id in first:
            src.fail(
                key_path(where, "id"),
                f"duplicate exclusion id {quote(exclusion_id)} (first at {first[exclusion_id]})",
            )
        first[exclusion_id] = where
        category = src.choice(
            key_path(where, "category"), fields["category"], ExclusionCategory, "a category"
        )
        scope = load_scope(src, key_path(where, "scope"), fields["scope"], inventory, contracts)
        start = src.instant(key_path(where, "start"), fields["start"])
        end = src.instant(key_path(where, "end"), fields["end"])
        if end <= start:
            src.fail(key_path(where, "end"), "must be after start")
        reason = src.text(key_path(where, "reason"), fields["reason"])
        status = src.choice(key_path(where, "status"), fields["status"], ExclusionStatus, "a status")
        approved_by: str | None = None
        if "approved_by" in fields:
            approved_by = src.text(key_path(where, "approved_by"), fields["approved_by"])
        elif status is ExclusionStatus.APPROVED:
            src.fail(key_path(where, "approved_by"), "missing (required when status is approved)")
        exclusions.append(
            Exclusion(
                id=exclusion_id,
                category=category,
                scope=scope,
                start=start,
                end=end,
                reason=reason,
                status=status,
                approved_by=approved_by,
            )
        )
    return tuple(exclusions)


def load_scope(
    src: Source, where: str, value: object, inventory: Inventory, contracts: Mapping[ContractId, Contract]
) -> Scope:
    """An exclusion's scope: known device, site and contract ids, at least one in all."""
    fields = src.mapping(where, value, _SCOPE_KEYS)
    devices = frozenset(
        DeviceId(d)
        for d in src.known_ids(
            key_path(where, "devices"), fields.get("devices", []), "device", inventory.devices
        )
    )
    sites = frozenset(
        SiteId(s)
        for s in src.known_ids(key_path(where, "sites"), fields.get("sites", []), "site", inventory.sites)
    )
    contract_ids = frozenset(
        ContractId(c)
        for c in src.known_ids(
            key_path(where, "contracts"), fields.get("contracts", []), "contract", contracts
        )
    )
    if not devices and not sites and not contract_ids:
        src.fail(where, "give at least one of devices, sites, contracts")
    return Scope(devices=devices, sites=sites, contracts=contract_ids)
