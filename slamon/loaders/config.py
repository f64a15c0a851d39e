"""slamon.yaml: where the inventory, contracts and database are, and how often to probe.

Defaults live next to their validation, in the dataclasses below. Relative paths are taken
from the config file's folder, so `slamon -c /etc/slamon/slamon.yaml` works from any directory.
Secrets are never in this file: it names environment variables, which the probers read later.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from os import PathLike
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from slamon.errors import ConfigError
from slamon.loaders.video_config import (
    MAX_VIDEO_CONCURRENCY,
    MAX_VIDEO_FRAMES,
    VIDEO_KEYS,
    VideoProbeConfig,
    groups,
    thresholds,
)
from slamon.loaders.yamlio import Source, key_path, load_yaml
from slamon.units import format_duration, quote

DEFAULT_DATABASE = "sqlite:///slamon.db"
DATABASE_ENV = "SLAMON_DATABASE"  # overrides `database` (no password either: PGPASSWORD holds it)
DEFAULT_LISTEN = "127.0.0.1:9108"
DEFAULT_RETENTION = timedelta(days=90)
MAX_RETENTION = timedelta(days=3650)  # ten years of raw results
MAX_INTERVAL = timedelta(days=1)  # between two rounds of a probe
MAX_ICMP_COUNT = 10  # echo requests per device per round
MAX_ICMP_RATE = 1_000_000  # echo requests per second: beyond what one host's stack sends
MAX_SNMP_RETRIES = 10
MAX_SNMP_CONCURRENCY = 10_000
MAX_SNMP_REPETITIONS = 1_000
REACHABILITY = ("both", "snmp", "icmp")
PORT_METRICS = ("all", "uplinks")
DATABASE_HINT = "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB"
LISTEN_HINT = "use HOST:PORT, e.g. 127.0.0.1:9108 or [::1]:9108"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*")
_INVENTORY_SUFFIXES = (".yaml", ".yml", ".csv")


@dataclass(frozen=True, slots=True)
class IcmpProbeConfig:
    interval: timedelta = timedelta(seconds=30)
    timeout: timedelta = timedelta(seconds=1)
    count: int = 1  # echo requests per device per round
    rate: int = 20_000  # echo requests per second at most: a round of 100,000 devices takes 5 s to send


SNMP_AUTH_PROTOCOLS = ("SHA", "SHA224", "SHA256", "SHA384", "SHA512", "MD5")
SNMP_PRIV_PROTOCOLS = ("AES", "AES192", "AES192C", "AES256", "AES256C", "DES")  # as net-snmp's -x names them


@dataclass(frozen=True, slots=True)
class SnmpV3Config:
    """probes.snmp.v3: the USM user every SNMPv3 switch is polled as (authPriv). The keys are read
    later, from the environment variable or the file named here, never from this file."""

    user: str
    auth_protocol: str = "SHA"  # one of SNMP_AUTH_PROTOCOLS
    auth_key_env: str = "SLAMON_SNMP_AUTH_KEY"  # the NAME of the variable holding the auth passphrase
    auth_key_file: Path | None = None  # or a file holding it (then the variable is not read)
    priv_protocol: str = "AES"  # one of SNMP_PRIV_PROTOCOLS
    priv_key_env: str = "SLAMON_SNMP_PRIV_KEY"
    priv_key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class SnmpProbeConfig:
    interval: timedelta = timedelta(seconds=60)
    timeout: timedelta = timedelta(seconds=2)  # per request; a poll is a few requests
    community_env: str = "SLAMON_SNMP_COMMUNITY"  # the NAME of the variable holding the community
    community_file: Path | None = None  # or a file holding it (read at start and at each reload)
    retries: int = 1  # a request without a reply is sent again this many times
    concurrency: int = 100  # switches polled at once
    max_repetitions: int = 25  # rows per column per GETBULK
    reachability: str = "both"  # both | snmp | icmp: which probes say whether a polled switch answers
    traps: tuple[str, int] | None = None  # where to listen for traps (host, UDP port); None: off
    port_metrics: str = "all"  # all | uplinks: which switch ports get per-port series in /metrics
    v3: SnmpV3Config | None = None  # the USM user for switches with `snmp: {version: 3}`; None: none


@dataclass(frozen=True, slots=True)
class ProbesConfig:
    icmp: IcmpProbeConfig = field(default_factory=IcmpProbeConfig)
    snmp: SnmpProbeConfig = field(default_factory=SnmpProbeConfig)
    video: VideoProbeConfig = field(default_factory=VideoProbeConfig)


class ApiAuth(StrEnum):
    """Who may call the HTTP API beyond its open paths (docs/formats.md, `api.auth`)."""

    AUTO = "auto"  # bearer tokens once the store holds one (`slamon token create`), anyone before
    TOKENS = "tokens"  # a bearer token, always
    OFF = "off"  # anyone may read; writes still need a token


DEFAULT_OPEN_PATHS: tuple[str, ...] = ("/metrics", "/healthz")


@dataclass(frozen=True, slots=True)
class ApiConfig:
    auth: ApiAuth = ApiAuth.AUTO
    open: tuple[str, ...] = DEFAULT_OPEN_PATHS  # served to anyone, tokens or not


@dataclass(frozen=True, slots=True)
class Config:
    """slamon.yaml, validated, with every path absolute."""

    path: Path  # the config file itself
    database: str  # SQLAlchemy URL; a relative sqlite file is made absolute
    inventory: Path
    contracts: tuple[Path, ...]  # the files the globs matched, each once, in glob order
    exclusions: Path | None = None
    inspections: Path | None = None  # missed inspections entered by operations (score cards)
    listen_host: str = "127.0.0.1"
    listen_port: int = 9108
    retention: timedelta = DEFAULT_RETENTION  # how long raw probe results are kept
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    journal: Path | None = None  # where writes wait while the store cannot take them (None: the default)
    api: ApiConfig = field(default_factory=ApiConfig)  # bearer tokens, open paths


_TOP_KEYS = (
    "database",
    "inventory",
    "contracts",
    "exclusions",
    "inspections",
    "listen",
    "retention",
    "probes",
    "journal",
    "api",
)


def load_config(path: str | PathLike[str]) -> Config:
    """Read and validate slamon.yaml; raises ConfigError naming the key and the problem."""
    src = Source(path, ConfigError)
    base = Path(path).absolute().parent
    doc = src.mapping("", load_yaml(path, ConfigError), _TOP_KEYS, required=("inventory", "contracts"))

    database = _database(src, doc.get("database", DEFAULT_DATABASE), base)
    if os.environ.get(DATABASE_ENV):  # a deployment's own store (a Kubernetes Secret, say)
        database = _database(Source(DATABASE_ENV, ConfigError), os.environ[DATABASE_ENV], Path.cwd())
    inventory = _existing_file(src, "inventory", doc["inventory"], base, _INVENTORY_SUFFIXES)
    contracts = _contract_files(src, doc["contracts"], base)
    exclusions = _existing_file(src, "exclusions", doc["exclusions"], base) if "exclusions" in doc else None
    inspections = (
        _existing_file(src, "inspections", doc["inspections"], base) if "inspections" in doc else None
    )
    host, port = _listen(src, doc.get("listen", DEFAULT_LISTEN))
    retention = DEFAULT_RETENTION
    if "retention" in doc:
        retention = src.duration("retention", doc["retention"], maximum=MAX_RETENTION)
    probes = _probes(src, doc.get("probes", {}), base)
    journal = _journal(src, doc["journal"], base) if "journal" in doc else None
    api = _api(src, doc["api"]) if "api" in doc else ApiConfig()
    return Config(
        path=Path(path).absolute(),
        database=database,
        inventory=inventory,
        contracts=contracts,
        exclusions=exclusions,
        inspections=inspections,
        listen_host=host,
        listen_port=port,
        retention=retention,
        probes=probes,
        journal=journal,
        api=api,
    )


def _api(src: Source, value: object) -> ApiConfig:
    doc = src.mapping("api", value, ("auth", "open"))
    auth = src.choice("api.auth", doc["auth"], ApiAuth, "an api.auth mode") if "auth" in doc else ApiAuth.AUTO
    paths = DEFAULT_OPEN_PATHS
    if "open" in doc:
        items = src.sequence("api.open", doc["open"])
        paths = tuple(src.text(key_path("api.open", i), item) for i, item in enumerate(items))
        for i, path in enumerate(paths):
            if not path.startswith("/") or "?" in path:
                src.fail(key_path("api.open", i), f"{quote(path)} is not a path (e.g. /metrics)")
    return ApiConfig(auth, paths)


def with_listen(config: Config, text: str) -> Config:
    """`--listen HOST:PORT` over slamon.yaml's `listen` (shards side by side on one machine)."""
    host, port = _listen(Source("--listen", ConfigError), text, "")
    return replace(config, listen_host=host, listen_port=port)


