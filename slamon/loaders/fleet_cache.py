"""The fleet cache's key and what can be read from an entry without decoding the fleet.

fleet.py writes and decodes the entries (see its docstring). This module is what a command that
needs less than the whole fleet imports: it loads neither the model nor canonical.py. An entry is
one JSON document whose first two members are its `format` and a `probe` section, the part of the
fleet `slamon probe --once` needs: the devices' ids in order, their addresses, their contract's time
zone, the devices another probe kind watches, and the addresses packed when all are IPv4. `probe_view` decodes that section alone
(`json.JSONDecoder.raw_decode` stops at its end), ids and addresses as two newline-joined texts:
50,000 devices are read back in a few milliseconds, where decoding the whole fleet costs ~0.1 CPU-s.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from slamon import __version__
from slamon.loaders.config import Config

if TYPE_CHECKING:
    from slamon.model import Fleet

logger = logging.getLogger(__name__)

CACHE_FORMAT = "slamon-fleet-columns/3"  # part of the key: an entry of another form is never read
PROBE_PREFIX = '{"format":' + json.dumps(CACHE_FORMAT) + ',"probe":'  # how every entry begins
_CHUNK = 1 << 20
_PTON4 = functools.partial(socket.inet_pton, socket.AF_INET)


@dataclass(frozen=True, slots=True)
class ProbeView:
    """What `probe --once` needs of the fleet: every device, in id order."""

    ids: list[str]
    ipv4: bytes | None  # the addresses packed (ipv4_packed) when every one is IPv4, else None
    zones: list[tuple[str, int]]  # runs of the devices' contract time zones (IANA names)
    others: frozenset[str]  # devices another probe kind watches: switches polled over SNMP, cameras
    # with a stream (probers.polled, probers.streamed)


def ipv4_packed(addresses: list[str]) -> bytes | None:
    """The addresses packed, 4 bytes each, when every one is IPv4 text that inet_pton takes (four
    decimal octets, as the inventory normalises them); else None."""
    try:
        return b"".join(map(_PTON4, addresses))
    except OSError:
        return None


def inputs_key(config: Config) -> str | None:
    """SHA-256 of slamon's version, the cache's form, and the path and bytes of every file the
    fleet is loaded from; None when a file cannot be read (load_fleet then reports it)."""
    digest = hashlib.sha256(f"{__version__}\0{CACHE_FORMAT}\0".encode())
    paths = [
        config.path,
        config.inventory,
        *config.contracts,
        *([config.exclusions] if config.exclusions else []),
        *([config.inspections] if config.inspections else []),
    ]
    chunk = bytearray(_CHUNK)  # read into one buffer: no copy of a 10 MB inventory in memory
    view = memoryview(chunk)
    try:
        for path in paths:
            digest.update(str(path).encode() + b"\0")
            with path.open("rb", buffering=0) as f:
                while got := f.readinto(chunk):
                    digest.update(view[:got])
            digest.update(b"\0")
    except OSError:
        return None
    return "sha256:" + digest.hexdigest()


def sqlite_file(url: str) -> Path | None:
    """The file of a `sqlite:////absolute/path` URL as load_config writes it; None for anything
    else (PostgreSQL, memory, URL options), which goes through the Store."""
    if not url.startswith("sqlite:////") or "?" in url:
        return None
    return Path(url[len("sqlite:///") :])


def read_sqlite_cache(file: Path, key: str) -> str | None:
    """The entry for `key`, read only (WAL lets it read beside a running `slamon run`); None on a
    miss, when the file is not (yet) a slamon database, or when the entry does not match the
    SHA-256 stored with it (changed in the database: never used, and said so; the files are
    parsed and the entry written again)."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute("SELECT body, sha256 FROM fleet_cache WHERE key = ?", (key,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        logger.debug("fleet cache in %s not read: %s", file, exc)
        return None
    if row is None or not isinstance(row[0], str):
        return None
    if hashlib.sha256(row[0].encode("utf-8")).hexdigest() != row[1]:
        logger.warning(
            "cached fleet %s in %s: the stored bytes do not match their SHA-256 (changed in the "
            "database after slamon wrote them): parsing the files instead",
            key,
            file,
        )
        return None
    return row[0]


def probe_section(body: str) -> dict[str, object]:
    """The `probe` member of an entry, decoded alone; ValueError when the entry is not of this form."""
    if not body.startswith(PROBE_PREFIX):
        raise ValueError(f"not a {CACHE_FORMAT} document")
    section, end = json.JSONDecoder().raw_decode(body, len(PROBE_PREFIX))
    if not isinstance(section, dict) or body[end : end + 1] != ",":
        raise ValueError("probe: not an object followed by the rest of the entry")
    return section


def texts(section: dict[str, object], name: str, n: int) -> list[str]:
    """A column of n texts: newline-joined (as written when no text holds a newline), or a list."""
    value = section[name]
    if isinstance(value, str):
        column = value.split("\n") if n else []
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        column = value
    else:
        raise ValueError(f"probe.{name}: expected texts")
    if len(column) != n:
        raise ValueError(f"probe.{name}: {len(column)} values for {n} devices")
    return column


def probe_view(body: str) -> ProbeView:
    """The probe section of an entry; ValueError (or TypeError, KeyError…) when it is not one."""
    section = probe_section(body)
    n = section["n"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError("probe.n: not a count")
    zones = section["zones"]
    others = section["others"]
    if not isinstance(zones, list) or not all(
        isinstance(z, list) and len(z) == 2 and isinstance(z[0], str) and type(z[1]) is int and z[1] > 0
        for z in zones
    ):
        raise ValueError("probe.zones: expected [time zone, count] runs")
    if sum(z[1] for z in zones) != n:
        raise ValueError(f"probe.zones: runs over {sum(z[1] for z in zones)} devices, not {n}")
    if not isinstance(others, list) or not all(isinstance(d, str) for d in others):
        raise ValueError("probe.others: expected ids")
    ipv4 = section["ipv4"]
    if ipv4 is not None and not (isinstance(ipv4, str) and len(ipv4) == 8 * n):
        raise ValueError(f"probe.ipv4: expected {4 * n} bytes in hex, or null")
    return ProbeView(
        ids=texts(section, "ids", n),
        ipv4=None if ipv4 is None else bytes.fromhex(ipv4),
        zones=[(z[0], z[1]) for z in zones],
        others=frozenset(others),
    )


def load_probe_view(config: Config, now: datetime) -> tuple[ProbeView, Fleet | None]:
    """What `probe --once` needs: from the cache's probe section when a SQLite database holds the
    entry of these files (no fleet decoded, None beside it), else through load_fleet_through_cache
    (which parses on a miss, and writes the entry if the database exists) with that fleet."""
    key = inputs_key(config)
    file = sqlite_file(config.database)
    if key is not None and file is not None and file.is_file():
        body = read_sqlite_cache(file, key)
        if body is not None:
            try:
                return probe_view(body), None
            except (ValueError, TypeError, KeyError, AttributeError):
                pass  # load_fleet_through_cache reads it again, and says it is unreadable
    from slamon.loaders.fleet import load_fleet_through_cache, view_of

    fleet = load_fleet_through_cache(config, now)
    return view_of(fleet), fleet
