"""Everything the files describe, loaded and cross-checked: what `slamon check` validates and `run` monitors."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime

from slamon import __version__
from slamon.canonical import (
    canonical_json,
    contract_from_dict,
    contract_to_dict,
    exclusion_from_dict,
    exclusion_to_dict,
    inventory_from_dict,
    inventory_to_dict,
)
from slamon.loaders.config import Config
from slamon.loaders.contracts import load_contracts
from slamon.loaders.exclusions import load_exclusions
from slamon.loaders.inventory import load_inventory
from slamon.model import ContractId, Fleet, to_micros
from slamon.store import Store

logger = logging.getLogger(__name__)


def load_fleet(config: Config) -> Fleet:
    """Contracts first (the inventory is checked against them), then the inventory, then exclusions.

    Every command goes through here, so `slamon check` passes exactly when `slamon run` would start.
    """
    contracts = load_contracts(config.contracts)
    inventory = load_inventory(config.inventory, contracts)
    exclusions = load_exclusions(config.exclusions, inventory, contracts) if config.exclusions else ()
    return Fleet(inventory=inventory, contracts=contracts, exclusions=exclusions)


def fleet_to_dict(fleet: Fleet) -> dict[str, object]:
    return {
        "inventory": inventory_to_dict(fleet.inventory),
        "contracts": [contract_to_dict(c) for _, c in sorted(fleet.contracts.items())],
        "exclusions": [exclusion_to_dict(e) for e in fleet.exclusions],
    }


def fleet_from_dict(data: dict[str, object]) -> Fleet:
    contracts = [contract_from_dict(c) for c in data["contracts"]]  # type: ignore[attr-defined]
    return Fleet(
        inventory=inventory_from_dict(data["inventory"]),
        contracts={ContractId(c.id): c for c in contracts},
        exclusions=tuple(exclusion_from_dict(e) for e in data["exclusions"]),  # type: ignore[attr-defined]
    )


def inputs_key(config: Config) -> str | None:
    """SHA-256 of slamon's version and the path and bytes of every file the fleet is loaded from;
    None when a file cannot be read (load_fleet then reports it)."""
    digest = hashlib.sha256(__version__.encode())
    paths = [
        config.path,
        config.inventory,
        *config.contracts,
        *([config.exclusions] if config.exclusions else []),
    ]
    try:
        for path in paths:
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return "sha256:" + digest.hexdigest()


def load_fleet_cached(config: Config, store: Store, now: datetime) -> Fleet:
    """load_fleet, remembered in the store by the exact bytes of its files: a 10,000-device
    inventory.yaml takes seconds to parse and validate and a tenth of that to read back."""
    key = inputs_key(config)
    if key is not None:
        with store.begin() as tx:
            body = tx.versions.cached_fleet(key)
        if body is not None:
            return fleet_from_dict(json.loads(body))
    fleet = load_fleet(config)
    if key is not None:
        with store.begin() as tx:
            tx.versions.cache_fleet(key, canonical_json(fleet_to_dict(fleet)).decode(), to_micros(now))
    return fleet
