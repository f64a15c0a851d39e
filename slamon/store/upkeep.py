"""Keeps each device's stored timeline in step with its stored results, and lets old results go.

The timeline is a function of a device's results (state.build_timeline), so after any change to
them the device's timeline is rebuilt from what is stored: that is what makes imports idempotent
and the order of rows irrelevant. Retention drops raw results only behind a point no future result
can change (state.Timeline.firm_until) and leaves a state.Carry to resume from.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from slamon.engine.timeline import Carry, EngineParams, Timeline, build_timeline, carry_before
from slamon.model import HOUR, Contract, ContractId, DeviceId, Fleet, Inventory, Micros
from slamon.store import StoreTx, TimelineWrite

logger = logging.getLogger(__name__)


def engine_params(
    inventory: Inventory, contracts: Mapping[ContractId, Contract], device: DeviceId
) -> EngineParams:
    return EngineParams.from_terms(contracts[inventory.devices[device].contract].sla)


def params_json(params: EngineParams) -> str:
    return json.dumps(asdict(params), sort_keys=True)


def rebuild_timelines(
    tx: StoreTx,
    inventory: Inventory,
    contracts: Mapping[ContractId, Contract],
    devices: Iterable[DeviceId],
    at: Micros,
) -> dict[DeviceId, Timeline]:
    """Recompute and store the timelines of these devices from their stored results."""
    wanted = list(devices)
    keys = tx.keys.ensure(wanted)
    ids = {k: d for d, k in keys.items()}
    metas = tx.timelines.metas(keys.values())
    rebuilt: dict[DeviceId, Timeline] = {}
    writes: list[TimelineWrite] = []
    resumes: list[tuple[int, Carry]] = []
    for key, results in tx.results.of_devices(keys.values()):
        device = ids[key]
        params = engine_params(inventory, contracts, device)
        meta = metas.get(key)
        carry = meta.carry if meta else None
        tl = build_timeline(*results.columns(), params, carry)
        writes.append(TimelineWrite(key, tl, params_json(params), carry, meta.kept_from if meta else None))
        if tl.firm_until is not None:  # where a monitor started later picks this device up
            resume = carry_before(*results.columns(), params, tl.firm_until, carry)
            if resume is not None:
                resumes.append((key, resume))
        rebuilt[device] = tl
        if len(writes) >= 2000:
            tx.timelines.replace_many(writes, at)
            tx.timelines.save_resumes(resumes)
            writes.clear()
            resumes.clear()
    tx.timelines.replace_many(writes, at)
    tx.timelines.save_resumes(resumes)
    return rebuilt


def sync_fleet(
    tx: StoreTx, fleet: Fleet, at: Micros, keys: Mapping[DeviceId, int] | None = None
) -> list[DeviceId]:
    """Record the files' fleet as the current version, and rebuild the timelines whose contract
    changed how a timeline is built (down_after, up_after, degrade_after, stale_after). `keys`:
    the fleet's device keys when the caller has ensured them already.

    Returns the devices whose timelines were rebuilt."""
    changes = tx.versions.record(fleet, at)
    if keys is None:
        keys = tx.keys.ensure(fleet.inventory.devices)
    if changes:
        logger.info("new versions: %s", ", ".join(changes))
    stored = tx.timelines.params()
    if not stored:
        return []
    wanted = {cid: params_json(EngineParams.from_terms(c.sla)) for cid, c in fleet.contracts.items()}
    devices = fleet.inventory.devices
    stale = sorted(
        device
        for device, key in keys.items()
        if device in devices and key in stored and stored[key] != wanted[devices[device].contract]
    )
    if stale:
        logger.info("rebuilding %d timelines: their contract's state settings changed", len(stale))
        rebuild_timelines(tx, fleet.inventory, fleet.contracts, stale, at)
    return stale


@dataclass(frozen=True, slots=True)
class RetentionReport:
    devices: int
    blocks: int


def let_go_before(
    tx: StoreTx, inventory: Inventory, contracts: Mapping[ContractId, Contract], cutoff: Micros, at: Micros
) -> RetentionReport:
    """Drop raw results older than `cutoff` (keeping hourly rollups, timelines and outages)."""
    ids = tx.keys.ids(tx.results.devices())
    devices = blocks = 0
    for key, device in sorted(ids.items()):
        if device not in inventory.devices:
            continue  # a retired device keeps its last results until it is back or purged
        meta = tx.timelines.meta(key)
        if meta is None or meta.firm_until is None:
            continue
        horizon = min(cutoff, meta.firm_until) // HOUR * HOUR
        if meta.kept_from is not None and horizon <= meta.kept_from:
            continue
        params = engine_params(inventory, contracts, device)
        results = tx.results.of_device(key)
        carry = carry_before(*results.columns(), params, horizon, meta.carry)
        if carry is None or carry == meta.carry:
            continue
        blocks += tx.results.let_go(key, horizon // HOUR, carry.reach_last + 1)
        tx.timelines.set_retention(key, kept_from=horizon, carry=carry, at=at)
        devices += 1
    logger.info("retention: let go of %d result blocks of %d devices before %s", blocks, devices, cutoff)
    return RetentionReport(devices, blocks)
