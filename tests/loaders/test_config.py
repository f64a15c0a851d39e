"""slamon.yaml: every rule has a bad file in tests/testdata/config/bad and its exact message."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from slamon.errors import ConfigError, InventoryError
from slamon.loaders.config import (
    ApiAuth,
    ApiConfig,
    Config,
    IcmpProbeConfig,
    ProbesConfig,
    SnmpProbeConfig,
    VideoProbeConfig,
    load_config,
    with_listen,
)
from slamon.loaders.fleet import load_fleet
from tests.conftest import TESTDATA

CONFIG = TESTDATA / "config"
BAD = CONFIG / "bad"
HINT = "(use 500ms, 30s, 15m, 4h, 1d)"
DATABASE_HINT = "(use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB)"
LISTEN_HINT = "(use HOST:PORT, e.g. 127.0.0.1:9108 or [::1]:9108)"
ENV_HINT = "(use letters, digits and _, not starting with a digit)"

REJECTS = [
    ("unknown-key", "probes.icmp.intervall: unknown key"),
    ("bad-duration", f"probes.icmp.interval: '30 s' is not a duration {HINT}"),
    ("top-unknown-key", "databse: unknown key"),
    ("missing-inventory", "inventory: missing (required)"),
    ("missing-contracts", "contracts: missing (required)"),
    ("inventory-suffix", "inventory: 'inventory.txt' must end in .yaml, .yml or .csv"),
    ("inventory-not-found", f"inventory: 'nope.yaml' does not exist (looked for {BAD / 'nope.yaml'})"),
    ("contracts-no-match", "contracts[1]: 'nope/*.yaml' matches no file"),
    ("contracts-empty", "contracts: empty (give at least one glob, e.g. contracts/*.yaml)"),
    (
        "journal-is-a-file",
        "journal: '../good/inventory.yaml' is a file; give a folder (it is made when first needed)",
    ),
    ("contracts-string", "contracts: expected a list, got '../good/contracts/*.yaml'"),
    (
        "exclusions-not-found",
        f"exclusions: '../good/exclusion.yaml' does not exist (looked for {CONFIG / 'good' / 'exclusion.yaml'})",
    ),
    (
        "inspections-not-found",
        f"inspections: '../good/inspection.yaml' does not exist (looked for {CONFIG / 'good' / 'inspection.yaml'})",
    ),
    ("database-scheme", f"database: unsupported database 'mysql' {DATABASE_HINT}"),
    ("database-psycopg2", f"database: unsupported database 'postgresql' {DATABASE_HINT}"),
    ("database-not-url", f"database: unsupported database 'slamon.db' {DATABASE_HINT}"),
    ("database-password", "database: the URL holds a password; put it in PGPASSWORD or ~/.pgpass instead"),
    ("listen-no-port", f"listen: '127.0.0.1' is not host:port {LISTEN_HINT}"),
    ("listen-bare-ipv6", "listen: put an IPv6 address in brackets, e.g. [::1]:9108"),
    ("listen-bad-ipv6", f"listen: '::g' is not an IPv6 address {LISTEN_HINT}"),
    ("listen-bad-port", "listen: '99999' is not a port (use 1 to 65535)"),
    ("listen-bad-host", f"listen: 'local_host' is not a host name or address {LISTEN_HINT}"),
    ("listen-number", "listen: expected text, got 9108 (put it in quotes)"),
    ("retention-bad", f"retention: '90 days' is not a duration {HINT}"),
    ("retention-zero", "retention: '0d' must be longer than 0s"),
    ("icmp-interval-zero", "probes.icmp.interval: '0s' must be longer than 0s"),
    ("icmp-timeout-not-shorter", "probes.icmp.timeout: 30s must be shorter than the interval (30s)"),
    ("snmp-interval-below-default-timeout", "probes.snmp.timeout: 2s must be shorter than the interval (1s)"),
    ("icmp-count-zero", "probes.icmp.count: 0 must be at least 1"),
    (
        "community-env-bad",
        f"probes.snmp.community_env: 'my-community' is not an environment variable name {ENV_HINT}",
    ),
    (
        "community-env-digit",
        f"probes.snmp.community_env: '1COMMUNITY' is not an environment variable name {ENV_HINT}",
    ),
    (
        "snmp-interval-below-twice-icmp",
        (
            "probes.snmp.interval: 50s is shorter than twice probes.icmp.interval (30s) while reachability is "
            "both; lengthen it, or set reachability: snmp"
        ),
    ),
    ("snmp-port-metrics-bad", "probes.snmp.port_metrics: 'some' is not one of all, uplinks"),
    ("snmp-reachability-bad", "probes.snmp.reachability: 'ping' is not one of both, snmp, icmp"),
    ("snmp-retries-negative", "probes.snmp.retries: -1 must be at least 0"),
    ("snmp-concurrency-zero", "probes.snmp.concurrency: 0 must be at least 1"),
    ("snmp-repetitions-too-many", "probes.snmp.max_repetitions: 1001 must be at most 1,000"),
    (
        "snmp-community-file-missing",
        f"probes.snmp.community_file: 'secrets/community' does not exist (looked for {BAD / 'secrets' / 'community'})",
    ),
    ("snmp-v3-no-user", "probes.snmp.v3.user: missing (required)"),
    ("snmp-v3-not-mapping", "probes.snmp.v3: expected a mapping, got 'slamonuser'"),
    (
        "snmp-v3-auth-protocol-bad",
        "probes.snmp.v3.auth_protocol: 'SHA1' is not one of SHA, SHA224, SHA256, SHA384, SHA512, MD5",
    ),
    (
        "snmp-v3-priv-protocol-bad",
        "probes.snmp.v3.priv_protocol: '3DES' is not one of AES, AES192, AES192C, AES256, AES256C, DES",
    ),
    (
        "snmp-v3-auth-env-bad",
        f"probes.snmp.v3.auth_key_env: 'auth-key' is not an environment variable name {ENV_HINT}",
    ),
    (
        "snmp-v3-priv-file-missing",
        f"probes.snmp.v3.priv_key_file: 'secrets/priv' does not exist (looked for {BAD / 'secrets' / 'priv'})",
    ),
    ("snmp-v3-env-and-file", "probes.snmp.v3: give auth_key_env or auth_key_file, not both"),
    ("snmp-v3-key-in-yaml", "probes.snmp.v3.auth_key: unknown key"),
    (
        "snmp-v3-user-too-long",
        f"probes.snmp.v3.user: '{'u' * 33}' is longer than 32 bytes (an SNMPv3 user name is 1 to 32)",
    ),
    ("snmp-v3-user-number", "probes.snmp.v3.user: expected text, got 1234 (put it in quotes)"),
    ("video-sample-too-long", "probes.video.sample: 20m must be shorter than the interval (15m)"),
    ("video-unknown-key", "probes.video.timeouts: unknown key"),
    ("probes-not-mapping", "probes: expected a mapping, got a list"),
    ("icmp-not-mapping", "probes.icmp: expected a mapping, got '30s'"),
    ("duplicate-key", "line 11, column 1: duplicate key 'retention' (first on line 6)"),
    ("syntax-error", "line 7, column 7: expected ',' or ']', but got ':'"),
    ("empty-file", "the file is empty"),
    # bounds: every value check accepts works downstream
    ("icmp-count-too-many", "probes.icmp.count: 11 must be at most 10"),
    ("icmp-count-huge", "probes.icmp.count: 1000000000000000000000 must be at most 10"),
    ("icmp-count-1e21", "probes.icmp.count: '1e21' is not a whole number"),
    ("icmp-rate-too-high", "probes.icmp.rate: 1000001 must be at most 1,000,000"),
    ("icmp-interval-too-long", "probes.icmp.interval: '1d1s' must be at most 1d"),
    ("video-interval-too-long", "probes.video.interval: '2d' must be at most 1d"),
    ("retention-too-long", "retention: '3651d' must be at most 3650d"),
    ("retention-huge", f"retention: '{'9' * 40}'… is too long a duration"),
    ("deep-nesting", "line 8, column 75: nested more than 32 levels deep"),
    ("api-auth-unknown", "api.auth: 'maybe' is not an api.auth mode (use auto, tokens, off)"),
    ("api-open-not-a-path", "api.open[0]: 'metrics' is not a path (e.g. /metrics)"),
    ("api-unknown-key", "api.tokens: unknown key"),
]


@pytest.mark.parametrize(("name", "message"), REJECTS, ids=[name for name, _ in REJECTS])
def test_load_config_rejects(name: str, message: str) -> None:
    path = BAD / f"{name}.yaml"
    with pytest.raises(ConfigError, match=f"^{re.escape(f'{path}: {message}')}$"):
        load_config(path)


def test_every_bad_file_is_in_the_table() -> None:
    assert sorted(p.stem for p in BAD.glob("*.yaml")) == sorted(name for name, _ in REJECTS)


def test_the_bad_files_differ_from_a_valid_one() -> None:
    """The bad files are copies of this one (with ../good/ paths), each broken in one place."""
    load_fleet(load_config(CONFIG / "base.yaml"))


def test_missing_file() -> None:
    path = CONFIG / "nope.yaml"
    with pytest.raises(ConfigError, match=f"^{re.escape(f'{path}: file not found')}$"):
        load_config(path)


def test_every_key_set() -> None:
    good = CONFIG / "good"
    config = load_config(good / "slamon.yaml")
    assert config == Config(
        path=good / "slamon.yaml",
        database=f"sqlite:///{good / 'data' / 'slamon.db'}",
        inventory=good / "inventory.yaml",
        # glob order, each file once
        contracts=(good / "contracts" / "YJ-2025.yaml", good / "contracts" / "MIN-1.yaml"),
        exclusions=good / "exclusions.yaml",
        inspections=good / "inspections.yaml",
        listen_host="::1",
        listen_port=9200,
        retention=timedelta(days=400),
        probes=ProbesConfig(
            icmp=IcmpProbeConfig(
                interval=timedelta(seconds=10), timeout=timedelta(milliseconds=500), count=3
            ),
            snmp=SnmpProbeConfig(
                interval=timedelta(minutes=2), timeout=timedelta(seconds=5), community_env="YJ_SNMP_COMMUNITY"
            ),
            video=VideoProbeConfig(interval=timedelta(hours=1), sample=timedelta(seconds=3)),
        ),
        journal=good / "data" / "journal",
        api=ApiConfig(ApiAuth.TOKENS, ("/metrics", "/healthz", "/")),
    )


def test_defaults() -> None:
    minimal = CONFIG / "minimal"
    config = load_config(minimal / "slamon.yaml")
    assert config.database == f"sqlite:///{minimal / 'slamon.db'}"  # relative to the config file
    assert config.inventory == minimal / "inventory.csv"
    assert config.contracts == (minimal / "contracts" / "MIN-1.yaml", minimal / "contracts" / "YJ-2025.yaml")
    assert config.exclusions is None
    assert config.inspections is None
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 9108)
    assert config.retention == timedelta(days=90)
    assert config.journal is None  # slamon run: beside a SQLite file, else slamon-journal/ beside slamon.yaml
    assert config.api == ApiConfig(ApiAuth.AUTO, ("/metrics", "/healthz"))
    assert config.probes == ProbesConfig(
        icmp=IcmpProbeConfig(interval=timedelta(seconds=30), timeout=timedelta(seconds=1), count=1),
        snmp=SnmpProbeConfig(
            interval=timedelta(seconds=60),
            timeout=timedelta(seconds=2),
            community_env="SLAMON_SNMP_COMMUNITY",
        ),
        video=VideoProbeConfig(interval=timedelta(minutes=15), sample=timedelta(seconds=2)),
    )


@pytest.mark.parametrize(
    ("probes", "snmp_interval"),
    [
        ("{icmp: {interval: 1m}}", timedelta(minutes=2)),  # the default follows: twice the ICMP interval
        ("{icmp: {interval: 20s}}", timedelta(seconds=60)),  # the default is long enough already
        ("{icmp: {interval: 1m}, snmp: {reachability: snmp}}", timedelta(seconds=60)),  # no pings to space
        ("{icmp: {interval: 1m}, snmp: {interval: 5m}}", timedelta(minutes=5)),
    ],
)
def test_the_snmp_interval_default_follows_a_long_icmp_interval(
    tmp_path: Path, probes: str, snmp_interval: timedelta
) -> None:
    """A longer ICMP interval alone is a valid file: the SNMP default stretches to twice it (only an
    interval the file sets itself is refused when it is shorter: snmp-interval-below-twice-icmp)."""
    (tmp_path / "inv.yaml").write_text("sites: []\ndevices: []\n")
    (tmp_path / "c.yaml").write_text("")
    path = tmp_path / "slamon.yaml"
    path.write_text(f"inventory: inv.yaml\ncontracts: ['c.yaml']\nprobes: {probes}\n")
    assert load_config(path).probes.snmp.interval == snmp_interval


def test_postgres_and_partial_probes() -> None:
    config = load_config(CONFIG / "postgres.yaml")
    assert config.database == "postgresql+psycopg://slamon@db.example:5432/slamon?sslmode=require"
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 9108)
    assert config.probes.icmp == IcmpProbeConfig()


def test_relative_config_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths come out absolute, whatever the working directory was."""
    monkeypatch.chdir(CONFIG)
    config = load_config("minimal/slamon.yaml")
    assert config.path == CONFIG / "minimal" / "slamon.yaml"
    assert config.inventory == CONFIG / "minimal" / "inventory.csv"


