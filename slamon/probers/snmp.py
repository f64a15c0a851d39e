"""SNMP polling of whole fleets of switches: v2c on one UDP socket per address family with our own
codec; v3 (USM authPriv) through pysnmp (`snmp_v3`), for switches whose inventory says so.

A round polls every due switch, at most `concurrency` at a time. One poll is a short conversation:
a GET of the scalars (sysUpTime, the PoE budget), then GETBULKs that walk the port columns side by
side (snmp_mib.COLUMNS: one request carries every column still going), each request with its
timeout and retries. Replies are matched by source address and request-id; one that does not parse
fails that switch with the reason (`MalformedReply`), never the round. A switch's result is:

- ok, with `detail` as FORMATS.md shows (`uptime_s`, `ports` by `ifName`: `oper`, `admin`, PoE
  where present, counters and rates), `rtt_ms` of its first reply, `loss` the share of requests
  that had to be sent again;
- or not ok, with the error: no reply (wrong community, agent down, filtered), an error-status the
  agent answered, a malformed or inconsistent reply, a walk that did not end.

Why not pysnmp for this: measured here, pysnmp 7 costs 73–327 µs of CPU per varbind and net-snmp's
tools about 7 µs; 2,000 switches × ~330 varbinds a minute needs the latter's order
(BENCHMARKS.md). The community, and the SNMPv3 user's keys, come from the environment or files
(never the YAML, logs, metrics or the API). SNMPv3 switches are polled with the same GET and walk
(`Conversation`), only the requests go through pysnmp: one engine per prober (`snmp_v3.Session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from slamon.clock import Clock
from slamon.errors import SlamonError
from slamon.loaders.config import SnmpProbeConfig, SnmpV3Config
from slamon.model import Device, DeviceId, ProbeKind, ProbeResult
from slamon.probers import snmp_mib
from slamon.probers.snmp_reading import Index, Previous, Walked, read
from slamon.probers.snmp_wire import (
    COUNTER32,
    END_OF_MIB_VIEW,
    ERROR_STATUS,
    EXCEPTIONS,
    GET_BULK_REQUEST,
    GET_REQUEST,
    RESPONSE,
    V2C,
    MalformedReply,
    Message,
    Value,
    decode_arcs,
    decode_message,
    encode_request,
    format_oid,
)

if TYPE_CHECKING:
    from slamon.probers.snmp_v3 import Session

logger = logging.getLogger(__name__)

MAX_ROWS = 10_000  # rows per column a walk takes before it calls the agent broken
MAX_VARBINDS = 120  # per GETBULK reply (columns × repetitions): ~4 KB, two fragments at most


class SnmpUnavailable(SlamonError):
    """SNMP polling cannot start: no community, no SNMPv3 user or keys, or no UDP socket."""


class PollFailed(Exception):
    """One switch's poll failed; the text is the result's error."""


@dataclass(frozen=True, slots=True)
class SnmpV3Credentials:
    """The USM user SNMPv3 switches are polled as (authPriv); the keys are passphrases (RFC 3414),
    localized to each switch's engine by pysnmp. Never logged: the keys are left out of the repr."""

    user: str
    auth_protocol: str  # a name of slamon.loaders.config.SNMP_AUTH_PROTOCOLS
    auth_key: bytes = field(repr=False)
    priv_protocol: str  # a name of slamon.loaders.config.SNMP_PRIV_PROTOCOLS
    priv_key: bytes = field(repr=False)

    def __str__(self) -> str:
        return f"user {self.user}, authPriv {self.auth_protocol}/{self.priv_protocol}"


@dataclass(frozen=True, slots=True)
class SnmpSettings:
    community: bytes = field(default=b"", repr=False)  # b"": not set (v2c switches cannot be polled)
    timeout: timedelta = timedelta(seconds=2)
    retries: int = 1
    concurrency: int = 100
    max_repetitions: int = 25
    v3: SnmpV3Credentials | None = None  # None: SNMPv3 switches cannot be polled
    community_unset: str = ""  # what check() says when a v2c switch is listed and no community is set


MIN_V3_KEY = 8  # characters of a USM passphrase at least (RFC 3414 11.2; net-snmp refuses shorter)