def _journal(src: Source, value: object, base: Path) -> Path:
    """A folder of our own (made when first needed): not a file, not beside nothing."""
    text = src.text("journal", value)
    resolved = Path(os.path.normpath(base / text))
    if resolved.exists() and not resolved.is_dir():
        src.fail("journal", f"{quote(text)} is a file; give a folder (it is made when first needed)")
    return resolved


def _database(src: Source, value: object, base: Path) -> str:
    """Only the two backends slamon ships drivers for; passwords belong in PGPASSWORD or ~/.pgpass."""
    url = src.text("database", value)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "sqlite":
        if not url.startswith("sqlite:///"):
            if url == "sqlite://":  # in memory
                return url
            src.fail("database", f"{quote(url)} is not a sqlite file URL ({DATABASE_HINT})")
        rest = url[len("sqlite:///") :]
        file, sep, query = rest.partition("?")
        if not file or file == ":memory:":
            return url
        absolute = os.path.normpath(base / file)
        return f"sqlite:///{absolute}{sep}{query}"
    if scheme == "postgresql+psycopg":
        parts = urlsplit(url)
        if parts.password is not None or "password" in parse_qs(parts.query):
            src.fail("database", "the URL holds a password; put it in PGPASSWORD or ~/.pgpass instead")
        return url
    shown = quote(scheme) if scheme else quote(url)
    src.fail("database", f"unsupported database {shown} ({DATABASE_HINT})")