@pytest.mark.parametrize(
    ("database", "expected"),
    [
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:////var/lib/slamon/slamon.db", "sqlite:////var/lib/slamon/slamon.db"),
        ("sqlite:///../x.db?timeout=5", "sqlite:///{parent}/x.db?timeout=5"),
    ],
)
def test_sqlite_urls(tmp_path: Path, database: str, expected: str) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "inv.yaml").write_text("sites: []\ndevices: []\n")
    (tmp_path / "conf" / "c.yaml").write_text("")
    path = tmp_path / "conf" / "slamon.yaml"
    path.write_text(f"database: {database!r}\ninventory: inv.yaml\ncontracts: ['*.yaml']\n")
    assert load_config(path).database == expected.format(parent=tmp_path)


def test_secrets_are_not_read_at_load_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YJ_SNMP_COMMUNITY", raising=False)
    assert load_config(CONFIG / "good" / "slamon.yaml").probes.snmp.community_env == "YJ_SNMP_COMMUNITY"


def test_load_fleet() -> None:
    fleet = load_fleet(load_config(CONFIG / "good" / "slamon.yaml"))
    assert sorted(fleet.contracts) == ["MIN-1", "YJ-2025"]
    assert len(fleet.inventory.devices) == 6
    assert [e.id for e in fleet.exclusions] == ["EX-1", "EX-2", "EX-3"]
    assert [i.id for i in fleet.inspections] == ["MI-2025-07-01", "MI-2025-07-02"]


