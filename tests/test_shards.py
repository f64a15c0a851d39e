"""The split of a fleet into shards (slamon/shards.py): every device in exactly one shard, parent
chains and sites never cut, the same split in every process, and little moved by a reload."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slamon.errors import ConfigError
from slamon.model import ContractId, Device, DeviceId, DeviceKind, Fleet, Inventory, Site, SiteId
from slamon.shards import Shard, assign, groups, members, none_of, sizes, subset
from tests.harness.fleets import fleet_of
from tests.harness.scenarios import AddressPlan


def inventory_of(parents: list[int | None], site_of: list[int]) -> Inventory:
    """Device i has parent parents[i] (an earlier device, so no cycle) and site site_of[i]."""
    sites = {SiteId(f"S{s}"): Site(SiteId(f"S{s}"), "n", "D", "urban") for s in set(site_of)}
    devices = {}
    for i, (p, s) in enumerate(zip(parents, site_of, strict=True)):
        did = DeviceId(f"D{i:04d}")
        parent = DeviceId(f"D{p:04d}") if p is not None else None
        devices[did] = Device(
            did,
            DeviceKind.CAMERA,
            f"127.0.{i // 250}.{i % 250 + 1}",
            SiteId(f"S{s}"),
            ContractId("C1"),
            parent,
        )
    return Inventory(sites, devices)


@st.composite
def inventories(draw: st.DrawFn) -> Inventory:
    n = draw(st.integers(1, 60))
    parents: list[int | None] = [None]
    for i in range(1, n):
        parents.append(draw(st.one_of(st.none(), st.integers(0, i - 1))))
    site_of = [draw(st.integers(0, n)) for _ in range(n)]
    return inventory_of(parents, site_of)


@settings(max_examples=300, deadline=None)
@given(inventories(), st.integers(1, 6))
def test_every_device_is_in_exactly_one_shard(inventory: Inventory, count: int) -> None:
    parts = [members(inventory, Shard(i, count)) for i in range(count)]
    assert sum(len(p) for p in parts) == len(inventory.devices)
    assert set().union(*parts) == set(inventory.devices)
    assert sizes(inventory, count) == [len(p) for p in parts]


@settings(max_examples=300, deadline=None)
@given(inventories(), st.integers(1, 6))
def test_parent_chains_and_sites_stay_together(inventory: Inventory, count: int) -> None:
    shard = assign(inventory, count)
    for device in inventory.devices.values():
        for ancestor in inventory.ancestors(device.id):
            assert shard[ancestor.id] == shard[device.id]
    by_site: dict[str, set[int]] = {}
    for device in inventory.devices.values():
        by_site.setdefault(device.site, set()).add(shard[device.id])
    assert all(len(s) == 1 for s in by_site.values())


@settings(max_examples=200, deadline=None)
@given(inventories())
def test_a_group_is_named_by_its_smallest_device(inventory: Inventory) -> None:
    named = groups(inventory)
    for device, group in named.items():
        assert group <= device
        assert named[group] == group


def test_independent_trees_spread_over_the_shards() -> None:
    """300 switches, each with 10 cameras at its own site: three shards of roughly a third each."""
    parents: list[int | None] = []
    site_of: list[int] = []
    for sw in range(300):
        parents.append(None)
        site_of.append(sw)
        root = len(parents) - 1
        for _ in range(10):
            parents.append(root)
            site_of.append(sw)
    inventory = inventory_of(parents, site_of)
    per_shard = sizes(inventory, 3)
    assert sum(per_shard) == 3300
    assert all(900 <= n <= 1300 for n in per_shard), per_shard


def test_one_root_is_one_shard() -> None:
    """Everything behind one link: it cannot be split, and one shard takes it all."""
    fleet = fleet_of(AddressPlan.grid(sites=1, switches=2, cameras=3))
    assert sorted(sizes(fleet.inventory, 3)) == [0, 0, len(fleet.inventory.devices)]


def test_the_split_is_the_same_in_another_process() -> None:
    """Python's own hash changes from process to process; the split must not."""
    parents: list[int | None] = [None if i % 4 == 0 else i - i % 4 for i in range(200)]
    inventory = inventory_of(parents, list(range(200)))
    here = assign(inventory, 3)
    code = (
        "import sys; from slamon.shards import shard_of_group; "
        "print(' '.join(str(shard_of_group(g, 3)) for g in sys.argv[1:]))"
    )
    names = sorted(set(groups(inventory).values()))
    out = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, check=True
    ).stdout.split()
    there = dict(zip(names, map(int, out), strict=True))
    assert all(here[d] == there[g] for d, g in groups(inventory).items())


def test_adding_a_tree_moves_no_other_device() -> None:
    parents: list[int | None] = [None if i % 5 == 0 else i - i % 5 for i in range(100)]
    before = assign(inventory_of(parents, list(range(100))), 3)
    after = assign(inventory_of([*parents, None, 100], [*range(100), 500, 500]), 3)
    assert all(after[d] == s for d, s in before.items())


def test_subset_keeps_contracts_and_only_its_sites() -> None:
    fleet = fleet_of(AddressPlan.grid(sites=1, switches=1, cameras=3))
    two = Fleet(
        Inventory(
            {**fleet.inventory.sites, SiteId("X"): Site(SiteId("X"), "x", "D", "rural")},
            {
                **fleet.inventory.devices,
                DeviceId("ZZ"): Device(
                    DeviceId("ZZ"), DeviceKind.CAMERA, "127.0.9.9", SiteId("X"), ContractId("C1")
                ),
            },
        ),
        fleet.contracts,
        inventory_sha256="abc",
    )
    parts = [subset(two, Shard(i, 2)) for i in range(2)]
    for part in parts:
        assert part.contracts == two.contracts
        assert part.inventory_sha256 is None  # never recorded as the store's version
        assert set(part.inventory.sites) == {d.site for d in part.inventory.devices.values()}
    assert sorted(len(p.inventory.devices) for p in parts) in ([0, 6], [1, 5])
    assert subset(two, None) is two
    assert subset(two, Shard(0, 1)) is two
    assert not none_of(two).inventory.devices
    assert none_of(two).contracts == two.contracts


@pytest.mark.parametrize(
    ("text", "problem"),
    [("3", "is not I/N"), ("3/3", "I must be 0 to N-1"), ("0/0", "N at least 1"), ("a/b", "is not I/N")],
)
def test_a_bad_shard_flag_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as err:
        Shard.parse(text)
    assert str(err.value).startswith("--shard: ")


def test_shard_names() -> None:
    shard = Shard.parse(" 1/3 ")
    assert (shard.index, shard.count, shard.name, str(shard)) == (1, 3, "shard-1-of-3", "1/3")
