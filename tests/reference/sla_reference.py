"""Independent reference implementation of SLA.md (test oracle).

Deliberately simple: every figure is derived by an elementary-interval sweep.
All instants are integer microseconds since the Unix epoch (UTC); all money is
exact (Fraction), rounded half up to 0.01 per line.

It does not import slamon and shares no code with it.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

US = 1_000_000  # microseconds per second
NEG_INF = -(1 << 62)
POS_INF = 1 << 62
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_SLA: dict[str, Any] = {
    "down_after": 3,
    "up_after": 2,
    "degrade_after": 2,
    "stale_after": "5m",
    "unknown_counts_as": "up",
    "upstream_counts": False,
    "upstream_grace": "5m",
    "fleet_kinds": ["camera"],
}

UP, DOWN, DEGRADED, UNKNOWN = "up", "down", "degraded", "unknown"
GAP, GAP_EXCLUDED = "(gap)", "(gap, excluded)"  # an outage's unknown seconds (SLA.md §3): no cause


# --------------------------------------------------------------------------- basics

_DUR_UNITS = {"ms": 1_000, "s": US, "m": 60 * US, "h": 3600 * US, "d": 86400 * US}


def parse_duration(v: Any) -> int:
    """'500ms', '30s', '15m', '4h', '1d' (or concatenations like '1h30m'); a bare number is seconds."""
    if isinstance(v, bool):
        raise TypeError(v)
    if isinstance(v, int):
        return v * US
    if isinstance(v, float):
        return int(Fraction(str(v)) * US)
    s = str(v).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"bad duration {v!r}")
    total = Fraction(0)
    for n, u in parts:
        total += Fraction(n) * _DUR_UNITS[u]
    assert total.denominator == 1
    return int(total)


def dt_to_us(dt: datetime) -> int:
    assert dt.tzinfo is not None
    return (dt - EPOCH) // timedelta(microseconds=1)


def us_to_iso(us: int | None, tz: ZoneInfo) -> str | None:
    if us is None:
        return None
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz).isoformat()


def parse_instant(v: Any, tz: ZoneInfo) -> int:
    """A date (midnight in tz), an aware datetime, a naive datetime (local to tz) or an ISO string."""
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=tz)
        return dt_to_us(v)
    if isinstance(v, date):
        return dt_to_us(datetime(v.year, v.month, v.day, tzinfo=tz))
    s = str(v).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        d = date.fromisoformat(s)
        return dt_to_us(datetime(d.year, d.month, d.day, tzinfo=tz))
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt_to_us(dt)


def month_bounds(month: str, tz: ZoneInfo) -> tuple[int, int]:
    y, m = (int(x) for x in month.split("-"))
    ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
    return (
        dt_to_us(datetime(y, m, 1, tzinfo=tz)),
        dt_to_us(datetime(ny, nm, 1, tzinfo=tz)),
    )


def frac(v: Any) -> Fraction:
    """Exact value of a decimal given as a string, int or (YAML) float."""
    if isinstance(v, Fraction):
        return v
    if isinstance(v, bool):
        raise TypeError(v)
    if isinstance(v, int):
        return Fraction(v)
    return Fraction(str(v).strip())


def round_money(x: Fraction) -> Fraction:
    """Round half up (away from zero) to 0.01, exactly."""
    if x < 0:
        return -round_money(-x)
    return Fraction(math.floor(x * 100 + Fraction(1, 2)), 100)


def money_str(x: Fraction) -> str:
    cents = x * 100
    assert cents.denominator == 1, x
    c = int(cents)
    sign = "-" if c < 0 else ""
    c = abs(c)
    return f"{sign}{c // 100}.{c % 100:02d}"


def secs(us: int) -> int | Fraction:
    f = Fraction(us, US)
    return int(f) if f.denominator == 1 else f


def overlap(a: int, b: int, c: int, d: int) -> int:
    return max(0, min(b, d) - max(a, c))


# --------------------------------------------------------------------------- inputs


@dataclass
class Site:
    id: str
    area: str | None


@dataclass
class Device:
    id: str
    kind: str
    site: str
    contract: str
    parent: str | None
    channels: int
    in_service: int  # NEG_INF when absent
    out_of_service: int  # POS_INF when absent


@dataclass
class Contract:
    id: str
    tz: ZoneInfo
    fees: dict[str, Fraction]
    prorate: bool
    down_after: int
    up_after: int
    degrade_after: int
    stale_after: int
    unknown_counts_as: str
    upstream_counts: bool
    upstream_grace: int
    tiers: list[tuple[Fraction, Fraction]]
    repair_deadline: dict[str, int]
    per_started_hour: Fraction | None
    max_per_incident: Fraction | None
    fleet_kinds: list[str]
    kpis: dict[str, Kpi]
    cap: Fraction | None
    honoured: set[str]
    card: ScoreCard | None = None


@dataclass
class Kpi:
    """A fleet KPI: the flat share once below target, and/or a share per percentage point below."""

    target: Fraction
    flat: Fraction | None
    per_point: Fraction | None = None  # share of the fee total per point
    whole_points: bool = False  # count only whole points (else every started one)
    per_point_max: Fraction | None = None


@dataclass
class ScoreCard:
    """100 points less the points lost per cause; the band the score reaches sets the share paid."""

    bands: list[tuple[Fraction, Fraction]]  # (lowest score of the band, share of the fee paid)
    fault_over: int | None = None  # µs of fault time a channel may have in a month
    fault_points: Fraction = Fraction(0)
    fault_with_degraded: bool = False
    overrun_points: Fraction | None = None
    missed_points: Fraction | None = None


@dataclass
class Exclusion:
    id: str
    category: str
    devices: set[str]
    sites: set[str]
    contracts: set[str]
    start: int
    end: int
    status: str

    def covers(self, d: Device) -> bool:
        return d.id in self.devices or d.site in self.sites or d.contract in self.contracts


def load_contract(path: Path) -> Contract:
    return contract_from_raw(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def contract_from_raw(raw: dict[str, Any]) -> Contract:
    sla = dict(DEFAULT_SLA)
    sla.update(raw.get("sla") or {})
    tz = ZoneInfo(raw.get("timezone") or DEFAULT_TZ)
    overrun = sla.get("repair_overrun") or {}
    mpi = overrun.get("max_per_incident")
    psh = overrun.get("per_started_hour")
    kpis = {}
    for name, k in (sla.get("fleet_kpis") or {}).items():
        pp = k.get("per_point")
        kpis[name] = Kpi(
            target=frac(k["target"]),
            flat=None if k.get("deduct") is None else frac(k["deduct"]),
            per_point=None if pp is None else frac(pp["deduct"]),  # "1/45" reads exactly
            whole_points=pp is not None and pp.get("points", "started") == "whole",
            per_point_max=None if pp is None or pp.get("max") is None else frac(pp["max"]),
        )
    card = None
    if sla.get("score_card") is not None:
        sc = sla["score_card"]
        card = ScoreCard(bands=[(frac(b["at_least"]), frac(b["pay"])) for b in sc["pay"]])
        if sc.get("fault_hours") is not None:
            card.fault_over = parse_duration(sc["fault_hours"]["over"])
            card.fault_points = frac(sc["fault_hours"]["points"])
            card.fault_with_degraded = sc["fault_hours"].get("time", "down") == "down_or_degraded"
        if sc.get("repair_overrun") is not None:
            card.overrun_points = frac(sc["repair_overrun"]["points"])
        if sc.get("missed_inspection") is not None:
            card.missed_points = frac(sc["missed_inspection"]["points"])
    return Contract(
        id=str(raw["id"]),
        tz=tz,
        fees={str(k): frac(v) for k, v in (raw.get("fees") or {}).items()},
        prorate=bool(raw.get("prorate", True)),
        down_after=int(sla["down_after"]),
        up_after=int(sla["up_after"]),
        degrade_after=int(sla["degrade_after"]),
        stale_after=parse_duration(sla["stale_after"]),
        unknown_counts_as=str(sla["unknown_counts_as"]),
        upstream_counts=bool(sla["upstream_counts"]),
        upstream_grace=parse_duration(sla["upstream_grace"]),
        tiers=[(frac(t["below"]), frac(t["deduct"])) for t in (sla.get("availability_tiers") or [])],
        repair_deadline={str(k): parse_duration(v) for k, v in (sla.get("repair_deadline") or {}).items()},
        per_started_hour=None if psh is None else frac(psh),
        max_per_incident=None if mpi is None else frac(mpi),
        fleet_kinds=[str(k) for k in sla["fleet_kinds"]],
        kpis=kpis,
        cap=None if sla.get("cap") is None else frac(sla["cap"]),
        honoured={str(c) for c in (sla.get("exclusions") or raw.get("exclusions") or [])},
        card=card,
    )


def load_inventory(path: Path, contracts: dict[str, Contract]) -> tuple[dict[str, Site], dict[str, Device]]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    sites = {str(s["id"]): Site(str(s["id"]), s.get("area")) for s in raw.get("sites") or []}
    devices: dict[str, Device] = {}
    for d in raw["devices"]:
        cid = str(d["contract"])
        tz = contracts[cid].tz if cid in contracts else ZoneInfo(DEFAULT_TZ)
        devices[str(d["id"])] = Device(
            id=str(d["id"]),
            kind=str(d["kind"]),
            site=str(d["site"]),
            contract=cid,
            parent=None if d.get("parent") in (None, "") else str(d["parent"]),
            channels=int(d.get("channels") or 1),
            in_service=NEG_INF if d.get("in_service") in (None, "") else parse_instant(d["in_service"], tz),
            out_of_service=POS_INF
            if d.get("out_of_service") in (None, "")
            else parse_instant(d["out_of_service"], tz),
        )
    return sites, devices


def load_missed_inspections(path: Path | None) -> list[tuple[str, str, str]]:
    """(contract, date as YYYY-MM-DD, id) of each missed inspection in the inspections file."""
    if path is None:
        return []
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    return [(str(i["contract"]), str(i["date"]), str(i["id"])) for i in raw]


def load_exclusions(path: Path | None, tz: ZoneInfo) -> list[Exclusion]:
    if path is None:
        return []
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    out = []
    for e in raw:
        scope = e.get("scope") or {}
        out.append(
            Exclusion(
                id=str(e["id"]),
                category=str(e["category"]),
                devices={str(x) for x in scope.get("devices") or []},
                sites={str(x) for x in scope.get("sites") or []},
                contracts={str(x) for x in scope.get("contracts") or []},
                start=parse_instant(e["start"], tz),
                end=parse_instant(e["end"], tz),
                status=str(e.get("status", "proposed")),
            )
        )
    return out


def load_history(paths: list[Path]) -> dict[str, dict[str, list[tuple[int, int, bool]]]]:
    """device -> {'reach': [(t, tiebreak, ok)], 'video': [(t, 0, ok)]} sorted."""
    seen: set[tuple[str, int, str]] = set()
    out: dict[str, dict[str, list[tuple[int, int, bool]]]] = {}
    for p in paths:
        with open(p, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                dev = row["device"].strip()
                t = parse_instant(row["time"], ZoneInfo("UTC"))
                probe = row["probe"].strip()
                key = (dev, t, probe)
                if key in seen:  # importing the same row twice changes nothing
                    continue
                seen.add(key)
                ok = row["ok"].strip() in ("1", "true", "True")
                slot = out.setdefault(dev, {"reach": [], "video": []})
                if probe == "video":
                    slot["video"].append((t, 0, ok))
                else:
                    slot["reach"].append((t, 0 if probe == "icmp" else 1, ok))
    for slot in out.values():
        slot["reach"].sort()
        slot["video"].sort()
    return out


# --------------------------------------------------------------------------- state engine


def machine(
    results: list[bool], start_state: bool, to_true_after: int, to_false_after: int, true_on: bool
) -> list[bool]:
    """Generic run machine. State is a boolean `flag` (True = down / degraded).

    Runs are maximal runs of equal results. A run of `true_on` results of length >= to_true_after
    while flag is False sets flag True for the whole run (from its first result); a run of the other
    result of length >= to_false_after while flag is True sets it False for the whole run.
    """
    out: list[bool] = []
    flag = start_state
    i = 0
    n = len(results)
    while i < n:
        j = i
        while j < n and results[j] == results[i]:
            j += 1
        length = j - i
        if results[i] == true_on and not flag and length >= to_true_after:
            flag = True
        elif results[i] != true_on and flag and length >= to_false_after:
            flag = False
        out.extend([flag] * length)
        i = j
    return out


class Timeline:
    """The global (all-months) state timeline of one device, evaluated directly from results."""

    def __init__(
        self, reach: list[tuple[int, int, bool]], video: list[tuple[int, int, bool]], c: Contract
    ) -> None:
        self.stale = c.stale_after
        self.rt = [t for t, _, _ in reach]
        self.rok = [ok for _, _, ok in reach]
        self.rdown = machine(self.rok, False, c.down_after, c.up_after, true_on=False)
        self.vt = [t for t, _, _ in video]
        self.vok = [ok for _, _, ok in video]
        vdefective = [not ok for _, _, ok in video]
        # degraded from the first of a run of >= degrade_after defective samples, until the first
        # non-defective sample (a single good sample ends it: to_false_after = 1).
        self.vdeg = machine(vdefective, False, c.degrade_after, 1, true_on=True)
        self.t_last = self.rt[-1] if self.rt else None
        self._build_segments()

    def reach_at(self, t: int) -> str:
        i = bisect_right(self.rt, t) - 1
        if i < 0:
            return UNKNOWN
        if t >= self.rt[i] + self.stale:
            return UNKNOWN
        return DOWN if self.rdown[i] else UP

    def degraded_at(self, t: int) -> bool:
        j = bisect_right(self.vt, t) - 1
        return False if j < 0 else self.vdeg[j]

    def state_at(self, t: int) -> str:
        r = self.reach_at(t)
        if r in (UNKNOWN, DOWN):
            return r
        return DEGRADED if self.degraded_at(t) else UP

    def _build_segments(self) -> None:
        pts = set(self.rt) | {t + self.stale for t in self.rt} | set(self.vt)
        bps = [NEG_INF, *sorted(pts), POS_INF]
        segs: list[list[Any]] = []
        for a, b in itertools.pairwise(bps):
            if a >= b:
                continue
            s = self.state_at(a)
            if segs and segs[-1][2] == s and segs[-1][1] == a:
                segs[-1][1] = b
            else:
                segs.append([a, b, s])
        self.segments = [(a, b, s) for a, b, s in segs]
        self.bounds = sorted({a for a, _, _ in self.segments} | {b for _, b, _ in self.segments})
        self.down = [(a, b) for a, b, s in self.segments if s == DOWN]
        self.down_ends = [b for _, b in self.down]

    def bounds_in(self, a: int, b: int) -> list[int]:
        return self.bounds[bisect_right(self.bounds, a) : bisect_left(self.bounds, b)]

    def incidents(self) -> list[tuple[int, int, list[tuple[int, int]]]]:
        """SLA.md §3: (start, end, gaps) of each outage. A stretch of `unknown` between two `down`
        stretches, with no successful result inside it, does not end the outage: one outage spans
        both stretches and the gap. A success is any ok result, reachability or video, inside the
        `unknown` or right at its end (the first result after it); then the outage ends where the
        `unknown` began."""
        successes = sorted(
            [t for t, ok in zip(self.rt, self.rok, strict=True) if ok]
            + [t for t, ok in zip(self.vt, self.vok, strict=True) if ok]
        )
        out: list[tuple[int, int, list[tuple[int, int]]]] = []
        for a, b in self.down:
            if out:
                start, end, gaps = out[-1]
                only_unknown_between = (
                    self.state_at(end) == UNKNOWN and self.bounds[bisect_right(self.bounds, end)] == a
                )
                success = bisect_right(successes, a) > bisect_left(successes, end)  # one in [end, a]
                if only_unknown_between and not success:
                    out[-1] = (start, b, [*gaps, (end, a)])
                    continue
            out.append((a, b, []))
        return out


@dataclass
class Outage:
    device: str
    start: int
    end: int  # for an open outage: t_last + stale_after (where the evidence ran out)
    open: bool
    pieces: list[tuple[int, int, str]] = field(default_factory=list)  # elementary (a, b, cause)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # unknown stretches inside it (§3)


# --------------------------------------------------------------------------- the statement


class Engine:
    def __init__(
        self,
        inventory_yaml: Path,
        contract_yamls: list[Path],
        exclusions_yaml: Path | None,
        history_csvs: list[Path],
    ) -> None:
        self.contracts = {c.id: c for c in (load_contract(p) for p in contract_yamls)}
        self.sites, self.devices = load_inventory(inventory_yaml, self.contracts)
        self.history = load_history(history_csvs)
        self._timelines: dict[str, Timeline] = {}
        self._outages: dict[tuple[str, str], list[Outage]] = {}
        self._default_contract = contract_from_raw({"id": "__default__"})

    def contract_of(self, d: Device) -> Contract:
        return self.contracts.get(d.contract, self._default_contract)

    def timeline(self, dev_id: str) -> Timeline:
        if dev_id not in self._timelines:
            h = self.history.get(dev_id, {"reach": [], "video": []})
            # a device's timeline uses the settings of its own contract
            self._timelines[dev_id] = Timeline(h["reach"], h["video"], self.contract_of(self.devices[dev_id]))
        return self._timelines[dev_id]

    def ancestors(self, d: Device) -> list[str]:
        out = []
        p = d.parent
        while p is not None and p not in out:
            out.append(p)
            p = self.devices[p].parent if p in self.devices else None
        return out

    # -- causes ------------------------------------------------------------------------------------

    def cause_at(self, c: Contract, d: Device, o: Outage, t: int, exclusions: list[Exclusion]) -> str:
        for ex in exclusions:
            if (
                ex.status == "approved"
                and ex.category in c.honoured
                and ex.covers(d)
                and ex.start <= t < ex.end
            ):
                return "excluded:" + ex.category
        for anc in self.ancestors(d):
            if anc not in self.devices:
                continue
            tl = self.timeline(anc)
            if tl.state_at(t) == DOWN:
                return "upstream:" + anc
            k = bisect_right(tl.down_ends, t) - 1  # latest down interval with ae <= t
            if k >= 0:
                ae = tl.down_ends[k]
                if ae <= t < ae + c.upstream_grace and o.start < ae:
                    return "upstream:" + anc
        return "device"

    def outages(self, c: Contract, d: Device, exclusions: list[Exclusion]) -> list[Outage]:
        key = (c.id, d.id)
        if key in self._outages:
            return self._outages[key]
        tl = self.timeline(d.id)
        res = []
        for a, b, all_gaps in tl.incidents():
            s, e = max(a, d.in_service), min(b, d.out_of_service)
            if s >= e:
                continue
            gaps = [(max(x, s), min(y, e)) for x, y in all_gaps if max(x, s) < min(y, e)]
            if sum(y - x for x, y in gaps) == e - s:
                continue  # nothing down in service: unknown time never forms an outage on its own
            is_open = tl.t_last is not None and b == tl.t_last + tl.stale and e == b
            o = Outage(d.id, s, e, is_open, gaps=gaps)
            pts = {s, e}
            for x, y in gaps:
                pts.update((x, y))
            for ex in exclusions:
                pts.update((ex.start, ex.end))
            for anc in self.ancestors(d):
                if anc not in self.devices:
                    continue
                atl = self.timeline(anc)
                pts.update(atl.bounds_in(s, e))
                pts.update(ae + c.upstream_grace for ae in atl.down_ends)
            bps = sorted(p for p in pts if s <= p <= e)
            for x, y in itertools.pairwise(bps):
                if any(gx <= x < gy for gx, gy in gaps):
                    # a gap's seconds have no cause; they count only as unknown time does
                    excluded = any(
                        ex.status == "approved"
                        and ex.category in c.honoured
                        and ex.covers(d)
                        and ex.start <= x < ex.end
                        for ex in exclusions
                    )
                    cause = GAP_EXCLUDED if excluded else GAP
                else:
                    cause = self.cause_at(c, d, o, x, exclusions)
                if o.pieces and o.pieces[-1][2] == cause and o.pieces[-1][1] == x:
                    o.pieces[-1] = (o.pieces[-1][0], y, cause)
                else:
                    o.pieces.append((x, y, cause))
            res.append(o)
        self._outages[key] = res
        return res

    # -- statement ---------------------------------------------------------------------------------

    def statement(
        self, contract_id: str, month: str, exclusions_yaml: Path | None, inspections_yaml: Path | None = None
    ) -> dict[str, Any]:
        c = self.contracts[contract_id]
        tz = c.tz
        exclusions = self._exclusions(exclusions_yaml, tz)
        p_start, p_end = month_bounds(month, tz)
        p_len = p_end - p_start

        def counted(cause: str) -> bool:
            return (
                cause == "device"
                or (c.upstream_counts and cause.startswith("upstream:"))
                or (cause == GAP and c.unknown_counts_as == "down")
            )

        devs = sorted((d for d in self.devices.values() if d.contract == c.id), key=lambda d: d.id)
        dev_rows: list[dict[str, Any]] = []
        dev_stats: dict[str, dict[str, Any]] = {}
        on_statement: list[Device] = []
        for d in devs:
            w0, w1 = max(p_start, d.in_service), min(p_end, d.out_of_service)
            if w1 <= w0:
                continue
            on_statement.append(d)
            tl = self.timeline(d.id)
            honoured = [
                ex
                for ex in exclusions
                if ex.status == "approved" and ex.category in c.honoured and ex.covers(d)
            ]
            outs = self.outages(c, d, exclusions)
            pts = {w0, w1}
            pts.update(tl.bounds_in(w0, w1))
            for ex in honoured:
                pts.update((ex.start, ex.end))
            for o in outs:
                for a, b, _ in o.pieces:
                    pts.update((a, b))
            bps = sorted(p for p in pts if w0 <= p <= w1)
            S = w1 - w0
            X = D = G = 0
            for a, b in itertools.pairwise(bps):
                ln = b - a
                st = tl.state_at(a)
                excl = any(ex.start <= a < ex.end for ex in honoured)
                if excl:
                    X += ln
                elif st == UNKNOWN:
                    if c.unknown_counts_as == "excluded":
                        X += ln
                    elif c.unknown_counts_as == "down":
                        D += ln
                elif st == DOWN:
                    cause = self._piece_cause(outs, a)
                    assert not cause.startswith("excluded:")
                    if counted(cause):
                        D += ln
                elif st == DEGRADED:
                    G += ln
            avail = Fraction(1) if S - X == 0 else 1 - Fraction(D, S - X)
            base = c.fees.get(d.kind, Fraction(0)) * d.channels
            fee = round_money(base * Fraction(S, p_len) if c.prorate else base)
            dev_stats[d.id] = {"S": S, "X": X, "D": D, "G": G, "avail": avail, "fee": fee, "ded": Fraction(0)}

        fee_total = sum((dev_stats[d.id]["fee"] for d in on_statement), Fraction(0))
        lines: list[dict[str, Any]] = []

        # 1. availability tiers
        for d in on_statement:
            st = dev_stats[d.id]
            matching = [ded for below, ded in c.tiers if below > st["avail"]]
            if matching:
                amt = round_money(st["fee"] * max(matching))
                st["ded"] += amt
                lines.append({"rule": "availability_tier", "device": d.id, "amount": amt})

        # 2. outages and repair overrun
        lost: dict[str, Fraction] = {}  # score card points lost, by cause
        card_overrun = None if c.card is None else c.card.overrun_points
        out_rows = []
        on_ids = {d.id for d in on_statement}
        for d in devs:
            outs = self.outages(c, d, exclusions)
            for o in outs:
                total = sum(b - a for a, b, cause in o.pieces if counted(cause))
                ends_in_p = (not o.open) and p_start <= o.end < p_end
                hours = 0
                amount = Fraction(0)
                deadline = c.repair_deadline.get(self.sites[d.site].area if d.site in self.sites else None)
                if card_overrun is not None and ends_in_p and deadline is not None and total > deadline:
                    # the score card takes points off; no money on the outage
                    hours = -(-(total - deadline) // (3600 * US))
                    lost["repair_overrun"] = lost.get("repair_overrun", Fraction(0)) + card_overrun
                if ends_in_p and deadline is not None and c.per_started_hour is not None and total > deadline:
                    hours = -(-(total - deadline) // (3600 * US))
                    amount = hours * c.per_started_hour
                    if c.max_per_incident is not None:
                        amount = min(amount, c.max_per_incident)
                    amount = round_money(amount)
                    lines.append(
                        {
                            "rule": "repair_overrun",
                            "device": d.id,
                            "outage_start": us_to_iso(o.start, tz),
                            "amount": amount,
                        }
                    )
                    if d.id in dev_stats:
                        dev_stats[d.id]["ded"] += amount
                listed = d.id in on_ids and (overlap(o.start, o.end, p_start, p_end) > 0 or ends_in_p)
                if not listed:
                    continue
                causes: dict[str, int] = {}  # with the gaps' pseudo-causes, left off the statement
                for a, b, cause in o.pieces:
                    ov = overlap(a, b, p_start, p_end)
                    if ov > 0:
                        causes[cause] = causes.get(cause, 0) + ov
                tlx = self.timeline(d.id)
                fails = [t for t, ok in zip(tlx.rt, tlx.rok, strict=False) if not ok and o.start <= t < o.end]
                recovered = None
                if not o.open and tlx.state_at(o.end) in (UP, DEGRADED):
                    recovered = o.end
                out_rows.append(
                    {
                        "device": d.id,
                        "start": us_to_iso(o.start, tz),
                        "end": None if o.open else us_to_iso(o.end, tz),
                        "start_us": o.start,
                        "end_us": None if o.open else o.end,
                        "open": o.open,
                        "counted_s": secs(sum(v for k, v in causes.items() if counted(k))),
                        "counted_total_s": secs(total),
                        "causes": {
                            k: secs(v) for k, v in sorted(causes.items()) if k not in (GAP, GAP_EXCLUDED)
                        },
                        "overrun_hours": hours,
                        "deduction": money_str(amount),
                        "evidence": {
                            "first_failure": us_to_iso(fails[0], tz) if fails else None,
                            "last_failure": us_to_iso(fails[-1], tz) if fails else None,
                            "recovered": us_to_iso(recovered, tz),
                            **(
                                {
                                    "gaps": [
                                        {"start": us_to_iso(x, tz), "end": us_to_iso(y, tz)}
                                        for x, y in o.gaps
                                    ]
                                }
                                if o.gaps
                                else {}
                            ),
                        },
                    }
                )

        # 3. fleet KPIs
        fleet = [d for d in on_statement if d.kind in c.fleet_kinds]
        den = sum(dev_stats[d.id]["S"] - dev_stats[d.id]["X"] for d in fleet)
        sum_d = sum(dev_stats[d.id]["D"] for d in fleet)
        sum_g = sum(dev_stats[d.id]["G"] for d in fleet)
        online = Fraction(1) if den == 0 else 1 - Fraction(sum_d, den)
        intact = Fraction(1) if den == 0 else 1 - Fraction(sum_d + sum_g, den)
        rates = {"online_rate": online, "intact_rate": intact}
        for kpi in ("online_rate", "intact_rate"):
            k = c.kpis.get(kpi)
            if k is None or rates[kpi] >= k.target:
                continue
            if k.flat is not None:
                lines.append({"rule": "fleet_kpi", "kpi": kpi, "amount": round_money(fee_total * k.flat)})
            if k.per_point is not None:
                below = (k.target - rates[kpi]) * 100  # percentage points, exact
                whole = below.numerator // below.denominator
                n = whole if k.whole_points or whole == below else whole + 1
                if n > 0:
                    share = n * k.per_point
                    if k.per_point_max is not None:
                        share = min(share, k.per_point_max)
                    lines.append(
                        {
                            "rule": "kpi_shortfall",
                            "kpi": kpi,
                            "points": n,
                            "amount": round_money(fee_total * share),
                        }
                    )

        # 3b. score card
        if c.card is not None:
            card = c.card
            if card.fault_over is not None:
                lost["fault_hours"] = Fraction(0)
                for d in fleet:
                    st = dev_stats[d.id]
                    fault = st["D"] + (st["G"] if card.fault_with_degraded else 0)
                    if fault > card.fault_over:
                        lost["fault_hours"] += card.fault_points * d.channels
            if card.overrun_points is not None:
                lost.setdefault("repair_overrun", Fraction(0))
            if card.missed_points is not None:
                n = sum(
                    1
                    for cid, day, _ in load_missed_inspections(inspections_yaml)
                    if cid == c.id and day[:7] == month
                )
                lost["missed_inspection"] = n * card.missed_points
            score = max(Fraction(0), 100 - sum(lost.values(), Fraction(0)))
            _at_least, pay = max((b for b in card.bands if b[0] <= score), key=lambda b: b[0])
            lines.append(
                {
                    "rule": "score_card",
                    "score": score,
                    "pay": pay,
                    "points_lost": dict(lost),
                    "amount": round_money(fee_total * (1 - pay)),
                }
            )

        # 4. cap
        subtotal = sum((ln["amount"] for ln in lines), Fraction(0))
        if c.cap is not None:
            cap_amount = round_money(fee_total * c.cap)
            if subtotal > cap_amount:
                lines.append({"rule": "cap", "amount": cap_amount - subtotal})
        deduction_total = sum((ln["amount"] for ln in lines), Fraction(0))

        # exclusions on the statement
        ex_rows = []
        for ex in exclusions:
            if not any(ex.covers(d) for d in on_statement):
                continue
            if overlap(ex.start, ex.end, p_start, p_end) <= 0:
                continue
            hon = ex.status == "approved" and ex.category in c.honoured
            ex_rows.append(
                {
                    "id": ex.id,
                    "honoured": hon,
                    "excluded_s": secs(overlap(ex.start, ex.end, p_start, p_end)) if hon else 0,
                }
            )

        for d in on_statement:
            st = dev_stats[d.id]
            dev_rows.append(
                {
                    "id": d.id,
                    "kind": d.kind,
                    "fee": money_str(st["fee"]),
                    "scheduled_s": secs(st["S"]),
                    "excluded_s": secs(st["X"]),
                    "down_s": secs(st["D"]),
                    "degraded_s": secs(st["G"]),
                    "availability": st["avail"],
                    "deduction": money_str(st["ded"]),
                }
            )
        for ln in lines:
            ln["amount"] = money_str(ln["amount"])
        out_rows.sort(key=lambda r: (r["device"], r["start_us"]))
        return {
            "contract": c.id,
            "month": month,
            "fee_total": money_str(fee_total),
            "deduction_total": money_str(deduction_total),
            "payable": money_str(fee_total - deduction_total),
            "rates": rates,
            "devices": dev_rows,
            "outages": out_rows,
            "exclusions": ex_rows,
            "deductions": lines,
        }

    @staticmethod
    def _piece_cause(outs: list[Outage], t: int) -> str:
        for o in outs:
            if o.start <= t < o.end:
                for a, b, cause in o.pieces:
                    if a <= t < b:
                        return cause
        raise AssertionError("down second outside every outage")

    def _exclusions(self, path: Path | None, tz: ZoneInfo) -> list[Exclusion]:
        return load_exclusions(path, tz)


def compute_statement(
    inventory_yaml: Path,
    contract_yamls: list[Path],
    exclusions_yaml: Path | None,
    history_csvs: list[Path],
    contract_id: str,
    month: str,
    inspections_yaml: Path | None = None,
) -> dict[str, Any]:
    """The statement figures for one contract and one month (see module docstring)."""
    eng = Engine(
        Path(inventory_yaml),
        [Path(p) for p in contract_yamls],
        None if exclusions_yaml is None else Path(exclusions_yaml),
        [Path(p) for p in history_csvs],
    )
    return eng.statement(
        contract_id,
        month,
        None if exclusions_yaml is None else Path(exclusions_yaml),
        None if inspections_yaml is None else Path(inspections_yaml),
    )


def compute_statements(
    inventory_yaml: Path,
    contract_yamls: list[Path],
    exclusions_yaml: Path | None,
    history_csvs: list[Path],
    wanted: list[tuple[str, str]],
    inspections_yaml: Path | None = None,
) -> dict[tuple[str, str], dict]:
    """Several (contract_id, month) statements sharing one parse of the inputs (faster)."""
    eng = Engine(
        Path(inventory_yaml),
        [Path(p) for p in contract_yamls],
        None if exclusions_yaml is None else Path(exclusions_yaml),
        [Path(p) for p in history_csvs],
    )
    ex = None if exclusions_yaml is None else Path(exclusions_yaml)
    mi = None if inspections_yaml is None else Path(inspections_yaml)
    return {(cid, m): eng.statement(cid, m, ex, mi) for cid, m in wanted}