def test_load_fleet_csv_inventory_without_exclusions() -> None:
    fleet = load_fleet(load_config(CONFIG / "minimal" / "slamon.yaml"))
    assert len(fleet.inventory.devices) == 6
    assert fleet.exclusions == ()
    assert fleet.inspections == ()


def test_load_fleet_reports_the_failing_file(tmp_path: Path) -> None:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "MIN-1.yaml").write_text(
        (TESTDATA / "contracts" / "good" / "MIN-1.yaml").read_text()
    )
    (tmp_path / "inv.yaml").write_text(
        "sites: [{id: S1, name: n, district: d, area: urban}]\n"
        "devices: [{id: C1, kind: camera, address: 10.0.0.1, site: S1, contract: YJ-2025}]\n"
    )
    (tmp_path / "slamon.yaml").write_text("inventory: inv.yaml\ncontracts: [contracts/*.yaml]\n")
    config = load_config(tmp_path / "slamon.yaml")
    message = f"{tmp_path / 'inv.yaml'}: devices[0].contract: unknown contract 'YJ-2025'"
    with pytest.raises(InventoryError, match=f"^{re.escape(message)}$"):
        load_fleet(config)


def test_slamon_database_overrides_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment's store comes from the environment (a Kubernetes Secret), by the same rules."""
    url = "postgresql+psycopg://slamon@db.example:5432/slamon"
    monkeypatch.setenv("SLAMON_DATABASE", url)
    assert load_config(CONFIG / "good" / "slamon.yaml").database == url
    monkeypatch.setenv("SLAMON_DATABASE", "postgresql+psycopg://slamon:secret@db/slamon")
    with pytest.raises(ConfigError) as err:
        load_config(CONFIG / "good" / "slamon.yaml")
    assert str(err.value) == (
        "SLAMON_DATABASE: database: the URL holds a password; put it in PGPASSWORD or ~/.pgpass instead"
    )
    monkeypatch.setenv("SLAMON_DATABASE", "")
    assert load_config(CONFIG / "good" / "slamon.yaml").database != url


def test_listen_flag_overrides_listen() -> None:
    config = with_listen(load_config(CONFIG / "good" / "slamon.yaml"), "[::1]:19999")
    assert (config.listen_host, config.listen_port) == ("::1", 19999)
    with pytest.raises(ConfigError) as err:
        with_listen(config, "localhost")
    assert str(err.value) == f"--listen: 'localhost' is not host:port {LISTEN_HINT}"