def _existing_file(
    src: Source, where: str, value: object, base: Path, suffixes: tuple[str, ...] = (".yaml", ".yml")
) -> Path:
    text = src.text(where, value)
    if not text.lower().endswith(suffixes):
        src.fail(where, f"{quote(text)} must end in {', '.join(suffixes[:-1])} or {suffixes[-1]}")
    resolved = Path(os.path.normpath(base / text))
    if not resolved.is_file():
        src.fail(where, f"{quote(text)} does not exist (looked for {resolved})")
    return resolved


def _contract_files(src: Source, value: object, base: Path) -> tuple[Path, ...]:
    patterns = src.sequence("contracts", value)
    if not patterns:
        src.fail("contracts", "empty (give at least one glob, e.g. contracts/*.yaml)")
    files: dict[Path, None] = {}
    for i, item in enumerate(patterns):
        where = key_path("contracts", i)
        pattern = src.text(where, item)
        matched = sorted(
            Path(os.path.normpath(base / hit))
            for hit in glob.glob(pattern, root_dir=base, recursive=True)
            if (base / hit).is_file()
        )
        if not matched:
            src.fail(where, f"{quote(pattern)} matches no file")
        files.update(dict.fromkeys(matched))
    return tuple(files)


def _listen(src: Source, value: object, where: str = "listen") -> tuple[str, int]:
    text = src.text(where, value)
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            src.fail(where, f"{quote(text)} is not host:port ({LISTEN_HINT})")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            src.fail(where, f"{quote(host)} is not an IPv6 address ({LISTEN_HINT})")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            src.fail(where, f"{quote(text)} is not host:port ({LISTEN_HINT})")
        if ":" in host:
            src.fail(where, f"put an IPv6 address in brackets, e.g. [{host}]:{port}")
        if not _HOSTNAME.fullmatch(host):
            src.fail(where, f"{quote(host)} is not a host name or address ({LISTEN_HINT})")
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        src.fail(where, f"{quote(port)} is not a port (use 1 to 65535)")
    return host, int(port)