def settings_from(config: SnmpProbeConfig, environ: Mapping[str, str] | None = None) -> SnmpSettings:
    """The prober's settings, with the secrets read now from their files or environment variables
    (at start: a reload keeps them). What is configured must work: a community file that cannot
    be read, SNMPv3 keys that are not set, or traps without a community raise SnmpUnavailable.
    A community variable that is not set is left to `SnmpProber.check`, which knows whether
    any switch speaks v2c."""
    env = os.environ if environ is None else environ
    unset = ""
    if config.community_file is not None:
        community = _secret_file(config.community_file, "probes.snmp.community_file")
    else:
        community = env.get(config.community_env, "")
        if not community:
            unset = (
                f"export {config.community_env}=... (probes.snmp.community_env) or name a file in "
                "probes.snmp.community_file"
            )
    if config.traps is not None and not community and config.v3 is None:
        raise SnmpUnavailable(
            f"probes.snmp.traps: traps are checked against the SNMP community (or the v3 user), and neither is set: {unset}"
        )
    return SnmpSettings(
        community=community.encode("utf-8"),
        timeout=config.timeout,
        retries=config.retries,
        concurrency=config.concurrency,
        max_repetitions=config.max_repetitions,
        v3=None if config.v3 is None else _v3_credentials(config.v3, env),
        community_unset=(
            f"switches have `snmp: {{version: 2c}}` in the inventory but the SNMP community is not set: "
            f"{unset}"
            if unset
            else ""
        ),
    )


def _v3_credentials(config: SnmpV3Config, env: Mapping[str, str]) -> SnmpV3Credentials:
    keys: list[bytes] = []
    for kind, name, file in (
        ("auth", config.auth_key_env, config.auth_key_file),
        ("priv", config.priv_key_env, config.priv_key_file),
    ):
        where = f"probes.snmp.v3.{kind}_key"
        if file is not None:
            text, source = _secret_file(file, f"{where}_file"), f"{where}_file ({file})"
        else:
            text, source = env.get(name, ""), name
            if not text:
                raise SnmpUnavailable(
                    f"probes.snmp.v3: the SNMPv3 {kind} key is not set: export {name}=... "
                    f"({where}_env) or name a file in {where}_file"
                )
        if len(text) < MIN_V3_KEY:
            raise SnmpUnavailable(
                f"probes.snmp.v3: the {kind} key from {source} is shorter than {MIN_V3_KEY} characters "
                "(an SNMPv3 passphrase has 8 or more)"
            )
        keys.append(text.encode("utf-8"))
    return SnmpV3Credentials(config.user, config.auth_protocol, keys[0], config.priv_protocol, keys[1])


