"""The inventory: sites and devices, from YAML or from a spreadsheet's CSV export.

Both forms are read into the same raw rows and go through the same checks, so a device is
valid or not regardless of the file it came from. The checks that need other files (each
device's contract exists, bills its kind, knows its site's area, and gives dates their time
zone) run here too: an inventory is only ever loaded against its contracts.

A city's inventory has 100,000 devices, and `slamon check` must take seconds, so there are two
paths. The quick one (`_Quick`) reads the whole file into columns and checks them in bulk: sets
for uniqueness and references, one regex over all the ids, each distinct value (a date, an snmp
setting, a contract and kind) checked once. It decides only "all good": at the first doubt it
gives up, and the exact path (`_Checker`, row by row in file order) runs instead and names the
first problem. The quick path accepts a file only when the exact one does, and builds the same
inventory (tests/loaders/test_inventory.py compares them).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import itertools
import operator
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from os import PathLike
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from slamon.errors import InventoryError
from slamon.loaders.contracts import AREA_HINT, AREA_PATTERN
from slamon.loaders.yamlio import ID_PATTERN, MAX_ID_LENGTH, Source, gc_paused, key_path, load_yaml
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
from slamon.units import quote, quote_short

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
    "uplink",
)
SITE_FIELDS = ("id", "name", "district", "area")
CSV_COLUMNS = (*DEVICE_FIELDS, "site_name", "site_district", "site_area")
CSV_REQUIRED = ("id", "kind", "address", "site", "contract", "site_name", "site_district", "site_area")
SERVICE_TIME_HINT = "use a date like 2025-06-01 or an instant like 2025-06-01T08:00:00+08:00"

MAX_PORT_NAME = 64  # an ifName (SNMP's DisplayString is at most 255; switches use ~10)
MAX_CHANNELS = 1000  # video channels of one device (an NVR has up to a few hundred)

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CSV_SNMP = re.compile(r"(2c|3)(?::([0-9]{1,5}))?")
_SNMP_VERSIONS = ("2c", "3")
_REQUIRED = ("id", "kind", "address", "site", "contract")
_DEVICE_KEYS = frozenset(DEVICE_FIELDS)
assert tuple(f.name for f in fields(Device)) == DEVICE_FIELDS, "the quick path builds devices by position"


@dataclass(frozen=True, slots=True)
class _Row:
    """One device as a file gives it, and how to name its fields in a message."""

    values: Mapping[str, object]  # the fields given; YAML types, or text (channels, snmp parsed) from CSV
    at: Callable[[str], str]  # field name -> `devices[3].parent` or `line 5, column parent`
    ref: str  # `at devices[3]` or `on line 5`: where "first at …" points


def load_inventory(path: str | PathLike[str], contracts: Mapping[ContractId, Contract]) -> Inventory:
    """Read a `.yaml`/`.yml` or `.csv` inventory and check it against `contracts`."""
    with gc_paused():
        return _load_inventory(path, contracts)


def _load_inventory(path: str | PathLike[str], contracts: Mapping[ContractId, Contract]) -> Inventory:
    src = Source(path, InventoryError)
    if Path(path).suffix.lower() == ".csv":
        text = _csv_text(src)
        quick = _quick_csv(text, contracts)
        if quick is not None:
            return quick
        sites, rows = _read_csv(src, text)
        return _Checker(src, sites, contracts).inventory(rows)
    doc = src.mapping("", load_yaml(src.file, InventoryError), ("sites", "devices"), ("sites", "devices"))
    sites = _yaml_sites(src, doc["sites"])
    items = src.sequence("devices", doc["devices"])
    devices = _Quick(sites, contracts).devices(_yaml_columns(items), len(items))
    if devices is not None:
        return Inventory(sites=sites, devices=devices)
    return _Checker(src, sites, contracts).inventory(_yaml_rows(src, items))


# --- YAML ---------------------------------------------------------------------------------------


def _yaml_sites(src: Source, value: object) -> dict[SiteId, Site]:
    sites: dict[SiteId, Site] = {}
    first: dict[SiteId, str] = {}
    for i, item in enumerate(src.sequence("sites", value)):
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
    return sites


def _yaml_rows(src: Source, items: list[object]) -> Iterable[_Row]:
    for i, item in enumerate(items):
        where = key_path("devices", i)
        fields = src.mapping(where, item, DEVICE_FIELDS, required=_REQUIRED)
        yield _Row(fields, _yaml_at(where), f"at {where}")


def _yaml_columns(items: list[object]) -> dict[str, list[object]] | None:
    """The devices as columns (None where a field is not given), or None unless every item is a
    mapping of known keys."""
    if set(map(type, items)) - {dict} or not all(map(_DEVICE_KEYS.issuperset, items)):  # type: ignore[arg-type]
        return None
    n = len(items)
    return {name: list(map(dict.get, items, itertools.repeat(name, n))) for name in DEVICE_FIELDS}  # type: ignore[arg-type]


def _yaml_at(where: str) -> Callable[[str], str]:
    return lambda field: key_path(where, field)


def _area(src: Source, where: str, value: object) -> str:
    area = src.text(where, value)
    if not AREA_PATTERN.fullmatch(area):
        src.fail(where, f"{quote(area)} is not an area name ({AREA_HINT})")
    return area


# --- CSV ----------------------------------------------------------------------------------------


def _csv_text(src: Source) -> str:
    try:
        return Path(src.file).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        src.fail(None, "file not found")
    except UnicodeDecodeError:
        src.fail(None, "not UTF-8 text (save the CSV as UTF-8)")
    except OSError as exc:
        src.fail(None, f"cannot read: {(exc.strerror or str(exc)).lower()}")


def _read_csv(src: Source, text: str) -> tuple[dict[SiteId, Site], list[_Row]]:
    """One row per device; the site columns repeat on every row of a site and must agree."""
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
            values["channels"] = _csv_channels(src, at("channels"), given["channels"])
        if "snmp" in given:
            values["snmp"] = _csv_snmp(src, at("snmp"), given["snmp"])
        if "uplink" in given:
            values["uplink"] = _csv_uplink(src, at("uplink"), given["uplink"])
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


def _csv_channels(src: Source, where: str, cell: str) -> int:
    if not cell.isascii() or not cell.isdigit():
        src.fail(where, f"{quote_short(cell)} is not a whole number")
    if len(cell) > 9:  # (int() would read it, slowly past 4,300 digits, then not at all)
        src.fail(where, f"{quote_short(cell)} must be at most {MAX_CHANNELS:,}")
    return int(cell)


def _csv_snmp(src: Source, where: str, cell: str) -> SnmpTarget:
    match = _CSV_SNMP.fullmatch(cell)
    if match is None or (match[2] is not None and not 1 <= int(match[2]) <= 65535):
        src.fail(where, f"{quote(cell)} is not an snmp setting (use 2c, 3 or VERSION:PORT like 2c:1161)")
    return SnmpTarget(version=match[1], port=int(match[2]) if match[2] else 161)


def _csv_uplink(src: Source, where: str, cell: str) -> dict[str, object]:
    switch, sep, port = cell.partition(":")
    if not sep or not switch.strip() or not port.strip():
        src.fail(where, f"{quote(cell)} is not an uplink (use SWITCH:PORT, e.g. YJ-SW001:Gi0/5)")
    return {"switch": switch.strip(), "port": port.strip()}


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

    def inventory(self, rows: Iterable[_Row]) -> Inventory:
        devices: dict[DeviceId, Device] = {}
        for row in rows:
            device = self.device(row)
            devices[device.id] = device
        for device in devices.values():
            if device.parent is not None and device.parent not in devices:
                self.src.fail(self.ids[device.id].at("parent"), f"unknown device {quote(device.parent)}")
        self.check_cycles(devices)
        for device in devices.values():
            problem = uplink_problem(devices, device)
            if problem is not None:
                self.src.fail(self.ids[device.id].at("uplink"), problem)
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
        channels = 1
        if "channels" in values:
            channels = src.integer(at("channels"), values["channels"], minimum=1, maximum=MAX_CHANNELS)
        stream: str | None = None
        if "stream" in values:
            if kind is not DeviceKind.CAMERA:
                src.fail(at("stream"), "only cameras have a stream")
            stream = src.text(at("stream"), values["stream"])
            if not is_stream_url(stream):
                src.fail(at("stream"), f"{quote(stream)} is not a stream URL (e.g. rtsp://host:554/path)")
        snmp: SnmpTarget | None = None
        if "snmp" in values:
            if kind is not DeviceKind.SWITCH:
                src.fail(at("snmp"), "only switches have snmp settings")
            snmp = self.snmp(at("snmp"), values["snmp"])
        uplink = self.uplink(at("uplink"), values["uplink"]) if "uplink" in values else None
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
            uplink=uplink,
        )

    def uplink(self, where: str, value: object) -> Uplink:
        """`{switch: ID, port: NAME}`; a port given as a number is an ifIndex."""
        fields = self.src.mapping(where, value, ("switch", "port"), required=("switch", "port"))
        switch = DeviceId(self.src.ident(key_path(where, "switch"), fields["switch"]))
        port = fields["port"]
        if isinstance(port, int) and not isinstance(port, bool):
            if not 1 <= port <= 2**31 - 1:
                self.src.fail(key_path(where, "port"), f"{port} is not an ifIndex (use 1 to 2147483647)")
            return Uplink(switch, str(port))
        text = self.src.text(key_path(where, "port"), port).strip()
        if not text or len(text) > MAX_PORT_NAME:
            self.src.fail(
                key_path(where, "port"), f"{quote(text)} is not a port name (1 to {MAX_PORT_NAME} characters)"
            )
        return Uplink(switch, text)

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


def uplink_problem(devices: Mapping[DeviceId, Device], device: Device) -> str | None:
    """Why a device's uplink is wrong, or None: it must name a switch this device depends on (its
    parent or an ancestor), or the port evidence would be another chain's."""
    uplink = device.uplink
    if uplink is None:
        return None
    switch = devices.get(uplink.switch)
    if switch is None:
        return f"unknown switch {quote(uplink.switch)}"
    if switch.kind is not DeviceKind.SWITCH:
        return f"{quote(uplink.switch)} is a {switch.kind.value}, not a switch"
    parent = device.parent
    seen = 0
    while parent is not None and seen <= len(devices):
        if parent == uplink.switch:
            return None
        parent = devices[parent].parent if parent in devices else None
        seen += 1
    return f"switch {quote(uplink.switch)} is not this device's parent or an ancestor (set parent: {uplink.switch})"