def _snmp(src: Source, value: object, base: Path) -> SnmpProbeConfig:
    keys = (
        "interval", "timeout", "community_env", "community_file", "retries", "concurrency",
        "max_repetitions", "reachability", "traps", "port_metrics", "v3",
    )  # fmt: skip
    snmp = src.mapping("probes.snmp", value, keys)
    default = SnmpProbeConfig()
    interval = _interval(src, "probes.snmp.interval", snmp, default.interval)
    timeout = _within(src, "probes.snmp", "timeout", snmp, default.timeout, interval)
    community_env = default.community_env
    if "community_env" in snmp:
        community_env = _env_name(src, "probes.snmp.community_env", snmp["community_env"])
    community_file = None
    if "community_file" in snmp:
        community_file = _secret_file(src, "probes.snmp.community_file", snmp["community_file"], base)

    def integer(key: str, default: int, maximum: int, minimum: int = 1) -> int:
        if key not in snmp:
            return default
        return src.integer(f"probes.snmp.{key}", snmp[key], minimum=minimum, maximum=maximum)

    def one_of(key: str, default: str, allowed: tuple[str, ...]) -> str:
        if key not in snmp:
            return default
        value = src.text(f"probes.snmp.{key}", snmp[key])
        if value not in allowed:
            src.fail(f"probes.snmp.{key}", f"{quote(value)} is not one of {', '.join(allowed)}")
        return value

    reachability = one_of("reachability", default.reachability, REACHABILITY)
    port_metrics = one_of("port_metrics", default.port_metrics, PORT_METRICS)
    traps = _listen(src, snmp["traps"], "probes.snmp.traps") if "traps" in snmp else None
    v3 = _snmp_v3(src, snmp["v3"], base) if "v3" in snmp else None
    return SnmpProbeConfig(
        v3=v3,
        traps=traps,
        port_metrics=port_metrics,
        interval=interval,
        timeout=timeout,
        community_env=community_env,
        community_file=community_file,
        retries=integer("retries", default.retries, MAX_SNMP_RETRIES, minimum=0),
        concurrency=integer("concurrency", default.concurrency, MAX_SNMP_CONCURRENCY),
        max_repetitions=integer("max_repetitions", default.max_repetitions, MAX_SNMP_REPETITIONS),
        reachability=reachability,
    )


def _snmp_v3(src: Source, value: object, base: Path) -> SnmpV3Config:
    """The USM user: its name and protocols here, its two keys each from a variable or a file."""
    where = "probes.snmp.v3"
    keys = (
        "user", "auth_protocol", "auth_key_env", "auth_key_file", "priv_protocol", "priv_key_env",
        "priv_key_file",
    )  # fmt: skip
    v3 = src.mapping(where, value, keys, required=("user",))
    default = SnmpV3Config(user="")
    user = src.text(f"{where}.user", v3["user"])
    if len(user.encode("utf-8")) > 32:
        src.fail(f"{where}.user", f"{quote(user)} is longer than 32 bytes (an SNMPv3 user name is 1 to 32)")

    def protocol(key: str, default: str, names: tuple[str, ...]) -> str:
        if key not in v3:
            return default
        name = src.text(f"{where}.{key}", v3[key])
        if name not in names:
            src.fail(f"{where}.{key}", f"{quote(name)} is not one of {', '.join(names)}")
        return name

    def secret(kind: str, default_env: str) -> tuple[str, Path | None]:
        env_key, file_key = f"{kind}_key_env", f"{kind}_key_file"
        if env_key in v3 and file_key in v3:
            src.fail(where, f"give {env_key} or {file_key}, not both")
        env = _env_name(src, f"{where}.{env_key}", v3[env_key]) if env_key in v3 else default_env
        file = _secret_file(src, f"{where}.{file_key}", v3[file_key], base) if file_key in v3 else None
        return env, file

    auth_env, auth_file = secret("auth", default.auth_key_env)
    priv_env, priv_file = secret("priv", default.priv_key_env)
    return SnmpV3Config(
        user=user,
        auth_protocol=protocol("auth_protocol", default.auth_protocol, SNMP_AUTH_PROTOCOLS),
        auth_key_env=auth_env,
        auth_key_file=auth_file,
        priv_protocol=protocol("priv_protocol", default.priv_protocol, SNMP_PRIV_PROTOCOLS),
        priv_key_env=priv_env,
        priv_key_file=priv_file,
    )


def _secret_file(src: Source, where: str, value: object, base: Path) -> Path:
    """A file holding a secret (read by the prober at start and at each reload): it must exist."""
    text = src.text(where, value)
    path = Path(os.path.normpath(base / text))
    if not path.is_file():
        src.fail(where, f"{quote(text)} does not exist (looked for {path})")
    return path


