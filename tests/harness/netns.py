"""Throwaway network namespaces in which chosen addresses go silent, so probes meet real timeouts.

A `FleetNamespace` is a fresh network namespace with only `lo` in it: every address of 127.0.0.0/8
and `::1` answers there (plus IPv6 addresses added to `lo`, by default fd00:5a::1), nothing leaves
the machine, and the host's own network is untouched. An nftables table inside drops everything
to and from the *silenced* addresses: ICMP echo requests, but also UDP and TCP, so an SNMP agent or
RTSP server listening on a silenced address goes quiet as a dead camera would (no reply, no ICMP
error, no RST: the prober sees a timeout, not a refusal).

Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), `ip` (iproute2) and `nft` (nftables);
`namespaces_available()` says whether this machine has them, and why not. Nothing is installed or
created at import time.

IPv6 quirk: unlike IPv4, where all of 127.0.0.0/8 is local, an IPv6 address answers only once it
is on `lo` (`add_addresses`). A `local` route for a whole prefix (the IPv4 "AnyIP" trick) gives
"Network is unreachable" for IPv6 on the kernels we run, so addresses are added one by one (/128,
nodad: usable at once).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
TABLE = "slamon_sim"
DEFAULT_IPV6_ADDRESSES = ("fd00:5a::1",)
COMMAND_TIMEOUT = 30.0  # seconds for any one command the harness runs (every wait is bounded)
STOP_TIMEOUT = 5.0  # seconds a child gets after SIGTERM before SIGKILL
NAME_ATTEMPTS = 100
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

RULESET = f"""
table inet {TABLE} {{
    set down4 {{ type ipv4_addr; flags interval; }}
    set down6 {{ type ipv6_addr; flags interval; }}
    chain input {{
        type filter hook input priority 0; policy accept;
        ip daddr @down4 icmp type echo-request counter drop comment "ping to a silenced address"
        ip6 daddr @down6 icmpv6 type echo-request counter drop comment "ping to a silenced address"
        ip daddr @down4 counter drop comment "anything else to it: SNMP, RTSP, TCP"
        ip6 daddr @down6 counter drop comment "anything else to it: SNMP, RTSP, TCP"
        ip saddr @down4 counter drop comment "nor does anything it sent arrive"
        ip6 saddr @down6 counter drop comment "nor does anything it sent arrive"
    }}
}}
"""


class NamespaceError(RuntimeError):
    """A namespace could not be set up, changed or removed."""


def _tool(name: str) -> str | None:
    """`ip` and `nft` live in /usr/sbin, which a non-login PATH may lack."""
    return shutil.which(name) or shutil.which(name, path=SBIN_PATH)


def _need_tool(name: str) -> str:
    path = _tool(name)
    if path is None:
        raise NamespaceError(f"`{name}` not found")
    return path


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    """Move the calling thread (only it) into the network namespace open at `fd`."""
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")


def parse_network(text: str) -> Network:
    """An address or CIDR range; host bits set in a range are a mistake, not rounded away."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IP address or CIDR range: {text!r} ({exc})") from None


def network_text(net: Network) -> str:
    """A single address reads as the address, a range as CIDR."""
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _subtract(net: Network, cut: Network) -> list[Network]:
    """`net` less `cut` (CIDR ranges either nest or are disjoint)."""
    if net.version != cut.version or not net.overlaps(cut):
        return [net]
    if net.subnet_of(cut):  # type: ignore[arg-type]
        return []
    return list(net.address_exclude(cut))  # type: ignore[arg-type]