def is_stream_url(text: str) -> bool:
    """A URL with a scheme and a host, as urlsplit reads it (`rtsp://[::1` is not one)."""
    if _PLAIN_URL.fullmatch(text):
        return True  # the common form, without urlsplit's cost
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc)


# scheme://host[:port][/path?query#fragment] in URI characters, no brackets: urlsplit gives it a
# scheme and a host
_PLAIN_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~%!$&'()*+,;=:@-]+(?:[/?#][!-~]*)?")


# --- the quick path ---------------------------------------------------------------------------


_IPV4 = (
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
)
_IPV4_LINES = re.compile(rf"(?:{_IPV4}\n)*{_IPV4}")  # addresses ipaddress writes back unchanged
_ID = rf"[A-Za-z0-9._-]{{1,{MAX_ID_LENGTH}}}"
_ID_LINES = re.compile(rf"(?:{_ID}\n)*{_ID}")
_KINDS = {kind.value: kind for kind in DeviceKind}
_NO = object()  # "not valid" in the quick path's caches


class _Quick:
    """The devices of a whole file, checked column by column; None at the first doubt."""

    def __init__(self, sites: Mapping[SiteId, Site], contracts: Mapping[ContractId, Contract]) -> None:
        self.sites = sites
        self.contracts = contracts
        # the exact path's own checks, for each distinct value: any problem means "not quick"
        self.exact = _Checker(Source("", InventoryError), dict(sites), contracts)

    def devices(self, columns: Mapping[str, list[object]] | None, n: int) -> dict[DeviceId, Device] | None:
        if columns is None or n == 0:
            return None if columns is None else {}
        try:
            return self._devices(columns, n)
        except (InventoryError, TypeError, ValueError):  # TypeError: an unhashable YAML value
            return None

    def _devices(self, c: Mapping[str, list[object]], n: int) -> dict[DeviceId, Device] | None:
        for name in _REQUIRED:
            if not _all_text(c[name]):
                return None
        ids = cast(list[DeviceId], c["id"])
        if not _ID_LINES.fullmatch("\n".join(ids)) or len(set(ids)) != n:
            return None
        kinds = cast(list[DeviceKind], [_KINDS.get(kind) for kind in cast(list[str], c["kind"])])
        addresses = _addresses(cast(list[str], c["address"]))
        if None in kinds or addresses is None or len(set(addresses)) != n:
            return None
        sites, contract_ids = cast(list[SiteId], c["site"]), cast(list[ContractId], c["contract"])
        if not set(sites) <= self.sites.keys() or not set(contract_ids) <= self.contracts.keys():
            return None
        for contract_id, kind in set(zip(contract_ids, kinds, strict=True)):
            if kind not in self.contracts[contract_id].fees:
                return None
        for site_id, contract_id in set(zip(sites, contract_ids, strict=True)):
            deadlines = self.contracts[contract_id].sla.repair_deadline
            if deadlines and self.sites[site_id].area not in deadlines:
                return None
        parents = cast(list[DeviceId | None], c["parent"])
        if any(parents):
            given = {p for p in parents if p is not None}
            if not _all_text(given) or not given <= set(ids) or any(map(operator.eq, ids, parents)):
                return None
        channels = [1 if v is None else v for v in c["channels"]]
        if not set(map(type, channels)) <= {int}:
            return None
        counts = cast(list[int], channels)
        if not 1 <= min(counts) <= max(counts) <= MAX_CHANNELS:
            return None
        streams = self.streams(c["stream"], kinds)
        snmps = self.per_value(c["snmp"], kinds, DeviceKind.SWITCH, self.snmp)
        zone_of = {x: self.exact.zone(self.contracts[x].timezone) for x in set(contract_ids)}
        zones = list(map(zone_of.__getitem__, contract_ids))
        ins = self.times(c["in_service"], zones)
        outs = self.times(c["out_of_service"], zones)
        if streams is None or snmps is None or ins is None or outs is None:
            return None
        for start, end in zip(ins, outs, strict=True):
            if start is not None and end is not None and end <= start:
                return None
        if _has_cycle(dict(zip(ids, parents, strict=True))):
            return None
        uplinks = self.uplinks(c["uplink"])
        if uplinks is None:
            return None
        made = map(
            Device,
            ids,
            kinds,
            addresses,
            sites,
            contract_ids,
            parents,
            counts,
            streams,
            snmps,
            ins,
            outs,
            uplinks,
        )
        devices = dict(zip(ids, made, strict=True))
        if any(uplinks) and any(uplink_problem(devices, d) for d in devices.values() if d.uplink):
            return None
        return devices

    def uplinks(self, values: list[object]) -> list[object] | None:
        """Each uplink given, read as the exact path reads it, once per distinct value."""
        if not any(values):
            return values
        seen: dict[object, object] = {}
        out: list[object] = []
        for value in values:
            if value is None:
                out.append(None)
                continue
            key = _hashable(value)
            if key not in seen:
                try:
                    seen[key] = self.exact.uplink("", value)
                except InventoryError:
                    return None
            out.append(seen[key])
        return out

    def streams(self, values: list[object], kinds: list[DeviceKind]) -> list[object] | None:
        """Given only for cameras, and each a stream URL."""
        camera, plain = DeviceKind.CAMERA, _PLAIN_URL.fullmatch
        for value, kind in zip(values, kinds, strict=True):
            if value is None:
                continue
            if kind is not camera or not isinstance(value, str):
                return None
            if not plain(value) and not (value.strip() and is_stream_url(value)):
                return None
        return values

    def per_value(
        self,
        values: list[object],
        kinds: list[DeviceKind],
        only: DeviceKind,
        check: Callable[[object], object],
    ) -> list[object] | None:
        """Each value given (for `only` devices) through `check`, once per distinct value."""
        seen: dict[object, object] = {}
        out: list[object] = []
        for value, kind in zip(values, kinds, strict=True):
            if value is None:
                out.append(None)
                continue
            if kind is not only:
                return None
            key = _hashable(value)
            if key not in seen:
                seen[key] = check(value)
            if seen[key] is _NO:
                return None
            out.append(seen[key])
        return out

    def snmp(self, value: object) -> object:
        try:
            return self.exact.snmp("", value)
        except InventoryError:
            return _NO

    def times(self, values: list[object], zones: list[zoneinfo.ZoneInfo]) -> list[datetime | None] | None:
        """Each in_service (or out_of_service) as the exact path reads it, once per distinct value
        and zone (values equal in Python are equal instants: the same date, text or instant)."""
        if not any(values):
            return [None] * len(values)
        keys: list[object] = values if len(set(zones)) == 1 else list(zip(values, zones, strict=True))
        zone_of = dict(zip(keys, zones, strict=True))
        value_of = dict(zip(keys, values, strict=True))
        read: dict[object, datetime | None] = {}
        for key, value in value_of.items():
            try:
                read[key] = self.exact.service_time("", value, zone_of[key])
            except InventoryError:
                return None
        return list(map(read.__getitem__, keys))


