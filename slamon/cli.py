"""The `slamon` command (FORMATS.md): wiring only. Exit codes: 0 success, 1 invalid input, 2 usage."""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, tzinfo
from itertools import chain, islice, repeat
from operator import add, attrgetter, floordiv, mod, truth
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from slamon import __version__
from slamon.clock import Clock, SystemClock
from slamon.errors import SlamonError
from slamon.loaders.config import Config, load_config, with_listen

if TYPE_CHECKING:  # the model, the fleet's loaders and asyncio load where a command needs them
    from slamon.billing.render.context import Context
    from slamon.issuing import Outcome
    from slamon.model import DeviceId, Exclusion, Fleet, ProbeResult
    from slamon.store import Store

# The store, history and billing modules (SQLAlchemy, numpy) are imported by the commands that use
# them: `probe --once` over 50,000 devices should cost about what fping does, start-up included.

logger = logging.getLogger("slamon")

FORMATS = ("json", "csv", "xlsx", "pdf", "text")


class UsageError(Exception):
    """The command line itself is wrong (exit 2)."""


def main(argv: Sequence[str] | None = None, clock: Clock | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args, clock or SystemClock()))
    except UsageError as exc:
        parser.error(str(exc))
    except SlamonError as exc:
        sys.stderr.write(f"slamon: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("slamon: interrupted\n")
        return 130
    except BrokenPipeError:  # e.g. `slamon statement --format text | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0  # pragma: no cover  (parser.error exits)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="slamon",
        description="Turn probe evidence from a leased camera fleet "
        "into SLA statements, correct to the cent.",
    )
    p.add_argument(
        "-c",
        "--config",
        default=os.environ.get("SLAMON_CONFIG", "slamon.yaml"),
        help="slamon.yaml (default: $SLAMON_CONFIG or ./slamon.yaml)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    p.add_argument("--version", action="version", version=f"slamon {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="validate config, inventory, contracts and exclusions")
    check.set_defaults(func=cmd_check)

    imp = sub.add_parser("import", help="import probe history (CSV, or CSV.gz) through the state engine")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="export stored probe results as probe-history CSV")
    exp.add_argument("what", choices=["probes"])
    exp.add_argument("--from", dest="start", required=True, help="date (YYYY-MM-DD) or ISO instant")
    exp.add_argument("--to", dest="end", required=True, help="date or ISO instant, exclusive")
    exp.add_argument("--timezone", help="zone for plain dates (default: the contracts' zone)")
    exp.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    exp.set_defaults(func=cmd_export)

    run = sub.add_parser("run", help="the service: probers, live state, /metrics and the API")
    run.add_argument("--pid-file", type=Path, help="write the process id here while running (for SIGHUP)")
    run.add_argument(
        "--shard",
        metavar="I/N",
        help="watch shard I (0-based) of N: devices joined by parent or site stay together (docs/deploy.md)",
    )
    run.add_argument("--listen", metavar="HOST:PORT", help="serve here instead of slamon.yaml's `listen`")
    run.set_defaults(func=cmd_run, probing=True)

    srv = sub.add_parser(
        "serve", help="the API and the store's jobs without probing (beside `run --shard` processes)"
    )
    srv.add_argument("--pid-file", type=Path, help="write the process id here while running (for SIGHUP)")
    srv.add_argument("--listen", metavar="HOST:PORT", help="serve here instead of slamon.yaml's `listen`")
    srv.set_defaults(func=cmd_run, probing=False, shard=None)

    probe = sub.add_parser("probe", help="one round of every probe, printed; nothing is stored")
    probe.add_argument("--once", action="store_true", required=True, help="one round (the only mode)")
    probe.add_argument("--json", action="store_true", help="one JSON object per line, for jq")
    probe.add_argument("--device", action="append", metavar="ID", help="only these devices (repeatable)")
    probe.set_defaults(func=cmd_probe)

    prune = sub.add_parser("prune", help="let raw probe results older than the retention go (rollups stay)")
    prune.add_argument("--before", help="date or ISO instant (default: now minus `retention` of slamon.yaml)")
    prune.set_defaults(func=cmd_prune)

    from slamon.cli_workflow import add_commands  # exclusions, token, audit (their own module)

    add_commands(sub)

    st = sub.add_parser(
        "statement",
        help="a contract's monthly SLA statement; or `statement verify FILE`",
        usage="slamon statement --contract ID --month YYYY-MM [--format F] [-o FILE]\n"
        "                        [--issue [--accept-low-coverage REASON] | --revision N]\n"
        "       slamon statement verify FILE",
    )
    st.add_argument(
        "verify", nargs="*", metavar="verify FILE", help="re-compute a statement file, compare its hash"
    )
    st.add_argument("--contract")
    st.add_argument("--month", help="YYYY-MM in the contract's time zone")
    st.add_argument(
        "--format", choices=FORMATS, default=None, help="json (default), csv, xlsx, pdf, or text for people"
    )
    st.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    st.add_argument("--issue", action="store_true", help="freeze this month's statement as issued")
    st.add_argument("--as", dest="actor", metavar="NAME", help="who issues, as the audit log records it")
    st.add_argument(
        "--accept-low-coverage",
        metavar="REASON",
        help="with --issue: issue a month whose coverage is below the contract's min_coverage; "
        "the reason and who gave it (--as NAME, else the login name) are kept with the statement",
    )
    st.add_argument("--revision", type=int, metavar="N", help="an issued revision exactly as it was stored")
    st.set_defaults(func=cmd_statement)

    dash = sub.add_parser("dashboards", help="slamon's Grafana dashboards (docs/dashboards.md)")
    dash_sub = dash.add_subparsers(dest="action", required=True, metavar="push")
    dash_push = dash_sub.add_parser(
        "push", help="create or replace them in a Grafana folder (grafana-client)"
    )
    dash_push.add_argument(
        "--url", help="Grafana's URL, e.g. https://grafana.example:3000 (default: $GRAFANA_URL)"
    )
    dash_push.add_argument(
        "--token-env",
        default="GRAFANA_TOKEN",
        metavar="NAME",
        help="environment variable holding a service account token, role Editor (default: GRAFANA_TOKEN)",
    )
    dash_push.add_argument(
        "--folder", default="slamon", metavar="UID", help="the folder's uid (default: slamon)"
    )
    dash_push.add_argument(
        "--folder-title",
        default="slamon",
        metavar="TITLE",
        help="its title, if it must be created (default: slamon)",
    )
    dash_push.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="push DIR/*.json (default: build them from this slamon)",
    )
    dash_push.set_defaults(func=cmd_dashboards_push)
    return p