class SilenceBook:
    """Which addresses and ranges are silenced: FleetNamespace's rules, without any packets.

    Entries are kept as given (silence 127.0.30.5 and 127.0.30.6: two entries, not a /31);
    restoring part of a silenced range splits it into the CIDRs around the hole.
    """

    def __init__(self, entries: Iterable[Network] = ()) -> None:
        self.entries: list[Network] = list(dict.fromkeys(entries))

    def copy(self) -> SilenceBook:
        return SilenceBook(self.entries)

    def silence(self, *addresses: str) -> None:
        for net in map(parse_network, addresses):
            if net not in self.entries:
                self.entries.append(net)

    def restore(self, *addresses: str) -> None:
        """Restoring what is not silenced is a no-op."""
        cuts = [parse_network(a) for a in addresses]
        entries: dict[Network, None] = {}
        for entry in self.entries:
            pieces = [entry]
            for cut in cuts:
                pieces = [piece for p in pieces for piece in _subtract(p, cut)]
            entries.update(dict.fromkeys(pieces))
        self.entries = list(entries)

    def silenced(self) -> set[str]:
        return {network_text(net) for net in self.entries}

    def is_silenced(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in net for net in self.entries)

    def collapsed(self, version: int) -> list[str]:
        """The entries of one IP version as the fewest CIDRs (nft interval sets reject overlaps)."""
        same = [n for n in self.entries if n.version == version]
        return [str(n) for n in ipaddress.collapse_addresses(same)]  # type: ignore[type-var]


# --- every namespace this process opened, so none outlives it ----------------------------------

_live: dict[str, FleetNamespace] = {}
_live_lock = threading.Lock()
_counter = itertools.count(1)


@functools.cache
def _register_atexit() -> None:
    atexit.register(_close_all)


def _close_all() -> None:
    """Last resort at interpreter exit, for namespaces whose owner never closed them."""
    with _live_lock:
        left = list(_live.values())
    for fleet in left:
        with contextlib.suppress(Exception):
            fleet.close()


def live_namespaces() -> list[str]:
    """Names of the namespaces this process has open (for tests of the cleanup)."""
    with _live_lock:
        return sorted(_live)