def _all_text(values: Iterable[object]) -> bool:
    return set(map(type, values)) <= {str}


def _hashable(value: object) -> object:
    """A key for a YAML value in the caches: mappings and lists by their repr, typed."""
    if isinstance(value, dict | list):
        return (type(value), repr(value))
    if isinstance(value, SnmpTarget):
        return value
    return (type(value), value)  # 1 and True, a date and a datetime: never the same key


def _addresses(values: list[str]) -> list[str] | None:
    """Each address as the exact path normalises it; None if one is not an address."""
    if _IPV4_LINES.fullmatch("\n".join(values)):
        return values  # canonical IPv4 text only: ipaddress would write each back unchanged
    out: list[str] = []
    for text in values:
        try:
            out.append(str(ipaddress.ip_address(text)))
        except ValueError:
            return None
    return out


def _has_cycle(parent_of: Mapping[str, str | None]) -> bool:
    """Whether following parents from some device comes back to a device of the same walk."""
    done: set[str] = set()
    for start, parent in parent_of.items():
        if parent is None or parent in done:
            done.add(start)  # (most devices: the parent's chain is already walked)
            continue
        path: set[str] = set()
        current: str | None = start
        while current is not None and current not in done:
            if current in path:
                return True
            path.add(current)
            current = parent_of[current]
        done |= path
    return False