# --- commands ---------------------------------------------------------------------------------


@contextmanager
def opened(args: argparse.Namespace, clock: Clock) -> Iterator[tuple[Config, Fleet, Store]]:
    """The config, the fleet it describes (validated; remembered by the store) and the store."""
    from slamon.loaders.fleet import load_fleet_cached
    from slamon.store import Store

    config = load_config(args.config)
    store = Store(config.database)
    try:
        yield config, load_fleet_cached(config, store, clock.now()), store
    finally:
        store.close()


def cmd_check(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.loaders.fleet import load_fleet
    from slamon.model import DeviceKind

    config = load_config(args.config)
    fleet = load_fleet(config)  # always the full parse and every check: this is what check is for
    devices = fleet.inventory.devices.values()
    kinds = ", ".join(_count(sum(d.kind is k for d in devices), k.value) for k in DeviceKind)
    out(
        f"ok: {config.path}: {_count(len(fleet.contracts), 'contract')}, {_count(len(fleet.inventory.sites), 'site')}, "
        f"{_count(len(devices), 'device')} ({kinds}), {_count(len(fleet.exclusions), 'exclusion')}\n"
    )
    return 0


def _count(n: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("ch") else "s")
    return f"{n:,} {noun if n == 1 else plural}"


def cmd_import(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.history import import_history

    with opened(args, clock) as (_config, fleet, store):
        for path in args.files:
            show = _progress(path) if sys.stderr.isatty() else None
            report = import_history(path, store, fleet, clock.now(), show)
            if show is not None:
                sys.stderr.write("\n")
            rate = report.rows / report.seconds if report.seconds else 0.0
            sys.stderr.write(
                f"{path}: {report.rows:,} rows ({report.added:,} new, {report.repeated:,} already stored) "
                f"in {report.seconds:.1f} s ({rate:,.0f} rows/s); "
                + (
                    f"{_count(report.devices, 'device')} with new results, {_count(report.outages, 'outage')} "
                    "on their timelines\n"
                    if report.devices
                    else "nothing new\n"
                )
            )
    return 0


def _progress(path: Path) -> Any:
    started = time.monotonic()

    def show(rows: int, position: int, size: int | None) -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        share = f", {100 * position / size:.0f}%" if size else ""
        sys.stderr.write(f"\r{path}: {rows:,} rows{share} ({rows / elapsed:,.0f} rows/s)  ")
        sys.stderr.flush()

    return show


def cmd_export(args: argparse.Namespace, clock: Clock) -> int:
    with opened(args, clock) as (_config, fleet, store):
        return _export(args, fleet, store)


def _export(args: argparse.Namespace, fleet: Fleet, store: Store) -> int:
    from slamon.history import export_history
    from slamon.model import to_micros

    zones = {cid: ZoneInfo(c.timezone) for cid, c in fleet.contracts.items()}
    default = args.timezone or (
        next(iter({c.timezone for c in fleet.contracts.values()}))
        if len({c.timezone for c in fleet.contracts.values()}) == 1
        else "UTC"
    )
    try:
        zone = ZoneInfo(default)
    except (ValueError, KeyError):
        raise UsageError(f"--timezone: unknown time zone {default!r}") from None
    start = _instant(args.start, "--from", zone)
    end = _instant(args.end, "--to", zone)
    if end <= start:
        raise UsageError("--to must be after --from")
    device_zones: dict[DeviceId, tzinfo] = {d.id: zones[d.contract] for d in fleet.inventory.devices.values()}
    with _output(args.output, binary=False) as stream:
        rows = export_history(store, to_micros(start), to_micros(end), stream, device_zones)
    sys.stderr.write(f"exported {rows:,} results\n")
    return 0


class StopRequested(BaseException):
    """SIGTERM or SIGINT while `slamon run` starts, before its event loop takes the signals over."""


@contextmanager
def _start_up_signals() -> Iterator[list[int]]:
    """SIGTERM and SIGINT raise StopRequested (nothing is open yet: stopping at once is clean), and
    a SIGHUP is noted in the list yielded, for the service to reload once it is up. `serve` takes
    the signals over on its event loop, and puts these handlers back when it ends."""
    hups: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        raise StopRequested(signum)

    def hup(signum: int, frame: FrameType | None) -> None:
        hups.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, hup)
    try:
        yield hups
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_run(args: argparse.Namespace, clock: Clock) -> int:
    if args.verbose == 0:
        logging.getLogger("slamon").setLevel(logging.INFO)
    written = False
    with _start_up_signals() as hups:  # from the first line: a stop while starting is clean too
        try:
            import asyncio

            from slamon.loaders.fleet import load_fleet_through_cache
            from slamon.service.serve import Role, serve  # the service's libraries load only for `run`
            from slamon.shards import Shard

            role = Role(Shard.parse(args.shard) if args.shard else None, probing=args.probing)
            config = load_config(args.config)
            if args.listen:
                config = with_listen(config, args.listen)
            if args.pid_file:  # from here on a SIGHUP or SIGTERM to this pid is taken
                args.pid_file.parent.mkdir(parents=True, exist_ok=True)
                written = True
                args.pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
            fleet = load_fleet_through_cache(config, clock.now())
            asyncio.run(serve(config, fleet, clock, role=role, reload_pending=lambda: bool(hups)))
        except StopRequested:
            logger.info("stopped while starting")
        finally:
            if written:
                args.pid_file.unlink(missing_ok=True)
    return 0


def cmd_probe(args: argparse.Namespace, clock: Clock) -> int:
    collecting = gc.isenabled()
    gc.disable()  # a short process whose 100,000s of objects all live to its end: nothing to collect
    atexit.unregister(gc.freeze)  # once, however often main() runs in one process
    atexit.register(gc.freeze)  # and at exit, no collector passes over what is about to go (0.03 CPU-s)
    try:
        return _probe(args, clock)
    finally:
        if collecting:
            gc.enable()


def _probe(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.loaders.fleet_cache import load_probe_view

    config = load_config(args.config)
    # the cache's probe section (no fleet decoded, no store imported), or the fleet on a miss
    view, fleet = load_probe_view(config, clock.now())
    if args.device:
        unknown = sorted(set(args.device) - set(view.ids))
        if unknown:
            raise UsageError(f"--device: not in the inventory: {', '.join(unknown)}")
    only = set(args.device or ())
    chosen = [i for i, d in enumerate(view.ids) if d in only] if only else range(len(view.ids))
    ids = view.ids if not only else [view.ids[i] for i in chosen]
    packed = view.ipv4
    if only and packed is not None:
        packed = b"".join(packed[4 * i : 4 * i + 4] for i in chosen)
    if packed is not None and view.others.isdisjoint(ids):  # ICMP over IPv4 alone: one plain round
        zones = list(chain.from_iterable(repeat(zone, k) for zone, k in view.zones))
        zones = zones if not only else [zones[i] for i in chosen]
        return _probe_icmp(args, config, clock, ids, packed, zones)
    import asyncio  # SNMP, or IPv6: the service's engines

    from slamon.loaders.fleet import load_fleet_through_cache

    if fleet is None:
        fleet = load_fleet_through_cache(config, clock.now())
    results = asyncio.run(_probe_once(config, fleet, clock, only))
    if args.json:
        zone_by = {cid: ZoneInfo(c.timezone) for cid, c in fleet.contracts.items()}
        if len(set(zone_by.values())) == 1:
            zone_of = dict.fromkeys(fleet.inventory.devices, next(iter(zone_by.values())))
        else:
            zone_of = {d.id: zone_by[d.contract] for d in fleet.inventory.devices.values()}
        lines = probe_json_lines(results, zone_of)
    else:
        lines = [_probe_text(r) for r in results]
    _probe_out(args, lines, len(results), sum(not r.ok for r in results))
    return 0


def _probe_out(args: argparse.Namespace, lines: list[str], results: int, failed: int) -> None:
    for at in range(0, len(lines), LINES):
        out("".join(lines[at : at + LINES]))
    if not args.json:
        sys.stderr.write(f"{_count(results, 'result')}: {results - failed} ok, {failed} failed\n")


def _probe_icmp(
    args: argparse.Namespace,
    config: Config,
    clock: Clock,
    ids: list[str],
    packed: bytes,
    zones: list[str],
) -> int:
    """One ICMP round over IPv4 devices without numpy or asyncio (slamon/icmp/once.py), printed as
    the service's engines' results would be."""
    from slamon.icmp.once import OneRound

    icmp = config.probes.icmp
    with OneRound(
        timeout_ns=int(icmp.timeout.total_seconds() * 1e9), count=icmp.count, rate=icmp.rate
    ) as sock:
        at = clock.now()
        outcome = sock.run(packed)
    if args.json:
        when = {zone: at.astimezone(ZoneInfo(zone)).isoformat() for zone in set(zones)}
        times = list(map(when.__getitem__, zones))
        for chunk in icmp_json_lines(
            ids, times, outcome.received, outcome.rtt_ns, icmp.count, outcome.cut_from, outcome.refused
        ):
            out(chunk)
        return 0
    errors = icmp_errors(outcome.received, outcome.cut_from, outcome.refused)
    results = icmp_results(ids, at, outcome.received, outcome.rtt_ns, icmp.count, errors)
    _probe_out(args, [_probe_text(r) for r in results], len(results), len(ids) - errors.count(None))
    return 0


def icmp_errors(received: Sequence[int], cut_from: int, refused: str) -> list[str | None]:
    """Each device's error: none when an echo came back, else why not."""
    from slamon.icmp.sockets import NO_REPLY

    errors: list[str | None] = [None if r else NO_REPLY for r in received]
    for i in range(cut_from, len(errors)):
        if errors[i] is not None:
            errors[i] = refused
    return errors


def icmp_results(
    ids: list[str],
    at: datetime,
    received: Sequence[int],
    rtt_ns: Sequence[int],
    count: int,
    errors: list[str | None],
) -> list[ProbeResult]:
    """The ProbeResults of a plain ICMP round, as icmp.py builds them."""
    from slamon.model import DeviceId, ProbeKind, ProbeResult

    return [
        ProbeResult(
            DeviceId(d), ProbeKind.ICMP, at, r > 0, rtt / r / 1e6 if r else None, 1 - r / count, error=e
        )
        for d, r, rtt, e in zip(ids, received, rtt_ns, errors, strict=True)
    ]


def icmp_json_lines(
    ids: list[str],
    times: list[str],
    received: Sequence[int],
    rtt_ns: Sequence[int],
    count: int,
    cut_from: int,
    refused: str,
) -> Iterator[str]:
    """ "".join(probe_json_lines(icmp_results(...), zones)) of a plain ICMP round, in pieces of
    LINES lines (`times`: each device's round start in its contract's zone): the same bytes,
    joined from columns of shared pieces (what the results of a round have in common) and each
    device's id and RTT."""
    from slamon.icmp.sockets import NO_REPLY

    text = json.encoder.encode_basestring
    if _written_as_they_are(ids):  # (the inventory's ids are)
        opening, quote, quoted = '{"device": "', '"', ids
    else:
        opening, quote, quoted = '{"device": ', "", list(map(text, ids))

    def head(t: str, ok: bool) -> str:
        return f'{quote}, "probe": "icmp", "time": {text(t)}, "ok": {"true" if ok else "false"}, "rtt_ms": '

    def tail(r: int, error: str | None) -> str:
        error_text = "null" if error is None else text(error)
        return f', "loss": {1 - r / count!r}, "defects": [], "error": {error_text}, "detail": {{}}}}\n'

    tails_of = {r: tail(r, None if r else NO_REPLY) for r in range(count + 1)}
    cut_tails_of = {r: tail(r, None if r else refused) for r in range(count + 1)}
    zones = set(times)
    if len(zones) == 1 and count == 1 and quote:  # the usual round: two pieces a line
        ok, failed = head(times[0], True), head(times[0], False)
        after = (ok, tails_of[1], failed + "null" + tails_of[0], failed + "null" + cut_tails_of[0])
        yield from _one_echo_lines(ids, received, rtt_ns, cut_from, opening, after)
        return
    heads: Iterable[str]
    if len(zones) == 1:
        by_received = {r: head(times[0], r > 0) for r in range(count + 1)}
        heads = map(by_received.__getitem__, received)
    else:
        by_zone = {(t, ok): head(t, ok) for t in zones for ok in (False, True)}
        heads = map(by_zone.__getitem__, zip(times, map(truth, received), strict=True))
    tails = chain(
        map(tails_of.__getitem__, islice(received, cut_from)),
        map(cut_tails_of.__getitem__, islice(received, cut_from, None)),
    )
    pieces = chain.from_iterable(
        zip(repeat(opening), quoted, heads, _rtt_texts(received, rtt_ns), tails, strict=False)  # repeat()
    )
    while chunk := "".join(islice(pieces, 5 * LINES)):
        yield chunk


LINES = 4096  # lines printed at a time
_ESCAPED = bytes(range(0x20)) + b'"\\'  # what json.dumps(ensure_ascii=False) escapes in a text


def _written_as_they_are(texts: list[str]) -> bool:
    """Whether json.dumps(ensure_ascii=False) writes each text as it is, between quotes."""
    joined = "".join(texts)
    if not joined.isascii():
        return json.encoder.ESCAPE.search(joined) is None
    data = joined.encode("ascii")
    return len(data.translate(None, _ESCAPED)) == len(data)


def _one_echo_lines(
    ids: list[str],
    received: Sequence[int],
    rtt_ns: Sequence[int],
    cut_from: int,
    opening: str,
    after: tuple[str, str, str, str],
) -> Iterator[str]:
    """icmp_json_lines of a round of one echo per device in one time zone: each id, then one text
    for the rest of its line and the next line's opening, shared by every device with the same
    RTT to the microsecond (_rtt_texts says why that spells the RTT) or none. `after`: the head of
    an answered line, its tail, and the rest of a line without reply and of one refused."""
    ok, ok_tail, lost, refused = after
    n = len(ids)
    keys = list(map(floordiv, map(add, rtt_ns, repeat(500)), repeat(1000)))  # µs, -1 lost, -2 refused
    if not all(received):
        for i in range(n):
            if not received[i]:
                keys[i] = -2 if i >= cut_from else -1
    rest = {q: ok + repr(q / 1000) + ok_tail + opening for q in set(keys)}
    rest[-1], rest[-2] = lost + opening, refused + opening
    texts = list(map(rest.__getitem__, keys))
    if 500 in map(mod, rtt_ns, repeat(1000)):  # ties: round() itself
        for i in range(n):
            if received[i] and rtt_ns[i] % 1000 == 500:
                texts[i] = ok + repr(round(rtt_ns[i] / 1e6, 3)) + ok_tail + opening
    for at in range(0, n, LINES):
        end = min(at + LINES, n)
        chunk = "".join(chain.from_iterable(zip(ids[at:end], texts[at:end], strict=True)))
        yield (opening if at == 0 else "") + (chunk[: -len(opening)] if end == n else chunk)


def _rtt_texts(received: Sequence[int], rtt_ns: Sequence[int]) -> list[str]:
    """repr(round(rtt_ns / received / 1e6, 3)) of each device, "null" where nothing came back.
    One echo's RTT is whole nanoseconds: rounded to the microsecond (q µs) it is the float q / 1000
    (round() gives the float nearest that decimal; q / 1000 is that float), unless the nanoseconds
    end in 500, a tie that round() settles by the float's binary value: those, and the means of
    several echoes, go through round() itself. The text of each distinct q is made once."""
    n = len(rtt_ns)
    if max(received, default=0) > 1:
        return [repr(round(t / r / 1e6, 3)) if r else "null" for r, t in zip(received, rtt_ns, strict=True)]
    micros = list(map(floordiv, map(add, rtt_ns, repeat(500)), repeat(1000)))
    spelled = {q: repr(q / 1000) for q in set(micros)}
    texts = list(map(spelled.__getitem__, micros))
    if 500 in map(mod, rtt_ns, repeat(1000)):
        for i in range(n):
            if rtt_ns[i] % 1000 == 500:
                texts[i] = repr(round(rtt_ns[i] / 1e6, 3))
    if not all(received):
        for i in range(n):
            if not received[i]:
                texts[i] = "null"
    return texts


def _probe_text(r: ProbeResult) -> str:
    rtt = "" if r.rtt_ms is None else f"{r.rtt_ms:.2f} ms"
    loss = "" if r.loss is None else f"loss {r.loss:.0%}"
    what = "ok" if r.ok else f"FAIL {r.error or ''}".strip()
    extra = ",".join(sorted(d.value for d in r.defects)) or _ports_text(r.detail)
    return f"{r.device:<16} {r.kind.value:<5} {what:<24} {rtt:>10} {loss:>9} {extra}\n"


def _ports_text(detail: Mapping[str, object]) -> str:
    """An SNMP result in a line: ports up of ports, ports with a PoE fault, and a reboot."""
    ports = detail.get("ports")
    if not isinstance(ports, dict):
        return ""
    up = sum(1 for p in ports.values() if p.get("oper") == "up")
    text = f"{up}/{len(ports)} ports up"
    faults = [name for name, p in ports.items() if p.get("poe") in ("fault", "otherFault")]
    if faults:
        text += f", PoE fault on {', '.join(faults)}"
    if "reboot" in detail:
        text += ", rebooted"
    return text


async def _probe_once(config: Config, fleet: Fleet, clock: Clock, only: set[str]) -> list[ProbeResult]:
    from slamon.probers import build_probers, devices_for

    chosen = (
        [d for d in fleet.inventory.devices.values() if d.id in only]
        if only
        else fleet.inventory.devices.values()
    )
    # IPv6 is checked only when one of them needs it; every camera with a stream is sampled once
    probers = build_probers(config, clock, chosen, once=True)
    reach = config.probes.snmp.reachability
    results: list[ProbeResult] = []
    try:
        for kind, prober in probers.items():
            devices = (
                [d for d in devices_for(fleet, kind, reach) if d.id in only]
                if only
                else devices_for(fleet, kind, reach)
            )
            async for batch in prober.round(devices):
                results += batch
    finally:
        for prober in probers.values():
            await prober.aclose()
    results.sort(key=attrgetter("kind"))  # stable: by device, then by probe
    results.sort(key=attrgetter("device"))
    return results


def probe_json(r: ProbeResult, zone: tzinfo) -> dict[str, Any]:
    """One result as `probe --once --json` prints it (FORMATS.md)."""
    return {
        "device": r.device,
        "probe": r.kind.value,
        "time": r.time.astimezone(zone).isoformat(),
        "ok": r.ok,
        "rtt_ms": None if r.rtt_ms is None else round(r.rtt_ms, 3),
        "loss": r.loss,
        "defects": sorted(d.value for d in r.defects),
        "error": r.error,
        "detail": dict(r.detail),
    }


def probe_json_lines(results: Iterable[ProbeResult], zone_of: Mapping[DeviceId, tzinfo]) -> list[str]:
    """`json.dumps(probe_json(r, zone_of[r.device]), ensure_ascii=False)` of each result, and a
    newline: the same bytes, built from what a round's results share (probe, time, error), because
    json.dumps of 50,000 dicts costs about half of what fping spends pinging them. Results with
    defects or details, or numbers JSON would spell differently, go through json.dumps itself."""
    text = json.encoder.encode_basestring  # json.dumps(str, ensure_ascii=False)
    inf = math.inf
    tails: dict[str | None, str] = {}
    shared: tuple[object, object, object] = (None, None, None)  # (kind, time, zone) of the heads
    head_ok = head_failed = ""
    lines: list[str] = []
    for r in results:
        rtt, loss, zone = r.rtt_ms, r.loss, zone_of[r.device]
        # a float's repr is its JSON when finite (nan fails both comparisons)
        if (
            r.defects
            or r.detail
            or not (rtt is None or (type(rtt) is float and -inf < rtt < inf))
            or not (loss is None or (type(loss) is float and -inf < loss < inf))
        ):
            lines.append(json.dumps(probe_json(r, zone), ensure_ascii=False) + "\n")
            continue
        if shared[0] is not r.kind or shared[1] is not r.time or shared[2] is not zone:
            shared = (r.kind, r.time, zone)
            when = r.time.astimezone(zone).isoformat()
            head = f', "probe": {text(r.kind.value)}, "time": {text(when)}, "ok": '
            head_ok, head_failed = head + 'true, "rtt_ms": ', head + 'false, "rtt_ms": '
        tail = tails.get(r.error)
        if tail is None:
            error = "null" if r.error is None else text(r.error)
            tail = tails[r.error] = f', "defects": [], "error": {error}, "detail": {{}}}}\n'
        lines.append(
            f'{{"device": {text(r.device)}{head_ok if r.ok else head_failed}'
            f'{"null" if rtt is None else repr(round(rtt, 3))}, "loss": {"null" if loss is None else repr(loss)}{tail}'
        )
    return lines


def cmd_prune(args: argparse.Namespace, clock: Clock) -> int:
    from slamon.model import to_micros
    from slamon.store.upkeep import let_go_before, sync_fleet

    now = clock.now()
    with opened(args, clock) as (config, fleet, store):
        zones = {c.timezone for c in fleet.contracts.values()}
        zone = ZoneInfo(zones.pop()) if len(zones) == 1 else ZoneInfo("UTC")
        cutoff = _instant(args.before, "--before", zone) if args.before else now - config.retention
        with store.begin() as tx:
            sync_fleet(tx, fleet, to_micros(now))
            report = let_go_before(tx, fleet.inventory, fleet.contracts, to_micros(cutoff), to_micros(now))
    sys.stderr.write(
        f"let go of {report.blocks:,} hourly blocks of raw results of {_count(report.devices, 'device')} "
        f"before {cutoff.isoformat(timespec='seconds')}; rollups, timelines and outages stay\n"
    )
    return 0


def _instant(text: str, flag: str, zone: tzinfo) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), zone)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a date (YYYY-MM-DD) or an ISO instant") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def cmd_statement(args: argparse.Namespace, clock: Clock) -> int:
    if args.verify:
        if (
            len(args.verify) != 2
            or args.verify[0] != "verify"
            or args.contract
            or args.month
            or args.issue
            or args.revision is not None
            or args.accept_low_coverage is not None
        ):
            raise UsageError("use `statement verify FILE`, or `statement --contract ID --month YYYY-MM`")
        return _verify(args, Path(args.verify[1]), clock)
    if not args.contract or not args.month:
        raise UsageError("statement needs --contract and --month (or: statement verify FILE)")
    if args.revision is not None and (args.issue or args.accept_low_coverage is not None):
        raise UsageError(
            "--revision N prints an issued revision: it takes neither --issue nor --accept-low-coverage"
        )
    if args.revision is not None and args.revision < 1:
        raise UsageError(f"--revision: {args.revision} is not a revision (1, 2, …)")
    if args.accept_low_coverage is not None and not args.issue:
        raise UsageError("--accept-low-coverage goes with --issue")
    if args.accept_low_coverage is not None and not args.accept_low_coverage.strip():
        raise UsageError("--accept-low-coverage: give the reason (it is kept with the statement)")
    from slamon.issuing import Override, issued_revision, statement
    from slamon.model import to_micros
    from slamon.store.upkeep import sync_fleet

    fmt = args.format or _format_from(args.output)
    if fmt in ("xlsx", "pdf") and args.output is None and sys.stdout.isatty():
        raise UsageError(f"--format {fmt} is binary: write it to a file with -o FILE")
    if fmt == "pdf":
        from slamon.billing.render.fonts import cjk_fonts

        cjk_fonts()  # before anything is computed or written: no CJK font names the package to install
    with opened(args, clock) as (_config, fleet, store):
        with store.begin() as tx:
            sync_fleet(tx, fleet, to_micros(clock.now()))
            exclusions = tx.versions.exclusions() if fmt == "pdf" or args.issue else ()
        if args.revision is not None:
            outcome = issued_revision(store, args.contract, args.month, args.revision)
        else:
            override = None
            if args.accept_low_coverage is not None:
                override = Override(args.accept_low_coverage.strip(), _issuer(args))
            outcome = statement(
                store,
                args.contract,
                args.month,
                issue=args.issue,
                now=clock.now(),
                override=override,
                context=lambda doc: _labels(doc, fleet, args.contract, exclusions),
                by=_issuer(args),
            )
    with _output(args.output, binary=fmt in ("xlsx", "pdf")) as stream:
        if fmt == "csv":
            from slamon.billing.render.csv import render_csv

            render_csv(outcome.document, stream)
        elif fmt == "text":
            from slamon.billing.render.text import render_text

            render_text(outcome.document, stream, _context(outcome, fleet, args.contract, exclusions))
        elif fmt == "xlsx":
            from slamon.billing.render.xlsx import render_xlsx  # loaded only when asked for

            render_xlsx(outcome.document, stream)
        elif fmt == "pdf":
            from slamon.billing.render.pdf import render_pdf

            render_pdf(outcome.document, stream, _context(outcome, fleet, args.contract, exclusions))
        elif outcome.text is not None:  # an issued statement: the JSON as stored, byte for byte
            stream.write(outcome.text + "\n")
        else:
            stream.write(json.dumps(outcome.document, ensure_ascii=False, indent=2) + "\n")
    if outcome.note:
        sys.stderr.write(f"{outcome.note}\n")
    return 0


