"""Everything the files describe, loaded and cross-checked: what `slamon check` validates and `run` monitors."""

from __future__ import annotations

from slamon.config import Config
from slamon.contracts import load_contracts
from slamon.exclusions import load_exclusions
from slamon.inventory import load_inventory
from slamon.model import Fleet


def load_fleet(config: Config) -> Fleet:
    """Contracts first (the inventory is checked against them), then the inventory, then exclusions.

    Every command goes through here, so `slamon check` passes exactly when `slamon run` would start.
    """
    contracts = load_contracts(config.contracts)
    inventory = load_inventory(config.inventory, contracts)
    exclusions = load_exclusions(config.exclusions, inventory, contracts) if config.exclusions else ()
    return Fleet(inventory=inventory, contracts=contracts, exclusions=exclusions)
