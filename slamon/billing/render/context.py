"""What a rendered statement spells out that the statement document names only by id.

The document holds the figures; the PDF also prints the buyer's name, each site's name and
district, each exclusion's scope, the contract's KPI targets and how it counts unknown time. Those
are terms and labels from the files, never figures: a renderer given no context prints the ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from slamon.model import Contract, Exclusion, Inventory, Scope, Site


@dataclass(frozen=True, slots=True)
class Context:
    contract: Contract | None = None
    sites: Mapping[str, Site] = field(default_factory=dict)
    scopes: Mapping[str, Scope] = field(default_factory=dict)  # by exclusion id

    @classmethod
    def of(cls, contract: Contract | None, inventory: Inventory, exclusions: Iterable[Exclusion]) -> Context:
        return cls(contract, cast(Mapping[str, Site], inventory.sites), {e.id: e.scope for e in exclusions})

    @classmethod
    def stored(cls, text: str) -> Context:
        """The labels kept with an issued statement (canonical JSON: its contract, the sites of its
        devices, the exclusions it lists), as the renderers take them."""
        from slamon.canonical import contract_from_dict, exclusion_from_dict, site_from_dict

        labels = json.loads(text)
        sites = [site_from_dict(s) for s in labels["sites"]]
        kept = [exclusion_from_dict(e) for e in labels["exclusions"]]
        return cls(
            None if labels["contract"] is None else contract_from_dict(labels["contract"]),
            {s.id: s for s in sites},
            {e.id: e.scope for e in kept},
        )

    @classmethod
    def for_statement(
        cls,
        stored: str | None,
        contract: Contract | None,
        inventory: Inventory,
        exclusions: Callable[[], Iterable[Exclusion]],
    ) -> Context:
        """What a rendered statement prints beside its figures: an issued one's labels as they were
        kept when it was issued (`stored`: the same PDF, whenever written), a draft's as the files
        and the store say now (`exclusions` read only then)."""
        if stored is not None:
            return cls.stored(stored)
        return cls.of(contract, inventory, exclusions())

    @property
    def buyer(self) -> str | None:
        return None if self.contract is None else self.contract.buyer

    @staticmethod
    def covers(scope: Scope, contract: str, device: Mapping[str, Any]) -> bool:
        """Whether an exclusion's scope names a device row of the statement (SLA.md §4)."""
        return (
            device["id"] in scope.devices or device.get("site") in scope.sites or contract in scope.contracts
        )

    def scope_text(self, exclusion_id: str) -> str:
        """`设备 YJ-C0007`, `点位 人民广场 (YJ-S002)`, `合同 YJ-2025`; empty when unknown."""
        scope = self.scopes.get(exclusion_id)
        if scope is None:
            return ""
        parts = [f"设备 {d}" for d in sorted(scope.devices)]
        for s in sorted(scope.sites):
            site = self.sites.get(s)
            parts.append(f"点位 {site.name}（{s}）" if site else f"点位 {s}")
        parts += [f"合同 {c}" for c in sorted(scope.contracts)]
        return "、".join(parts)