def _secret_file(path: Path, where: str) -> str:
    """The secret a file holds (one line; surrounding blanks and newlines are not part of it)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SnmpUnavailable(f"{where}: cannot read {path}: {exc}") from None
    if not text:
        raise SnmpUnavailable(f"{where}: {path} is empty")
    return text


class _Transport(asyncio.DatagramProtocol):
    """One UDP socket; a reply goes to the request waiting on its source address."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[tuple[str, int], tuple[int, asyncio.Future[Message]]] = {}
        self.stray = 0  # datagrams nobody waited for (late replies, unknown sources)
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        key = (str(addr[0]), int(addr[1]))
        entry = self.waiting.get(key)
        if entry is None:
            self.stray += 1
            return
        request_id, future = entry
        try:
            message = decode_message(data)
        except MalformedReply as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if message.request_id != request_id or message.pdu_type != RESPONSE:
            self.stray += 1  # a late reply to an earlier request (or not a reply at all)
            return
        if not future.done():
            future.set_result(message)

    def error_received(self, exc: Exception) -> None:
        logger.debug("snmp socket: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class SnmpProber:
    """SNMP v2c and v3 for a round of switches; see the module docstring for how and why."""

    kind: ClassVar[ProbeKind] = ProbeKind.SNMP

    def __init__(self, clock: Clock, settings: SnmpSettings) -> None:
        self._clock = clock
        self._settings = settings
        self._transports: dict[int, _Transport] = {}
        self._v3: Session | None = None  # pysnmp's engine, made at the first SNMPv3 poll
        self._ids = count(int.from_bytes(os.urandom(2), "big"))
        self._previous: dict[DeviceId, Previous] = {}
        self.errors: dict[str, int] = {}  # failed polls by reason (a metric)
        self._inflight: dict[DeviceId, asyncio.Event] = {}  # polls under way, set when each ends
        self.requests = 0
        self.varbinds = 0

    def check(self, devices: Iterable[Device] = ()) -> str:
        """SnmpUnavailable when a listed switch's version cannot be polled: v2c without a
        community, v3 without probes.snmp.v3 (or without pysnmp and its ciphers)."""
        listed = [d for d in devices if d.snmp is not None]
        v3 = [d.id for d in listed if _is_v3(d)]
        v2c = [d.id for d in listed if not _is_v3(d)]
        if v2c and not self._settings.community:
            raise SnmpUnavailable(
                self._settings.community_unset or f"the SNMP community is not set ({_some(v2c)})"
            )
        if not v3:
            return "v2c"
        if self._settings.v3 is None:
            raise SnmpUnavailable(
                f"switches have `snmp: {{version: 3}}` in the inventory ({_some(v3)}) but no SNMPv3 "
                "user is configured: add probes.snmp.v3 {user: NAME} to slamon.yaml, with its keys in "
                "SLAMON_SNMP_AUTH_KEY and SLAMON_SNMP_PRIV_KEY (or the variables or files it names)"
            )
        from slamon.probers.snmp_v3 import ready

        problem = ready(self._settings.v3)
        if problem:
            raise SnmpUnavailable(f"SNMPv3 ({_some(v3)}): {problem}")
        return f"v2c and v3 ({self._settings.v3})" if v2c else f"v3 ({self._settings.v3})"

    async def _transport(self, family: int) -> _Transport:
        transport = self._transports.get(family)
        if transport is None:
            loop = asyncio.get_running_loop()
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))  # noqa: S104  # an ephemeral client port
            _, transport = await loop.create_datagram_endpoint(_Transport, sock=sock)
            self._transports[family] = transport
        return transport

    async def aclose(self) -> None:
        for transport in self._transports.values():
            if transport.transport is not None:
                transport.transport.close()
                await transport.closed  # the socket is closed by then
        self._transports.clear()
        if self._v3 is not None:
            await self._v3.aclose()
            self._v3 = None

    @property
    def busy(self) -> frozenset[DeviceId]:
        """Switches being polled now (a trap's poll skips them: the poll under way reports them)."""
        return frozenset(self._inflight)

    async def round(self, devices: Sequence[Device]) -> AsyncIterator[list[ProbeResult]]:
        """One result per switch, in batches as polls end; never raises for a failed switch."""
        for family in {_family(d) for d in devices if not _is_v3(d)}:  # before the workers, who share them
            with contextlib.suppress(OSError):  # e.g. no IPv6 here: its switches fail alone, saying why
                await self._transport(family)
        pending = iter(devices)
        done: list[ProbeResult] = []
        wake = asyncio.Event()

        async def worker() -> None:
            try:
                for device in pending:
                    done.append(await self.poll(device))
                    wake.set()
            finally:
                wake.set()  # a bug in a poll must end the round, not hang it

        workers = [
            asyncio.create_task(worker()) for _ in range(min(self._settings.concurrency, len(devices)))
        ]
        try:
            remaining = len(devices)
            while remaining:
                await wake.wait()
                wake.clear()
                batch, done[:] = done[:], []
                remaining -= len(batch)
                for task in workers:
                    if task.done() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]  # a bug, not a failed switch
                if batch:
                    yield batch
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def poll(self, device: Device) -> ProbeResult:
        """One switch, now: its result (ok or not) is stamped when its poll began. A switch is
        polled once at a time: a second poll (a round reaching a switch a trap is polling) waits
        for the first to end, then asks again."""
        while (running := self._inflight.get(device.id)) is not None:
            await running.wait()
        ended = self._inflight[device.id] = asyncio.Event()
        try:
            return await self._poll(device)
        finally:
            del self._inflight[device.id]
            ended.set()

    async def _poll(self, device: Device) -> ProbeResult:
        at = self._clock.now()
        port = device.snmp.port if device.snmp is not None else 161
        target = (device.address, port)
        conversation: Conversation
        if _is_v3(device):
            if self._settings.v3 is None:
                error = "SNMPv3 switch, but no SNMPv3 user is configured (probes.snmp.v3)"
                return self._failed(device, at, "config", error)
            if self._v3 is None:
                from slamon.probers.snmp_v3 import Session

                self._v3 = Session(self._settings.v3, self._settings.timeout)
            conversation = self._v3.conversation(self._settings, target)
        else:
            try:
                transport = await self._transport(_family(device))
            except OSError as exc:
                v6 = _family(device) == socket.AF_INET6
                error = f"cannot open a UDP socket for IPv{6 if v6 else 4}: {exc.strerror or exc}"
                return self._failed(device, at, "send", error)
            conversation = _Conversation(self, transport, target)
        try:
            walked = await conversation.walk()
        except PollFailed as exc:
            return self._failed(device, at, conversation.reason, str(exc), conversation.loss)
        finally:
            self.requests += conversation.requests
            self.varbinds += conversation.varbinds
        detail, self._previous[device.id] = read(walked, self._previous.get(device.id))
        return ProbeResult(
            device.id,
            ProbeKind.SNMP,
            at,
            True,
            rtt_ms=conversation.rtt_ms,
            loss=conversation.loss,
            detail=detail,
        )

    def _failed(
        self, device: Device, at: datetime, reason: str, error: str, loss: float | None = None
    ) -> ProbeResult:
        """A failed poll: the error for people, its reason word (a metric label) in the detail."""
        self.errors[reason] = self.errors.get(reason, 0) + 1
        return ProbeResult(
            device.id, ProbeKind.SNMP, at, False, loss=loss, error=error, detail={"reason": reason}
        )

    def next_id(self) -> int:
        return next(self._ids) & 0x7FFFFFFF


