"""Everything the files describe, loaded and cross-checked: what `slamon check` validates and `run` monitors.

Parsing and checking a 50,000-device inventory.yaml takes seconds, so the validated fleet is
remembered in the store's `fleet_cache` table, keyed by slamon's version and the exact bytes of
every input file (`inputs_key`): a changed byte is a new key, a full parse and a new entry. The
entry is a columnar JSON document (`encode_fleet`): one list per device field, repeated values
as runs, so reading 50,000 devices back is a few C-level passes (about 0.06 CPU-s, where a
canonical dict per device cost 0.34). Its first member after the format is the `probe` section
(fleet_cache.py): the ids and addresses, newline-joined, the addresses packed when all are IPv4,
each device's contract time zone and the devices another probe kind watches. `probe --once` reads
that section alone (`load_probe_view`); `decode_fleet` takes the ids and addresses from it. SQLite
entries are read without SQLAlchemy (`load_fleet_through_cache`); `slamon check` never reads them.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import fields
from datetime import datetime
from itertools import repeat
from typing import TYPE_CHECKING, cast

from slamon.canonical import (
    canonical_json,
    contract_from_dict,
    contract_to_dict,
    device_from_dict,
    device_to_dict,
    exclusion_from_dict,
    exclusion_to_dict,
    inspection_from_dict,
    inspection_to_dict,
    inventory_to_dict,
    sha256_hex,
    site_from_dict,
    site_to_dict,
)
from slamon.errors import StoreError
from slamon.loaders.config import Config
from slamon.loaders.fleet_cache import (
    CACHE_FORMAT,
    ProbeView,
    inputs_key,
    ipv4_packed,
    probe_view,
    read_sqlite_cache,
    sqlite_file,
    texts,
)
from slamon.model import ContractId, Device, DeviceId, Fleet, Inventory, to_micros

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported only by the paths that open it
    from slamon.store import Store

logger = logging.getLogger(__name__)

_FIELDS = tuple(f.name for f in fields(Device))  # a column each, runs of canonical values, except:
_PLAIN = ("id", "address")  # different for every device: in the probe section
_TEXT = ("site", "contract", "parent")  # ids (or None) read back as they are, not through canonical.py
# Devices can be built slot by slot (_devices) while __init__ only stores its arguments
_BY_SLOT = not hasattr(Device, "__post_init__") and set(getattr(Device, "__slots__", ())) == set(_FIELDS)


def load_fleet(config: Config) -> Fleet:
    """Contracts first (the inventory is checked against them), then the inventory, then exclusions.

    Every command goes through here, so `slamon check` passes exactly when `slamon run` would start.
    """
    from slamon.loaders.contracts import load_contracts  # the parsers load only when a file is parsed
    from slamon.loaders.exclusions import load_exclusions
    from slamon.loaders.inspections import load_inspections
    from slamon.loaders.inventory import load_inventory

    contracts = load_contracts(config.contracts)
    inventory = load_inventory(config.inventory, contracts)
    exclusions = load_exclusions(config.exclusions, inventory, contracts) if config.exclusions else ()
    inspections = load_inspections(config.inspections, inventory, contracts) if config.inspections else ()
    return Fleet(inventory=inventory, contracts=contracts, exclusions=exclusions, inspections=inspections)


def encode_fleet(fleet: Fleet) -> str:
    """The cache entry: its format, the probe section (fleet_cache.py), then the devices sorted
    by id as columns of their canonical values (canonical.py), runs of equal values as
    [value, count] (a site's cameras, one contract, one in_service date)."""
    devices = [device_to_dict(fleet.inventory.devices[k]) for k in sorted(fleet.inventory.devices)]
    columns: dict[str, list[object]] = {}
    for name in _FIELDS:
        if name in _PLAIN:
            continue
        runs: list[list[object]] = []
        for d in devices:
            value = d.get(name)  # (uplink: only when given)
            if runs and runs[-1][0] == value:
                runs[-1][1] += 1  # type: ignore[operator]
            else:
                runs.append([value, 1])
        columns[name] = list(runs)
    view = view_of(fleet)
    doc = {
        "format": CACHE_FORMAT,
        "probe": {
            "n": len(view.ids),
            "ids": _joined(view.ids),
            "addresses": _joined([str(d["address"]) for d in devices]),
            "ipv4": None if view.ipv4 is None else view.ipv4.hex(),
            "zones": [list(run) for run in view.zones],
            "others": sorted(view.others),
        },
        "inventory_sha256": fleet.inventory_sha256
        or sha256_hex(canonical_json(inventory_to_dict(fleet.inventory))),
        "contracts": [contract_to_dict(c) for _, c in sorted(fleet.contracts.items())],
        "exclusions": [exclusion_to_dict(e) for e in fleet.exclusions],
        "inspections": [inspection_to_dict(i) for i in fleet.inspections],
        "sites": [site_to_dict(fleet.inventory.sites[k]) for k in sorted(fleet.inventory.sites)],
        "devices": columns,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _joined(values: list[str]) -> str | list[str]:
    """Texts newline-joined (ids and addresses never hold a newline; a list if one ever did)."""
    text = "\n".join(values)
    return text if text.count("\n") == max(0, len(values) - 1) else values


def view_of(fleet: Fleet) -> ProbeView:
    """What `probe --once` needs of a fleet (fleet_cache.ProbeView), as the cache keeps it."""
    from slamon.probers import polled, streamed

    devices = [fleet.inventory.devices[k] for k in sorted(fleet.inventory.devices)]
    zones: list[tuple[str, int]] = []
    for d in devices:
        zone = fleet.contracts[d.contract].timezone
        if zones and zones[-1][0] == zone:
            zones[-1] = (zone, zones[-1][1] + 1)
        else:
            zones.append((zone, 1))
    return ProbeView(
        ids=[d.id for d in devices],
        ipv4=ipv4_packed([d.address for d in devices]),
        zones=zones,
        others=frozenset(d.id for d in devices if polled(d) or streamed(d)),
    )


def decode_fleet(body: str) -> Fleet:
    """The fleet of a cache entry; ValueError (or TypeError, KeyError…) when it is not one."""
    view = probe_view(body)  # checks the section; the ids and addresses are its
    doc = json.loads(body)
    if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT:
        raise ValueError(f"not a {CACHE_FORMAT} document")
    ids, n = cast(list[DeviceId], view.ids), len(view.ids)
    cols = {**doc["devices"], "id": ids, "address": texts(doc["probe"], "addresses", n)}
    first = {name: cols[name][0] if name in _PLAIN else cols[name][0][0] for name in _FIELDS} if n else {}
    values: list[list[object]] = []
    decoded: dict[tuple[str, type, object], object] = {}
    for name in _FIELDS:
        if name in _PLAIN:
            values.append(cols[name])
            continue
        column: list[object] = []
        for value, count in cols[name]:
            seen = (
                name,
                type(value),
                json.dumps(value, sort_keys=True) if isinstance(value, dict) else value,
            )
            if seen not in decoded:
                decoded[seen] = _field_value(name, value, first)
            column += [decoded[seen]] * count  # the same (immutable) object
        if len(column) != n:
            raise ValueError(f"devices.{name}: {len(column)} values for {n} devices")
        values.append(column)
    devices = dict(zip(ids, _devices(values, n), strict=True))
    if len(devices) != n:
        raise ValueError("devices: an id appears twice")
    sites = [site_from_dict(s) for s in doc["sites"]]
    contracts = [contract_from_dict(c) for c in doc["contracts"]]
    return Fleet(
        inventory=Inventory(sites={s.id: s for s in sites}, devices=devices),
        contracts={ContractId(c.id): c for c in contracts},
        exclusions=tuple(exclusion_from_dict(e) for e in doc["exclusions"]),
        inspections=tuple(inspection_from_dict(i) for i in doc.get("inspections", [])),
        inventory_sha256=doc.get("inventory_sha256"),
    )


def _devices(columns: list[list[object]], n: int) -> list[Device]:
    """Device(*row) for each row of the columns (in field order). Device's frozen __init__ costs
    ~1.3 µs a device, an object.__setattr__ per field; setting each slot through its descriptor,
    one C-level pass per field, costs a third of that: 30 ms of a 50,000-device read."""
    if not _BY_SLOT:
        return list(map(Device, *columns))
    made: list[Device] = list(map(object.__new__, repeat(Device, n)))
    for name, column in zip(_FIELDS, columns, strict=True):
        deque(map(getattr(Device, name).__set__, made, column), maxlen=0)
    return made


def _field_value(name: str, value: object, first: dict[str, object]) -> object:
    """One distinct value of a device field. Ids are used as they are; anything else (kinds,
    instants, SNMP targets…) is decoded by canonical.py itself, on a copy of the first device, so
    the cache can never read a value differently from the canonical form."""
    if name in _TEXT:
        if isinstance(value, str) or (value is None and name == "parent"):
            return value
        raise ValueError(f"devices.{name}: {value!r} is not an id")
    return getattr(device_from_dict({**first, name: value}), name)


def load_fleet_cached(config: Config, store: Store, now: datetime) -> Fleet:
    """load_fleet, remembered in the store by the exact bytes of its files."""
    key = inputs_key(config)
    if key is not None:
        with store.begin() as tx:
            body = tx.versions.cached_fleet(key)
        fleet = _decoded(body, key) if body is not None else None
        if fleet is not None:
            return fleet
    fleet = load_fleet(config)
    if key is not None:
        with store.begin() as tx:
            tx.versions.cache_fleet(key, encode_fleet(fleet), to_micros(now))
    return fleet


def load_fleet_through_cache(config: Config, now: datetime) -> Fleet:
    """load_fleet through the cache, for a command that must not create a database before it
    knows it can start (`run` checks its probers first) or that stores nothing (`probe --once`).

    A SQLite cache is read with the standard library's sqlite3: importing SQLAlchemy alone costs
    about half of what fping spends pinging 50,000 devices. On a miss the files are parsed and,
    when the database already exists, the entry is written through the Store (the only write).
    A database is never created or upgraded here, and one that cannot be used only costs the cache.
    """
    key = inputs_key(config)
    if key is None:
        return load_fleet(config)  # names the unreadable file
    file = sqlite_file(config.database)
    if file is not None:
        if not file.is_file():
            logger.debug("no database at %s yet: the fleet is parsed, not cached", file)
            return load_fleet(config)
        body = read_sqlite_cache(file, key)
        fleet = _decoded(body, key) if body is not None else None
        if fleet is not None:
            return fleet
    return _through_store(config, key, now, read=file is None)


def _through_store(config: Config, key: str, now: datetime, *, read: bool) -> Fleet:
    """The cache through the Store (PostgreSQL, or a SQLite miss): read it when asked, else parse
    and remember; a store that cannot be opened or written is logged and skipped."""
    from slamon.store import Store, redact

    fleet: Fleet | None = None
    try:
        store = Store(config.database, upgrade=False)
    except StoreError as exc:
        logger.warning("fleet cache not used: %s", exc)
        return load_fleet(config)
    try:
        if read:
            with store.begin() as tx:
                body = tx.versions.cached_fleet(key)
            fleet = _decoded(body, key) if body is not None else None
        if fleet is None:
            fleet = load_fleet(config)
            with store.begin() as tx:
                tx.versions.cache_fleet(key, encode_fleet(fleet), to_micros(now))
    except StoreError as exc:
        logger.warning("fleet cache not used (%s): %s", redact(config.database), exc)
        return fleet if fleet is not None else load_fleet(config)
    finally:
        store.close()
    return fleet


def _decoded(body: str, key: str) -> Fleet | None:
    """A cache entry as a fleet; None (and a warning: it would be reparsed every time) when it
    cannot be read, which only a damaged database explains."""
    try:
        return decode_fleet(body)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        logger.warning("fleet cache entry %s unreadable, parsing the files instead: %s", key, exc)
        return None