def _probes(src: Source, value: object, base: Path) -> ProbesConfig:
    doc = src.mapping("probes", value, ("icmp", "snmp", "video"))

    icmp = src.mapping("probes.icmp", doc.get("icmp", {}), ("interval", "timeout", "count", "rate"))
    icmp_default = IcmpProbeConfig()
    icmp_interval = _interval(src, "probes.icmp.interval", icmp, icmp_default.interval)
    icmp_timeout = _within(src, "probes.icmp", "timeout", icmp, icmp_default.timeout, icmp_interval)
    count = icmp_default.count
    if "count" in icmp:
        count = src.integer("probes.icmp.count", icmp["count"], minimum=1, maximum=MAX_ICMP_COUNT)
    rate = icmp_default.rate
    if "rate" in icmp:
        rate = src.integer("probes.icmp.rate", icmp["rate"], minimum=1, maximum=MAX_ICMP_RATE)

    snmp_config = _snmp(src, doc.get("snmp", {}), base)
    snmp_doc = doc.get("snmp")
    snmp_given = isinstance(snmp_doc, dict) and "interval" in snmp_doc
    if snmp_config.reachability == "both" and snmp_config.interval < 2 * icmp_interval:
        # ping and SNMP results of a switch form one sequence: at least two pings between two
        # polls, so that an SNMP agent that hangs can neither put a switch down nor keep it there
        if not snmp_given:  # the default follows a longer ICMP interval rather than refuse it
            snmp_config = replace(snmp_config, interval=2 * icmp_interval)
        else:
            src.fail(
                "probes.snmp.interval",
                f"{format_duration(snmp_config.interval)} is shorter than twice probes.icmp.interval "
                f"({format_duration(icmp_interval)}) while reachability is both; lengthen it, or set "
                "reachability: snmp",
            )

    return ProbesConfig(
        icmp=IcmpProbeConfig(interval=icmp_interval, timeout=icmp_timeout, count=count, rate=rate),
        snmp=snmp_config,
        video=_video(src, doc.get("video", {}), base),
    )


def _video(src: Source, value: object, base: Path) -> VideoProbeConfig:
    video = src.mapping("probes.video", value, VIDEO_KEYS)
    default = VideoProbeConfig()
    interval = _interval(src, "probes.video.interval", video, default.interval)
    frames, concurrency = default.frames, default.concurrency
    if "frames" in video:
        frames = src.integer("probes.video.frames", video["frames"], minimum=2, maximum=MAX_VIDEO_FRAMES)
    if "concurrency" in video:
        concurrency = src.integer(
            "probes.video.concurrency", video["concurrency"], minimum=1, maximum=MAX_VIDEO_CONCURRENCY
        )
    names = {key: getattr(default, key) for key in ("user_env", "password_env")}
    for key in names:
        if key in video:
            names[key] = _env_name(src, f"probes.video.{key}", video[key])
    password_file = None
    if "password_file" in video:
        password_file = _secret_file(src, "probes.video.password_file", video["password_file"], base)
    return VideoProbeConfig(
        interval=interval,
        sample=_within(src, "probes.video", "sample", video, default.sample, interval),
        timeout=_within(src, "probes.video", "timeout", video, default.timeout, interval),
        frames=frames,
        concurrency=concurrency,
        user_env=names["user_env"],
        password_env=names["password_env"],
        password_file=password_file,
        thresholds=thresholds(src, "probes.video.thresholds", video.get("thresholds", {})),
        groups=groups(src, "probes.video.groups", video.get("groups", [])),
    )


def _interval(src: Source, where: str, doc: dict[str, object], default: timedelta) -> timedelta:
    key = where.rsplit(".", 1)[1]
    return src.duration(where, doc[key], maximum=MAX_INTERVAL) if key in doc else default


def _within(
    src: Source, where: str, key: str, doc: dict[str, object], default: timedelta, interval: timedelta
) -> timedelta:
    """A timeout (or sample length) must end before the next round starts."""
    at = key_path(where, key)
    value = src.duration(at, doc[key]) if key in doc else default
    if value >= interval:
        src.fail(
            at,
            f"{format_duration(value)} must be shorter than the interval ({format_duration(interval)})",
        )
    return value


def _env_name(src: Source, where: str, value: object) -> str:
    name = src.text(where, value)
    if not _ENV_NAME.fullmatch(name):
        src.fail(
            where,
            f"{quote(name)} is not an environment variable name "
            "(use letters, digits and _, not starting with a digit)",
        )
    return name