def _quick_csv(text: str, contracts: Mapping[ContractId, Contract]) -> Inventory | None:
    """The inventory of a CSV file read as columns, or None when the exact path must read it."""
    split = _split_plain(text) or _split_csv(text)
    if split is None:
        return None
    names, cells = split
    header = [name.strip() for name in names]
    if (
        len(set(header)) != len(header)
        or not set(header) <= set(CSV_COLUMNS)
        or not set(CSV_REQUIRED) <= set(header)
    ):
        return None
    table = dict(zip(header, (list(map(str.strip, column)) for column in cells), strict=True))
    count = len(table["id"])
    for name in CSV_REQUIRED:
        if "" in table[name]:
            return None  # (or a blank line)
    sites = _quick_csv_sites(table)
    if sites is None:
        return None
    columns: dict[str, list[object]] = {
        name: [cell or None for cell in table[name]] if name in table else [None] * count
        for name in DEVICE_FIELDS
    }
    if "channels" in table:
        channels = columns["channels"]
        for i, cell in enumerate(table["channels"]):
            if cell:
                if not cell.isascii() or not cell.isdigit() or len(cell) > 9:
                    return None
                channels[i] = int(cell)
    if "snmp" in table:
        snmps = columns["snmp"]
        parsed: dict[str, SnmpTarget | None] = {}
        for i, cell in enumerate(table["snmp"]):
            if cell:
                if cell not in parsed:
                    parsed[cell] = _snmp_cell(cell)
                if parsed[cell] is None:
                    return None
                snmps[i] = parsed[cell]
    if "uplink" in table:
        uplinks = columns["uplink"]
        for i, cell in enumerate(table["uplink"]):
            if cell:
                switch, sep, port = cell.partition(":")
                if not sep or not switch.strip() or not port.strip():
                    return None
                uplinks[i] = {"switch": switch.strip(), "port": port.strip()}
    devices = _Quick(sites, contracts).devices(columns, count)
    return None if devices is None else Inventory(sites=sites, devices=devices)