def _family(device: Device) -> int:
    return socket.AF_INET6 if ":" in device.address else socket.AF_INET


def _is_v3(device: Device) -> bool:
    return device.snmp is not None and device.snmp.version == "3"


def _some(ids: Sequence[str]) -> str:
    return f"{len(ids)} switches: " + ", ".join(ids[:3]) + (", …" if len(ids) > 3 else "")


class Conversation:
    """One poll of one switch: requests one after another, each with its timeout and retries. The
    GET and the walk are here; how a request travels is a subclass's (v2c here, v3 in snmp_v3)."""

    def __init__(self, settings: SnmpSettings, target: tuple[str, int]) -> None:
        self.settings = settings
        self.target = target
        self.requests = 0
        self.resent = 0
        self.varbinds = 0
        self.rtt_ms: float | None = None
        self.first_reply_ns = 0
        self.reason = "other"

    @property
    def loss(self) -> float | None:
        return None if not self.requests else self.resent / self.requests

    def fail(self, reason: str, text: str) -> PollFailed:
        self.reason = reason
        return PollFailed(text)

    def no_reply(self, why: str) -> PollFailed:
        tries = self.settings.retries + 1
        timeout = self.settings.timeout.total_seconds()
        return self.fail(
            "timeout", f"no reply after {tries} tr{'ies' if tries > 1 else 'y'} of {timeout:g} s ({why})"
        )

    async def request(self, pdu_type: int, oids: Sequence[bytes], repetitions: int = 0) -> Message:
        """The reply to one request (sent again on a timeout), or PollFailed: no reply, an
        error-status, a reply that does not parse."""
        raise NotImplementedError

    async def walk(self) -> Walked:
        got = await self.request(GET_REQUEST, snmp_mib.SCALARS)
        if len(got.varbinds) != len(snmp_mib.SCALARS) or any(
            v.oid != oid for v, oid in zip(got.varbinds, snmp_mib.SCALARS, strict=False)
        ):
            raise self.fail("malformed", "the reply's OIDs are not the ones asked for")
        scalars = [
            v.value if isinstance(v.value, int) and v.tag not in EXCEPTIONS else None for v in got.varbinds
        ]
        if scalars[0] is None:
            raise self.fail("malformed", "no sysUpTime.0 in the reply (not an SNMP agent of a switch?)")
        narrow: set[str] = set()
        columns = await self.walk_columns(snmp_mib.COLUMNS, narrow)
        return Walked(self.first_reply_ns, scalars[0], scalars[1], scalars[2], columns, frozenset(narrow))

    async def walk_columns(
        self, columns: Sequence[snmp_mib.Column], narrow: set[str] | None = None
    ) -> dict[str, dict[Index, Value]]:
        """Every row of every column, walked side by side with GETBULK; each column stops at the
        first OID outside it (or endOfMibView). `narrow` gets the keys of columns where a value
        came as a Counter32 (some agents send their 64-bit octet counters so: they wrap at 2³²)."""
        prefixes = [c.prefix for c in columns]
        rows: list[dict[Index, Value]] = [{} for _ in columns]
        cursors = list(prefixes)  # where each column's walk goes on from
        last: list[Index] = [() for _ in columns]
        walked = [0] * len(columns)
        active = list(range(len(columns)))
        while active:
            repetitions = max(1, min(self.settings.max_repetitions, MAX_VARBINDS // len(active)))
            got = await self.request(GET_BULK_REQUEST, [cursors[i] for i in active], repetitions)
            binds = got.varbinds
            width = len(active)
            if not binds or len(binds) > width * repetitions:
                raise self.fail("malformed", f"a GETBULK reply of {len(binds)} varbinds for {width} columns")
            ended: set[int] = set()
            for n, vb in enumerate(binds):
                col = active[n % width]
                if col in ended:
                    continue
                prefix = prefixes[col]
                if vb.tag == END_OF_MIB_VIEW or not vb.oid.startswith(prefix) or len(vb.oid) == len(prefix):
                    ended.add(col)
                    continue
                try:
                    index = decode_arcs(vb.oid[len(prefix) :])
                except MalformedReply as exc:
                    raise self.fail("malformed", f"{format_oid(vb.oid)}: {exc}") from None
                if index <= last[col]:
                    raise self.fail(
                        "malformed",
                        f"the agent went back in {columns[col].key} "
                        f"({format_oid(vb.oid)} after row {'.'.join(map(str, last[col]))}): "
                        "a broken walk",
                    )
                last[col] = index
                cursors[col] = vb.oid
                walked[col] += 1
                if vb.tag not in EXCEPTIONS:
                    rows[col][index] = vb.value
                    if vb.tag == COUNTER32 and narrow is not None:
                        narrow.add(columns[col].key)
                if walked[col] > MAX_ROWS:  # every row walked, an exception too: the walk must end
                    raise self.fail("malformed", f"{columns[col].key}: more than {MAX_ROWS} rows")
            active = [i for i in active if i not in ended]
        return {c.key: r for c, r in zip(columns, rows, strict=True)}


class _Conversation(Conversation):
    """SNMP v2c over the prober's socket for the switch's address family."""

    def __init__(self, prober: SnmpProber, transport: _Transport, target: tuple[str, int]) -> None:
        super().__init__(prober._settings, target)
        self.prober = prober
        self.transport = transport

    async def request(self, pdu_type: int, oids: Sequence[bytes], repetitions: int = 0) -> Message:
        settings = self.settings
        request_id = self.prober.next_id()
        payload = encode_request(V2C, settings.community, pdu_type, request_id, oids, 0, repetitions)
        sender = self.transport.transport
        assert sender is not None
        waiting = self.transport.waiting
        if self.target in waiting:
            raise self.fail("duplicate", f"another poll of {self.target[0]}:{self.target[1]} is running")
        loop = asyncio.get_running_loop()
        timeout = settings.timeout.total_seconds()
        try:
            for attempt in range(settings.retries + 1):
                future: asyncio.Future[Message] = loop.create_future()
                waiting[self.target] = (request_id, future)
                self.requests += 1
                if attempt:
                    self.resent += 1
                sent = time.monotonic_ns()
                try:
                    sender.sendto(payload, self.target)
                    async with asyncio.timeout(timeout):
                        message = await future
                except TimeoutError:
                    continue
                except MalformedReply as exc:
                    raise self.fail("malformed", f"malformed reply: {exc}") from None
                except OSError as exc:
                    raise self.fail("send", f"cannot send: {exc.strerror or exc}") from None
                now = time.monotonic_ns()
                if self.rtt_ms is None:
                    self.rtt_ms = (now - sent) / 1e6
                    self.first_reply_ns = now
                self.varbinds += len(message.varbinds)
                if message.error_status:
                    raise self.fail("error_status", error_text(message, oids))
                return message
        finally:
            waiting.pop(self.target, None)
        raise self.no_reply("agent down, filtered, or a wrong community")


def error_text(message: Message, oids: Sequence[bytes]) -> str:
    status = message.error_status
    word = ERROR_STATUS[status] if 0 <= status < len(ERROR_STATUS) else f"error {status}"
    where = ""
    if 1 <= message.error_index <= len(oids):
        where = f" at {format_oid(oids[message.error_index - 1])}"
    return f"the agent answered {word}{where}"
