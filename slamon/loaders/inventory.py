"""The inventory: sites and devices, from YAML or from a spreadsheet's CSV export.

Both forms are read into the same raw rows and go through the same checks, so a device is
valid or not regardless of the file it came from. The checks that need other files (each
device's contract exists, bills its kind, knows its site's area, and gives dates their time
zone) run here too: an inventory is only ever loaded against its contracts.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from os import PathLike
from pathlib import Path
from urllib.parse import urlsplit

from slamon.errors import InventoryError
from slamon.loaders.contracts import AREA_HINT, AREA_PATTERN
from slamon.loaders.yamlio import Source, key_path, load_yaml
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
)
from slamon.units import quote

DEVICE_FIELDS = (
    "id",
    "kind",
    "address",
    "site",
    "contract",
    "parent",
    "channels",
    "stream",
    "snmp",
    "in_service",
    "out_of_service",
)
SITE_FIELDS = ("id", "name", "district", "area")
CSV_COLUMNS = (*DEVICE_FIELDS, "site_name", "site_district", "site_area")
CSV_REQUIRED = ("id", "kind", "address", "site", "contract", "site_name", "site_district", "site_area")
SERVICE_TIME_HINT = "use a date like 2025-06-01 or an instant like 2025-06-01T08:00:00+08:00"

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CSV_SNMP = re.compile(r"(2c|3)(?::([0-9]{1,5}))?")
_SNMP_VERSIONS = ("2c", "3")


@dataclass(frozen=True, slots=True)
class _Row:
    """One device as a file gives it, and how to name its fields in a message."""

    values: Mapping[str, object]  # the fields given; YAML types, or text (channels, snmp parsed) from CSV
    at: Callable[[str], str]  # field name -> `devices[3].parent` or `line 5, column parent`
    ref: str  # `at devices[3]` or `on line 5`: where "first at …" points


def load_inventory(path: str | PathLike[str], contracts: Mapping[ContractId, Contract]) -> Inventory:
    """Read a `.yaml`/`.yml` or `.csv` inventory and check it against `contracts`."""
    src = Source(path, InventoryError)
    if Path(path).suffix.lower() == ".csv":
        sites, rows = _read_csv(src)
    else:
        sites, rows = _read_yaml(src)
    return _Checker(src, sites, contracts).inventory(rows)


# --- YAML ---------------------------------------------------------------------------------------


def _read_yaml(src: Source) -> tuple[dict[SiteId, Site], list[_Row]]:
    doc = src.mapping("", load_yaml(src.file, InventoryError), ("sites", "devices"), ("sites", "devices"))
    sites: dict[SiteId, Site] = {}
    first: dict[SiteId, str] = {}
    for i, item in enumerate(src.sequence("sites", doc["sites"])):
        where = key_path("sites", i)
        fields = src.mapping(where, item, SITE_FIELDS, required=SITE_FIELDS)
        site_id = SiteId(src.ident(key_path(where, "id"), fields["id"]))
        if site_id in first:
            src.fail(key_path(where, "id"), f"duplicate site id {quote(site_id)} (first at {first[site_id]})")
        first[site_id] = where
        sites[site_id] = Site(
            id=site_id,
            name=src.text(key_path(where, "name"), fields["name"]),
            district=src.text(key_path(where, "district"), fields["district"]),
            area=_area(src, key_path(where, "area"), fields["area"]),
        )
    rows: list[_Row] = []
    for i, item in enumerate(src.sequence("devices", doc["devices"])):
        where = key_path("devices", i)
        fields = src.mapping(
            where, item, DEVICE_FIELDS, required=("id", "kind", "address", "site", "contract")
        )
        rows.append(_Row(fields, _yaml_at(where), f"at {where}"))
    return sites, rows


def _yaml_at(where: str) -> Callable[[str], str]:
    return lambda field: key_path(where, field)


def _area(src: Source, where: str, value: object) -> str:
    area = src.text(where, value)
    if not AREA_PATTERN.fullmatch(area):
        src.fail(where, f"{quote(area)} is not an area name ({AREA_HINT})")
    return area


# --- CSV ----------------------------------------------------------------------------------------


def _read_csv(src: Source) -> tuple[dict[SiteId, Site], list[_Row]]:
    """One row per device; the site columns repeat on every row of a site and must agree."""
    try:
        text = Path(src.file).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        src.fail(None, "file not found")
    except UnicodeDecodeError:
        src.fail(None, "not UTF-8 text (save the CSV as UTF-8)")
    except OSError as exc:
        src.fail(None, f"cannot read: {(exc.strerror or str(exc)).lower()}")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        src.fail("line 1", str(exc).lower())
    if header is None or not any(cell.strip() for cell in header):
        src.fail(None, f"no header line (expected the columns {','.join(CSV_COLUMNS)})")
    columns = _csv_header(src, header)

    sites: dict[SiteId, Site] = {}
    site_lines: dict[SiteId, int] = {}
    rows: list[_Row] = []
    end = reader.line_num
    while True:
        start = end + 1
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            src.fail(f"line {start}", str(exc).lower())
        end = reader.line_num
        if cells is None:
            break
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if len(cells) != len(columns):
            src.fail(
                f"line {start}", f"{len(cells)} cells, expected {len(columns)} (one per column of line 1)"
            )
        given = {column: cell for column, cell in zip(columns, cells, strict=True) if cell}

        def at(field: str, line: int = start) -> str:
            return f"line {line}, column {field}"

        for column in CSV_REQUIRED:
            if column not in given:
                src.fail(at(column), "empty (required)")
        _csv_site(src, given, at, start, sites, site_lines)
        values: dict[str, object] = {k: v for k, v in given.items() if k in DEVICE_FIELDS}
        if "channels" in given:
            if not given["channels"].isascii() or not given["channels"].isdigit():
                src.fail(at("channels"), f"{quote(given['channels'])} is not a whole number")
            values["channels"] = int(given["channels"])
        if "snmp" in given:
            values["snmp"] = _csv_snmp(src, at("snmp"), given["snmp"])
        rows.append(_Row(values, at, f"on line {start}"))
    return sites, rows


def _csv_header(src: Source, header: list[str]) -> list[str]:
    columns: list[str] = []
    for n, cell in enumerate(header, start=1):
        name = cell.strip()
        if not name:
            src.fail("line 1", f"column {n} has no name")
        if name not in CSV_COLUMNS:
            src.fail(f"line 1, column {name}", "unknown column")
        if name in columns:
            src.fail(f"line 1, column {name}", "duplicate column")
        columns.append(name)
    for name in CSV_REQUIRED:
        if name not in columns:
            src.fail("line 1", f"missing column {quote(name)} (required)")
    return columns


def _csv_site(
    src: Source,
    given: Mapping[str, str],
    at: Callable[[str], str],
    line: int,
    sites: dict[SiteId, Site],
    site_lines: dict[SiteId, int],
) -> None:
    site_id = SiteId(src.ident(at("site"), given["site"]))
    site = Site(
        id=site_id,
        name=given["site_name"],
        district=given["site_district"],
        area=_area(src, at("site_area"), given["site_area"]),
    )
    first = sites.get(site_id)
    if first is None:
        sites[site_id] = site
        site_lines[site_id] = line
        return
    for field in ("name", "district", "area"):
        here, there = getattr(site, field), getattr(first, field)
        if here != there:
            src.fail(
                at(f"site_{field}"),
                f"site {quote(site_id)} has site_{field} {quote(here)} here "
                f"but {quote(there)} on line {site_lines[site_id]}",
            )


def _csv_snmp(src: Source, where: str, cell: str) -> SnmpTarget:
    match = _CSV_SNMP.fullmatch(cell)
    if match is None or (match[2] is not None and not 1 <= int(match[2]) <= 65535):
        src.fail(where, f"{quote(cell)} is not an snmp setting (use 2c, 3 or VERSION:PORT like 2c:1161)")
    return SnmpTarget(version=match[1], port=int(match[2]) if match[2] else 161)


# --- checks shared by both forms ----------------------------------------------------------------


class _Checker:
    """Turns raw rows into devices, checking each against the sites, the contracts and the rows before it."""

    def __init__(
        self, src: Source, sites: dict[SiteId, Site], contracts: Mapping[ContractId, Contract]
    ) -> None:
        self.src = src
        self.sites = sites
        self.contracts = contracts
        self.ids: dict[DeviceId, _Row] = {}
        self.addresses: dict[str, _Row] = {}
        self.zones: dict[str, zoneinfo.ZoneInfo] = {}

    def inventory(self, rows: list[_Row]) -> Inventory:
        devices: dict[DeviceId, Device] = {}
        for row in rows:
            device = self.device(row)
            devices[device.id] = device
        for device in devices.values():
            if device.parent is not None and device.parent not in devices:
                self.src.fail(self.ids[device.id].at("parent"), f"unknown device {quote(device.parent)}")
        self.check_cycles(devices)
        return Inventory(sites=self.sites, devices=devices)

    def device(self, row: _Row) -> Device:
        src, values, at = self.src, row.values, row.at
        device_id = DeviceId(src.ident(at("id"), values["id"]))
        if device_id in self.ids:
            src.fail(at("id"), f"duplicate device id {quote(device_id)} (first {self.ids[device_id].ref})")
        self.ids[device_id] = row
        kind = src.choice(at("kind"), values["kind"], DeviceKind, "a device kind")
        address = self.address(row)
        site_id = SiteId(src.ident(at("site"), values["site"]))
        site = self.sites.get(site_id)
        if site is None:
            src.fail(at("site"), f"unknown site {quote(site_id)}")
        contract_id = ContractId(src.ident(at("contract"), values["contract"]))
        contract = self.contracts.get(contract_id)
        if contract is None:
            src.fail(at("contract"), f"unknown contract {quote(contract_id)}")
        if kind not in contract.fees:
            src.fail(at("contract"), f"contract {quote(contract_id)} has no fee for {kind.value}")
        deadlines = contract.sla.repair_deadline
        if deadlines and site.area not in deadlines:
            src.fail(
                at("site"),
                f"site {quote(site_id)} is in area {quote(site.area)}, but contract {quote(contract_id)} "
                f"has repair deadlines only for {', '.join(sorted(deadlines))}",
            )
        parent: DeviceId | None = None
        if "parent" in values:
            parent = DeviceId(src.ident(at("parent"), values["parent"]))
            if parent == device_id:
                src.fail(at("parent"), "a device cannot be its own parent")
        channels = src.integer(at("channels"), values["channels"], minimum=1) if "channels" in values else 1
        stream: str | None = None
        if "stream" in values:
            if kind is not DeviceKind.CAMERA:
                src.fail(at("stream"), "only cameras have a stream")
            stream = src.text(at("stream"), values["stream"])
            parts = urlsplit(stream)
            if not parts.scheme or not parts.netloc:
                src.fail(at("stream"), f"{quote(stream)} is not a stream URL (e.g. rtsp://host:554/path)")
        snmp: SnmpTarget | None = None
        if "snmp" in values:
            if kind is not DeviceKind.SWITCH:
                src.fail(at("snmp"), "only switches have snmp settings")
            snmp = self.snmp(at("snmp"), values["snmp"])
        zone = self.zone(contract.timezone)
        in_service = self.service_time(at("in_service"), values.get("in_service"), zone)
        out_of_service = self.service_time(at("out_of_service"), values.get("out_of_service"), zone)
        if in_service is not None and out_of_service is not None and out_of_service <= in_service:
            src.fail(at("out_of_service"), "must be after in_service")
        return Device(
            id=device_id,
            kind=kind,
            address=address,
            site=site_id,
            contract=contract_id,
            parent=parent,
            channels=channels,
            stream=stream,
            snmp=snmp,
            in_service=in_service,
            out_of_service=out_of_service,
        )

    def address(self, row: _Row) -> str:
        """Normalised text, so that `::1` and `0:0::1` are seen as the same address."""
        where = row.at("address")
        text = self.src.text(where, row.values["address"])
        try:
            address = str(ipaddress.ip_address(text))
        except ValueError:
            self.src.fail(where, f"{quote(text)} is not an IPv4 or IPv6 address")
        first = self.addresses.get(address)
        if first is not None:
            self.src.fail(where, f"duplicate address {quote(text)} (first {first.ref})")
        self.addresses[address] = row
        return address

    def snmp(self, where: str, value: object) -> SnmpTarget:
        if isinstance(value, SnmpTarget):  # from a CSV cell, already checked
            return value
        fields = self.src.mapping(where, value, ("version", "port"))
        version = fields.get("version", "2c")
        if isinstance(version, int) and not isinstance(version, bool):
            version = str(version)  # YAML reads `version: 3` as a number
        if version not in _SNMP_VERSIONS:
            self.src.fail(
                key_path(where, "version"), f"{quote(fields['version'])} is not an snmp version (use 2c or 3)"
            )
        port = 161
        if "port" in fields:
            port = self.src.integer(key_path(where, "port"), fields["port"])
            if not 1 <= port <= 65535:
                self.src.fail(key_path(where, "port"), f"{port} is not a port (use 1 to 65535)")
        return SnmpTarget(version=str(version), port=port)

    def zone(self, name: str) -> zoneinfo.ZoneInfo:
        if name not in self.zones:
            self.zones[name] = zoneinfo.ZoneInfo(name)
        return self.zones[name]

    def service_time(self, where: str, value: object, zone: zoneinfo.ZoneInfo) -> datetime | None:
        """A date is 00:00 of that day in the contract's time zone; an instant must carry its offset."""
        if value is None:
            return None
        shown_value = value
        bad = f"{quote(value)} is not a date or an instant ({SERVICE_TIME_HINT})"
        if isinstance(value, str) and _DATE.fullmatch(value):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                self.src.fail(where, bad)
        elif isinstance(value, str) and len(value) > 10 and _DATE.fullmatch(value[:10]):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                self.src.fail(where, bad)
        if isinstance(value, datetime):
            return self.src.utc(where, shown_value, value)
        if isinstance(value, date):
            return self.src.utc(where, shown_value, datetime.combine(value, time(0), tzinfo=zone))
        self.src.fail(where, bad)

    def check_cycles(self, devices: Mapping[DeviceId, Device]) -> None:
        """Walk each parent chain once; a chain that comes back to itself is reported from where it loops."""
        done: set[DeviceId] = set()
        for start in devices:
            path: list[DeviceId] = []
            on_path: set[DeviceId] = set()
            current: DeviceId | None = start
            while current is not None and current not in done:
                if current in on_path:
                    cycle = path[path.index(current) :]
                    shown = " -> ".join([*cycle, current])
                    self.src.fail(self.ids[current].at("parent"), f"parent cycle {shown}")
                path.append(current)
                on_path.add(current)
                current = devices[current].parent
            done.update(path)
