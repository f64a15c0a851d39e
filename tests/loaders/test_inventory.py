"""The inventory, YAML and CSV: every rule has a bad file in tests/testdata/inventory/bad and its exact message."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slamon.errors import InventoryError
from slamon.loaders import inventory as inventory_module
from slamon.loaders.contracts import load_contracts
from slamon.loaders.inventory import CSV_COLUMNS, load_inventory
from slamon.loaders.yamlio import Source, load_yaml
from slamon.model import (
    Contract,
    ContractId,
    Device,
    DeviceId,
    DeviceKind,
    Inventory,
    Site,
    SiteId,
    SnmpTarget,
    Uplink,
)
from tests.conftest import TESTDATA

INVENTORY = TESTDATA / "inventory"
BAD = INVENTORY / "bad"
ID_HINT = "(use letters, digits, '.', '_', '-')"
AREA_HINT = "(use lowercase letters, digits and _, e.g. urban)"
WHEN_HINT = "(use a date like 2025-06-01 or an instant like 2025-06-01T08:00:00+08:00)"
LONG = "'YJ-C012345678901234567890123456789012345'…"  # a 313-character id, as messages show it


@pytest.fixture(scope="module")
def contracts() -> dict[ContractId, Contract]:
    return load_contracts(sorted((TESTDATA / "contracts" / "good").glob("*.yaml")))


REJECTS = [
    ("not-a-mapping.yaml", "expected a mapping, got a list"),
    ("empty-file.yaml", "the file is empty"),
    ("top-unknown-key.yaml", "cameras: unknown key"),
    ("missing-devices.yaml", "devices: missing (required)"),
    ("devices-not-list.yaml", "devices: expected a list, got a mapping"),
    ("device-not-mapping.yaml", "devices[0]: expected a mapping, got 'YJ-C0001'"),
    ("device-unknown-key.yaml", "devices[0].addr: unknown key"),
    ("missing-kind.yaml", "devices[0].kind: missing (required)"),
    ("duplicate-device-id.yaml", "devices[5].id: duplicate device id 'YJ-C0001' (first at devices[2])"),
    ("bad-id.yaml", f"devices[3].id: 'YJ C0002' is not a valid id {ID_HINT}"),
    ("id-number.yaml", "devices[3].id: expected text, got 10 (put it in quotes)"),
    ("bad-kind.yaml", "devices[1].kind: 'router' is not a device kind (use camera, switch, link)"),
    ("bad-address.yaml", "devices[2].address: '127.0.0.300' is not an IPv4 or IPv6 address"),
    ("address-number.yaml", "devices[2].address: expected text, got 2895057742028 (put it in quotes)"),
    ("duplicate-address.yaml", "devices[3].address: duplicate address '127.0.30.1' (first at devices[2])"),
    ("duplicate-address-ipv6.yaml", "devices[3].address: duplicate address '0:0::1' (first at devices[2])"),
    ("unknown-site.yaml", "devices[3].site: unknown site 'YJ-S009'"),
    ("unknown-contract.yaml", "devices[2].contract: unknown contract 'YJ-2024'"),
    ("no-fee-for-kind.yaml", "devices[1].contract: contract 'MIN-1' has no fee for switch"),
    (
        "area-without-deadline.yaml",
        (
            "devices[3].site: site 'YJ-S002' is in area 'suburban', "
            "but contract 'YJ-2025' has repair deadlines only for rural, urban"
        ),
    ),
    ("unknown-parent.yaml", "devices[2].parent: unknown device 'YJ-SW009'"),
    ("self-parent.yaml", "devices[1].parent: a device cannot be its own parent"),
    ("parent-cycle.yaml", "devices[1].parent: parent cycle YJ-SW001 -> YJ-SW002 -> YJ-SW001"),
    ("channels-zero.yaml", "devices[2].channels: 0 must be at least 1"),
    ("channels-text.yaml", "devices[2].channels: 'two' is not a whole number"),
    ("stream-on-switch.yaml", "devices[1].stream: only cameras have a stream"),
    ("bad-stream.yaml", "devices[2].stream: 'camera-1' is not a stream URL (e.g. rtsp://host:554/path)"),
    ("snmp-on-camera.yaml", "devices[2].snmp: only switches have snmp settings"),
    ("snmp-version.yaml", "devices[1].snmp.version: 1 is not an snmp version (use 2c or 3)"),
    ("snmp-port.yaml", "devices[1].snmp.port: 70000 is not a port (use 1 to 65535)"),
    ("snmp-community.yaml", "devices[1].snmp.community: unknown key"),
    (
        "naive-instant.yaml",
        "devices[2].in_service: '2025-06-01T08:00:00' has no UTC offset (add one, e.g. +08:00)",
    ),
    (
        "naive-yaml-datetime.yaml",
        "devices[2].in_service: 2025-06-01T08:00:00 has no UTC offset (add one, e.g. +08:00)",
    ),
    ("bad-date.yaml", f"devices[2].in_service: 'June 1' is not a date or an instant {WHEN_HINT}"),
    ("impossible-date.yaml", f"devices[2].in_service: '2025-02-30' is not a date or an instant {WHEN_HINT}"),
    ("invalid-yaml-date.yaml", "line 7, column 120: '2025-13-45' is not a valid date or time"),
    ("date-out-of-range.yaml", "devices[2].in_service: 0001-01-01 is out of range"),
    ("out-before-in.yaml", "devices[2].out_of_service: must be after in_service"),
    ("duplicate-site.yaml", "sites[1].id: duplicate site id 'YJ-S001' (first at sites[0])"),
    ("site-bad-area.yaml", f"sites[0].area: 'Urban' is not an area name {AREA_HINT}"),
    ("site-missing-name.yaml", "sites[0].name: missing (required)"),
    ("site-unknown-key.yaml", "sites[0].city: unknown key"),
    ("duplicate-key.yaml", "line 5, column 90: duplicate key 'kind' (first on line 5)"),
    ("syntax-error.yaml", "line 3, column 5: expected ',' or '}', but got '{'"),
    # CSV: `line N, column C`, physical lines, the header is line 1
    ("csv-empty.csv", f"no header line (expected the columns {','.join(CSV_COLUMNS)})"),
    ("csv-not-utf8.csv", "not UTF-8 text (save the CSV as UTF-8)"),
    ("csv-unknown-column.csv", "line 1, column vendor: unknown column"),
    ("csv-missing-column.csv", "line 1: missing column 'site_area' (required)"),
    ("csv-duplicate-column.csv", "line 1, column id: duplicate column"),
    ("csv-unnamed-column.csv", "line 1: column 15 has no name"),
    ("csv-cell-count.csv", "line 3: 5 cells, expected 14 (one per column of line 1)"),
    ("csv-empty-cell.csv", "line 3, column contract: empty (required)"),
    (
        "csv-site-name-differs.csv",
        "line 5, column site_name: site 'YJ-S001' has site_name '城西路口' here but '城东路口' on line 2",
    ),
    (
        "csv-site-area-differs.csv",
        "line 5, column site_area: site 'YJ-S001' has site_area 'rural' here but 'urban' on line 2",
    ),
    ("csv-bad-area.csv", f"line 2, column site_area: 'Urban' is not an area name {AREA_HINT}"),
    (
        "csv-bad-snmp.csv",
        "line 3, column snmp: '2c:0' is not an snmp setting (use 2c, 3 or VERSION:PORT like 2c:1161)",
    ),
    (
        "csv-snmp-v1.csv",
        "line 3, column snmp: '1' is not an snmp setting (use 2c, 3 or VERSION:PORT like 2c:1161)",
    ),
    ("csv-bad-channels.csv", "line 4, column channels: 'two' is not a whole number"),
    ("csv-channels-zero.csv", "line 4, column channels: 0 must be at least 1"),
    ("csv-stream-on-link.csv", "line 2, column stream: only cameras have a stream"),
    ("csv-unknown-parent.csv", "line 6, column parent: unknown device 'YJ-SW009'"),
    ("csv-quoted-multiline.csv", "line 5, column parent: unknown device 'YJ-SW009'"),
    ("csv-duplicate-id.csv", "line 5, column id: duplicate device id 'YJ-C0001' (first on line 4)"),
    (
        "csv-naive-instant.csv",
        "line 2, column in_service: '2025-06-01T08:00:00' has no UTC offset (add one, e.g. +08:00)",
    ),
    # bounds: ids as long as the store keeps them (varchar(200) on PostgreSQL), channels, nesting
    ("id-too-long.yaml", f"devices[2].id: {LONG} is 313 characters long (at most 100)"),
    (
        "site-id-too-long.yaml",
        "sites[1].id: 'YJ-S002-0123456789-0123456789-0123456789'… is 117 characters long (at most 100)",
    ),
    ("channels-too-many.yaml", "devices[2].channels: 1001 must be at most 1,000"),
    ("channels-huge.yaml", "devices[2].channels: a 100-digit number must be at most 1,000"),
    (
        "stream-bracket.yaml",
        "devices[2].stream: 'rtsp://[::1:554/main' is not a stream URL (e.g. rtsp://host:554/path)",
    ),
    ("deep-nesting.yaml", "line 7, column 234: nested more than 32 levels deep"),
    ("csv-id-too-long.csv", f"line 3, column id: {LONG} is 313 characters long (at most 100)"),
    ("csv-site-id-too-long.csv", f"line 4, column site: '{'S' * 40}'… is 101 characters long (at most 100)"),
    ("csv-channels-too-many.csv", "line 4, column channels: 1001 must be at most 1,000"),
    ("csv-channels-huge.csv", f"line 4, column channels: '{'1' * 40}'… must be at most 1,000"),
    ("uplink-unknown-switch.yaml", "devices[2].uplink: unknown switch 'YJ-SW009'"),
    ("uplink-not-a-switch.yaml", "devices[2].uplink: 'YJ-LINK01' is a link, not a switch"),
    ("uplink-port-zero.yaml", "devices[2].uplink.port: 0 is not an ifIndex (use 1 to 2147483647)"),
    ("uplink-no-port.yaml", "devices[2].uplink.port: missing (required)"),
    (
        "uplink-not-ancestor.yaml",
        (
            "devices[3].uplink: switch 'YJ-SW002' is not this device's parent or an ancestor "
            "(set parent: YJ-SW002)"
        ),
    ),
    (
        "csv-uplink-no-colon.csv",
        "line 4, column uplink: 'YJ-SW001-Gi0/5' is not an uplink (use SWITCH:PORT, e.g. YJ-SW001:Gi0/5)",
    ),
]


@pytest.mark.parametrize(("name", "message"), REJECTS, ids=[name for name, _ in REJECTS])
def test_load_inventory_rejects(name: str, message: str, contracts: dict[ContractId, Contract]) -> None:
    path = BAD / name
    with pytest.raises(InventoryError, match=f"^{re.escape(f'{path}: {message}')}$"):
        load_inventory(path, contracts)


def test_every_bad_file_is_in_the_table() -> None:
    assert sorted(p.name for p in BAD.iterdir()) == sorted(name for name, _ in REJECTS)


@pytest.mark.parametrize("name", ["nope.yaml", "nope.csv"])
def test_missing_file(name: str, contracts: dict[ContractId, Contract]) -> None:
    path = INVENTORY / name
    with pytest.raises(InventoryError, match=f"^{re.escape(f'{path}: file not found')}$"):
        load_inventory(path, contracts)


def _utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


EXPECTED_SITES = {
    "YJ-S001": Site(id=SiteId("YJ-S001"), name="城东路口", district="右江区", area="urban"),
    "YJ-S002": Site(id=SiteId("YJ-S002"), name="那坡村", district="田阳区", area="rural"),
}


def test_good_yaml(contracts: dict[ContractId, Contract]) -> None:
    inventory = load_inventory(INVENTORY / "good.yaml", contracts)
    assert inventory.sites == EXPECTED_SITES
    assert list(inventory.devices) == [
        "YJ-LINK01",
        "YJ-SW001",
        "YJ-C0001",
        "YJ-SW002",
        "YJ-C0002",
        "MIN-C0001",
    ]
    d = {str(k): v for k, v in inventory.devices.items()}
    assert d["YJ-LINK01"] == Device(
        id=DeviceId("YJ-LINK01"),
        kind=DeviceKind.LINK,
        address="127.0.10.1",
        site=SiteId("YJ-S001"),
        contract=ContractId("YJ-2025"),
    )
    assert d["YJ-SW001"].parent == "YJ-LINK01"
    assert d["YJ-SW001"].snmp == SnmpTarget(version="2c", port=1161)
    assert d["YJ-SW002"].snmp == SnmpTarget(version="3", port=161)
    assert d["YJ-SW002"].address == "2001:db8::20"
    camera = d["YJ-C0001"]
    assert camera.kind is DeviceKind.CAMERA
    assert camera.channels == 1
    assert camera.stream == "rtsp://127.0.30.1:8554/main"
    assert camera.snmp is None
    # A date is 00:00 of that day in the contract's time zone (Asia/Shanghai), held in UTC.
    assert camera.in_service == _utc(2025, 5, 31, 16)
    assert camera.in_service is not None
    assert camera.in_service.tzinfo is UTC
    assert camera.out_of_service is None
    assert d["YJ-C0002"].channels == 2
    assert d["YJ-C0002"].in_service == _utc(2025, 6, 1, 0)  # an instant with +08:00
    assert d["YJ-C0002"].out_of_service == _utc(2025, 12, 31, 16)  # a quoted date
    other = d["MIN-C0001"]
    assert other.address == "2001:db8::31"  # normalised
    assert other.in_service == _utc(2025, 1, 1)
    assert other.out_of_service == _utc(2025, 12, 31, 16)
    assert all(
        t is None or t.tzinfo is UTC for dev in d.values() for t in (dev.in_service, dev.out_of_service)
    )
    assert [a.id for a in inventory.ancestors(DeviceId("YJ-C0002"))] == ["YJ-SW002", "YJ-LINK01"]
    assert camera.uplink == Uplink(DeviceId("YJ-SW001"), "Gi0/5")
    assert d["YJ-C0002"].uplink == Uplink(DeviceId("YJ-SW002"), "3")  # `port: 3`: the ifIndex, as text
    assert d["MIN-C0001"].uplink is None


def test_csv_is_the_same_inventory(contracts: dict[ContractId, Contract]) -> None:
    """Columns in any order, a BOM, a blank line, cells with spaces around them: the same inventory."""
    assert load_inventory(INVENTORY / "good.csv", contracts) == load_inventory(
        INVENTORY / "good.yaml", contracts
    )


def test_csv_optional_columns_may_be_absent(contracts: dict[ContractId, Contract]) -> None:
    inventory = load_inventory(INVENTORY / "minimal-columns.csv", contracts)
    assert inventory.sites == {"YJ-S001": EXPECTED_SITES["YJ-S001"]}
    assert inventory.devices[DeviceId("YJ-C0001")] == Device(
        id=DeviceId("YJ-C0001"),
        kind=DeviceKind.CAMERA,
        address="127.0.30.1",
        site=SiteId("YJ-S001"),
        contract=ContractId("YJ-2025"),
    )


def test_csv_header_only_is_an_empty_inventory(contracts: dict[ContractId, Contract]) -> None:
    inventory = load_inventory(INVENTORY / "header-only.csv", contracts)
    assert inventory.sites == {}
    assert inventory.devices == {}


def test_date_uses_the_device_contract_time_zone(
    tmp_path: Path, contracts: dict[ContractId, Contract]
) -> None:
    """The same date means a different instant under a contract in another time zone."""
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "sites: [{id: S1, name: n, district: d, area: urban}]\n"
        "devices:\n"
        "  - {id: C1, kind: camera, address: 10.0.0.1, site: S1, contract: OT.2026_a, in_service: 2026-01-01}\n"
        "  - {id: C2, kind: camera, address: 10.0.0.2, site: S1, contract: YJ-2025, in_service: 2026-01-01}\n"
    )
    devices = {str(k): v for k, v in load_inventory(path, contracts).devices.items()}
    assert devices["C1"].in_service == _utc(2026, 1, 1, 5)  # America/New_York, EST
    assert devices["C2"].in_service == _utc(2025, 12, 31, 16)  # Asia/Shanghai


# --- the quick path: the same inventory as the exact one, or none at all -----------------------


def exact_path(path: Path, contracts: dict[ContractId, Contract]) -> Inventory | InventoryError:
    """What the exact, row-by-row checker alone makes of a file."""
    src = Source(path, InventoryError)
    try:
        if path.suffix == ".csv":
            sites, rows = inventory_module._read_csv(src, inventory_module._csv_text(src))
            return inventory_module._Checker(src, sites, contracts).inventory(rows)
        doc = src.mapping("", load_yaml(path, InventoryError), ("sites", "devices"), ("sites", "devices"))
        yaml_sites = inventory_module._yaml_sites(src, doc["sites"])
        items = src.sequence("devices", doc["devices"])
        return inventory_module._Checker(src, yaml_sites, contracts).inventory(
            inventory_module._yaml_rows(src, items)
        )
    except InventoryError as exc:
        return exc


def quick_path(path: Path, contracts: dict[ContractId, Contract]) -> Inventory | None:
    """What the quick path alone makes of a file: an inventory, or None (over to the exact path)."""
    src = Source(path, InventoryError)
    try:
        if path.suffix == ".csv":
            return inventory_module._quick_csv(inventory_module._csv_text(src), contracts)
        doc = src.mapping("", load_yaml(path, InventoryError), ("sites", "devices"), ("sites", "devices"))
        yaml_sites = inventory_module._yaml_sites(src, doc["sites"])
        items = src.sequence("devices", doc["devices"])
    except InventoryError:
        return None  # (the file is refused before any device is looked at)
    devices = inventory_module._Quick(yaml_sites, contracts).devices(
        inventory_module._yaml_columns(items), len(items)
    )
    return None if devices is None else Inventory(sites=yaml_sites, devices=devices)


def assert_quick_agrees(path: Path, contracts: dict[ContractId, Contract]) -> Inventory | None:
    quick = quick_path(path, contracts)
    exact = exact_path(path, contracts)
    if quick is not None:
        assert not isinstance(exact, InventoryError), f"quick took what the exact path refuses: {exact}"
        assert quick == exact
        assert list(quick.devices) == list(exact.devices)
        assert list(quick.sites) == list(exact.sites)
    return quick


@pytest.mark.parametrize(
    "path",
    [
        *sorted(BAD.iterdir()),
        INVENTORY / "good.yaml",
        INVENTORY / "good.csv",
        INVENTORY / "minimal-columns.csv",
    ],
    ids=lambda p: p.name,
)
def test_quick_path_takes_only_what_the_exact_path_takes(
    path: Path, contracts: dict[ContractId, Contract]
) -> None:
    assert_quick_agrees(path, contracts)


@pytest.mark.parametrize("name", ["good.yaml", "good.csv", "minimal-columns.csv", "header-only.csv"])
def test_quick_path_takes_the_good_files(name: str, contracts: dict[ContractId, Contract]) -> None:
    """Snmp settings, streams, dates and instants, IPv6, a BOM, blank lines, quoted cells: all quick."""
    assert assert_quick_agrees(INVENTORY / name, contracts) is not None


SITES = [
    {"id": "S1", "name": "城东路口", "district": "右江区", "area": "urban"},
    {"id": "S2", "name": "那坡村", "district": "田阳区", "area": "rural"},
]
FIELD_VALUES: dict[str, list[object]] = {
    "id": ["C9", "C 9", "", "x" * 100, "x" * 101, 10, "C1", "SW1", None],
    "kind": ["camera", "switch", "link", "router", 1, None],
    "address": ["10.0.0.99", "10.0.0.1", "::1", "0:0::1", "10.0.0.256", "010.0.0.1", " 10.0.0.9", 167772161],
    "site": ["S1", "S2", "S9", 1, "", None],
    "contract": ["YJ-2025", "MIN-1", "OT.2026_a", "NOPE", None],
    "parent": ["SW1", "L1", "C1", "C2", "NOPE", "", None, 1],
    "channels": [1, 2, 0, 1000, 1001, True, "2", 1.5, None],
    "stream": ["rtsp://h:554/x", "rtsp://[::1]:554/x", "rtsp://[::1", "x", "", " ", 1, None],
    "snmp": [
        {"version": "2c"},
        {"version": 3},
        {"version": 2},
        {"port": 0},
        {"port": 65535},
        {"x": 1},
        "2c",
        [],
        None,
    ],
    "in_service": [
        date(2025, 6, 1),
        "2025-06-01",
        "2025-06-01T08:00:00+08:00",
        "2025-06-01T08:00:00",
        "2025-02-30",
        datetime(2025, 6, 1, 8, tzinfo=UTC),
        datetime(2025, 6, 1, 8),
        date(1, 1, 1),
        1,
        "June",
        None,
    ],
}
FIELD_VALUES["out_of_service"] = [*FIELD_VALUES["in_service"], date(2024, 1, 1), date(2030, 1, 1)]


def fleet_items() -> list[dict[str, object]]:
    return [
        {"id": "L1", "kind": "link", "address": "10.0.0.1", "site": "S1", "contract": "YJ-2025"},
        {"id": "SW1", "kind": "switch", "address": "10.0.0.2", "site": "S1", "contract": "YJ-2025", "parent": "L1",
         "snmp": {"version": "2c", "port": 1161}},
        {"id": "C1", "kind": "camera", "address": "10.0.0.3", "site": "S1", "contract": "YJ-2025", "parent": "SW1",
         "channels": 2, "stream": "rtsp://10.0.0.3:554/main", "in_service": date(2025, 6, 1)},
        {"id": "C2", "kind": "camera", "address": "2001:db8::4", "site": "S2", "contract": "YJ-2025", "parent": "SW1",
         "in_service": "2025-06-01T08:00:00+08:00", "out_of_service": "2026-01-01"},
        {"id": "C3", "kind": "camera", "address": "10.0.0.5", "site": "S1", "contract": "MIN-1"},
    ]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from(sorted(FIELD_VALUES)), st.integers(0, 20)),
        min_size=1,
        max_size=3,
    )
)
def test_quick_path_agrees_on_changed_fleets(changes: list[tuple[int, str, int]]) -> None:
    """A fleet with a value or two changed, of any type: the quick path builds the exact path's
    inventory, or hands the file over."""
    contracts = load_contracts(sorted((TESTDATA / "contracts" / "good").glob("*.yaml")))
    items = fleet_items()
    for device, field, pick in changes:
        values = FIELD_VALUES[field]
        value = values[pick % len(values)]
        if value is None:
            items[device].pop(field, None)
        else:
            items[device][field] = value
    src = Source("inventory.yaml", InventoryError)
    sites = inventory_module._yaml_sites(src, SITES)
    rows: list[object] = list(items)
    try:
        exact: Inventory | None = inventory_module._Checker(src, sites, contracts).inventory(
            inventory_module._yaml_rows(src, rows)
        )
    except InventoryError:
        exact = None
    devices = inventory_module._Quick(sites, contracts).devices(
        inventory_module._yaml_columns(rows), len(rows)
    )
    if devices is not None:
        assert exact is not None
        assert devices == exact.devices
        assert list(devices) == list(exact.devices)
    if not changes or all(field == "in_service" and pick % 11 < 3 for _, field, pick in changes):
        assert devices is not None  # a fleet the quick path should take


def csv_text(rows: list[list[str]]) -> str:
    header = "site,site_name,site_district,site_area,id,kind,address,contract,parent,channels,stream,snmp,in_service,out_of_service"
    return header + "\n" + "".join(",".join(row) + "\n" for row in rows)


CSV_ROWS = [
    ["S1", "城东路口", "右江区", "urban", "L1", "link", "10.0.0.1", "YJ-2025", "", "", "", "", "", ""],
    ["S1", "城东路口", "右江区", "urban", "SW1", "switch", "10.0.0.2", "YJ-2025", "L1", "", "", "2c:1161", "", ""],
    ["S1", "城东路口", "右江区", "urban", "C1", "camera", "10.0.0.3", "YJ-2025", "SW1", "2", "rtsp://h/x", "", "2025-06-01", ""],
    ["S2", "那坡村", "田阳区", "rural", "C2", "camera", "::4", "YJ-2025", "SW1", "", "", "", "", "2026-01-01T00:00:00+08:00"],
]  # fmt: skip
CELLS = ["", " ", "x", "C1", "S1", "S2", "urban", "Urban", "rural", "camera", "switch", "link", "10.0.0.9", "10.0.0.1",
         "::1", "YJ-2025", "MIN-1", "1", "0", "1001", "2c", "3:99999", "2025-06-01", "2025-06-01T08:00:00",
         '"a,b"', "L1", "SW1", "那坡村", "x" * 101]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 13), st.sampled_from(CELLS)), min_size=1, max_size=3
    ),
    st.booleans(),
)
def test_quick_path_agrees_on_changed_csv(changes: list[tuple[int, int, str]], blank_line: bool) -> None:
    contracts = load_contracts(sorted((TESTDATA / "contracts" / "good").glob("*.yaml")))
    rows = [row[:] for row in CSV_ROWS]
    for row, column, cell in changes:
        rows[row][column] = cell
    text = csv_text(rows)
    if blank_line:
        text = text.replace("\n", "\n\n", 2)
    src = Source("inventory.csv", InventoryError)
    try:
        sites, exact_rows = inventory_module._read_csv(src, text)
        exact: Inventory | None = inventory_module._Checker(src, sites, contracts).inventory(exact_rows)
    except InventoryError:
        exact = None
    quick = inventory_module._quick_csv(text, contracts)
    if quick is not None:
        assert quick == exact
        assert exact is not None
        assert list(quick.devices) == list(exact.devices)
        assert list(quick.sites) == list(exact.sites)


def test_quick_path_takes_a_city(contracts: dict[ContractId, Contract], tmp_path: Path) -> None:
    """Thousands of devices as a generator writes them, YAML and CSV: quick, and as the exact path."""
    yaml_lines = ["sites:"] + [
        f"  - {{id: S{j}, name: 路口{j}, district: 右江区, area: urban}}" for j in range(20)
    ]
    yaml_lines.append("devices:")
    csv_rows = []
    for i in range(3000):
        parent = f", parent: C{i - i % 30}" if i % 30 else ""
        yaml_lines.append(
            f"  - {{id: C{i}, kind: camera, address: 10.{i >> 16}.{(i >> 8) & 255}.{i & 255}, site: S{i % 20}, "
            f"contract: YJ-2025{parent}, channels: 1, in_service: 2025-07-01}}"
        )
        csv_rows.append(
            [f"S{i % 20}", f"路口{i % 20}", "右江区", "urban", f"C{i}", "camera", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}",
             "YJ-2025", f"C{i - i % 30}" if i % 30 else "", "1", "", "", "2025-07-01", ""]
        )  # fmt: skip
    (tmp_path / "inventory.yaml").write_text("\n".join(yaml_lines) + "\n", encoding="utf-8")
    (tmp_path / "inventory.csv").write_text(csv_text(csv_rows), encoding="utf-8")
    from_yaml = assert_quick_agrees(tmp_path / "inventory.yaml", contracts)
    from_csv = assert_quick_agrees(tmp_path / "inventory.csv", contracts)
    assert from_yaml is not None
    assert from_yaml == from_csv
    assert from_yaml == load_inventory(tmp_path / "inventory.yaml", contracts)
