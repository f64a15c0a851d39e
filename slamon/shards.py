"""Which devices a shard of `slamon run --shard I/N` watches: a pure split of the fleet.

A device's cause (`upstream:SW`) needs its ancestors' live state, and a suspected power cut needs
every device of its site, so the split never cuts a parent chain or a site: devices linked by
`parent` or sharing a site form one group, and a group goes whole to one shard, chosen by a stable
hash of its smallest device id. Every shard computes the same split from the same files, alone: no
device is probed twice or never. A group keeps its shard when devices are added elsewhere, so a
reload moves little. A fleet that hangs from a single root is one group: it cannot be split (the
shards but one get nothing; `slamon run` says so).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, replace

from slamon.errors import ConfigError
from slamon.model import DeviceId, Fleet, Inventory

_SHARD = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` (0-based, a StatefulSet's pod ordinal) of `count`."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = _SHARD.fullmatch(text.strip())
        if m is None:
            raise ConfigError("--shard", None, f"{text!r} is not I/N (e.g. 0/3: the first of three shards)")
        index, count = int(m[1]), int(m[2])
        if count < 1 or index >= count:
            raise ConfigError("--shard", None, f"{text!r}: I must be 0 to N-1, and N at least 1")
        return cls(index, count)

    @property
    def name(self) -> str:
        """For folders and logs: shard-0-of-3."""
        return f"shard-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def groups(inventory: Inventory) -> dict[DeviceId, DeviceId]:
    """Each device's group, named by the group's smallest device id (union-find over parent
    links and shared sites)."""
    parent: dict[DeviceId, DeviceId] = {d: d for d in inventory.devices}

    def find(x: DeviceId) -> DeviceId:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(a: DeviceId, b: DeviceId) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            parent[hi] = lo  # the smaller id stays the root: the group's name

    first_at_site: dict[str, DeviceId] = {}
    for device in inventory.devices.values():
        if device.parent is not None:
            union(device.id, device.parent)
        other = first_at_site.setdefault(device.site, device.id)
        if other != device.id:
            union(device.id, other)
    return {d: find(d) for d in inventory.devices}


def shard_of_group(group: DeviceId, count: int) -> int:
    """A stable hash (not Python's: that one changes from process to process)."""
    return zlib.crc32(group.encode("utf-8")) % count


def assign(inventory: Inventory, count: int) -> dict[DeviceId, int]:
    """Every device's shard."""
    return {d: shard_of_group(g, count) for d, g in groups(inventory).items()}


def members(inventory: Inventory, shard: Shard) -> set[DeviceId]:
    return {d for d, i in assign(inventory, shard.count).items() if i == shard.index}


def subset(fleet: Fleet, shard: Shard | None) -> Fleet:
    """The part of the fleet this shard watches: its devices and their sites; contracts and
    exclusions whole (they name devices; the other shards' are simply not met). The whole fleet
    when unsharded."""
    if shard is None or shard.count == 1:
        return fleet
    mine = members(fleet.inventory, shard)
    devices = {d: dev for d, dev in fleet.inventory.devices.items() if d in mine}
    sites = {s: site for s, site in fleet.inventory.sites.items() if s in {d.site for d in devices.values()}}
    # the subset is never recorded as a version: that is the whole fleet's (inventory_sha256 off)
    return replace(fleet, inventory=Inventory(sites=sites, devices=devices), inventory_sha256=None)


def none_of(fleet: Fleet) -> Fleet:
    """No device at all (`slamon serve`): the contracts and exclusions stay, for the API."""
    return replace(fleet, inventory=Inventory(sites={}, devices={}), inventory_sha256=None)


def sizes(inventory: Inventory, count: int) -> list[int]:
    """Devices per shard, for the start-up log and the docs."""
    out = [0] * count
    for i in assign(inventory, count).values():
        out[i] += 1
    return out