def _context(outcome: Outcome, fleet: Fleet, contract: str, exclusions: Sequence[Exclusion]) -> Context:
    """The buyer, the KPI targets, the site names and the exclusions' scopes a rendered statement
    prints (render/context.py)."""
    from slamon.billing.render.context import Context
    from slamon.model import ContractId

    terms = fleet.contracts.get(ContractId(contract))
    return Context.for_statement(outcome.context, terms, fleet.inventory, lambda: exclusions)


def _labels(doc: Mapping[str, Any], fleet: Fleet, contract: str, exclusions: Sequence[Exclusion]) -> str:
    """What an issued statement's PDF prints beside its figures (render/context.py), kept with it as
    canonical JSON: the contract, the sites of its devices, the exclusions it lists."""
    from slamon.canonical import canonical_json, contract_to_dict, exclusion_to_dict, site_to_dict
    from slamon.model import ContractId

    terms = fleet.contracts.get(ContractId(contract))
    sites = sorted({d["site"] for d in doc["devices"]} & set(fleet.inventory.sites))
    listed = {e["id"] for e in doc["exclusions"]}
    labels = {
        "contract": None if terms is None else contract_to_dict(terms),
        "sites": [site_to_dict(fleet.inventory.sites[s]) for s in sites],
        "exclusions": [exclusion_to_dict(e) for e in exclusions if e.id in listed],
    }
    return canonical_json(labels).decode("utf-8")