def _snmp_cell(cell: str) -> SnmpTarget | None:
    match = _CSV_SNMP.fullmatch(cell)
    if match is None or (match[2] is not None and not 1 <= int(match[2]) <= 65535):
        return None
    return SnmpTarget(version=match[1], port=int(match[2]) if match[2] else 161)


def _split_plain(text: str) -> tuple[list[str], list[list[str]]] | None:
    """Header and columns of a CSV with no quotes, CR, NUL or blank lines: each line split on its
    commas, which is what the csv module reads from such a file. None for any other."""
    if '"' in text or "\r" in text or "\0" in text:
        return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        return None
    names = lines[0].split(",")
    commas = len(names) - 1
    if not all(line.count(",") == commas for line in lines):
        return None
    cells = ",".join(lines[1:]).split(",") if len(lines) > 1 else []
    return names, [cells[i :: len(names)] for i in range(len(names))]


def _split_csv(text: str) -> tuple[list[str], list[list[str]]] | None:
    """Header and columns through the csv module; None if a row is not as wide as the header."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return None
    if not rows:
        return None
    body = [row for row in rows[1:] if row]
    if any(len(row) != len(rows[0]) for row in body):
        return None  # (a row of blanks of another width is skipped by the exact path: it decides)
    return rows[0], [list(column) for column in zip(*body, strict=True)] or [[] for _ in rows[0]]


def _quick_csv_sites(table: Mapping[str, list[str]]) -> dict[SiteId, Site] | None:
    """The sites, in order of first mention, when every row of a site agrees and each is valid."""
    site_ids = table["site"]
    sites: dict[SiteId, Site] = {}
    columns = {name: table[f"site_{name}"] for name in ("name", "district", "area")}
    for name, column in columns.items():
        of_site = dict(zip(site_ids, column, strict=True))  # the last row of each site
        if list(map(of_site.__getitem__, site_ids)) != column:
            return None  # a site with two names, districts or areas
        columns[name] = list(map(of_site.__getitem__, dict.fromkeys(site_ids)))
    for site_id, name, district, area in zip(dict.fromkeys(site_ids), *columns.values(), strict=True):
        if (
            len(site_id) > MAX_ID_LENGTH
            or not ID_PATTERN.fullmatch(site_id)
            or not AREA_PATTERN.fullmatch(area)
        ):
            return None
        sites[SiteId(site_id)] = Site(id=SiteId(site_id), name=name, district=district, area=area)
    return sites
