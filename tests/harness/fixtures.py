"""pytest fixtures for the namespace harness; tests/conftest.py imports them.

Where namespaces cannot work (not root, `ip` or `nft` missing, a container that forbids
`ip netns add`) the tests skip with the reason, unless SLAMON_REQUIRE_NETNS=1 (as in CI), where
a missing capability is a failure: a green run must not hide simulation tests that never ran.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.harness.netns import FleetNamespace, namespaces_available

REQUIRE_ENV = "SLAMON_REQUIRE_NETNS"


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip, or fail when SLAMON_REQUIRE_NETNS=1."""
    if _required():
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1)")
    pytest.skip(reason)


def require_namespaces() -> None:
    reason = namespaces_available()
    if reason is not None:
        unavailable(reason)


def require_tool(name: str, package: str) -> str:
    """The path of a command a test runs (ping, fping…), or skip/fail naming its Debian package."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        unavailable(f"`{name}` not found: install the Debian package {package}")
        raise AssertionError("unreachable")  # pytest.skip and pytest.fail raise
    return path


@pytest.fixture
def fleet_ns() -> Iterator[FleetNamespace]:
    """A fresh FleetNamespace for one test, deleted afterwards whatever the test did."""
    require_namespaces()
    with FleetNamespace() as fleet:
        yield fleet