def _issuer(args: argparse.Namespace) -> str:
    """Who issues, as the audit log records it: `--as NAME`, else the login name."""
    from slamon.access import cli_actor

    return cli_actor(args.actor).name


def _verify(args: argparse.Namespace, path: Path, clock: Clock) -> int:
    from slamon.issuing import verify
    from slamon.model import to_micros
    from slamon.store.upkeep import sync_fleet

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlamonError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SlamonError(f"{path}: not a statement JSON file ({exc})") from None
    if not isinstance(doc, dict):
        raise SlamonError(f"{path}: not a statement JSON file")
    with opened(args, clock) as (_config, fleet, store):
        with store.begin() as tx:
            sync_fleet(tx, fleet, to_micros(clock.now()))
        verdict = verify(store, doc)
    (sys.stdout if verdict.ok else sys.stderr).write("".join(f"{line}\n" for line in verdict.lines))
    return 0 if verdict.ok else 1


def _format_from(path: Path | None) -> str:
    if path is not None and path.suffix.lstrip(".") in FORMATS:
        return path.suffix.lstrip(".")
    return "json"


class _output:
    """A file, or standard output when no path is given."""

    def __init__(self, path: Path | None, *, binary: bool) -> None:
        self.path, self.binary = path, binary
        self.stream: IO[Any] | None = None

    def __enter__(self) -> IO[Any]:
        if self.path is None:
            return sys.stdout.buffer if self.binary else sys.stdout
        if self.binary:
            self.stream = self.path.open("wb")
        else:
            self.stream = self.path.open("w", encoding="utf-8", newline="")
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self.stream is not None:
            self.stream.close()


def cmd_dashboards_push(args: argparse.Namespace, clock: Clock) -> int:
    """Create or replace slamon's Grafana dashboards in a folder (docs/dashboards.md)."""
    from slamon.dashboards import push_command

    urls = push_command(args.url, args.token_env, args.folder, args.folder_title, args.from_dir)
    out("".join(f"{url}\n" for url in urls))
    sys.stderr.write(f"{_count(len(urls), 'dashboard')} pushed to folder {args.folder}\n")
    return 0


def out(text: str) -> None:
    sys.stdout.write(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