def namespace_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def stale_namespaces(prefix: str = "slamon") -> list[str]:
    """Namespaces `<prefix>-<pid>-<n>` whose process is gone (a test run killed by SIGKILL)."""
    pattern = re.compile(rf"{re.escape(prefix)}-(\d+)-\d+")
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return []
    stale = []
    for name in names:
        match = pattern.fullmatch(name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            stale.append(name)
    return sorted(stale)


def remove_stale_namespaces(prefix: str = "slamon") -> list[str]:
    """Delete what `stale_namespaces` finds; never called implicitly. Returns what it removed."""
    ip = _need_tool("ip")
    removed = []
    for name in stale_namespaces(prefix):
        result = subprocess.run(
            [ip, "netns", "del", name], check=False, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
        if result.returncode == 0:
            removed.append(name)
    return removed


# --- the namespace ------------------------------------------------------------------------------


class FleetNamespace:
    """A network namespace with `lo` up, ICMP datagram sockets allowed, and addresses to silence.

    Use once, as a context manager: the namespace is deleted on exit (also when the body raises), after
    the processes started with `popen` are stopped (SIGTERM, then SIGKILL; by PID, and only those).
    A process killed outright leaves `slamon-<pid>-<n>` behind: see `remove_stale_namespaces`.
    """

    def __init__(self, *, prefix: str = "slamon", ipv6_addresses: Iterable[str] = DEFAULT_IPV6_ADDRESSES):
        self.prefix = prefix
        self.name = ""
        self.ipv6 = False  # whether IPv6 works inside; set on open
        self._ipv6_addresses = tuple(ipv6_addresses)
        self._book = SilenceBook()
        self._children: list[subprocess.Popen[Any]] = []
        self._closed = False
        self._ip = _need_tool("ip")
        self._nft = _need_tool("nft")

    def __repr__(self) -> str:
        return f"FleetNamespace({self.name or 'not open'}, silenced={sorted(self.silenced())})"

    @property
    def path(self) -> str:
        return os.path.join(NETNS_DIR, self.name)

    # --- life cycle

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Create the namespace under a fresh name and set it up; on any failure remove it again."""
        if self.name:
            raise NamespaceError(f"{self.name} is already open")
        _register_atexit()
        pid = os.getpid()
        for _ in range(NAME_ATTEMPTS):
            name = f"{self.prefix}-{pid}-{next(_counter)}"
            if namespace_exists(name):  # left by an earlier process with our PID
                continue
            result = self._exec([self._ip, "netns", "add", name])
            if result.returncode == 0:
                break
            if not namespace_exists(name):
                raise NamespaceError(f"ip netns add {name}: {result.stderr.strip()}")
        else:
            raise NamespaceError(f"no free namespace name {self.prefix}-{pid}-* in {NAME_ATTEMPTS} tries")
        with _live_lock:
            _live[name] = self
        self.name = name
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        self._check(self._exec([self._ip, "-n", self.name, "link", "set", "lo", "up"]))
        with self.inside():
            # datagram ICMP sockets for every group, as a non-root prober would need
            _write_sysctl("net/ipv4/ping_group_range", "0 2147483647")
            lo_v6 = "/proc/sys/net/ipv6/conf/lo/disable_ipv6"
            if os.path.exists(lo_v6):  # absent when the kernel booted with ipv6.disable=1
                if _read_sysctl("net/ipv6/conf/lo/disable_ipv6") != "0":
                    _write_sysctl("net/ipv6/conf/lo/disable_ipv6", "0")
                self.ipv6 = True
        self._nft_script(RULESET)
        if self.ipv6 and self._ipv6_addresses:
            self.add_addresses(*self._ipv6_addresses)

    def close(self) -> None:
        """Stop our children, delete the namespace. Idempotent."""
        if not self.name or self._closed:
            return
        self._closed = True
        try:
            for child in self._children:
                _stop(child)
        finally:
            result = self._exec([self._ip, "netns", "del", self.name])
            with _live_lock:
                _live.pop(self.name, None)
            if result.returncode != 0 and namespace_exists(self.name):
                raise NamespaceError(f"ip netns del {self.name}: {result.stderr.strip()}")

    # --- commands inside

    def command(self, argv: Sequence[str]) -> list[str]:
        """The argv that runs `argv` inside (`ip netns exec` execs it: the PID is the command's).

        For asyncio.create_subprocess_exec and the like; unlike `popen`, what is started this way
        is the caller's to stop.
        """
        self._require_open()
        return [self._ip, "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
        """Run a command inside and wait for it.

        Defaults, each overridable: capture_output=True (unless stdout/stderr are given),
        text=True (unless an encoding is), timeout=30 s. Not checked unless check=True.
        """
        if not {"stdout", "stderr", "capture_output"} & kw.keys():
            kw["capture_output"] = True
        if not {"text", "encoding", "errors", "universal_newlines"} & kw.keys():
            kw["text"] = True
        kw.setdefault("timeout", COMMAND_TIMEOUT)
        return subprocess.run(self.command(argv), check=kw.pop("check", False), **kw)

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start a command inside; it is stopped (by its PID) when the namespace closes."""
        child: subprocess.Popen[Any] = subprocess.Popen(self.command(argv), **kw)
        self._children.append(child)
        return child

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Move the calling thread (only it) into the namespace; back to where it was on exit.

        Sockets (and so asyncio transports) created inside stay in the namespace after the thread
        leaves: a UDP socket bound to 127.0.0.1 inside answers clients inside only. Subprocesses
        and threads started inside inherit the namespace; an executor whose threads exist already
        (asyncio's default executor, once used) does not move. Nests, and works in any thread.
        """
        self._require_open()
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                _setns(original)
        finally:
            os.close(original)

    def add_addresses(self, *addresses: str) -> None:
        """Put addresses on `lo` so they answer: needed for IPv6 and for IPv4 outside 127.0.0.0/8."""
        lines = []
        for text in addresses:
            address = ipaddress.ip_address(text)
            if address.is_loopback:
                continue
            if address.version == 6:
                lines.append(f"address replace {address}/128 dev lo nodad\n")
            else:
                lines.append(f"address replace {address}/32 dev lo\n")
        if lines:
            self._check(self._exec([self._ip, "-n", self.name, "-batch", "-"], "".join(lines)))

    # --- silence

    def silence(self, *addresses: str) -> None:
        """From now on nothing reaches these addresses or ranges (v4 or v6), nor leaves them.

        Takes effect at once, for connections already open too. Mind the prober's own source
        address: for any 127.x.y.z destination it is 127.0.0.1, so silencing 127.0.0.1 (or all of
        127.0.0.0/8) silences every reply. For an IPv6 address on lo the source is the address
        itself, so silencing ::1 leaves fd00:5a:… alone.
        """
        book = self._book.copy()
        book.silence(*addresses)
        self._commit(book)

    def restore(self, *addresses: str) -> None:
        """Undo `silence` for these addresses or ranges (a hole in a silenced range is fine).

        Restoring what is not silenced is a no-op.
        """
        book = self._book.copy()
        book.restore(*addresses)
        self._commit(book)

    def restore_all(self) -> None:
        self._commit(SilenceBook())

    def silenced(self) -> set[str]:
        """What is silenced, as given (a restored hole splits a range into the CIDRs around it)."""
        return self._book.silenced()

    def is_silenced(self, address: str) -> bool:
        return self._book.is_silenced(address)

    def dropped_packets(self) -> int:
        """Packets dropped so far: tells whether a prober really sent to a silenced address."""
        result = self._check(self.run([self._nft, "-j", "list", "chain", "inet", TABLE, "input"]))
        total = 0
        for item in json.loads(result.stdout)["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    total += int(expr["counter"]["packets"])
        return total

    def _commit(self, book: SilenceBook) -> None:
        """Replace both sets in one nft transaction: probes never see a half-applied step."""
        self._require_open()
        script = []
        for version, set_name in ((4, "down4"), (6, "down6")):
            script.append(f"flush set inet {TABLE} {set_name}\n")
            elements = book.collapsed(version)
            if elements:
                script.append(f"add element inet {TABLE} {set_name} {{ {', '.join(elements)} }}\n")
        self._nft_script("".join(script))
        self._book = book

    # --- plumbing

    def _require_open(self) -> None:
        if not self.name or self._closed:
            raise NamespaceError("the namespace is not open")

    def _nft_script(self, script: str) -> None:
        self._check(self.run([self._nft, "-f", "-"], input=script))

    @staticmethod
    def _exec(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, check=False, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )

    @staticmethod
    def _check(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
        if result.returncode != 0:
            argv = " ".join(map(str, result.args))
            raise NamespaceError(f"{argv} exited {result.returncode}: {(result.stderr or '').strip()}")
        return result


def _read_sysctl(key: str) -> str:
    """Per network namespace: /proc/sys/net follows the calling thread's namespace."""
    with open(f"/proc/sys/{key}") as f:
        return f.read().strip()


def _write_sysctl(key: str, value: str) -> None:
    with open(f"/proc/sys/{key}", "w") as f:
        f.write(value)


def _stop(child: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL, each wait bounded; close its pipes so nothing leaks a warning."""
    try:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(STOP_TIMEOUT)
    finally:
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


@functools.cache
def namespaces_available() -> str | None:
    """None when this machine can run FleetNamespace, else why not (for a skip or fail message).

    Cheap (one throwaway namespace, ~50 ms, once per process) and honest: it sets one up for real,
    since containers differ in what they allow (netns mounts, nf_tables, setns).
    """
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add, nft, setns)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if _tool(tool) is None:
            return f"`{tool}` not found: install the Debian package {package}"
    try:
        with FleetNamespace(ipv6_addresses=()):
            pass
    except (OSError, NamespaceError, subprocess.SubprocessError) as exc:
        return f"cannot set up a network namespace here: {exc}"
    return None
